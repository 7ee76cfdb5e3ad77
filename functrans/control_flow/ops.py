"""The few array operations control flow needs, on primitives (lax sits below functrans.numpy,
so it cannot borrow NumPy's broadcasting and promotion from there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans.api import _as_array
from functrans.core import aval_of
from functrans.primitives import elementwise as ew
from functrans.primitives.reductions import reduce_or
from functrans.primitives.structural import broadcast_in_dim, concatenate, full, reshape

as_array = _as_array


def where(pred: Any, on_true: Any, on_false: Any) -> Any:
    """on_true where pred, else on_false; pred is a scalar, or one bool per lane of axis 0."""
    on_true, on_false = as_array(on_true), as_array(on_false)
    aval = aval_of(on_true)
    if aval_of(on_false).dtype != aval.dtype:
        on_false = ew.convert_element_type(on_false, new_dtype=aval.dtype)
    if aval_of(on_false).shape != aval.shape:
        on_false = broadcast_in_dim(
            on_false,
            shape=aval.shape,
            broadcast_dimensions=tuple(range(aval.ndim - aval_of(on_false).ndim, aval.ndim)),
        )
    pred = as_array(pred)
    p_aval = aval_of(pred)
    if p_aval.dtype != np.dtype(bool):
        pred = ew.ne(pred, full(p_aval.shape, 0, p_aval.dtype))
    if p_aval.shape != aval.shape:
        dims = () if p_aval.ndim == 0 else tuple(range(p_aval.ndim))
        pred = broadcast_in_dim(pred, shape=aval.shape, broadcast_dimensions=dims)
    return ew.select_n(pred, on_false, on_true)


def any_along(x: Any, axis: int) -> Any:
    return reduce_or(as_array(x), axes=(axis,))


def stack(xs: Sequence[Any]) -> Any:
    xs = [as_array(x) for x in xs]
    return concatenate([reshape(x, new_sizes=(1,) + aval_of(x).shape) for x in xs], dimension=0)


def as_int(x: Any) -> Any:
    x = as_array(x)
    return x if aval_of(x).dtype == np.int64 else ew.convert_element_type(x, new_dtype=np.int64)


def less(x: Any, y: Any) -> Any:
    """x < y for integer scalars (or lanes), either possibly a Python int."""
    x, y = as_int(x), as_int(y)
    sx, sy = aval_of(x).shape, aval_of(y).shape
    if sx != sy:
        shape = sx if len(sx) > len(sy) else sy
        x = x if sx == shape else broadcast_in_dim(x, shape=shape, broadcast_dimensions=())
        y = y if sy == shape else broadcast_in_dim(y, shape=shape, broadcast_dimensions=())
    return ew.lt(x, y)


def clip_index(index: Any, n: int) -> Any:
    index = as_int(index)
    shape = aval_of(index).shape
    return ew.min(ew.max(index, full(shape, 0, np.int64)), full(shape, n - 1, np.int64))


def equal_int(x: Any, k: int) -> Any:
    x = as_int(x)
    return ew.eq(x, full(aval_of(x).shape, k, np.int64))


def zeros_like(x: Any) -> Any:
    aval = aval_of(x)
    return full(aval.shape, 0, aval.dtype)
