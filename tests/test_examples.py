"""Every script in examples/ runs to completion (each asserts its own results)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_examples_exist():
    names = {p.name for p in EXAMPLES}
    for required in (
        "quickstart.py",
        "taylor.py",
        "newton.py",
        "mlp_training.py",
        "sensitivity.py",
        "per_example_gradients.py",
        "property_testing.py",
    ):
        assert required in names, f"examples/{required} is missing"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
        f"\n--- stderr\n{result.stderr[-3000:]}"
    )
    assert result.stdout.strip(), f"{script.name} printed nothing"


def test_every_example_is_listed_in_readme_and_docs_index():
    readme = (ROOT / "README.md").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    for script in EXAMPLES:
        assert f"(examples/{script.name})" in readme, f"README.md does not list {script.name}"
        assert f"(../examples/{script.name})" in index, f"docs/index.md does not list {script.name}"
