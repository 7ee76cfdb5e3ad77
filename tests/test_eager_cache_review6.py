"""Review 6 of the eager cache change (2367ecd..): dot_general's canonical dimension numbers.

The first version of the change looked the given dimension numbers up in a module dict, keyed
by the given object whenever it was hashable, and converted them with int() only on a miss. A
lookup by equality and hash is not a conversion:

  - a value equal to an int that int() rejects (the complex 1+0j == 1, same hash) was accepted
    once the int form had been seen, and rejected before: the result depended on history;
  - a hashable object that is not a value (identity hash and equality, an __index__ that reads
    mutable state) was looked up by identity, so what it stood for on its first call was used on
    every later call: a stale canonical form, a different contraction, wrong numbers.

Now dot_general converts whatever it is given, unless it is one of its own canonical objects
(`dot.canonical_dims`). These tests check that.
"""

from __future__ import annotations

import numpy as np
import pytest
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401

import functrans as ft
import functrans.numpy as fnp
from functrans.primitives import dot_general

pytestmark = pytest.mark.filterwarnings("ignore")

_INT_DIMS = (((1,), (0,)), ((), ()))


def test_complex_axes_in_dimension_numbers_are_rejected_after_the_int_form_was_seen():
    # int(1+0j) is a TypeError, and was on every call before the change; now (1+0j,) == (1,)
    # finds the cached int form and the call goes through (only if that form was seen before)
    x = np.arange(6.0).reshape(2, 3)
    y = np.arange(12.0).reshape(3, 4)
    bad = (((1 + 0j,), (0j,)), ((), ()))
    dot_general(x, y, dimension_numbers=_INT_DIMS)  # a plain contraction, met earlier
    with pytest.raises(TypeError):
        dot_general(x, y, dimension_numbers=bad)


def test_complex_axes_under_an_eager_transformation_raise_as_uncached():
    # the same through a cached eager transformation: the uncached call raises, the cached
    # calls (after the int form was seen anywhere in the process) return a gradient
    x = np.arange(6.0).reshape(2, 3)
    y = np.arange(12.0).reshape(3, 4) / 10
    bad = (((1 + 0j,), (0j,)), ((), ()))
    dot_general(x, y, dimension_numbers=_INT_DIMS)

    def f(v):
        return fnp.sum(fnp.sin(dot_general(v, y, dimension_numbers=bad)))

    with uncached():
        with pytest.raises(TypeError):
            ft.grad(f)(x)
    g = ft.grad(f)
    for _ in range(CALLS):
        with pytest.raises(TypeError):
            g(x)


class _Axis:
    """An axis number held in a mutable object (hashable by identity, as objects are)."""

    def __init__(self, i: int):
        self.i = i

    def __index__(self) -> int:
        return self.i

    __int__ = __index__


def test_dimension_numbers_holding_a_changed_axis_object_are_read_anew():
    # the first call caches the object's tuple -> ((1,), (0,)); after the object changes, the
    # same tuple (equal to itself by identity) still finds ((1,), (0,)): x @ y, not x.T @ y
    x = np.arange(9.0).reshape(3, 3)
    y = np.arange(1.0, 10.0).reshape(3, 3)
    axis = _Axis(1)
    dims = (((axis,), (0,)), ((), ()))
    np.testing.assert_array_equal(dot_general(x, y, dimension_numbers=dims), x @ y)
    axis.i = 0
    np.testing.assert_array_equal(dot_general(x, y, dimension_numbers=dims), x.T @ y)
