"""functrans.numpy.fft: NumPy's discrete Fourier transforms, differentiable and batchable.

Every transform lowers to the `fft` primitive, which acts on trailing axes with NumPy's default
("backward") scaling: here the transformed axes are moved to the end and back, inputs are
trimmed or zero-padded to the requested lengths (n, s) and the "ortho"/"forward" norms become a
constant factor. Dtypes follow NumPy 2: float32 and complex64 stay single precision, integers
become complex128 (or float64 for rfft). Shifts are slices and concatenations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans.core import aval_of
from functrans.numpy._base import asarray, normalize_axes, normalize_axis
from functrans.primitives import concatenate, convert_element_type, pad, slice_, transpose
from functrans.primitives import elementwise as ew
from functrans.primitives.fft import complex_dtype, half_length
from functrans.primitives.fft import fft as _fft

_NORMS = (None, "backward", "ortho", "forward")


# ---------------------------------------------------------------------------------------------
# Plumbing: dtypes, lengths, axes, norms


def _as_complex(a: Any) -> Any:
    a = asarray(a)
    dtype = aval_of(a).dtype
    want = complex_dtype(dtype if dtype.kind in "fc" else np.float64)
    return convert_element_type(a, new_dtype=want)


def _as_real(a: Any, name: str) -> Any:
    a = asarray(a)
    dtype = aval_of(a).dtype
    if dtype.kind == "c":
        raise TypeError(
            f"fft.{name}: the input is complex ({aval_of(a).str_short()}) but {name} transforms "
            "real signals; use fft.fft/fftn for complex input, or pass the real part."
        )
    return convert_element_type(a, new_dtype=dtype if dtype.kind == "f" else np.float64)


def _resize(a: Any, axis: int, n: int) -> Any:
    """a trimmed or zero-padded to length n along `axis` (as NumPy's n and s arguments)."""
    shape = aval_of(a).shape
    if n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified")
    m = shape[axis]
    if n < m:
        limit = shape[:axis] + (n,) + shape[axis + 1 :]
        return slice_(a, start_indices=(0,) * len(shape), limit_indices=limit)
    if n > m:
        config = [(0, 0, 0)] * len(shape)
        config[axis] = (0, n - m, 0)
        return pad(a, padding_config=tuple(config), value=0)
    return a


def _axes_and_lengths(a: Any, s, axes) -> tuple[tuple[int, ...], list[int | None]]:
    """Normalized axes (repeats allowed, as in NumPy) and per-axis lengths (None: as given)."""
    nd = aval_of(a).ndim
    if axes is None:
        # NumPy: all axes, or the last len(s) when only s is given
        axes = tuple(range(nd)) if s is None else tuple(range(-len(s), 0))
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    axes = tuple(normalize_axis(int(ax), nd) for ax in axes)
    if s is None:
        return axes, [None] * len(axes)
    if isinstance(s, (int, np.integer)):
        s = (s,)
    if len(s) != len(axes):
        raise ValueError(f"shape s={tuple(s)} and axes={axes} have different lengths")
    return axes, [None if n is None or int(n) == -1 else int(n) for n in s]


def _scale(out: Any, norm: str | None, n: int, inverse: bool) -> Any:
    """Apply `norm` to a result computed with the default (backward) normalisation."""
    if norm not in _NORMS:
        raise ValueError(f'invalid norm {norm!r}: use None, "backward", "ortho" or "forward"')
    if norm is None or norm == "backward":
        return out
    if norm == "ortho":
        factor = math.sqrt(n) if inverse else 1 / math.sqrt(n)
    else:  # "forward": the forward transform carries 1/n, the inverse none
        factor = n if inverse else 1 / n
    return ew.mul(out, ew.full_like(out, factor))


def _on_trailing(a: Any, axes: tuple[int, ...], fn) -> Any:
    """fn applied with `axes` moved to the end (in order); the axes are moved back afterwards."""
    nd = aval_of(a).ndim
    perm = tuple(i for i in range(nd) if i not in axes) + axes
    out = fn(transpose(a, permutation=perm))
    return transpose(out, permutation=tuple(np.argsort(perm)))


def _c2c(a, s, axes, norm, inverse: bool):
    a = _as_complex(a)
    axes, lengths = _axes_and_lengths(a, s, axes)
    if not axes:
        return a
    if len(set(axes)) != len(axes):  # a repeated axis is transformed again, as in NumPy
        for ax, n in reversed(list(zip(axes, lengths))):
            a = _c2c(a, None if n is None else (n,), (ax,), norm, inverse)
        return a
    for ax, n in zip(axes, lengths):
        if n is not None:
            a = _resize(a, ax, n)
    shape = aval_of(a).shape
    fft_lengths = tuple(shape[ax] for ax in axes)
    fft_type = "ifft" if inverse else "fft"
    out = _on_trailing(a, axes, lambda y: _fft(y, fft_type=fft_type, fft_lengths=fft_lengths))
    return _scale(out, norm, math.prod(fft_lengths), inverse)


def _r2c(a, s, axes, norm, name):
    a = _as_real(a, name)
    axes, lengths = _axes_and_lengths(a, s, axes)
    if not axes:
        raise ValueError(f"fft.{name}: at least one axis is needed")
    if len(set(axes)) != len(axes):  # the real transform on the last axis, then the others
        out = _r2c(a, lengths[-1:], axes[-1:], norm, name)
        return _c2c(out, lengths[:-1], axes[:-1], norm, inverse=False)
    for ax, n in zip(axes, lengths):
        if n is not None:
            a = _resize(a, ax, n)
    shape = aval_of(a).shape
    fft_lengths = tuple(shape[ax] for ax in axes)
    out = _on_trailing(a, axes, lambda y: _fft(y, fft_type="rfft", fft_lengths=fft_lengths))
    return _scale(out, norm, math.prod(fft_lengths), inverse=False)


def _c2r(a, s, axes, norm, name):
    a = _as_complex(a)
    axes, lengths = _axes_and_lengths(a, s, axes)
    if not axes:
        raise ValueError(f"fft.{name}: at least one axis is needed")
    if len(set(axes)) != len(axes):  # the complex inverses first, the real one on the last axis
        a = _c2c(a, lengths[:-1], axes[:-1], norm, inverse=True)
        return _c2r(a, lengths[-1:], axes[-1:], norm, name)
    shape = aval_of(a).shape
    last = lengths[-1] if lengths[-1] is not None else 2 * (shape[axes[-1]] - 1)
    if last < 1:
        raise ValueError(f"invalid number of data points ({last}) specified")
    for ax, n in zip(axes[:-1], lengths[:-1]):
        if n is not None:
            a = _resize(a, ax, n)
    a = _resize(a, axes[-1], half_length(last))
    shape = aval_of(a).shape
    fft_lengths = tuple(shape[ax] for ax in axes[:-1]) + (last,)
    out = _on_trailing(a, axes, lambda y: _fft(y, fft_type="irfft", fft_lengths=fft_lengths))
    return _scale(out, norm, math.prod(fft_lengths), inverse=True)


def _one_axis(n, axis):
    return None if n is None else (n,), (axis,)


# ---------------------------------------------------------------------------------------------
# The transforms


def fft(a, n: int | None = None, axis: int = -1, norm: str | None = None):
    """One-dimensional discrete Fourier transform, as numpy.fft.fft.

    Args:
        a: input array (real input is transformed as complex).
        n: length of the transformed axis; the input is trimmed or zero-padded to it.
        axis: the axis to transform.
        norm: None/"backward" (unscaled), "ortho" (1/sqrt(n)) or "forward" (1/n).

    Returns:
        The complex spectrum (complex64 for single-precision input, else complex128).

    Example:
        >>> grad(lambda x: fnp.abs(fnp.fft.fft(x)[1]) ** 2)(np.arange(4.0))
    """
    return _c2c(a, *_one_axis(n, axis), norm, inverse=False)


def ifft(a, n: int | None = None, axis: int = -1, norm: str | None = None):
    """Inverse of `fft` (scaled by 1/n by default), as numpy.fft.ifft."""
    return _c2c(a, *_one_axis(n, axis), norm, inverse=True)


def rfft(a, n: int | None = None, axis: int = -1, norm: str | None = None):
    """The n // 2 + 1 non-negative frequencies of the FFT of a real signal (numpy.fft.rfft)."""
    return _r2c(a, *_one_axis(n, axis), norm, "rfft")


def irfft(a, n: int | None = None, axis: int = -1, norm: str | None = None):
    """Inverse of `rfft`: a real signal of length n (default 2 * (m - 1)) from m frequencies.

    As in NumPy, the imaginary parts of the zero frequency and (for even n) of the Nyquist
    frequency are ignored, so the gradient with respect to them is zero.
    """
    return _c2r(a, *_one_axis(n, axis), norm, "irfft")


def fft2(a, s: Sequence[int] | None = None, axes=(-2, -1), norm: str | None = None):
    """Two-dimensional FFT over `axes` (default the last two), as numpy.fft.fft2."""
    return _c2c(a, s, axes, norm, inverse=False)


def ifft2(a, s: Sequence[int] | None = None, axes=(-2, -1), norm: str | None = None):
    """Inverse of `fft2`, as numpy.fft.ifft2."""
    return _c2c(a, s, axes, norm, inverse=True)


def fftn(a, s: Sequence[int] | None = None, axes=None, norm: str | None = None):
    """N-dimensional FFT over `axes` (default: all, or the last len(s)), as numpy.fft.fftn."""
    return _c2c(a, s, axes, norm, inverse=False)


def ifftn(a, s: Sequence[int] | None = None, axes=None, norm: str | None = None):
    """Inverse of `fftn`, as numpy.fft.ifftn."""
    return _c2c(a, s, axes, norm, inverse=True)


def rfft2(a, s: Sequence[int] | None = None, axes=(-2, -1), norm: str | None = None):
    """Two-dimensional FFT of a real input, half spectrum on the last axis (numpy.fft.rfft2)."""
    return _r2c(a, s, axes, norm, "rfft2")


def irfft2(a, s: Sequence[int] | None = None, axes=(-2, -1), norm: str | None = None):
    """Inverse of `rfft2`, as numpy.fft.irfft2."""
    return _c2r(a, s, axes, norm, "irfft2")


def rfftn(a, s: Sequence[int] | None = None, axes=None, norm: str | None = None):
    """N-dimensional FFT of a real input, half spectrum on the last axis (numpy.fft.rfftn)."""
    return _r2c(a, s, axes, norm, "rfftn")


def irfftn(a, s: Sequence[int] | None = None, axes=None, norm: str | None = None):
    """Inverse of `rfftn`, as numpy.fft.irfftn."""
    return _c2r(a, s, axes, norm, "irfftn")


# ---------------------------------------------------------------------------------------------
# Shifts and frequencies


def _roll(a: Any, axis: int, k: int) -> Any:
    """np.roll(a, k, axis) as two slices and a concatenation."""
    shape = aval_of(a).shape
    n = shape[axis]
    k = k % n if n else 0
    if k == 0:
        return a
    start = (0,) * len(shape)
    cut = shape[:axis] + (n - k,) + shape[axis + 1 :]
    head = slice_(a, start_indices=start, limit_indices=cut)
    tail = slice_(
        a,
        start_indices=tuple(c if i == axis else 0 for i, c in enumerate(cut)),
        limit_indices=shape,
    )
    return concatenate([tail, head], dimension=axis)


def _shift(x, axes, sign: int):
    x = asarray(x)
    shape = aval_of(x).shape
    for ax in normalize_axes(axes, len(shape)):
        x = _roll(x, ax, sign * (shape[ax] // 2))
    return x


def fftshift(x, axes=None):
    """Move the zero frequency to the centre (numpy.fft.fftshift); default: all axes."""
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    """Inverse of `fftshift` (they differ for odd lengths), as numpy.fft.ifftshift."""
    return _shift(x, axes, -1)


fftfreq = np.fft.fftfreq
rfftfreq = np.fft.rfftfreq

__all__ = [
    "fft",
    "fft2",
    "fftfreq",
    "fftn",
    "fftshift",
    "ifft",
    "ifft2",
    "ifftn",
    "ifftshift",
    "irfft",
    "irfft2",
    "irfftn",
    "rfft",
    "rfft2",
    "rfftfreq",
    "rfftn",
]
