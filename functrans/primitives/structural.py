"""Structural primitives: they move, copy or drop elements but compute nothing new.

broadcast_in_dim, reshape, transpose, slice, pad, concatenate, rev. All are linear, so each has
a transpose rule, and each is the transpose of another (broadcast <-> sum, slice <-> pad, ...).
NumPy implementations return views where NumPy allows, so moving batch axes costs no copies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of, is_undefined
from functrans.primitives.base import batch_size

# ---------------------------------------------------------------------------------------------
# Helpers shared by every module: the JVP of linear primitives and moving batch axes


def linear_jvp(prim: Primitive) -> Callable:
    """JVP of a primitive linear in all its operands: apply it to the tangents."""

    def jvp(primals, tangents, **params):
        out = prim.bind(*primals, **params)
        tangents = [zeros(t.aval) if type(t) is Zero else t for t in tangents]
        return out, prim.bind(*tangents, **params)

    return jvp


def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move one axis of x (a view for NumPy arrays, a transpose primitive when traced)."""
    if src == dst:
        return x
    perm = [i for i in range(aval_of(x).ndim) if i != src]
    perm.insert(dst, src)
    return transpose(x, permutation=tuple(perm))


def bdim_to(x: Any, d: int | None, dst: int, size: int) -> Any:
    """x with its batch axis at `dst`; unbatched x is broadcast (a zero-copy view in NumPy)."""
    if d is not None:
        return moveaxis(x, d, dst)
    aval = aval_of(x)
    shape = aval.shape[:dst] + (size,) + aval.shape[dst:]
    dims = tuple(i if i < dst else i + 1 for i in range(aval.ndim))
    return broadcast_in_dim(x, shape=shape, broadcast_dimensions=dims)


# ---------------------------------------------------------------------------------------------
# broadcast_in_dim: operand axis i becomes output axis broadcast_dimensions[i]; size-1 axes and
# missing axes are broadcast. Its transpose sums over the broadcast axes.

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


def _broadcast_in_dim_abstract_eval(x, *, shape, broadcast_dimensions):
    ok = len(broadcast_dimensions) == x.ndim and all(
        0 <= d < len(shape) and x.shape[i] in (1, shape[d])
        for i, d in enumerate(broadcast_dimensions)
    )
    if not ok or list(broadcast_dimensions) != sorted(broadcast_dimensions):
        raise TypeError(
            f"primitive 'broadcast_in_dim' cannot broadcast {x.str_short()} to shape {shape} "
            f"along dimensions {broadcast_dimensions}"
        )
    return ShapedArray(shape, x.dtype)


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    in_shape = x.aval.shape
    kept = set(broadcast_dimensions)
    summed = [d for d in range(len(shape)) if d not in kept]
    # operand axes of size 1 that were stretched are summed too, then restored as size 1
    stretched = [d for i, d in enumerate(broadcast_dimensions) if in_shape[i] == 1 != shape[d]]
    out = reduce_sum(ct, axes=tuple(sorted(summed + stretched))) if summed or stretched else ct
    return [reshape(out, new_sizes=in_shape)]


def _broadcast_in_dim_batch(vals, dims, *, shape, broadcast_dimensions):
    (x,), (d,) = vals, dims
    x = moveaxis(x, d, 0)
    size = aval_of(x).shape[0]
    out = broadcast_in_dim(
        x,
        shape=(size,) + tuple(shape),
        broadcast_dimensions=(0,) + tuple(b + 1 for b in broadcast_dimensions),
    )
    return out, 0


broadcast_in_dim_p.impl = _broadcast_in_dim_impl
broadcast_in_dim_p.abstract_eval = _broadcast_in_dim_abstract_eval
broadcast_in_dim_p.jvp = linear_jvp(broadcast_in_dim_p)
broadcast_in_dim_p.transpose = _broadcast_in_dim_transpose
broadcast_in_dim_p.batch = _broadcast_in_dim_batch


def broadcast_in_dim(x, *, shape, broadcast_dimensions):
    shape = tuple(int(s) for s in shape)
    broadcast_dimensions = tuple(broadcast_dimensions)
    if aval_of(x).shape == shape and broadcast_dimensions == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=broadcast_dimensions)


def full(shape, value, dtype) -> Any:
    """An array of `value`: a broadcast scalar (a zero-copy view when evaluated)."""
    if not shape:  # a NumPy scalar: no equation, and the cheapest operand there is
        return np.dtype(dtype).type(value)
    return broadcast_in_dim(np.array(value, dtype), shape=shape, broadcast_dimensions=())


def full_like(x, value) -> Any:
    aval = aval_of(x)
    return full(aval.shape, value, aval.dtype)


def zeros(aval: ShapedArray) -> Any:
    return full(aval.shape, 0, aval.dtype)


# ---------------------------------------------------------------------------------------------
# reshape (row-major)

reshape_p = Primitive("reshape")


def _reshape_abstract_eval(x, *, new_sizes):
    if math.prod(new_sizes) != x.size:
        raise TypeError(f"primitive 'reshape' cannot reshape {x.str_short()} to {new_sizes}")
    return ShapedArray(new_sizes, x.dtype)


def _reshape_batch(vals, dims, *, new_sizes):
    (x,), (d,) = vals, dims
    x = moveaxis(x, d, 0)
    return reshape(x, new_sizes=(aval_of(x).shape[0],) + tuple(new_sizes)), 0


reshape_p.impl = lambda x, *, new_sizes: np.reshape(x, new_sizes)
reshape_p.abstract_eval = _reshape_abstract_eval
reshape_p.jvp = linear_jvp(reshape_p)
reshape_p.transpose = lambda ct, x, *, new_sizes: [reshape(ct, new_sizes=x.aval.shape)]
reshape_p.batch = _reshape_batch


def reshape(x, *, new_sizes):
    new_sizes = tuple(int(s) for s in new_sizes)
    if aval_of(x).shape == new_sizes:
        return x
    return reshape_p.bind(x, new_sizes=new_sizes)


# ---------------------------------------------------------------------------------------------
# transpose (axis permutation); its transpose is the inverse permutation

transpose_p = Primitive("transpose")


def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise TypeError(f"primitive 'transpose': {permutation} is not a permutation of {x.ndim}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype)


def _transpose_batch(vals, dims, *, permutation):
    (x,), (d,) = vals, dims
    # keep the batch axis where it is; permute the others around it
    logical = [i if i < d else i + 1 for i in permutation]
    perm = logical[:d] + [d] + logical[d:]
    return transpose(x, permutation=tuple(perm)), d


transpose_p.impl = lambda x, *, permutation: np.transpose(x, permutation)
transpose_p.abstract_eval = _transpose_abstract_eval
transpose_p.jvp = linear_jvp(transpose_p)
transpose_p.transpose = lambda ct, x, *, permutation: [
    transpose(ct, permutation=tuple(np.argsort(permutation)))
]
transpose_p.batch = _transpose_batch


def transpose(x, *, permutation):
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


# ---------------------------------------------------------------------------------------------
# slice with positive strides; its transpose pads with zeros (interior padding for strides)

slice_p = Primitive("slice")


def _slice_lengths(shape, start_indices, limit_indices, strides):
    return tuple(
        max(0, -(-(lim - st) // s)) for st, lim, s in zip(start_indices, limit_indices, strides)
    )


def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    ok = len(start_indices) == len(limit_indices) == len(strides) == x.ndim and all(
        0 <= st <= lim <= n and s >= 1
        for st, lim, s, n in zip(start_indices, limit_indices, strides, x.shape)
    )
    if not ok:
        raise TypeError(
            f"primitive 'slice': start {start_indices}, limit {limit_indices}, strides {strides}"
            f" do not fit {x.str_short()}"
        )
    return ShapedArray(_slice_lengths(x.shape, start_indices, limit_indices, strides), x.dtype)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    return np.asarray(x)[tuple(map(slice, start_indices, limit_indices, strides))]


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    shape = x.aval.shape
    lengths = aval_of(ct).shape
    config = []
    for st, s, k, n in zip(start_indices, strides, lengths, shape):
        used = st + (k - 1) * s + 1 if k else st
        config.append((st, n - used, s - 1))
    return [pad(ct, padding_config=tuple(config), value=0)]


def _slice_batch(vals, dims, *, start_indices, limit_indices, strides):
    (x,), (d,) = vals, dims
    n = aval_of(x).shape[d]
    out = slice_(
        x,
        start_indices=start_indices[:d] + (0,) + start_indices[d:],
        limit_indices=limit_indices[:d] + (n,) + limit_indices[d:],
        strides=strides[:d] + (1,) + strides[d:],
    )
    return out, d


slice_p.impl = _slice_impl
slice_p.abstract_eval = _slice_abstract_eval
slice_p.jvp = linear_jvp(slice_p)
slice_p.transpose = _slice_transpose
slice_p.batch = _slice_batch


def slice_(x, *, start_indices, limit_indices, strides=None):
    shape = aval_of(x).shape
    start_indices = tuple(int(i) for i in start_indices)
    limit_indices = tuple(int(i) for i in limit_indices)
    strides = (1,) * len(shape) if strides is None else tuple(int(s) for s in strides)
    if start_indices == (0,) * len(shape) and limit_indices == shape and set(strides) <= {1}:
        return x
    return slice_p.bind(
        x, start_indices=start_indices, limit_indices=limit_indices, strides=strides
    )


# ---------------------------------------------------------------------------------------------
# pad with a constant: padding_config is ((low, high, interior), ...) per axis, all >= 0

pad_p = Primitive("pad")


def _pad_shape(shape, padding_config):
    return tuple(
        lo + hi + n + max(0, n - 1) * interior
        for n, (lo, hi, interior) in zip(shape, padding_config)
    )


def _pad_abstract_eval(x, *, padding_config, value):
    if len(padding_config) != x.ndim or any(min(c) < 0 for c in padding_config):
        raise TypeError(f"primitive 'pad': config {padding_config} does not fit {x.str_short()}")
    return ShapedArray(_pad_shape(x.shape, padding_config), x.dtype)


def _pad_impl(x, *, padding_config, value):
    x = np.asarray(x)
    out = np.full(_pad_shape(x.shape, padding_config), value, dtype=x.dtype)
    index = tuple(
        slice(lo, lo + (n - 1) * (interior + 1) + 1 if n else lo, interior + 1)
        for n, (lo, _, interior) in zip(x.shape, padding_config)
    )
    out[index] = x
    return out


def _pad_jvp(primals, tangents, *, padding_config, value):
    (x,), (t,) = primals, tangents
    return pad(x, padding_config=padding_config, value=value), pad(
        t, padding_config=padding_config, value=0
    )


def _pad_transpose(ct, x, *, padding_config, value):
    shape = x.aval.shape
    return [
        slice_(
            ct,
            start_indices=tuple(lo for lo, _, _ in padding_config),
            limit_indices=tuple(
                lo + (n - 1) * (i + 1) + 1 if n else lo
                for n, (lo, _, i) in zip(shape, padding_config)
            ),
            strides=tuple(i + 1 for _, _, i in padding_config),
        )
    ]


def _pad_batch(vals, dims, *, padding_config, value):
    (x,), (d,) = vals, dims
    config = padding_config[:d] + ((0, 0, 0),) + padding_config[d:]
    return pad(x, padding_config=config, value=value), d


pad_p.impl = _pad_impl
pad_p.abstract_eval = _pad_abstract_eval
pad_p.jvp = _pad_jvp
pad_p.transpose = _pad_transpose
pad_p.batch = _pad_batch


def pad(x, *, padding_config, value=0):
    padding_config = tuple(tuple(int(c) for c in cfg) for cfg in padding_config)
    if all(c == (0, 0, 0) for c in padding_config):
        return x
    return pad_p.bind(x, padding_config=padding_config, value=value)


# ---------------------------------------------------------------------------------------------
# concatenate along one axis; its transpose slices the cotangent back into pieces

concatenate_p = Primitive("concatenate")


def _concatenate_abstract_eval(*xs, dimension):
    first = xs[0]
    for x in xs:
        same_rest = x.shape[:dimension] + x.shape[dimension + 1 :] == (
            first.shape[:dimension] + first.shape[dimension + 1 :]
        )
        if x.ndim != first.ndim or not same_rest or x.dtype != first.dtype:
            raise TypeError(
                "primitive 'concatenate' needs operands that agree except along axis "
                f"{dimension}, got " + ", ".join(a.str_short() for a in xs)
            )
    size = sum(x.shape[dimension] for x in xs)
    return ShapedArray(
        first.shape[:dimension] + (size,) + first.shape[dimension + 1 :], first.dtype
    )


def _concatenate_transpose(ct, *xs, dimension):
    shape = aval_of(ct).shape
    cts, start = [], 0
    for x in xs:
        n = x.aval.shape[dimension] if is_undefined(x) else aval_of(x).shape[dimension]
        if is_undefined(x):
            lo = (0,) * len(shape)
            lo = lo[:dimension] + (start,) + lo[dimension + 1 :]
            hi = shape[:dimension] + (start + n,) + shape[dimension + 1 :]
            cts.append(slice_(ct, start_indices=lo, limit_indices=hi))
        else:
            cts.append(None)
        start += n
    return cts


def _concatenate_batch(vals, dims, *, dimension):
    size = batch_size(vals, dims)
    vals = [bdim_to(v, d, 0, size) for v, d in zip(vals, dims)]
    return concatenate(vals, dimension=dimension + 1), 0


concatenate_p.impl = lambda *xs, dimension: np.concatenate(xs, axis=dimension)
concatenate_p.abstract_eval = _concatenate_abstract_eval
concatenate_p.jvp = linear_jvp(concatenate_p)
concatenate_p.transpose = _concatenate_transpose
concatenate_p.batch = _concatenate_batch


def concatenate(xs, *, dimension):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return concatenate_p.bind(*xs, dimension=int(dimension))


# ---------------------------------------------------------------------------------------------
# rev: reverse the order of elements along some axes (its own transpose)

rev_p = Primitive("rev")


def _rev_batch(vals, dims, *, dimensions):
    (x,), (d,) = vals, dims
    return rev(x, dimensions=tuple(a if a < d else a + 1 for a in dimensions)), d


rev_p.impl = lambda x, *, dimensions: np.flip(x, axis=dimensions)
rev_p.abstract_eval = lambda x, *, dimensions: x
rev_p.jvp = linear_jvp(rev_p)
rev_p.transpose = lambda ct, x, *, dimensions: [rev(ct, dimensions=dimensions)]
rev_p.batch = _rev_batch


def rev(x, *, dimensions):
    dimensions = tuple(sorted(int(d) for d in dimensions))
    if not dimensions:
        return x
    return rev_p.bind(x, dimensions=dimensions)


# ---------------------------------------------------------------------------------------------
# Reductions: shape helpers shared with reductions.py


def reduced_aval(x: ShapedArray, axes: tuple[int, ...], dtype=None) -> ShapedArray:
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise TypeError(f"reduction axes {axes} are out of range for {x.str_short()}")
    shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return ShapedArray(shape, x.dtype if dtype is None else dtype)


def reduction_batch_axes(axes: tuple[int, ...], d: int) -> tuple[tuple[int, ...], int]:
    """Axes of the operand with a batch axis at d, and the batch axis of the result."""
    physical = tuple(a if a < d else a + 1 for a in axes)
    return physical, d - sum(a < d for a in axes)


def kept_dims(ndim: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i not in axes)


# ---------------------------------------------------------------------------------------------
# reduce_sum: linear; its transpose broadcasts back over the summed axes

reduce_sum_p = Primitive("reduce_sum")
reduce_sum_p.impl = lambda x, *, axes: np.sum(x, axis=axes, dtype=x.dtype)
reduce_sum_p.abstract_eval = lambda x, *, axes: reduced_aval(x, axes)
reduce_sum_p.jvp = lambda primals, tangents, *, axes: (
    reduce_sum(primals[0], axes=axes),
    reduce_sum(tangents[0], axes=axes),
)
reduce_sum_p.transpose = lambda ct, x, *, axes: [
    broadcast_in_dim(ct, shape=x.aval.shape, broadcast_dimensions=kept_dims(x.aval.ndim, axes))
]


def _reduce_sum_batch(vals, dims, *, axes):
    (x,), (d,) = vals, dims
    physical, out_dim = reduction_batch_axes(axes, d)
    return reduce_sum(x, axes=physical), out_dim


reduce_sum_p.batch = _reduce_sum_batch


def reduce_sum(x, *, axes):
    axes = tuple(sorted(int(a) for a in axes))
    if not axes:
        return x
    return reduce_sum_p.bind(x, axes=axes)
