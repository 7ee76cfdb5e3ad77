"""Indexing in functrans.numpy: NumPy's basic and advanced indexing, and functional updates.

Basic indexing (ints, slices of any step, None, Ellipsis) lowers to slice, rev and reshape.
Advanced indexing (integer arrays, traced integers, concrete boolean masks) first applies the
slices, then moves the indexed axes to the front, flattens them into one axis and gathers rows
of it; the broadcast index dimensions land where NumPy puts them. `x.at[idx].set/add/...`
scatters into the flat positions that `idx` selects. A traced boolean mask would make the result
shape depend on values, so it is an error that points to `where`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import _contains_tracer, asarray, numpy_scalar_result
from functrans.numpy._elementwise import remainder
from functrans.numpy._piecewise import clip
from functrans.primitives import (
    broadcast_in_dim,
    gather,
    reshape,
    rev,
    scatter_add,
    slice_,
    transpose,
)
from functrans.primitives import elementwise as ew
from functrans.primitives.sorting import argsort

_INT_TYPES = (int, np.integer)


def _is_int(i: Any) -> bool:
    return isinstance(i, _INT_TYPES) and not isinstance(i, (bool, np.bool_))


def _index_error(what: str) -> IndexError:
    return IndexError(
        f"functrans.numpy: {what}. Valid indices are integers, slices, None, Ellipsis, integer "
        "arrays (concrete or traced) and concrete boolean arrays."
    )


def _normalize(idx: Any, shape: tuple[int, ...]) -> list[Any]:
    """The index into an array of `shape` as a list with Ellipsis expanded, lists converted and
    boolean masks (checked against the axes they index, as NumPy does) replaced by the integer
    arrays of their nonzero positions."""
    idx = list(idx) if isinstance(idx, tuple) else [idx]
    out = []
    for i in idx:
        if isinstance(i, list):
            i = np.asarray(i)
            if i.dtype == object:
                raise _index_error("ragged list index")
            if i.size == 0:
                i = i.astype(np.intp)
        if isinstance(i, Tracer) and i.aval.dtype.kind == "b":
            if (value := i.plain_value()) is not None:  # a mask the eager path holds concretely
                i = np.asarray(value)
        if isinstance(i, Tracer):
            kind = i.aval.dtype.kind
            if kind == "b":
                raise IndexError(
                    f"boolean mask indexing with a traced mask {i.aval.str_short()}: the result's "
                    "shape would depend on the mask's values, which are not known while "
                    "tracing. Use functrans.numpy.where(mask, x, 0) (or sum with the mask) instead."
                )
            if kind not in "iu":
                raise _index_error(f"a traced index of dtype {i.aval.dtype}")
        elif isinstance(i, (np.ndarray, np.generic)) and not _is_int(i):
            if i.dtype == bool:
                out.append(np.asarray(i))  # (a mask: its nonzero positions, below)
                continue
            if i.dtype.kind not in "iu":
                raise _index_error(f"an index array of dtype {i.dtype}")
        elif not (i is None or i is Ellipsis or isinstance(i, slice) or _is_int(i)):
            raise _index_error(f"an index of type {type(i).__name__}")
        out.append(i)
    if sum(i is Ellipsis for i in out) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    ndim = len(shape)
    consuming = sum(_consumed(i) for i in out)
    if consuming > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consuming} were indexed"
        )
    fill = [slice(None)] * (ndim - consuming)
    expanded, axis = [], 0
    for i in out:
        if i is Ellipsis:
            expanded.extend(fill)
            axis += len(fill)
        elif isinstance(i, np.ndarray) and i.dtype == bool and i.ndim:
            for k, n in enumerate(i.shape):
                if n and shape[axis + k] != n:  # (NumPy does not check an empty mask axis)
                    raise IndexError(
                        f"boolean index did not match indexed array along axis {axis + k}; size "
                        f"of axis is {shape[axis + k]} but size of corresponding boolean axis is "
                        f"{n}"
                    )
            expanded.extend(np.nonzero(i))
            axis += i.ndim
        else:  # (a 0-d boolean stays itself: getitem rejects it)
            expanded.append(i)
            axis += i is not None
    return expanded if any(i is Ellipsis for i in out) else expanded + fill


def _consumed(i: Any) -> int:
    """How many axes of the indexed array an index entry consumes (a mask: its rank)."""
    if i is None or i is Ellipsis:
        return 0
    if isinstance(i, np.ndarray) and i.dtype == bool and i.ndim:
        return i.ndim
    return 1


def _is_advanced(i: Any) -> bool:
    return isinstance(i, (Tracer, np.ndarray))


def getitem(x: Any, idx: Any) -> Any:
    x = asarray(x)
    shape = aval_of(x).shape
    entries = _normalize(idx, shape)
    if any(isinstance(i, np.ndarray) and i.dtype == bool for i in entries):
        raise IndexError("0-dimensional boolean indices are not supported")
    if not any(_is_advanced(i) for i in entries):
        return _basic(x, entries)
    return _advanced(x, entries)


def _slice_bounds(i: slice, n: int) -> tuple[int, int, int, int, bool]:
    """(lo, hi, stride, length, reversed) selecting slice i of an axis of size n."""
    start, stop, step = i.indices(n)
    k = len(range(start, stop, step))
    if step > 0:
        return start, (start + (k - 1) * step + 1) if k else start, step, k, False
    lo = start + (k - 1) * step if k else 0
    return lo, (start + 1) if k else 0, -step, k, True


def _basic(x: Any, entries: list[Any]) -> Any:
    shape = aval_of(x).shape
    starts, limits, strides, flips, out_shape = [], [], [], [], []
    dim = 0
    for i in entries:
        if i is None:
            out_shape.append(1)
            continue
        n = shape[dim]
        if isinstance(i, slice):
            lo, hi, s, k, flipped = _slice_bounds(i, n)
            if flipped:
                flips.append(dim)
            out_shape.append(k)
        else:
            j = int(i)
            if not -n <= j < n:
                raise IndexError(f"index {j} is out of bounds for axis {dim} with size {n}")
            lo, hi, s = j % n, j % n + 1, 1
        starts.append(lo)
        limits.append(hi)
        strides.append(s)
        dim += 1
    out = slice_(x, start_indices=starts, limit_indices=limits, strides=strides)
    out = rev(out, dimensions=flips)
    return reshape(out, new_sizes=tuple(out_shape))


def _normalize_index_array(i: Any, n: int, axis: int) -> Any:
    """Integer index array with negative entries wrapped; concrete ones are bounds-checked."""
    if isinstance(i, Tracer):
        i = ew.convert_element_type(i, new_dtype=np.int64)
        n_arr = np.full(i.aval.shape, n, np.int64)
        zero = np.zeros(i.aval.shape, np.int64)
        return ew.select_n(ew.lt(i, zero), i, ew.add(i, n_arr))
    i = np.asarray(i, dtype=np.int64)
    if i.size and (i.min() < -n or i.max() >= n):
        bad = i.min() if i.min() < -n else i.max()
        raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")
    return np.where(i < 0, i + n, i)


def _advanced(x: Any, entries: list[Any]) -> Any:
    # 1. apply the slices (advanced axes are kept whole), remembering each axis' role
    sliced_entries = []
    slots = []  # output slots in order: ("axis", k) for a kept axis, "new", or "adv"
    adv_axes, adv_arrays = [], []
    dim = 0
    for i in entries:
        if i is None:
            slots.append("new")
            continue
        if isinstance(i, slice):
            sliced_entries.append(i)
            slots.append(("axis", dim))
        else:  # an integer or an index array: advanced (ints broadcast as 0-d arrays)
            sliced_entries.append(slice(None))
            adv_axes.append(dim)
            adv_arrays.append(i)
            slots.append("adv")
        dim += 1
    x = _basic(x, sliced_entries)
    sshape = aval_of(x).shape
    adv_arrays = [
        _normalize_index_array(np.asarray(i) if _is_int(i) else i, sshape[a], a)
        for i, a in zip(adv_arrays, adv_axes)
    ]
    # 2. broadcast the index arrays and flatten them into positions along the flattened axes
    shapes = [aval_of(i).shape for i in adv_arrays]
    try:
        bshape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError(
            "shape mismatch: indexing arrays could not be broadcast together with shapes "
            + " ".join(str(s).replace(" ", "") for s in shapes)
        ) from None
    flat_idx = None
    for i, a in zip(adv_arrays, adv_axes):
        i = _broadcast_index(i, bshape)
        stride = math.prod(sshape[b] for b in adv_axes[adv_axes.index(a) + 1 :])
        term = i if stride == 1 else _scale(i, stride)
        flat_idx = term if flat_idx is None else _add_index(flat_idx, term)
    kept_axes = [d for d in range(len(sshape)) if d not in adv_axes]
    x = transpose(x, permutation=tuple(adv_axes + kept_axes))
    n_adv = math.prod(sshape[a] for a in adv_axes)
    x = reshape(x, new_sizes=(n_adv,) + tuple(sshape[d] for d in kept_axes))
    out = gather(x, flat_idx)  # shape: bshape + kept axes
    # 3. put the broadcast dimensions where NumPy does, and insert the new axes
    adv_positions = [k for k, s in enumerate(slots) if isinstance(s, str) and s == "adv"]
    adjacent = adv_positions == list(range(adv_positions[0], adv_positions[-1] + 1))
    nb = len(bshape)
    order = []  # output axes of `out` in final order, with -1 for a new axis
    kept_iter = iter(range(nb, nb + len(kept_axes)))
    placed = False
    if not adjacent:
        order.extend(range(nb))
        placed = True
    for s in slots:
        if isinstance(s, tuple):
            order.append(next(kept_iter))
        elif s == "adv":
            if not placed:
                order.extend(range(nb))
                placed = True
        else:  # "new"
            order.append(-1)
    real = [o for o in order if o >= 0]
    out = transpose(out, permutation=tuple(real))
    out_shape = aval_of(out).shape
    final, k = [], 0
    for o in order:
        if o < 0:
            final.append(1)
        else:
            final.append(out_shape[k])
            k += 1
    return reshape(out, new_sizes=tuple(final))


def _broadcast_index(i: Any, shape: tuple[int, ...]) -> Any:
    ishape = aval_of(i).shape
    if ishape == shape:
        return i
    if isinstance(i, np.ndarray):
        return np.broadcast_to(i, shape)
    lead = len(shape) - len(ishape)
    return broadcast_in_dim(i, shape=shape, broadcast_dimensions=tuple(range(lead, len(shape))))


def _scale(i: Any, stride: int) -> Any:
    if isinstance(i, np.ndarray):
        return i * stride
    return ew.mul(i, np.full(aval_of(i).shape, stride, aval_of(i).dtype))


def _add_index(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a + b
    return ew.add(a, b)


_TAKE_MODES = ("raise", "wrap", "clip")


@numpy_scalar_result
def take(a: Any, indices: Any, axis: int | None = None, mode: str = "raise") -> Any:
    """Entries of `a` at `indices` along `axis` (of the flattened array for axis=None).

    Also the way to index a plain NumPy array with a traced index. For indices outside
    [-n, n), mode "raise" is an IndexError (concrete indices; traced ones only wrap negatives),
    "wrap" takes them modulo n, "clip" clips them to [0, n - 1] (negative ones to 0, as NumPy).
    Linear in `a`.
    Example: fnp.take(x, i, axis=1, mode="clip")
    """
    if mode is None:  # (NumPy's default spelled out)
        mode = "raise"
    if mode not in _TAKE_MODES:
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    a = asarray(a)
    if axis is None or aval_of(a).ndim == 0:  # (NumPy takes from a 0-d array as from 1-d)
        a = reshape(a, new_sizes=(aval_of(a).size,))
        axis = 0 if axis is None else axis
    nd = aval_of(a).ndim
    if not -nd <= axis < nd:
        raise np.exceptions.AxisError(f"axis {axis} is out of bounds for array of dimension {nd}")
    axis %= nd
    indices = _take_indices(indices)
    n = aval_of(a).shape[axis]
    if n == 0 and aval_of(indices).size:
        raise IndexError("cannot do a non-empty take from an empty axes.")
    concrete = isinstance(indices, np.ndarray)
    if mode == "wrap":
        indices = np.mod(indices, n) if concrete else remainder(indices, n)
    elif mode == "clip":
        indices = np.clip(indices, 0, n - 1) if concrete else clip(indices, 0, n - 1)
    return getitem(a, (slice(None),) * axis + (indices,))


def _take_indices(indices: Any) -> Any:
    """Indices as NumPy's take reads them: an array must cast to intp by the 'same_kind' rule
    (so booleans are 0 and 1, never a mask), a sequence of numbers converts."""
    if isinstance(indices, (list, tuple)) and _contains_tracer(indices):
        indices = asarray(indices)
    if not isinstance(indices, (Tracer, np.ndarray, np.generic)):
        return np.asarray(indices, dtype=np.intp)
    dtype = aval_of(indices).dtype
    if not np.can_cast(dtype, np.intp, "same_kind"):
        raise TypeError(
            f"Cannot cast array data from {dtype!r} to {np.dtype(np.intp)!r} according to the "
            "rule 'same_kind'"
        )
    if isinstance(indices, Tracer):
        return ew.convert_element_type(indices, new_dtype=np.intp)
    return np.asarray(indices, dtype=np.intp)


# ---------------------------------------------------------------------------------------------
# Functional updates: x.at[idx].set(v) and friends


def _has_tracer(idx: Any) -> bool:
    entries = idx if isinstance(idx, tuple) else (idx,)
    return any(
        isinstance(i, Tracer)
        or (isinstance(i, slice) and any(isinstance(v, Tracer) for v in (i.start, i.stop, i.step)))
        for i in entries
    )


def _flat_positions(shape: tuple[int, ...], idx: Any) -> Any:
    """The flat positions (into x.ravel()) that x[idx] selects, shaped like x[idx]: a NumPy
    array when the index is concrete (even while staging), so repeated positions are known."""
    iota = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    if not _has_tracer(idx):
        return iota[idx]
    return getitem(iota, idx)


_UFUNC_AT = {"add": np.add, "multiply": np.multiply, "min": np.minimum, "max": np.maximum}


def _occurrence_groups(pos: np.ndarray) -> list[np.ndarray]:
    """Split element indices of a concrete position array into groups with distinct positions,
    in order: group k holds the k-th occurrence of every repeated position."""
    flat = pos.ravel()
    order = np.argsort(flat, kind="stable")
    sorted_pos = flat[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_pos)) + 1]
    rank = np.arange(flat.size) - np.repeat(starts, np.diff(np.r_[starts, flat.size]))
    occurrence = np.empty_like(rank)
    occurrence[order] = rank
    return [np.flatnonzero(occurrence == k) for k in range(int(occurrence.max(initial=-1)) + 1)]


class _IndexUpdate:
    """x.at[idx]: methods return a new array with x[idx] updated (x itself is never changed).

    Repeated indices act as in NumPy's ufunc.at: `add` and `multiply` accumulate, `set` keeps the
    last value, `min`/`max` combine. With traced indices the same holds for all but `multiply`,
    which assumes distinct positions there: a repeated position is multiplied by the sum of its
    updates (docs/sharp_edges.md).
    """

    def __init__(self, x: Any, idx: Any):
        self.x = asarray(x)
        self.idx = idx

    def get(self) -> Any:
        return getitem(self.x, self.idx)

    def _apply(self, v: Any, combine) -> Any:
        x = self.x
        if isinstance(x, np.ndarray) and not isinstance(v, Tracer) and not _has_tracer(self.idx):
            # all concrete: NumPy's own assignment and ufunc.at, on a copy
            out = x.copy()
            if combine == "set":
                out[self.idx] = v
            else:
                _UFUNC_AT[combine].at(out, self.idx, np.asarray(v, dtype=out.dtype))
            return out
        aval = aval_of(x)
        pos = _flat_positions(aval.shape, self.idx)
        v = ew.convert_element_type(asarray(v), new_dtype=aval.dtype)
        pshape = aval_of(pos).shape
        v = _broadcast_value(v, pshape)
        flat_x = reshape(x, new_sizes=(aval.size,))
        if isinstance(pos, np.ndarray):
            groups = _occurrence_groups(pos)
            flat_pos = pos.ravel()
            flat_v = reshape(v, new_sizes=(math.prod(pshape),))
            if combine == "add" and len(groups) > 1:
                groups = [np.arange(flat_pos.size)]  # scatter_add accumulates repeats itself
            for g in groups:
                vals = flat_v if len(groups) == 1 else gather(flat_v, g)
                flat_x = _combine(flat_x, flat_pos[g], vals, combine, aval.size)
        else:
            flat_v = reshape(v, new_sizes=(math.prod(pshape),))
            flat_pos = reshape(pos, new_sizes=(math.prod(pshape),))
            keep = None
            if combine in ("set", "min", "max") and math.prod(pshape) > 1:
                flat_pos, flat_v, keep = _winners(flat_pos, flat_v, combine)
            flat_x = _combine(flat_x, flat_pos, flat_v, combine, aval.size, keep)
        return reshape(flat_x, new_sizes=aval.shape)

    def set(self, v):
        return self._apply(v, "set")

    def add(self, v):
        return self._apply(v, "add")

    def multiply(self, v):
        return self._apply(v, "multiply")

    def min(self, v):
        return self._apply(v, "min")

    def max(self, v):
        return self._apply(v, "max")


def _broadcast_value(v: Any, shape: tuple[int, ...]) -> Any:
    vshape = aval_of(v).shape
    if vshape == shape:
        return v
    try:
        np.broadcast_shapes(vshape, shape)
    except ValueError:
        raise ValueError(
            f"cannot broadcast the update value of shape {vshape} to the indexed shape {shape}"
        ) from None
    lead = len(shape) - len(vshape)
    expanded = tuple(range(lead, len(shape)))
    return broadcast_in_dim(v, shape=shape, broadcast_dimensions=expanded)


def _winners(pos, vals, combine: str):
    """Traced positions may repeat. Per position, the one update that decides it: the last for
    `set` (as NumPy's assignment), the largest or smallest for `max`/`min` (NaN first, as
    np.maximum.at and np.minimum.at). Returns the updates, reordered for min/max, and a mask of
    the deciding ones, for _combine."""
    n = aval_of(pos).shape[0]
    if combine != "set":  # order the updates by value, so that the deciding one comes last
        kind = aval_of(vals).dtype.kind
        if combine == "max":
            order = argsort(vals, axis=0)
        elif kind in "fc":  # descending, NaN still last
            order = argsort(ew.neg(vals), axis=0)
        else:  # integers and booleans: an ascending order, reversed
            order = rev(argsort(vals, axis=0), dimensions=(0,))
        pos, vals = gather(pos, order), gather(vals, order)
    # a stable order by position keeps each position's updates in order: the last of each run
    # is that position's last update
    by_pos = argsort(pos, axis=0)
    sorted_pos = gather(pos, by_pos)
    following = gather(sorted_pos, np.minimum(np.arange(n) + 1, n - 1))
    last_sorted = ew.logical_or(ew.ne(sorted_pos, following), np.arange(n) == n - 1)
    return pos, vals, gather(last_sorted, argsort(by_pos, axis=0))  # (in the updates' order)


def _combine(flat_x, pos, vals, combine: str, size: int, keep=None):
    """flat_x with positions `pos` combined with vals: distinct positions (or only the updates
    `keep` marks count) for set/min/max; add accumulates repeats; multiply assumes distinct."""
    dtype = aval_of(flat_x).dtype
    n = aval_of(pos).shape[0]
    if combine in ("set", "min", "max"):
        if n == 0:
            return flat_x
        # one update decides each position: scatter its number (exact, an integer), then
        # gather its value, bits and sign of zero as they are (a sum into zeros loses -0.0)
        number = np.arange(1, n + 1)
        if keep is not None:
            number = ew.select_n(keep, np.zeros(n, np.int64), number)
        source = scatter_add(number, pos, size=size)
        mask = ew.gt(source, np.zeros(size, np.int64))
        scattered = gather(
            vals, ew.max(ew.sub(source, np.ones(size, np.int64)), np.zeros(size, np.int64))
        )
        new = (
            scattered
            if combine == "set"
            else (ew.min if combine == "min" else ew.max)(flat_x, scattered)
        )
        return ew.select_n(mask, flat_x, new)
    scattered = scatter_add(vals, pos, size=size)
    if combine == "add":
        return ew.add(flat_x, scattered)
    hit = scatter_add(np.ones(aval_of(pos).shape, dtype), pos, size=size)  # (multiply)
    mask = ew.gt(hit, np.zeros(size, dtype))
    return ew.select_n(mask, flat_x, ew.mul(flat_x, scattered))


class _AtIndexer:
    __slots__ = ("x",)

    def __init__(self, x: Any):
        self.x = x

    def __getitem__(self, idx: Any) -> _IndexUpdate:
        return _IndexUpdate(self.x, idx)


def at(x: Any) -> _AtIndexer:
    """`fnp.at(x)[idx].set(v)`: the functional update spelling for concrete NumPy arrays
    (traced arrays have `x.at[idx]`). Returns a new array; x is unchanged."""
    return _AtIndexer(x)


__all__ = [
    "at",
    "take",
]
