"""Cumulative, sorting and searching primitives: cumsum, cumprod, sort, argsort, searchsorted.

cumsum is linear (its transpose is a cumsum in the other direction). cumprod is differentiated
by running a log-depth (Hillis-Steele) product scan on the primal and the tangent together, so
the rule uses only multiplications and is exact when the input contains zeros. sort sends the
tangent through the sorting permutation (a gather, so reverse mode is a scatter-add). argsort and
searchsorted have integer results and no tangent. `take_along` is the gather along one axis that
the rules (and functrans.numpy.take_along_axis) share.
"""

from __future__ import annotations

import math

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of
from functrans.primitives import elementwise as ew
from functrans.primitives.indexing import gather
from functrans.primitives.structural import (
    broadcast_in_dim,
    linear_jvp,
    moveaxis,
    pad,
    reduce_sum,
    reshape,
    slice_,
)


def _check_axis(x: ShapedArray, axis: int, name: str) -> None:
    if not 0 <= axis < x.ndim:
        raise TypeError(f"primitive '{name}': axis {axis} is out of range for {x.str_short()}")


def _axis_batch(prim: Primitive):
    """Batch rule of a one-operand primitive acting along `axis`: shift the axis past the batch."""

    def batch(vals, dims, *, axis, **params):
        (x,), (d,) = vals, dims
        return prim.bind(x, axis=axis + (d <= axis), **params), d

    return batch


def take_along(x, idx, *, axis: int):
    """out[..., i, ...] = x[..., idx[..., i, ...], ...] along `axis`; idx (non-negative
    integers) has x's shape except along `axis`. A gather from the flattened operand."""
    x_aval, i_aval = aval_of(x), aval_of(idx)
    n = x_aval.shape[axis]
    x = moveaxis(x, axis, x_aval.ndim - 1)
    idx = moveaxis(idx, axis, i_aval.ndim - 1)
    lead = aval_of(x).shape[:-1]
    m = aval_of(idx).shape[-1]
    rows = math.prod(lead)
    # position of row r, element idx in the flattened operand: r * n + idx
    offsets = (np.arange(rows, dtype=np.int64) * n).reshape(lead + (1,))
    offsets = np.broadcast_to(offsets, lead + (m,))
    pos = ew.add(ew.convert_element_type(idx, new_dtype=np.int64), offsets)
    out = gather(reshape(x, new_sizes=(rows * n,)), pos)
    return moveaxis(out, x_aval.ndim - 1, axis)


# ---------------------------------------------------------------------------------------------
# cumsum along one axis (reverse: sums from the end); linear, its transpose runs the other way

cumsum_p = Primitive("cumsum")


def _cumsum_impl(x, *, axis, reverse):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


def _cumsum_abstract_eval(x, *, axis, reverse):
    _check_axis(x, axis, "cumsum")
    return x


cumsum_p.impl = _cumsum_impl
cumsum_p.abstract_eval = _cumsum_abstract_eval
cumsum_p.jvp = linear_jvp(cumsum_p)
cumsum_p.transpose = lambda ct, x, *, axis, reverse: [cumsum(ct, axis=axis, reverse=not reverse)]
cumsum_p.batch = _axis_batch(cumsum_p)


def cumsum(x, *, axis: int, reverse: bool = False):
    return cumsum_p.bind(x, axis=int(axis), reverse=bool(reverse))


# ---------------------------------------------------------------------------------------------
# cumprod along one axis


def _shift(y, k: int, axis: int, fill):
    """y moved k places towards the end along `axis`; the first k places hold `fill`."""
    aval = aval_of(y)
    n = aval.shape[axis]
    limit = aval.shape[:axis] + (n - k,) + aval.shape[axis + 1 :]
    kept = slice_(y, start_indices=(0,) * aval.ndim, limit_indices=limit)
    config = tuple((k, 0, 0) if a == axis else (0, 0, 0) for a in range(aval.ndim))
    return pad(kept, padding_config=config, value=fill)


def _cumprod_jvp(primals, tangents, *, axis):
    (x,), (t,) = primals, tangents
    out = cumprod(x, axis=axis)
    if type(t) is Zero:
        return out, t
    n = aval_of(x).shape[axis]
    # Hillis-Steele scan y <- y * shift(y); its product rule keeps every factor, so zeros in x
    # give the exact derivative prod_{k <= i, k != j} x_k (no division anywhere).
    y, k = x, 1
    while k < n:
        y_shifted = _shift(y, k, axis, 1)
        t = ew.add(ew.mul(t, y_shifted), ew.mul(y, _shift(t, k, axis, 0)))
        y = ew.mul(y, y_shifted)
        k *= 2
    return out, t


cumprod_p = Primitive("cumprod")
cumprod_p.impl = lambda x, *, axis: np.cumprod(x, axis=axis, dtype=x.dtype)
cumprod_p.abstract_eval = lambda x, *, axis: (_check_axis(x, axis, "cumprod"), x)[1]
cumprod_p.jvp = _cumprod_jvp
cumprod_p.batch = _axis_batch(cumprod_p)


def cumprod(x, *, axis: int):
    return cumprod_p.bind(x, axis=int(axis))


# ---------------------------------------------------------------------------------------------
# argsort and sort along one axis (stable: ties keep their order, NaNs sort last as in NumPy)

argsort_p = Primitive("argsort")


def _argsort_abstract_eval(x, *, axis):
    _check_axis(x, axis, "argsort")
    return ShapedArray(x.shape, np.dtype(np.int64))


def _argsort_jvp(primals, tangents, *, axis):
    out = argsort(primals[0], axis=axis)
    return out, Zero(aval_of(out))


argsort_p.impl = lambda x, *, axis: np.argsort(x, axis=axis, kind="stable").astype(np.int64)
argsort_p.abstract_eval = _argsort_abstract_eval
argsort_p.jvp = _argsort_jvp
argsort_p.batch = _axis_batch(argsort_p)


def argsort(x, *, axis: int):
    return argsort_p.bind(x, axis=int(axis))


sort_p = Primitive("sort")


def _sort_abstract_eval(x, *, axis):
    _check_axis(x, axis, "sort")
    return x


def _sort_jvp(primals, tangents, *, axis):
    (x,), (t,) = primals, tangents
    out = sort(x, axis=axis)
    if type(t) is Zero:
        return out, t
    # each sorted element moves with its tangent: gather the tangent by the sorting permutation
    return out, take_along(t, argsort(x, axis=axis), axis=axis)


sort_p.impl = lambda x, *, axis: np.sort(x, axis=axis, kind="stable")
sort_p.abstract_eval = _sort_abstract_eval
sort_p.jvp = _sort_jvp
sort_p.batch = _axis_batch(sort_p)


def sort(x, *, axis: int):
    return sort_p.bind(x, axis=int(axis))


# ---------------------------------------------------------------------------------------------
# searchsorted(a, v): insertion points of v into the sorted 1-d a; integer result, no tangent

searchsorted_p = Primitive("searchsorted")


def _searchsorted_abstract_eval(a, v, *, side):
    if a.ndim != 1 or a.dtype != v.dtype:
        raise TypeError(
            "primitive 'searchsorted' needs a 1-d sorted array and values of its dtype, got "
            f"{a.str_short()} and {v.str_short()}"
        )
    return ShapedArray(v.shape, np.dtype(np.int64))


def _searchsorted_jvp(primals, tangents, *, side):
    out = searchsorted(*primals, side=side)
    return out, Zero(aval_of(out))


def _searchsorted_batch(vals, dims, *, side):
    (a, v), (da, dv) = vals, dims
    if da is None:  # one sorted array: NumPy searches any shape of values at once
        return searchsorted(a, v, side=side), dv
    # a batch of sorted arrays: count the entries of each a below each value (exact for sorted a)
    a = moveaxis(a, da, 0)
    size, n = aval_of(a).shape
    v_aval = aval_of(v)
    if dv is None:
        v = broadcast_in_dim(
            v, shape=(size,) + v_aval.shape, broadcast_dimensions=tuple(range(1, v_aval.ndim + 1))
        )
    else:
        v = moveaxis(v, dv, 0)
    vshape = aval_of(v).shape
    full_shape = vshape + (n,)
    a_full = broadcast_in_dim(a, shape=full_shape, broadcast_dimensions=(0, len(vshape)))
    v_full = broadcast_in_dim(v, shape=full_shape, broadcast_dimensions=tuple(range(len(vshape))))
    below = ew.lt(a_full, v_full) if side == "left" else ew.le(a_full, v_full)
    count = reduce_sum(ew.convert_element_type(below, new_dtype=np.int64), axes=(len(vshape),))
    return count, 0


searchsorted_p.impl = lambda a, v, *, side: np.searchsorted(a, v, side=side).astype(np.int64)
searchsorted_p.abstract_eval = _searchsorted_abstract_eval
searchsorted_p.jvp = _searchsorted_jvp
searchsorted_p.batch = _searchsorted_batch


def searchsorted(a, v, *, side: str = "left"):
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    return searchsorted_p.bind(a, v, side=side)


__all__ = [
    "argsort",
    "cumprod",
    "cumsum",
    "searchsorted",
    "sort",
    "take_along",
]
