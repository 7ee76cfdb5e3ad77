"""Piecewise elementwise functions of functrans.numpy: rounding, extrema and clipping, comparisons
and logic.

Their derivatives are zero (rounding, boolean outputs) or select one operand (maximum, minimum,
clip), with the tie and bound conventions stated below. They use the promotion helpers of
_elementwise.py and, like them, follow NumPy's broadcasting and dtypes.
"""

from __future__ import annotations

import builtins

import numpy as np

from functrans.core import aval_of
from functrans.numpy._base import (
    NO_VALUE,
    as_bool,
    asarray,
    broadcast_all,
    int_out_of_range,
    promote_and_broadcast,
    result_dtype,
)
from functrans.numpy._elementwise import _cast, _const, _copy, _to_inexact
from functrans.primitives import elementwise as ew
from functrans.primitives import transcendental as tr

# ---------------------------------------------------------------------------------------------
# Rounding: piecewise constant, derivative 0. Integers round to themselves, as in NumPy.


def _rounding(prim_fn, name):
    def fn(x):
        x = asarray(x)
        return x if aval_of(x).dtype.kind in "iub" else prim_fn(x)

    fn.__name__ = name
    return fn


floor = _rounding(ew.floor, "floor")
ceil = _rounding(ew.ceil, "ceil")
trunc = _rounding(tr.trunc, "trunc")
fix = trunc


def rint(x):
    return ew.round(_to_inexact(x))


def round(x, decimals=0):  # noqa: A001 - the NumPy name
    """Round half to even to `decimals` places (NumPy's scale, rint, unscale)."""
    x = asarray(x)
    kind = aval_of(x).dtype.kind
    if kind in "iu":
        if decimals >= 0:
            return _copy(x)
        # NumPy rounds integers to tens, hundreds, ... half to even, staying integer
        return _cast(round(_cast(x, np.float64), decimals), aval_of(x).dtype)
    if kind == "b":
        x = _to_inexact(x)
    if decimals == 0:
        return ew.round(x)
    if aval_of(x).dtype.kind == "c":
        return ew.add(
            _cast(round(ew.real(x), decimals), aval_of(x).dtype),
            ew.mul(_cast(round(ew.imag(x), decimals), aval_of(x).dtype), _const(x, 1j)),
        )
    scale = _const(x, 10.0 ** builtins.abs(int(decimals)))  # this module's abs is fnp.abs
    if decimals > 0:
        return ew.div(ew.round(ew.mul(x, scale)), scale)
    return ew.mul(ew.round(ew.div(x, scale)), scale)


around = round


# ---------------------------------------------------------------------------------------------
# Extrema and clipping. Ties of maximum/minimum split the tangent 1/2 : 1/2 (see primitives).


def maximum(x, y):
    return ew.max(*promote_and_broadcast(x, y))


def minimum(x, y):
    return ew.min(*promote_and_broadcast(x, y))


def fmax(x, y):
    """maximum that ignores NaN: the other operand is returned (and differentiated)."""
    x, y = promote_and_broadcast(x, y)
    if aval_of(x).dtype.kind not in "fc":
        return ew.max(x, y)
    return ew.select_n(ew.isnan(y), ew.select_n(ew.isnan(x), ew.max(x, y), y), x)


def fmin(x, y):
    """minimum that ignores NaN: the other operand is returned (and differentiated)."""
    x, y = promote_and_broadcast(x, y)
    if aval_of(x).dtype.kind not in "fc":
        return ew.min(x, y)
    return ew.select_n(ew.isnan(y), ew.select_n(ew.isnan(x), ew.min(x, y), y), x)


def clip(a, a_min=NO_VALUE, a_max=NO_VALUE, *, min=None, max=None):  # noqa: A002
    """Limit `a` to [a_min, a_max] (either may be None), as NumPy.

    Convention at the bounds: the derivative with respect to `a` is 1 on the closed interval
    a_min <= a <= a_max and 0 outside it; a bound gets the tangent only where `a` is strictly
    beyond it. If a_min > a_max, every element is a_max, as in NumPy.
    """
    lo = min if a_min is NO_VALUE or a_min is None else a_min
    hi = max if a_max is NO_VALUE or a_max is None else a_max
    # a Python-int bound beyond a's integer range: one that cannot bind is dropped, one that
    # would bind everything is NumPy's OverflowError
    if type(lo) is int and (bad := int_out_of_range((a, lo))) is not None:
        if lo < np.iinfo(bad[1]).min:
            lo = None
        else:
            raise OverflowError(f"Python integer {lo} out of bounds for {bad[1]}")
    if type(hi) is int and (bad := int_out_of_range((a, hi))) is not None:
        if hi > np.iinfo(bad[1]).max:
            hi = None
        else:
            raise OverflowError(f"Python integer {hi} out of bounds for {bad[1]}")
    if lo is None and hi is None:
        return _copy(asarray(a))
    present = [v for v in (a, lo, hi) if v is not None]
    dtype = result_dtype(*present)  # Python-scalar bounds are weak: float32 stays float32
    args = broadcast_all(*[_cast(v, dtype) for v in present])
    x, rest = args[0], args[1:]
    inexact = dtype.kind in "fc"
    if lo is not None:
        lo_b, rest = rest[0], rest[1:]
        beyond = ew.lt(x, lo_b)
        if inexact:  # a NaN bound makes NaN, as NumPy's maximum/minimum do
            beyond = ew.logical_or(beyond, ew.isnan(lo_b))
        x = ew.select_n(beyond, x, lo_b)
    if hi is not None:
        beyond = ew.gt(x, rest[0])
        if inexact:
            beyond = ew.logical_or(beyond, ew.isnan(rest[0]))
        x = ew.select_n(beyond, x, rest[0])
    return x


# ---------------------------------------------------------------------------------------------
# Comparisons and logic: boolean outputs, no derivatives


def _comparison(op: str, prim_fn, name: str):
    """fnp's comparison `name`, x <op> y. Against a Python int beyond the other operand's
    integer range the answer is known, and exact as in NumPy 2 (converting the int would wrap
    or overflow)."""

    def compare(x, y):
        bad = int_out_of_range((x, y))
        if bad is None:
            return prim_fn(*promote_and_broadcast(x, y))
        big, dtype = bad
        flipped = op
        if type(x) is int:  # big <op> y is y <flipped op> big
            flipped = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}.get(op, op)
        above = big > np.iinfo(dtype).max  # every element is below big
        value = {"eq": False, "ne": True}.get(
            flipped, above if flipped in ("lt", "le") else not above
        )
        return np.full(aval_of(asarray(y if type(x) is int else x)).shape, value)

    compare.__name__ = name
    return compare


equal = _comparison("eq", ew.eq, "equal")
not_equal = _comparison("ne", ew.ne, "not_equal")
less = _comparison("lt", ew.lt, "less")
less_equal = _comparison("le", ew.le, "less_equal")
greater = _comparison("gt", ew.gt, "greater")
greater_equal = _comparison("ge", ew.ge, "greater_equal")


def logical_and(x, y):
    x, y = promote_and_broadcast(as_bool(x), as_bool(y))
    return ew.logical_and(x, y)


def logical_or(x, y):
    x, y = promote_and_broadcast(as_bool(x), as_bool(y))
    return ew.logical_or(x, y)


def logical_xor(x, y):
    x, y = promote_and_broadcast(as_bool(x), as_bool(y))
    return ew.ne(x, y)


def logical_not(x):
    return ew.logical_not(as_bool(x))


def _integer_operands(name: str, *args) -> list:
    """Promoted, broadcast operands of a bitwise ufunc, which takes integers and booleans."""
    args = promote_and_broadcast(*args) if len(args) > 1 else [asarray(args[0])]
    dtype = aval_of(args[0]).dtype
    if dtype.kind not in "biu":
        raise TypeError(
            f"functrans.numpy.{name}: the operands are {dtype}, and bitwise operations take "
            "integers or booleans (as NumPy's do); use logical_and/logical_or/logical_not for "
            "truth values, or convert with astype."
        )
    return list(args)


def bitwise_and(x, y):
    """numpy.bitwise_and (the & operator): on booleans it is logical_and."""
    x, y = _integer_operands("bitwise_and", x, y)
    return ew.logical_and(x, y) if aval_of(x).dtype == bool else ew.bitwise_and(x, y)


def bitwise_or(x, y):
    """numpy.bitwise_or (the | operator): on booleans it is logical_or."""
    x, y = _integer_operands("bitwise_or", x, y)
    return ew.logical_or(x, y) if aval_of(x).dtype == bool else ew.bitwise_or(x, y)


def bitwise_xor(x, y):
    """numpy.bitwise_xor (the ^ operator): on booleans it is logical_xor."""
    x, y = _integer_operands("bitwise_xor", x, y)
    return ew.ne(x, y) if aval_of(x).dtype == bool else ew.bitwise_xor(x, y)


def invert(x):
    """numpy.invert (bitwise_not, the ~ operator): on booleans it is logical_not."""
    (x,) = _integer_operands("invert", x)
    return ew.logical_not(x) if aval_of(x).dtype == bool else ew.bitwise_not(x)


bitwise_not = invert


def isnan(x):
    return ew.isnan(asarray(x))


def isfinite(x):
    return ew.isfinite(asarray(x))


def isinf(x):
    x = asarray(x)
    return ew.logical_not(ew.logical_or(ew.isfinite(x), ew.isnan(x)))


__all__ = [
    "around",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "invert",
    "ceil",
    "clip",
    "equal",
    "fix",
    "floor",
    "fmax",
    "fmin",
    "greater",
    "greater_equal",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "not_equal",
    "rint",
    "round",
    "trunc",
]
