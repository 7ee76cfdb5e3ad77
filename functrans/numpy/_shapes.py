"""Shape manipulation in functrans.numpy: reshaping, transposing, joining, splitting, tiling,
flipping, rolling, padding and diagonals, composed from the structural primitives.

Everything here is linear in the array operands, so derivatives (both modes) and batching come
from the transpose and batch rules of reshape, transpose, slice, pad, concatenate, rev,
broadcast_in_dim and gather. Shapes and counts (repeats, split points, pad widths) must be
concrete, as in NumPy they determine the result's shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.errors import ConcretizationError, NotSupportedError
from functrans.numpy._base import (
    asarray,
    broadcast_all,
    broadcast_to_shape,
    normalize_axes,
    normalize_axis,
    result_dtype,
)
from functrans.primitives import broadcast_in_dim, gather, rev, slice_
from functrans.primitives import concatenate as _concatenate
from functrans.primitives import elementwise as ew
from functrans.primitives import reshape as _reshape
from functrans.primitives import sorting as srt
from functrans.primitives import transpose as _transpose
from functrans.primitives.structural import moveaxis as _move


def shape(x) -> tuple[int, ...]:
    return aval_of(asarray(x)).shape


def ndim(x) -> int:
    return aval_of(asarray(x)).ndim


def size(x) -> int:
    return aval_of(asarray(x)).size


def _ints(x) -> tuple[int, ...]:
    return (int(x),) if isinstance(x, (int, np.integer)) else tuple(int(n) for n in x)


# ---------------------------------------------------------------------------------------------
# Reshaping and axis order


def reshape(x, newshape, order="C"):
    """x with a new shape (one entry may be -1); only row-major order."""
    if order != "C":
        raise NotSupportedError("functrans.numpy.reshape supports only order='C'")
    x = asarray(x)
    total = aval_of(x).size
    newshape = list(_ints(newshape))
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


def rollaxis(x, axis, start=0):
    """Roll `axis` backwards until it lies before position `start` (prefer moveaxis)."""
    x = asarray(x)
    nd = aval_of(x).ndim
    axis = normalize_axis(axis, nd)
    if not -nd <= start <= nd:
        raise np.exceptions.AxisError(f"start {start} is out of bounds for dimension {nd}")
    start = start + nd if start < 0 else start
    if axis < start:
        start -= 1
    order = [i for i in range(nd) if i != axis]
    order.insert(start, axis)
    return _transpose(x, permutation=tuple(order))


def expand_dims(x, axis):
    x = asarray(x)
    xshape = aval_of(x).shape
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out_nd = len(xshape) + len(axes)
    axes = sorted(normalize_axis(a, out_nd) for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {axis}")
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
    return broadcast_to_shape(asarray(x), _ints(shape))


def broadcast_arrays(*args):
    """The arguments broadcast against each other (a tuple, as in NumPy 2)."""
    return tuple(broadcast_all(*[asarray(a) for a in args]))


def _atleast(nd_fn, arrays):
    out = [nd_fn(asarray(a)) for a in arrays]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*arrays):
    return _atleast(lambda x: _reshape(x, new_sizes=(1,)) if aval_of(x).ndim == 0 else x, arrays)


def _at_least_2d(x):
    s = aval_of(x).shape
    return _reshape(x, new_sizes=(1,) * (2 - len(s)) + s) if len(s) < 2 else x


def _at_least_3d(x):
    s = aval_of(x).shape
    new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
    return _reshape(x, new_sizes=new)


def atleast_2d(*arrays):
    return _atleast(_at_least_2d, arrays)


def atleast_3d(*arrays):
    return _atleast(_at_least_3d, arrays)


# ---------------------------------------------------------------------------------------------
# Joining


_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def _cast_all(arrays: list[Any], dtype: Any, casting: str) -> list[Any]:
    """The arrays in `dtype` (their common dtype if None), each cast first checked against the
    `casting` rule, as NumPy's concatenate checks it."""
    if casting not in _CASTINGS:
        raise ValueError(
            f"casting must be one of 'no', 'equiv', 'safe', 'same_kind', 'unsafe' (got {casting!r})"
        )
    dtype = result_dtype(*arrays) if dtype is None else np.dtype(dtype)
    for a in arrays:
        if not np.can_cast(aval_of(a).dtype, dtype, casting):
            raise TypeError(
                f"Cannot cast array data from {aval_of(a).dtype!r} to {dtype!r} according to the "
                f"rule {casting!r}"
            )
    # each input is cast straight to dtype (not through the common dtype: no double rounding)
    return [ew.convert_element_type(a, new_dtype=dtype) for a in arrays]


def concatenate(
    arrays: Sequence[Any], axis: int | None = 0, *, dtype: Any = None, casting: str = "same_kind"
):
    """Join arrays along an existing axis (of the flattened arrays for axis=None).

    The inputs are cast to `dtype` (default: their common dtype); a cast the `casting` rule does
    not allow raises TypeError, as in NumPy (float to int needs casting="unsafe").
    Example: fnp.concatenate([x, y], axis=1, dtype=np.float32)
    """
    given = list(arrays)
    arrays = [asarray(a) for a in given]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = aval_of(arrays[0]).ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    if any(aval_of(a).ndim != nd for a in arrays):
        raise ValueError(
            "all the input arrays must have the same number of dimensions, got shapes "
            + ", ".join(str(aval_of(a).shape) for a in arrays)
        )
    axis = normalize_axis(axis, nd)
    first = aval_of(arrays[0]).shape
    for k, a in enumerate(arrays[1:], 1):  # (before any cast, as NumPy checks)
        for d, (m, n) in enumerate(zip(first, aval_of(a).shape)):
            if d != axis and m != n:
                raise ValueError(
                    "all the input array dimensions except for the concatenation axis must match "
                    f"exactly, but along dimension {d}, the array at index 0 has size {m} and "
                    f"the array at index {k} has size {n}"
                )
    if dtype is None:  # (a Python scalar among them is weak: it does not widen the dtype)
        dtype = result_dtype(
            *[g if type(g) in (int, float, complex) else a for g, a in zip(given, arrays)]
        )
    return _concatenate(_cast_all(arrays, dtype, casting), dimension=axis)


def stack(arrays: Sequence[Any], axis: int = 0, *, dtype: Any = None, casting: str = "same_kind"):
    """Join arrays of one shape along a new axis; `dtype` and `casting` as in concatenate.

    Example: fnp.stack([x, y], axis=-1)
    """
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {aval_of(a).shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError("all input arrays must have the same shape")
    nd = aval_of(arrays[0]).ndim + 1
    axis = normalize_axis(axis, nd)
    expanded = [expand_dims(a, axis) for a in arrays]
    return concatenate(expanded, axis=axis, dtype=dtype, casting=casting)


def hstack(tup):
    arrays = [atleast_1d(a) for a in tup]
    return concatenate(arrays, axis=0 if arrays and aval_of(arrays[0]).ndim == 1 else 1)


def vstack(tup):
    return concatenate([atleast_2d(a) for a in tup], axis=0)


def dstack(tup):
    return concatenate([atleast_3d(a) for a in tup], axis=2)


def column_stack(tup):
    cols = []
    for a in tup:
        a = asarray(a)
        s = aval_of(a).shape
        cols.append(_reshape(a, new_sizes=(s[0], 1)) if len(s) == 1 else _at_least_2d(a))
    return concatenate(cols, axis=1)


# ---------------------------------------------------------------------------------------------
# Splitting


def _slice_axis(x, start: int, stop: int, axis: int):
    s = aval_of(x).shape
    lo = tuple(start if i == axis else 0 for i in range(len(s)))
    hi = tuple(stop if i == axis else n for i, n in enumerate(s))
    return slice_(x, start_indices=lo, limit_indices=hi)


def array_split(ary, indices_or_sections, axis=0):
    """Split into pieces along an axis: a number of sections (the first n % k one longer) or
    concrete split indices. Returns a list."""
    ary = asarray(ary)
    nd = aval_of(ary).ndim
    axis = normalize_axis(axis, nd)
    n = aval_of(ary).shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise ValueError("number sections must be larger than 0.")
        each, extra = divmod(n, k)
        sizes = [each + 1] * extra + [each] * (k - extra)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    else:
        points = [int(i) for i in indices_or_sections]
        bounds = [0] + points + [n]
    out = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        start = min(max(start + n if start < 0 else start, 0), n)
        stop = min(max(stop + n if stop < 0 else stop, 0), n)
        out.append(_slice_axis(ary, start, max(start, stop), axis))
    return out


def split(ary, indices_or_sections, axis=0):
    """Like array_split, but a number of sections must divide the axis evenly."""
    if isinstance(indices_or_sections, (int, np.integer)):
        n = aval_of(asarray(ary)).shape[normalize_axis(axis, ndim(ary))]
        if int(indices_or_sections) <= 0 or n % int(indices_or_sections):
            raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


def hsplit(ary, indices_or_sections):
    nd = ndim(ary)
    if nd == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return split(ary, indices_or_sections, axis=1 if nd > 1 else 0)


def vsplit(ary, indices_or_sections):
    if ndim(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return split(ary, indices_or_sections, axis=0)


def dsplit(ary, indices_or_sections):
    if ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return split(ary, indices_or_sections, axis=2)


# ---------------------------------------------------------------------------------------------
# Tiling and repeating


def tile(A, reps):
    """A repeated reps[i] times along axis i (a broadcast and a reshape: no copies until used)."""
    A = asarray(A)
    reps = _ints(reps)
    s = aval_of(A).shape
    d = max(len(s), len(reps))
    s = (1,) * (d - len(s)) + s
    reps = (1,) * (d - len(reps)) + reps
    A = _reshape(A, new_sizes=s)
    # axis i of A becomes axis 2i + 1 of (r0, s0, r1, s1, ...), which flattens to the tiling
    wide = tuple(v for pair in zip(reps, s) for v in pair)
    A = broadcast_in_dim(A, shape=wide, broadcast_dimensions=tuple(range(1, 2 * d, 2)))
    return _reshape(A, new_sizes=tuple(r * n for r, n in zip(reps, s)))


def repeat(a, repeats, axis=None):
    """Each element repeated `repeats` times (an int, or concrete per-element counts)."""
    if isinstance(repeats, Tracer):
        raise ConcretizationError(
            f"repeat: the repeat counts are a traced value {repeats.aval.str_short()}, but they "
            "determine the result's shape; pass concrete (NumPy or Python) counts."
        )
    a = asarray(a)
    if axis is None:
        a, axis = ravel(a), 0
    s = aval_of(a).shape
    axis = normalize_axis(axis, len(s))
    counts = np.asarray(repeats, dtype=np.int64)
    if counts.ndim > 1 or (counts.ndim == 1 and counts.size not in (1, s[axis])):
        raise ValueError(
            f"repeat: {counts.size} repeat counts do not match axis {axis} of size {s[axis]}"
        )
    if counts.size and counts.min() < 0:
        raise ValueError("repeat: negative repeat counts")
    if counts.size == 1:
        r = int(counts.reshape(()))
        wide = s[: axis + 1] + (r,) + s[axis + 1 :]
        dims = tuple(range(axis + 1)) + tuple(range(axis + 2, len(s) + 1))
        out = broadcast_in_dim(a, shape=wide, broadcast_dimensions=dims)
        return _reshape(out, new_sizes=s[:axis] + (s[axis] * r,) + s[axis + 1 :])
    return _take_axis(a, np.repeat(np.arange(s[axis]), counts), axis)


def _take_axis(a, idx: np.ndarray, axis: int):
    """a's entries at the concrete 1-d positions idx along axis (a gather: linear)."""
    out = gather(_move(a, axis, 0), idx)
    return _move(out, 0, axis)


# ---------------------------------------------------------------------------------------------
# Flipping, rotating and rolling


def flip(m, axis=None):
    m = asarray(m)
    return rev(m, dimensions=normalize_axes(axis, aval_of(m).ndim))


def fliplr(m):
    if ndim(m) < 2:
        raise ValueError("fliplr: input must be at least 2-d")
    return flip(m, 1)


def flipud(m):
    if ndim(m) < 1:
        raise ValueError("flipud: input must be at least 1-d")
    return flip(m, 0)


def rot90(m, k=1, axes=(0, 1)):
    """m rotated by 90 degrees k times in the plane of `axes` (from the first towards the
    second axis)."""
    m = asarray(m)
    nd = aval_of(m).ndim
    if len(axes) != 2 or nd < 2:
        raise ValueError("rot90: axes must be two distinct axes of an array of 2 or more dims")
    a0, a1 = normalize_axis(axes[0], nd), normalize_axis(axes[1], nd)
    if a0 == a1:
        raise ValueError("rot90: axes must be different")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(m, (a0, a1))
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return transpose(flip(m, a1), perm)
    return flip(transpose(m, perm), a1)


def roll(a, shift, axis=None):
    """Elements shifted along axes, wrapping around (the flattened array for axis=None)."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), aval_of(a).shape)
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    s = aval_of(a).shape
    for k, ax in zip(shifts.ravel().tolist(), axes.ravel().tolist()):
        ax = normalize_axis(ax, len(s))
        n = s[ax]
        k = k % n if n else 0
        if k:
            a = _concatenate(
                [_slice_axis(a, n - k, n, ax), _slice_axis(a, 0, n - k, ax)], dimension=ax
            )
    return a


# ---------------------------------------------------------------------------------------------
# take_along_axis


def take_along_axis(arr, indices, axis):
    """out[..., j, ...] = arr[..., indices[..., j, ...], ...] along `axis` (negative indices
    count from the end); the other axes broadcast. Linear in arr (reverse mode scatters)."""
    arr = asarray(arr)
    if axis is None:
        arr, axis = ravel(arr), 0
    indices = indices if isinstance(indices, Tracer) else np.asarray(indices)
    i_aval, a_aval = aval_of(indices), aval_of(arr)
    if i_aval.dtype.kind not in "iu":
        raise IndexError(f"take_along_axis: indices must be integers, got {i_aval.str_short()}")
    if i_aval.ndim != a_aval.ndim:
        raise ValueError("take_along_axis: indices and arr must have the same number of dims")
    axis = normalize_axis(axis, a_aval.ndim)
    n = a_aval.shape[axis]
    shape = np.broadcast_shapes(
        tuple(1 if i == axis else d for i, d in enumerate(a_aval.shape)),
        tuple(1 if i == axis else d for i, d in enumerate(i_aval.shape)),
    )
    arr = broadcast_to_shape(arr, shape[:axis] + (n,) + shape[axis + 1 :])
    indices = broadcast_to_shape(indices, shape[:axis] + (i_aval.shape[axis],) + shape[axis + 1 :])
    if isinstance(indices, Tracer):
        zero = np.zeros(aval_of(indices).shape, i_aval.dtype)
        wrapped = ew.add(indices, np.full(aval_of(indices).shape, n, i_aval.dtype))
        indices = ew.select_n(ew.lt(indices, zero), indices, wrapped)
    else:
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"take_along_axis: index out of bounds for axis {axis} of size {n}")
        indices = np.where(indices < 0, indices + n, indices)
    return srt.take_along(arr, indices, axis=axis)


__all__ = [
    "array_split",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "broadcast_arrays",
    "broadcast_to",
    "column_stack",
    "concatenate",
    "dsplit",
    "dstack",
    "expand_dims",
    "flip",
    "fliplr",
    "flipud",
    "hsplit",
    "hstack",
    "moveaxis",
    "ndim",
    "ravel",
    "repeat",
    "reshape",
    "roll",
    "rollaxis",
    "rot90",
    "shape",
    "size",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "take_along_axis",
    "tile",
    "transpose",
    "vsplit",
    "vstack",
]
