"""docs/api.md covers the public API, every public name has a docstring, and the page is fresh.

Public names are read from the modules' `__all__` here, independently of the generator, so a
generator that skipped a name would still be caught.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import gen_api_docs  # noqa: E402

import functrans  # noqa: E402

API_MD = ROOT / "docs" / "api.md"
LISTED = ["functrans", "functrans.lax", "functrans.testing", "functrans.tree_util"]
DOCUMENTED_ELSEWHERE = {"functrans.numpy"}  # docs/numpy_coverage.md


def _public_names() -> list[tuple[str, object]]:
    """(dotted name, object) for every name in the __all__ of the listed modules and of the
    submodules functrans exports."""
    mods = list(LISTED)
    mods += [
        f"functrans.{n}"
        for n in functrans.__all__
        if inspect.ismodule(getattr(functrans, n)) and f"functrans.{n}" not in mods
    ]
    out = []
    for modname in mods:
        if modname in DOCUMENTED_ELSEWHERE:
            continue
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not inspect.ismodule(obj):
                out.append((f"{modname}.{name}", obj))
    return out


PUBLIC = _public_names()


@pytest.mark.parametrize("name", [n for n, _ in PUBLIC])
def test_public_name_has_an_entry_in_api_md(name):
    text = API_MD.read_text()
    assert f'<a id="{name}"></a>' in text, (
        f"{name} is public (in __all__) but has no entry in docs/api.md; "
        "run python scripts/gen_api_docs.py"
    )


def test_every_exported_submodule_has_a_section_or_page():
    text = API_MD.read_text()
    for n in functrans.__all__:
        if inspect.ismodule(getattr(functrans, n)):
            dotted = f"functrans.{n}"
            target = "numpy_coverage.md" if dotted in DOCUMENTED_ELSEWHERE else f'id="{dotted}"'
            assert target in text, f"{dotted} has no section in docs/api.md"


def test_every_public_name_has_a_docstring():
    """Every entry of docs/api.md (public names plus the public methods and properties of the
    public classes) carries its own docstring; type aliases cannot and are exempt."""
    public = {n for n, _ in PUBLIC}
    covered = {e.name for e in gen_api_docs.all_entries()}
    missing_names = sorted(public - covered)
    assert not missing_names, f"the generator skips public names: {missing_names}"
    undocumented = [e.name for e in gen_api_docs.all_entries() if e.kind != "alias" and not e.doc]
    assert not undocumented, "public names without a docstring: " + ", ".join(undocumented)


def test_aliases_are_really_aliases():
    for e in gen_api_docs.all_entries():
        if e.kind == "alias":
            assert isinstance(e.obj, (types.UnionType, types.GenericAlias)), e.name


def test_api_md_is_fresh():
    assert API_MD.read_text() == gen_api_docs.render(), (
        "docs/api.md is stale: run python scripts/gen_api_docs.py"
    )
