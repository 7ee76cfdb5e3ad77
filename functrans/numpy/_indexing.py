"""Indexing of functrans.numpy arrays: basic (static) indexing with ints, slices (any step),
None and Ellipsis, lowered to slice, rev and reshape primitives."""

from __future__ import annotations

from typing import Any

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import asarray
from functrans.primitives import reshape, rev, slice_


def _index_error(idx) -> TypeError:
    kind = "a traced value" if isinstance(idx, Tracer) else f"{type(idx).__name__}"
    return TypeError(
        f"functrans.numpy indexing with {kind} is not supported yet: only integers, slices, "
        "None and Ellipsis are (static indexing). Integer-array and boolean-mask indexing come "
        "with the NumPy-coverage work; meanwhile use functrans.numpy.where for masks."
    )


def getitem(x: Any, idx: Any) -> Any:
    x = asarray(x)
    shape = aval_of(x).shape
    idx = idx if isinstance(idx, tuple) else (idx,)
    for i in idx:
        if not (
            i is None
            or i is Ellipsis
            or isinstance(i, slice)
            or (isinstance(i, (int, np.integer)) and not isinstance(i, bool))
        ):
            raise _index_error(i)
        if isinstance(i, slice) and any(isinstance(v, Tracer) for v in (i.start, i.stop, i.step)):
            raise _index_error(i.start)
    n_consuming = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if idx.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_consuming > len(shape):
        raise IndexError(
            f"too many indices for array: array is {len(shape)}-dimensional, but "
            f"{n_consuming} were indexed"
        )
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (len(shape) - n_consuming) + idx[k + 1 :]
    else:
        idx = idx + (slice(None),) * (len(shape) - n_consuming)

    starts, limits, strides, flips, out_shape = [], [], [], [], []
    dim = 0
    for i in idx:
        if i is None:
            out_shape.append(1)
            continue
        n = shape[dim]
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            k = len(range(start, stop, step))
            if step > 0:
                lo, hi, s = start, (start + (k - 1) * step + 1) if k else start, step
            else:
                lo = start + (k - 1) * step if k else 0
                hi, s = (start + 1) if k else 0, -step
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
