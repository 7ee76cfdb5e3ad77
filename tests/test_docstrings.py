"""The examples in public docstrings run and show what they say.

Examples are written the way users read them: with `np`, `fnp` and the functrans API in scope
and NumPy's classic scalar repr (`0.5`, not `np.float64(0.5)`).
"""

from __future__ import annotations

import doctest
import importlib
import warnings

import numpy as np
import pytest

import functrans
import functrans.numpy as fnp

MODULES = [
    "functrans.api",
    "functrans.api_jacobians",
    "functrans.api_vmap",
    "functrans.jit",
    "functrans.custom_derivatives",
    "functrans.checkpoint",
    "functrans.lax",
    "functrans.debug",
    "functrans.tree_util",
    "functrans.testing",
    # the testing functions are defined in these modules: the finder only collects a module's own
    "functrans.testing._checks",
    "functrans.testing.properties",
    "functrans.testing.strategies",
    "functrans.numpy.linalg",
    "functrans.scipy.special",
    "functrans.scipy.linalg",
]


def _globs(module) -> dict:
    globs = {"np": np, "fnp": fnp, "functrans": functrans, "ft": functrans}
    globs.update({name: getattr(functrans, name) for name in functrans.__all__})
    globs.update(vars(module))
    return globs


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    old = np.get_printoptions()
    np.set_printoptions(legacy="1.25")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for test in finder.find(module, name, globs=_globs(module)):
                runner.run(test)
    finally:
        np.set_printoptions(**old)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed"
