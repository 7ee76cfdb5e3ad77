"""The documentation's code blocks run and print what they say (README.md and docs/*.md)."""

from __future__ import annotations

import doctest
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _pycon_blocks(text: str) -> str:
    """The ```pycon blocks of a Markdown file, joined as one doctest session."""
    return "\n".join(re.findall(r"```pycon\n(.*?)```", text, flags=re.S))


@pytest.mark.parametrize(
    "path", [p for p in DOCS if "```pycon" in p.read_text()], ids=lambda p: p.name
)
def test_markdown_examples(path):
    source = _pycon_blocks(path.read_text())
    parser = doctest.DocTestParser()
    test = parser.get_doctest(source, {}, path.name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the naive examples
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {path}"
