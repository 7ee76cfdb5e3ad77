"""Sorting, searching and choosing in functrans.numpy: sort, argsort, searchsorted, where, select,
and the functions whose result shape depends on values (unique, nonzero, one-argument where).

Sorts are stable (ties keep their order; NumPy's default quicksort makes no such promise, so
argsort of tied keys may differ from NumPy's default but equals kind='stable'). The derivative of
sort follows each element to its sorted position. Value-dependent shapes cannot be traced: those
functions work on concrete arrays and raise ConcretizationError on traced ones.
"""

from __future__ import annotations

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.errors import ConcretizationError, NotSupportedError
from functrans.numpy._base import (
    _contains_tracer,
    as_bool,
    asarray,
    broadcast_all,
    normalize_axis,
    promote,
)
from functrans.numpy._shapes import ravel, take_along_axis
from functrans.primitives import elementwise as ew
from functrans.primitives import sorting as srt


def _axis_of(a, axis):
    a = asarray(a)
    if axis is None:
        return ravel(a), 0
    return a, normalize_axis(axis, aval_of(a).ndim)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """A sorted copy of a along an axis (the flattened array for axis=None); stable, NaNs last.

    The derivative of each output element is that of the input element sorted into its place.
    Example: fnp.sort(x, axis=0)
    """
    if order is not None:
        raise NotSupportedError("sort: structured arrays (order=) are not supported")
    a, axis = _axis_of(a, axis)
    return srt.sort(a, axis=axis)


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Indices that sort a along an axis (stable: tied entries keep their order)."""
    if order is not None:
        raise NotSupportedError("argsort: structured arrays (order=) are not supported")
    a, axis = _axis_of(a, axis)
    return srt.argsort(a, axis=axis)


def searchsorted(a, v, side="left", sorter=None):
    """Indices where the values v would be inserted into the sorted 1-d a to keep it sorted."""
    a = asarray(a)
    if aval_of(a).ndim != 1:
        raise ValueError(f"searchsorted: a must be 1-d, got {aval_of(a).str_short()}")
    if sorter is not None:
        a = take_along_axis(a, sorter, 0)
    a, v = promote(a, v)
    return srt.searchsorted(a, v, side=side)


def _concrete(x, what: str, fix: str):
    if isinstance(x, Tracer) and (value := x.plain_value()) is not None:
        return np.asarray(value)
    if isinstance(x, Tracer):
        raise ConcretizationError(
            f"{what} of a traced value {x.aval.str_short()}: the size of its result depends on "
            f"the values, which are not known while tracing (jit, vmap, grad, ...). {fix}"
        )
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        raise ConcretizationError(f"{what} of a list holding traced values. {fix}")
    return np.asarray(x)


def unique(
    ar,
    return_index=False,
    return_inverse=False,
    return_counts=False,
    axis=None,
    *,
    equal_nan=True,
):
    """numpy.unique of a concrete array; a traced array raises ConcretizationError."""
    ar = _concrete(
        ar,
        "unique",
        "Call it on a concrete array outside the transformation, or use sort / searchsorted, "
        "whose result shapes are known.",
    )
    return np.unique(
        ar,
        return_index=return_index,
        return_inverse=return_inverse,
        return_counts=return_counts,
        axis=axis,
        equal_nan=equal_nan,
    )


_NONZERO_FIX = (
    "Use the three-argument fnp.where(condition, x, y), or multiply by the mask, which keep the "
    "shape fixed."
)


def nonzero(a):
    """Indices of the nonzero elements of a concrete array (a tuple, one array per axis)."""
    return np.nonzero(_concrete(a, "nonzero", _NONZERO_FIX))


def flatnonzero(a):
    return np.flatnonzero(_concrete(a, "flatnonzero", _NONZERO_FIX))


def argwhere(a):
    return np.argwhere(_concrete(a, "argwhere", _NONZERO_FIX))


def where(condition, x=None, y=None):
    """x where condition holds, else y (broadcast together); the derivative flows only to the
    chosen operand. With only a concrete condition: its nonzero indices, as numpy.nonzero.

    Beware: an unselected branch that is NaN or infinite still poisons reverse mode through the
    other operations computing it; guard its input too (the double-where idiom, docs/).
    Example: fnp.where(x > 0, x, 0.0)
    """
    if x is None and y is None:
        return np.nonzero(_concrete(condition, "where(condition) with one argument", _NONZERO_FIX))
    if x is None or y is None:
        raise TypeError("where: give both x and y, or neither")
    x, y = promote(x, y)
    cond, x, y = broadcast_all(as_bool(condition), x, y)  # the predicate stays boolean
    return ew.select_n(cond, y, x)


def select(condlist, choicelist, default=0):
    """The choice of the first true condition, elementwise (default where none holds)."""
    if len(condlist) != len(choicelist):
        raise ValueError("select: list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    choices = promote(*choicelist, default)
    out = choices[-1]
    for cond, choice in zip(reversed(condlist), reversed(choices[:-1])):
        cond = asarray(cond)
        if aval_of(cond).dtype != bool:
            raise TypeError(f"select: condlist entries must be boolean, got {aval_of(cond).dtype}")
        out = where(cond, choice, out)
    return out


__all__ = [
    "argsort",
    "argwhere",
    "flatnonzero",
    "nonzero",
    "searchsorted",
    "select",
    "sort",
    "unique",
    "where",
]
