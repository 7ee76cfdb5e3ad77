"""Padding in functrans.numpy: numpy.pad with constant (traced or not), edge, reflect,
symmetric and wrap modes, composed from the pad primitive and gathers."""

from __future__ import annotations

import numpy as np

from functrans.core import aval_of
from functrans.errors import NotSupportedError
from functrans.numpy._base import asarray, broadcast_to_shape
from functrans.numpy._shapes import _take_axis
from functrans.primitives import concatenate as _concatenate
from functrans.primitives import elementwise as ew
from functrans.primitives import pad as _pad
from functrans.primitives import reshape, slice_

# ---------------------------------------------------------------------------------------------
# Padding


def _pad_positions(before: int, after: int, n: int, mode: str) -> np.ndarray:
    """For each output position along an axis, the input position it copies."""
    idx = np.arange(-before, n + after)
    if mode == "edge":
        return np.clip(idx, 0, n - 1)
    if mode == "wrap":
        return idx % n
    if mode == "symmetric":
        m = idx % (2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    if n == 1:  # reflect of a single element repeats it
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = idx % period
    return np.where(m >= n, period - m, m)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad(array, pad_width, mode="constant", constant_values=0):
    """array padded along each axis: pad_width is an int, (before, after), or one pair per axis.

    Modes: 'constant' (constant_values: a scalar, possibly traced, or pairs per axis), 'edge',
    'reflect', 'symmetric', 'wrap'. Linear in the array (reverse mode scatters back).
    Example: fnp.pad(x, ((1, 1), (0, 2)), mode="reflect")
    """
    if mode not in _PAD_MODES:
        raise NotSupportedError(f"pad: mode {mode!r} is not supported; use one of {_PAD_MODES}")
    x = asarray(array)
    s = aval_of(x).shape
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(s), 2))
    if widths.size and widths.min() < 0:
        raise ValueError("pad: index can't contain negative values")
    if mode == "constant":
        value = constant_values
        if isinstance(value, (int, float, bool, np.integer, np.floating)):
            config = tuple((int(b), int(e), 0) for b, e in widths)
            return _pad(x, padding_config=config, value=np.asarray(value).astype(x.dtype).item())
        # traced or per-axis values: add constant blocks axis by axis (later axes cover the
        # corners, as in NumPy)
        dtype = aval_of(x).dtype
        values = asarray(value)
        vshape = aval_of(values).shape
        for ax, (b, e) in enumerate(widths.tolist()):
            parts = []
            for side, width in ((0, b), (1, e)):
                if not width:
                    continue
                v = values if vshape == () else _pick_pad_value(values, vshape, ax, side)
                cur = list(aval_of(x).shape)
                cur[ax] = width
                parts.append(
                    (
                        side,
                        broadcast_to_shape(ew.convert_element_type(v, new_dtype=dtype), tuple(cur)),
                    )
                )
            pieces = [p for sd, p in parts if sd == 0] + [x] + [p for sd, p in parts if sd == 1]
            x = _concatenate(pieces, dimension=ax)
        return x
    for ax, (b, e) in enumerate(widths.tolist()):
        n = s[ax]
        if (b or e) and n == 0:
            raise ValueError(f"pad: can't extend empty axis {ax} using mode {mode!r}")
        if b or e:
            x = _take_axis(x, _pad_positions(b, e, n, mode), ax)
    return x


def _pick_pad_value(values, vshape, ax, side):
    """The constant for one side of one axis from NumPy's (n, 2), (1, 2), (2,) or (1,) forms."""
    if len(vshape) == 2:
        row = ax if vshape[0] > 1 else 0
        one = slice_(values, start_indices=(row, side), limit_indices=(row + 1, side + 1))
    else:
        k = side if vshape[0] == 2 else 0
        one = slice_(values, start_indices=(k,), limit_indices=(k + 1,))
    return reshape(one, new_sizes=())  # a scalar: it broadcasts to a block of any rank


__all__ = ["pad"]
