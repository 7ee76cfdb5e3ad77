"""docs/numpy_coverage.md is generated from the code (scripts/numpy_coverage.py): it must list
only functions that exist, and regenerating it must reproduce it exactly, so a function that is
removed or loses a transformation (a missing rule, a wrong batch rule) fails here until the page
is regenerated and the change is visible in review."""

from __future__ import annotations

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "numpy_coverage.py"


def _script():
    spec = importlib.util.spec_from_file_location("numpy_coverage", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _listed(text: str) -> dict[str, list[str]]:
    """Namespace heading -> function names, parsed from the page's tables."""
    listed, section = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            listed[section] = []
        elif section and (m := re.match(r"\| `([^`]+)` \|", line)):
            listed[section].append(m.group(1))
    return listed


def test_every_listed_function_exists():
    script = _script()
    listed = _listed(script.DOC.read_text())
    assert set(listed) == {short for _, short in script.NAMESPACES}
    for module_name, short in script.NAMESPACES:
        module = importlib.import_module(module_name)
        missing = [n for n in listed[short] if not callable(getattr(module, n, None))]
        assert not missing, f"{short}: listed in docs/numpy_coverage.md but missing: {missing}"


def test_every_public_function_is_listed_and_the_page_is_current():
    script = _script()
    text = script.generate()
    assert _listed(text) == {short: script.public_names(name) for name, short in script.NAMESPACES}
    assert script.DOC.read_text() == text, (
        "docs/numpy_coverage.md is stale: run `python scripts/numpy_coverage.py` and review the "
        "diff (a function added, removed, or gaining/losing a transformation)"
    )


def test_the_report_detects_a_lost_rule(monkeypatch):
    # a primitive that loses its batch rule shows up as a vmap failure in the report
    from functrans.primitives import sorting

    script = _script()
    assert script.measure("cumsum", script.fnp.cumsum)["vmap"] == "yes"
    monkeypatch.setattr(sorting.cumsum_p, "batch", sorting.cumsum_p._missing_rule("batching"))
    assert script.measure("cumsum", script.fnp.cumsum)["vmap"] == "no (MissingRuleError)"
