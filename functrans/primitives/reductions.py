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
    kept_dims,
    reduce_sum,
    reduced_aval,
    reduction_batch_axes,
    reshape,
    slice_,
    transpose,
)


def _expand(y, x_aval: ShapedArray, axes):
    """Broadcast a reduced value back over the reduced axes."""
    return broadcast_in_dim(
        y, shape=x_aval.shape, broadcast_dimensions=kept_dims(x_aval.ndim, axes)
    )


def reduction(name: str, impl) -> Primitive:
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = lambda x, *, axes: reduced_aval(x, axes)

    def batch(vals, dims, *, axes):
        (x,), (d,) = vals, dims
        physical, out_dim = reduction_batch_axes(axes, d)
        return p.bind(x, axes=physical), out_dim

    p.batch = batch
    return p


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
    kept = kept_dims(aval.ndim, axes)
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
    p.abstract_eval = lambda x, *, axis, index_dtype: reduced_aval(x, (axis,), index_dtype)

    def jvp(primals, tangents, *, axis, index_dtype):
        out = p.bind(primals[0], axis=axis, index_dtype=index_dtype)
        return out, Zero(aval_of(out))

    def batch(vals, dims, *, axis, index_dtype):
        (x,), (d,) = vals, dims
        (physical,), out_dim = reduction_batch_axes((axis,), d)
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


# ---------------------------------------------------------------------------------------------
# reduce_and / reduce_or over boolean operands (all, any): boolean results, no tangent


def _logical_reduction(name: str, np_fn) -> Primitive:
    p = reduction(name, lambda x, *, axes: np_fn(x, axis=axes))

    def abstract_eval(x, *, axes):
        if x.dtype != np.dtype(bool):
            raise TypeError(f"primitive '{name}' needs a boolean operand, got {x.str_short()}")
        return reduced_aval(x, axes)

    def jvp(primals, tangents, *, axes):
        out = p.bind(primals[0], axes=axes)
        return out, Zero(aval_of(out))

    p.abstract_eval = abstract_eval
    p.jvp = jvp
    return p


reduce_and_p = _logical_reduction("reduce_and", np.all)
reduce_or_p = _logical_reduction("reduce_or", np.any)


def reduce_and(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    return x if not axes else reduce_and_p.bind(x, axes=axes)


def reduce_or(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    return x if not axes else reduce_or_p.bind(x, axes=axes)
