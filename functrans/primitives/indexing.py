"""Gather and scatter-add along a leading axis: the primitives behind integer-array indexing.

`gather(x, idx)` picks rows of x (shape (N, *rest)) with an integer array idx (any shape S),
giving S + rest. `scatter_add(u, idx, size=N)` is its transpose: rows of u are added into an
(N, *rest) array of zeros at positions idx (repeated indices accumulate). functrans.numpy lowers
every advanced-indexing expression and `.at[...]` update to these two by flattening the indexed
axes into one leading axis, so batching needs no special cases beyond index offsets.
"""

from __future__ import annotations

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of, is_undefined
from functrans.primitives import elementwise as ew
from functrans.primitives.structural import (
    broadcast_in_dim,
    moveaxis,
    reshape,
)


def _check_index(idx: ShapedArray, where: str) -> None:
    if idx.dtype.kind not in "iu":
        raise TypeError(f"primitive '{where}' needs integer indices, got {idx.str_short()}")


# ---------------------------------------------------------------------------------------------
# gather

gather_p = Primitive("gather")


def _gather_abstract_eval(x, idx):
    _check_index(idx, "gather")
    if x.ndim < 1:
        raise TypeError(f"primitive 'gather' needs an operand of rank >= 1, got {x.str_short()}")
    return ShapedArray(idx.shape + x.shape[1:], x.dtype)


def _gather_jvp(primals, tangents):
    x, idx = primals
    t = tangents[0]
    out = gather(x, idx)
    return out, Zero(aval_of(out)) if type(t) is Zero else gather(t, idx)


def _gather_transpose(ct, x, idx):
    return [scatter_add(ct, idx, size=x.aval.shape[0]), None]


# check_index(idx, size): idx with negative entries wrapped (counting from the end, as np.take
# does), raising IndexError when an entry is outside [-size, size). Batched gathers flatten the
# batch into the indexed axis, where an out-of-range index would silently read another example.

check_index_p = Primitive("check_index")


def _check_index_impl(idx, *, size):
    idx = np.asarray(idx)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = idx.min() if idx.min() < -size else idx.max()
        raise IndexError(f"index {bad} is out of bounds for an axis of size {size}")
    return np.where(idx < 0, idx + size, idx)


def _check_index_jvp(primals, tangents, *, size):
    out = check_index(primals[0], size=size)
    return out, Zero(aval_of(out))


check_index_p.impl = _check_index_impl
check_index_p.abstract_eval = lambda idx, *, size: idx
check_index_p.jvp = _check_index_jvp
check_index_p.batch = lambda vals, dims, *, size: (check_index(vals[0], size=size), dims[0])


def check_index(idx, *, size: int):
    return check_index_p.bind(idx, size=int(size))


def _offset_indices(idx, d_idx, size_b: int, n: int):
    """Batched indices into a (B * N, ...) operand: row b of the batch is offset by b * N,
    after checking each index against N (so no index can reach another example's row)."""
    idx = moveaxis(idx, d_idx, 0)
    aval = aval_of(idx)
    wrapped = check_index(idx, size=n)
    offsets = np.arange(size_b, dtype=aval.dtype) * n
    return ew.add(wrapped, broadcast_in_dim(offsets, shape=aval.shape, broadcast_dimensions=(0,)))


def _gather_batch(vals, dims):
    (x, idx), (dx, di) = vals, dims
    if di is None:
        # x batched: keep the batch axis just behind the gathered axis
        x = moveaxis(x, dx, 1)
        n_idx = aval_of(idx).ndim
        return gather(x, idx), n_idx
    if dx is None:
        return gather(x, idx), di
    x = moveaxis(x, dx, 0)
    xs = aval_of(x).shape
    size_b, n = xs[0], xs[1]
    flat = reshape(x, new_sizes=(size_b * n,) + xs[2:])
    return gather(flat, _offset_indices(idx, di, size_b, n)), 0


gather_p.impl = lambda x, idx: np.take(x, idx, axis=0)
gather_p.abstract_eval = _gather_abstract_eval
gather_p.jvp = _gather_jvp
gather_p.transpose = _gather_transpose
gather_p.batch = _gather_batch


def gather(x, idx):
    return gather_p.bind(x, idx)


# ---------------------------------------------------------------------------------------------
# scatter_add: linear in the updates; its transpose is gather

scatter_add_p = Primitive("scatter_add")


def _scatter_add_impl(u, idx, *, size):
    u = np.asarray(u)
    out = np.zeros((size,) + u.shape[np.ndim(idx) :], u.dtype)
    np.add.at(out, idx, u)
    return out


def _scatter_add_abstract_eval(u, idx, *, size):
    _check_index(idx, "scatter_add")
    if u.shape[: idx.ndim] != idx.shape:
        raise TypeError(
            f"primitive 'scatter_add': updates {u.str_short()} do not start with the index "
            f"shape {idx.shape}"
        )
    return ShapedArray((size,) + u.shape[idx.ndim :], u.dtype)


def _scatter_add_jvp(primals, tangents, *, size):
    u, idx = primals
    t = tangents[0]
    out = scatter_add(u, idx, size=size)
    if type(t) is Zero:
        return out, Zero(aval_of(out))
    return out, scatter_add(t, idx, size=size)


def _scatter_add_transpose(ct, u, idx, *, size):
    assert is_undefined(u) and not is_undefined(idx)
    return [gather(ct, idx), None]


def _scatter_add_batch(vals, dims, *, size):
    (u, idx), (du, di) = vals, dims
    n_idx = aval_of(idx).ndim
    if di is None:
        # batch axis of the updates moves just behind the index axes: it lands at axis 1
        u = moveaxis(u, du, n_idx)
        return scatter_add(u, idx, size=size), 1
    size_b = aval_of(idx).shape[di]
    flat_idx = _offset_indices(idx, di, size_b, size)
    if du is None:
        u_aval = aval_of(u)
        u = broadcast_in_dim(
            u,
            shape=(size_b,) + u_aval.shape,
            broadcast_dimensions=tuple(range(1, u_aval.ndim + 1)),
        )
    else:
        u = moveaxis(u, du, 0)
    out = scatter_add(u, flat_idx, size=size_b * size)
    rest = aval_of(out).shape[1:]
    return reshape(out, new_sizes=(size_b, size) + rest), 0


scatter_add_p.impl = _scatter_add_impl
scatter_add_p.abstract_eval = _scatter_add_abstract_eval
scatter_add_p.jvp = _scatter_add_jvp
scatter_add_p.transpose = _scatter_add_transpose
scatter_add_p.batch = _scatter_add_batch


def scatter_add(u, idx, *, size: int):
    return scatter_add_p.bind(u, idx, size=int(size))
