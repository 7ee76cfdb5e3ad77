"""Diagonals and triangles in functrans.numpy: diagonal, diag, diagflat, tril, triu."""

from __future__ import annotations

import numpy as np

from functrans.core import aval_of
from functrans.numpy._base import asarray, broadcast_all, normalize_axis
from functrans.numpy._shapes import ravel
from functrans.primitives import elementwise as ew
from functrans.primitives import pad as _pad
from functrans.primitives import reshape as _reshape
from functrans.primitives import slice_
from functrans.primitives import transpose as _transpose

# ---------------------------------------------------------------------------------------------
# Diagonals and triangles


def _diag_len(n1: int, n2: int, offset: int) -> int:
    return max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The diagonal a[..., i, i + offset] of the (axis1, axis2) planes, as the last axis."""
    a = asarray(a)
    nd = aval_of(a).ndim
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a1, a2 = normalize_axis(axis1, nd), normalize_axis(axis2, nd)
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    rest = [i for i in range(nd) if i not in (a1, a2)]
    a = _transpose(a, permutation=tuple(rest) + (a1, a2))
    s = aval_of(a).shape
    lead, n1, n2 = s[:-2], s[-2], s[-1]
    length = _diag_len(n1, n2, offset)
    flat = _reshape(a, new_sizes=lead + (n1 * n2,))
    # element (i, i + offset) sits at start + i * (n2 + 1) in each flattened plane
    start = offset if offset >= 0 else -offset * n2
    start = start if length else 0
    limit = start + (length - 1) * (n2 + 1) + 1 if length else 0
    return slice_(
        flat,
        start_indices=(0,) * len(lead) + (start,),
        limit_indices=lead + (limit,),
        strides=(1,) * len(lead) + (n2 + 1,),
    )


def diag(v, k=0):
    """A 2-d array with the 1-d v on diagonal k, or the k-th diagonal of a 2-d v."""
    v = asarray(v)
    s = aval_of(v).shape
    if len(s) == 2:
        return diagonal(v, k)
    if len(s) != 1:
        raise ValueError("diag: input must be 1- or 2-d")
    m = s[0]
    n = m + abs(k)
    # v interleaved with n zeros lands on the diagonal of the flattened n x n matrix
    low = k if k >= 0 else -k * n
    config = ((low, n * n - low - m - (m - 1) * n, n),) if m else ((n * n, 0, 0),)
    flat = _pad(v, padding_config=config, value=0)
    return _reshape(flat, new_sizes=(n, n))


def diagflat(v, k=0):
    return diag(ravel(v), k)


def _triangle(m, k, lower: bool):
    m = asarray(m)
    s = aval_of(m).shape
    if not s:
        raise ValueError("tril/triu: input must be at least 1-d")
    n1, n2 = (s[-2], s[-1]) if len(s) >= 2 else (s[-1], s[-1])
    mask = np.tri(n1, n2, k, dtype=bool) if lower else ~np.tri(n1, n2, k - 1, dtype=bool)
    mask, m = broadcast_all(mask, m)  # a 1-d m is broadcast to a square, as in NumPy
    return ew.select_n(mask, np.zeros(aval_of(m).shape, aval_of(m).dtype), m)


def tril(m, k=0):
    """The lower triangle (entries with j <= i + k) of the last two axes; zeros elsewhere."""
    return _triangle(m, k, lower=True)


def triu(m, k=0):
    """The upper triangle (entries with j >= i + k) of the last two axes; zeros elsewhere."""
    return _triangle(m, k, lower=False)


__all__ = ["diag", "diagflat", "diagonal", "tril", "triu"]
