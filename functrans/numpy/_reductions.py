"""Reductions of functrans.numpy: axis/keepdims/dtype handling over the reduce_* primitives."""

from __future__ import annotations

import math

import numpy as np

from functrans.core import aval_of
from functrans.numpy._base import asarray, normalize_axes, normalize_axis
from functrans.primitives import elementwise as ew
from functrans.primitives import full, reduce_sum, reshape
from functrans.primitives import reductions as red


def _keepdims(out, shape, axes):
    return reshape(out, new_sizes=tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _reduce(prim_fn, x, axis, keepdims, dtype=None):
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    if dtype is not None:
        x = ew.convert_element_type(x, new_dtype=dtype)
    out = prim_fn(x, axes=axes)
    return _keepdims(out, aval.shape, axes) if keepdims else out


def _sum_dtype(dtype: np.dtype) -> np.dtype | None:
    # NumPy sums booleans and small integers in the default (64-bit) integer type
    if dtype.kind == "b" or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return None


def sum(x, axis=None, dtype=None, keepdims=False):  # noqa: A001 - the NumPy name
    x = asarray(x)
    return _reduce(reduce_sum, x, axis, keepdims, dtype or _sum_dtype(aval_of(x).dtype))


def prod(x, axis=None, dtype=None, keepdims=False):
    x = asarray(x)
    return _reduce(red.reduce_prod, x, axis, keepdims, dtype or _sum_dtype(aval_of(x).dtype))


def max(x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    return _reduce(red.reduce_max, x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    return _reduce(red.reduce_min, x, axis, keepdims)


amax = max
amin = min


def mean(x, axis=None, dtype=None, keepdims=False):
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    if dtype is None:
        dtype = aval.dtype if np.issubdtype(aval.dtype, np.inexact) else np.dtype(np.float64)
    total = sum(x, axis=axes, dtype=dtype, keepdims=keepdims)
    n = math.prod([aval.shape[a] for a in axes])
    return ew.div(total, _full_like(total, n))


def _full_like(x, value):
    aval = aval_of(x)
    return full(aval.shape, value, aval.dtype)


def argmax(x, axis=None):
    x = asarray(x)
    if axis is None:
        x = reshape(x, new_sizes=(aval_of(x).size,))
        axis = 0
    return red.argmax(x, axis=normalize_axis(axis, aval_of(x).ndim))


def argmin(x, axis=None):
    x = asarray(x)
    if axis is None:
        x = reshape(x, new_sizes=(aval_of(x).size,))
        axis = 0
    return red.argmin(x, axis=normalize_axis(axis, aval_of(x).ndim))


__all__ = [
    "amax",
    "amin",
    "argmax",
    "argmin",
    "max",
    "mean",
    "min",
    "prod",
    "sum",
]
