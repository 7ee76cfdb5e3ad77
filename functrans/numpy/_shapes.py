"""Shape manipulation and array creation in functrans.numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    asarray,
    broadcast_to_shape,
    normalize_axes,
    normalize_axis,
    promote,
)
from functrans.primitives import concatenate as _concatenate
from functrans.primitives import reshape as _reshape
from functrans.primitives import transpose as _transpose


def shape(x) -> tuple[int, ...]:
    return aval_of(asarray(x)).shape


def ndim(x) -> int:
    return aval_of(asarray(x)).ndim


def size(x) -> int:
    return aval_of(asarray(x)).size


def reshape(x, newshape, order="C"):
    if order != "C":
        raise NotImplementedError("functrans.numpy.reshape supports only order='C'")
    x = asarray(x)
    total = aval_of(x).size
    if isinstance(newshape, (int, np.integer)):
        newshape = (int(newshape),)
    newshape = [int(n) for n in newshape]
    if newshape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension (-1) in reshape")
    if -1 in newshape:
        known = math.prod([n for n in newshape if n != -1])
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape array of size {total} into shape {tuple(newshape)}")
        newshape[newshape.index(-1)] = total // known
    if math.prod(newshape) != total:
        raise ValueError(f"cannot reshape array of size {total} into shape {tuple(newshape)}")
    return _reshape(x, new_sizes=tuple(newshape))


def ravel(x):
    return reshape(x, (-1,))


def transpose(x, axes=None):
    x = asarray(x)
    nd = aval_of(x).ndim
    perm = (
        tuple(reversed(range(nd))) if axes is None else tuple(normalize_axis(a, nd) for a in axes)
    )
    if sorted(perm) != list(range(nd)):
        raise ValueError(f"axes {axes} don't match array of dimension {nd}")
    return _transpose(x, permutation=perm)


def swapaxes(x, axis1, axis2):
    x = asarray(x)
    nd = aval_of(x).ndim
    perm = list(range(nd))
    a, b = normalize_axis(axis1, nd), normalize_axis(axis2, nd)
    perm[a], perm[b] = perm[b], perm[a]
    return _transpose(x, permutation=tuple(perm))


def moveaxis(x, source, destination):
    x = asarray(x)
    nd = aval_of(x).ndim
    src = normalize_axes(source, nd)
    dst = normalize_axes(destination, nd)
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of axes")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(x, permutation=tuple(order))


def expand_dims(x, axis):
    x = asarray(x)
    xshape = aval_of(x).shape
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out_nd = len(xshape) + len(axes)
    axes = sorted(normalize_axis(a, out_nd) for a in axes)
    new = list(xshape)
    for a in axes:
        new.insert(a, 1)
    return _reshape(x, new_sizes=tuple(new))


def squeeze(x, axis=None):
    x = asarray(x)
    xshape = aval_of(x).shape
    if axis is None:
        axes = tuple(i for i, n in enumerate(xshape) if n == 1)
    else:
        axes = normalize_axes(axis, len(xshape))
        for a in axes:
            if xshape[a] != 1:
                raise ValueError(
                    f"cannot select an axis to squeeze out which has size not equal to one "
                    f"(axis {a} of shape {xshape})"
                )
    return _reshape(x, new_sizes=tuple(n for i, n in enumerate(xshape) if i not in axes))


def broadcast_to(x, shape):
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    return broadcast_to_shape(asarray(x), shape)


def atleast_1d(x):
    x = asarray(x)
    return reshape(x, (1,)) if aval_of(x).ndim == 0 else x


def concatenate(arrays: Sequence[Any], axis: int | None = 0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    arrays = promote(*arrays)
    nd = aval_of(arrays[0]).ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return _concatenate(arrays, dimension=normalize_axis(axis, nd))


def stack(arrays: Sequence[Any], axis: int = 0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {aval_of(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    nd = aval_of(arrays[0]).ndim + 1
    axis = normalize_axis(axis, nd)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def zeros_like(x, dtype=None):
    aval = aval_of(asarray(x))
    return np.zeros(aval.shape, dtype or aval.dtype)


def ones_like(x, dtype=None):
    aval = aval_of(asarray(x))
    return np.ones(aval.shape, dtype or aval.dtype)


def full_like(x, fill_value, dtype=None):
    aval = aval_of(asarray(x))
    if isinstance(fill_value, Tracer):
        return broadcast_to(asarray(fill_value, dtype or aval.dtype), aval.shape)
    return np.full(aval.shape, fill_value, dtype or aval.dtype)


__all__ = [
    "atleast_1d",
    "broadcast_to",
    "concatenate",
    "expand_dims",
    "full_like",
    "moveaxis",
    "ndim",
    "ones_like",
    "ravel",
    "reshape",
    "shape",
    "size",
    "squeeze",
    "stack",
    "swapaxes",
    "transpose",
    "zeros_like",
]
