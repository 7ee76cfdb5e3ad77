"""Two NumPy mismatches reported in session 7 (by the keyword-arguments work): a boolean mask of
the wrong length indexed a traced array silently, and reductions of a 0-d array gave 0-d arrays
where NumPy gives scalars."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp

_MASK_CASES = [
    (np.array([True, False]), (5,)),
    (np.array([True, False, True]), (5,)),
    (np.array([True, False, True, True, False]), (5,)),
    ((Ellipsis, np.array([True, False, True])), (2, 3)),
    ((Ellipsis, np.array([True, False])), (2, 3)),
    ((np.array([[True, False, True], [False, True, True]]),), (2, 3)),
    ((np.array([[True, False], [False, True]]),), (2, 3)),
    ((None, np.array([True, False]), Ellipsis), (2, 3)),
    ((None, np.array([True, False]), Ellipsis), (3, 2)),
    ((slice(None), np.array([True, False, True])), (2, 3)),
    ((0, np.array([True, True])), (2, 3)),
]


def _outcome(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return None, (type(e), str(e))


@pytest.mark.parametrize("idx, shape", _MASK_CASES)
@pytest.mark.parametrize("how", ["concrete", "jit", "grad"])
def test_a_boolean_mask_is_checked_against_the_axes_it_indexes(idx, shape, how):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    want, want_err = _outcome(lambda: a[idx])
    if how == "concrete":
        got, err = _outcome(lambda: fnp.asarray(a)[idx])
    elif how == "jit":
        got, err = _outcome(lambda: ft.jit(lambda x: x[idx])(a))
    else:  # the gradient of a sum of the selection: ones where selected (or the same error)
        got, err = _outcome(lambda: ft.grad(lambda x: fnp.sum(x[idx]))(a))
        if want_err is None:
            want = np.zeros(shape)
            np.add.at(want, idx, 1.0)
    assert err == want_err
    if want_err is None:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "all", "any", "count_nonzero"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_a_reduction_of_a_0d_array_is_a_numpy_scalar(name, keepdims):
    x = np.array(3.0)
    got = getattr(fnp, name)(x, keepdims=keepdims)
    want = getattr(np, name)(x, keepdims=keepdims)
    assert type(got) is type(want)
    assert got == want
    # and a reduction over no axes of an n-d array stays an array, as in NumPy
    y = np.ones((2, 3))
    assert type(getattr(fnp, name)(y, axis=())) is type(getattr(np, name)(y, axis=()))
