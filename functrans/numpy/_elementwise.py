"""Elementwise functions of functrans.numpy: NumPy's broadcasting and promotion over primitives."""

from __future__ import annotations

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    asarray,
    broadcast_all,
    promote,
    promote_and_broadcast,
    result_dtype,
)
from functrans.primitives import elementwise as ew


def _unary_inexact(prim_fn):
    """A NumPy ufunc of one operand that maps integers to float64 (as NumPy does)."""

    def fn(x):
        if (
            not (isinstance(x, Tracer) or type(x) is np.ndarray)
            or aval_of(x).dtype.kind not in "fc"
        ):
            (x,) = promote(x, to_inexact=True)
        return prim_fn(x)

    fn.__name__ = prim_fn.__name__
    return fn


exp = _unary_inexact(ew.exp)
log = _unary_inexact(ew.log)
log1p = _unary_inexact(ew.log1p)
expm1 = _unary_inexact(ew.expm1)
sin = _unary_inexact(ew.sin)
cos = _unary_inexact(ew.cos)
tan = _unary_inexact(ew.tan)
tanh = _unary_inexact(ew.tanh)
sqrt = _unary_inexact(ew.sqrt)


def negative(x):
    return ew.neg(asarray(x))


def positive(x):
    return asarray(x)


def absolute(x):
    return ew.abs(asarray(x))


abs = absolute  # noqa: A001 - the NumPy name


def sign(x):
    return ew.sign(asarray(x))


def floor(x):
    (x,) = promote(x, to_inexact=True)
    return ew.floor(x)


def ceil(x):
    (x,) = promote(x, to_inexact=True)
    return ew.ceil(x)


def square(x):
    return ew.integer_pow(asarray(x), y=2)


def reciprocal(x):
    x = asarray(x)
    return true_divide(np.ones((), aval_of(x).dtype), x)


def add(x, y):
    return ew.add(*promote_and_broadcast(x, y))


def subtract(x, y):
    return ew.sub(*promote_and_broadcast(x, y))


def multiply(x, y):
    return ew.mul(*promote_and_broadcast(x, y))


def true_divide(x, y):
    return ew.div(*promote_and_broadcast(x, y, to_inexact=True))


divide = true_divide


def floor_divide(x, y):
    x, y = promote_and_broadcast(x, y)
    if np.issubdtype(aval_of(x).dtype, np.integer):
        raise TypeError("functrans.numpy.floor_divide on integers is not supported yet")
    return ew.floor(ew.div(x, y))


def power(x, y):
    """x ** y; an integer Python exponent uses repeated multiplication (exact, differentiable
    at x = 0)."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        x = asarray(x)
        dtype = result_dtype(x, y)
        return ew.integer_pow(ew.convert_element_type(x, new_dtype=dtype), y=int(y))
    return ew.pow(*promote_and_broadcast(x, y))


def maximum(x, y):
    return ew.max(*promote_and_broadcast(x, y))


def minimum(x, y):
    return ew.min(*promote_and_broadcast(x, y))


def equal(x, y):
    return ew.eq(*promote_and_broadcast(x, y))


def not_equal(x, y):
    return ew.ne(*promote_and_broadcast(x, y))


def less(x, y):
    return ew.lt(*promote_and_broadcast(x, y))


def less_equal(x, y):
    return ew.le(*promote_and_broadcast(x, y))


def greater(x, y):
    return ew.gt(*promote_and_broadcast(x, y))


def greater_equal(x, y):
    return ew.ge(*promote_and_broadcast(x, y))


def _as_bool(x):
    x = asarray(x)
    return x if aval_of(x).dtype == bool else ew.ne(x, np.zeros((), aval_of(x).dtype))


def logical_and(x, y):
    x, y = promote_and_broadcast(_as_bool(x), _as_bool(y))
    return ew.logical_and(x, y)


def logical_or(x, y):
    x, y = promote_and_broadcast(_as_bool(x), _as_bool(y))
    return ew.logical_or(x, y)


def logical_not(x):
    return ew.logical_not(_as_bool(x))


def isnan(x):
    return ew.isnan(asarray(x))


def isfinite(x):
    return ew.isfinite(asarray(x))


def where(condition, x=None, y=None):
    """Elementwise choice; the gradient flows only to the chosen operand."""
    if x is None and y is None:
        raise TypeError(
            "functrans.numpy.where(condition) with one argument is not supported yet; use "
            "numpy.nonzero on a concrete array."
        )
    if x is None or y is None:
        raise TypeError("where: give both x and y, or neither")
    x, y = promote(x, y)
    cond, x, y = broadcast_all(_as_bool(condition), x, y)  # the predicate stays boolean
    return ew.select_n(cond, y, x)


def astype(x, dtype):
    return ew.convert_element_type(asarray(x), new_dtype=np.dtype(dtype))


def clip(x, a_min=None, a_max=None):
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


__all__ = [
    "abs",
    "absolute",
    "add",
    "astype",
    "ceil",
    "clip",
    "cos",
    "divide",
    "equal",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "greater",
    "greater_equal",
    "isfinite",
    "isnan",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "not_equal",
    "positive",
    "power",
    "reciprocal",
    "sign",
    "sin",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "true_divide",
    "where",
]
