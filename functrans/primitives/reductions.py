"""Reductions over a set of axes: sum, max, min, prod, and the non-differentiable argmax/argmin.

reduce_sum is linear (its transpose broadcasts); the others are differentiated with primitives:
max/min send the tangent to the extremal elements (split equally between ties, as JAX does), and
prod multiplies each tangent by the product of all other elements, computed without division so
that zeros in the input are handled exactly.
"""

from __future__ import annotations

import math

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of
from functrans.primitives import elementwise as ew
from functrans.primitives.structural import (
    broadcast_in_dim,
    concatenate,
    full,
    reshape,
    slice_,
    transpose,
)


def _reduced_aval(x: ShapedArray, axes: tuple[int, ...], dtype=None) -> ShapedArray:
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise TypeError(f"reduction axes {axes} are out of range for {x.str_short()}")
    shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return ShapedArray(shape, x.dtype if dtype is None else dtype)


def _batch_axes(axes: tuple[int, ...], d: int) -> tuple[tuple[int, ...], int]:
    """Axes of the operand with a batch axis at d, and the batch axis of the result."""
    physical = tuple(a if a < d else a + 1 for a in axes)
    return physical, d - sum(a < d for a in axes)


def _kept_dims(ndim: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i not in axes)


def _expand(y, x_aval: ShapedArray, axes):
    """Broadcast a reduced value back over the reduced axes."""
    return broadcast_in_dim(
        y, shape=x_aval.shape, broadcast_dimensions=_kept_dims(x_aval.ndim, axes)
    )


def reduction(name: str, impl) -> Primitive:
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = lambda x, *, axes: _reduced_aval(x, axes)

    def batch(vals, dims, *, axes):
        (x,), (d,) = vals, dims
        physical, out_dim = _batch_axes(axes, d)
        return p.bind(x, axes=physical), out_dim

    p.batch = batch
    return p


# ---------------------------------------------------------------------------------------------
# reduce_sum

reduce_sum_p = reduction("reduce_sum", lambda x, *, axes: np.sum(x, axis=axes, dtype=x.dtype))
reduce_sum_p.jvp = lambda primals, tangents, *, axes: (
    reduce_sum(primals[0], axes=axes),
    reduce_sum(tangents[0], axes=axes),
)
reduce_sum_p.transpose = lambda ct, x, *, axes: [_expand(ct, x.aval, axes)]


def reduce_sum(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    if not axes:
        return x
    return reduce_sum_p.bind(x, axes=axes)


# ---------------------------------------------------------------------------------------------
# reduce_max / reduce_min


def _extremum_jvp(prim):
    def jvp(primals, tangents, *, axes):
        (x,), (t,) = primals, tangents
        out = prim.bind(x, axes=axes)
        x_aval = aval_of(x)
        at_extremum = ew.convert_element_type(
            ew.eq(x, _expand(out, x_aval, axes)), new_dtype=x_aval.dtype
        )
        count = reduce_sum(at_extremum, axes=axes)
        return out, ew.div(reduce_sum(ew.mul(t, at_extremum), axes=axes), count)

    return jvp


reduce_max_p = reduction("reduce_max", lambda x, *, axes: np.max(x, axis=axes))
reduce_max_p.jvp = _extremum_jvp(reduce_max_p)
reduce_min_p = reduction("reduce_min", lambda x, *, axes: np.min(x, axis=axes))
reduce_min_p.jvp = _extremum_jvp(reduce_min_p)


def reduce_max(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    return x if not axes else reduce_max_p.bind(x, axes=axes)


def reduce_min(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    return x if not axes else reduce_min_p.bind(x, axes=axes)


# ---------------------------------------------------------------------------------------------
# reduce_prod


def _exclusive_cumprod(x, n: int, *, reverse: bool):
    """prod of the elements strictly before (or after) each position along the last axis.

    A log-depth scan (Hillis-Steele) built from pad, slice and mul, so it differentiates again.
    """
    aval = aval_of(x)
    lead = aval.shape[:-1]
    nd = aval.ndim

    def shift(y, k):
        # y moved k places along the last axis, the vacated places filled with ones
        keep = slice_(
            y,
            start_indices=(0,) * nd if not reverse else (0,) * (nd - 1) + (k,),
            limit_indices=lead + ((n - k) if not reverse else n,),
        )
        ones = full(lead + (k,), 1, aval.dtype)
        return concatenate([ones, keep] if not reverse else [keep, ones], dimension=nd - 1)

    y = shift(x, 1)
    k = 1
    while k < n:
        y = ew.mul(y, shift(y, k))
        k *= 2
    return y


def _reduce_prod_jvp(primals, tangents, *, axes):
    (x,), (t,) = primals, tangents
    out = reduce_prod(x, axes=axes)
    aval = aval_of(x)
    kept = _kept_dims(aval.ndim, axes)
    n = math.prod([aval.shape[a] for a in axes])
    if n <= 1:
        return out, reduce_sum(t, axes=axes)
    # move the reduced axes last and flatten them into one axis of length n
    perm = kept + tuple(axes)
    lead = tuple(aval.shape[i] for i in kept)
    flat_x = reshape(transpose(x, permutation=perm), new_sizes=lead + (n,))
    flat_t = reshape(transpose(t, permutation=perm), new_sizes=lead + (n,))
    others = ew.mul(
        _exclusive_cumprod(flat_x, n, reverse=False), _exclusive_cumprod(flat_x, n, reverse=True)
    )
    return out, reduce_sum(ew.mul(flat_t, others), axes=(len(lead),))


reduce_prod_p = reduction("reduce_prod", lambda x, *, axes: np.prod(x, axis=axes, dtype=x.dtype))
reduce_prod_p.jvp = _reduce_prod_jvp


def reduce_prod(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    return x if not axes else reduce_prod_p.bind(x, axes=axes)


# ---------------------------------------------------------------------------------------------
# argmax / argmin along one axis: integer results, no tangent


def arg_reduction(name: str, np_fn) -> Primitive:
    p = Primitive(name)
    p.impl = lambda x, *, axis, index_dtype: np_fn(x, axis=axis).astype(index_dtype)
    p.abstract_eval = lambda x, *, axis, index_dtype: _reduced_aval(x, (axis,), index_dtype)

    def jvp(primals, tangents, *, axis, index_dtype):
        out = p.bind(primals[0], axis=axis, index_dtype=index_dtype)
        return out, Zero(aval_of(out))

    def batch(vals, dims, *, axis, index_dtype):
        (x,), (d,) = vals, dims
        (physical,), out_dim = _batch_axes((axis,), d)
        return p.bind(x, axis=physical, index_dtype=index_dtype), out_dim

    p.jvp = jvp
    p.batch = batch
    return p


argmax_p = arg_reduction("argmax", np.argmax)
argmin_p = arg_reduction("argmin", np.argmin)


def argmax(x, *, axis, index_dtype=np.int64):
    return argmax_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))


def argmin(x, *, axis, index_dtype=np.int64):
    return argmin_p.bind(x, axis=int(axis), index_dtype=np.dtype(index_dtype))
