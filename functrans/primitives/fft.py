"""Fourier-transform primitives: linear, so each is its own family of JVP and transpose rules.

One primitive, `fft`, transforms the trailing len(fft_lengths) axes of its operand with NumPy's
"backward" normalisation (forward transforms unscaled, inverse transforms scaled by 1/N);
functrans.numpy.fft moves axes, pads or trims to the lengths and applies other norms. fft_type
is one of "fft", "ifft" (complex -> complex), "rfft" (real -> half spectrum) and "irfft" (half
spectrum -> real). Transposes use the bilinear pairing Re sum(a * b) (JAX's convention: no
conjugation of C-linear maps), under which fft and ifft are symmetric and the real transforms
are each other's transpose up to a reflection n -> -n mod N and a weight on the doubled bins.
"""

from __future__ import annotations

import math

import numpy as np

from functrans.core import Primitive, ShapedArray, aval_of
from functrans.primitives import elementwise as ew
from functrans.primitives.structural import (
    broadcast_in_dim,
    concatenate,
    linear_jvp,
    moveaxis,
    rev,
    slice_,
)

FFT_TYPES = ("fft", "ifft", "rfft", "irfft")

_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64)}
_REAL_OF = {np.dtype(np.complex64): np.dtype(np.float32)}


def complex_dtype(dtype: np.dtype) -> np.dtype:
    """The complex dtype of a floating dtype's precision (float32 -> complex64, else c128)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return dtype
    return _COMPLEX_OF.get(dtype, np.dtype(np.complex128))


def real_dtype(dtype: np.dtype) -> np.dtype:
    return _REAL_OF.get(np.dtype(dtype), np.dtype(np.float64))


def half_length(n: int) -> int:
    """The number of non-redundant frequencies of a real signal of length n."""
    return n // 2 + 1


def _in_trailing(fft_type: str, fft_lengths: tuple[int, ...]) -> tuple[int, ...]:
    if fft_type == "irfft":
        return fft_lengths[:-1] + (half_length(fft_lengths[-1]),)
    return fft_lengths


def _out_trailing(fft_type: str, fft_lengths: tuple[int, ...]) -> tuple[int, ...]:
    if fft_type == "rfft":
        return fft_lengths[:-1] + (half_length(fft_lengths[-1]),)
    return fft_lengths


# ---------------------------------------------------------------------------------------------
# fft

fft_p = Primitive("fft")

_NUMPY_FFTS = {
    "fft": np.fft.fftn,
    "ifft": np.fft.ifftn,
    "rfft": np.fft.rfftn,
}


def _fft_impl(x, *, fft_type, fft_lengths):
    x = np.asarray(x)
    axes = tuple(range(x.ndim - len(fft_lengths), x.ndim))
    if fft_type == "irfft":
        out = np.fft.irfftn(x, s=fft_lengths, axes=axes)
        return out.astype(real_dtype(x.dtype), copy=False)
    out = _NUMPY_FFTS[fft_type](x, axes=axes)
    return out.astype(complex_dtype(x.dtype), copy=False)


def _fft_abstract_eval(x, *, fft_type, fft_lengths):
    k = len(fft_lengths)
    wants_complex = fft_type != "rfft"
    ok = (
        fft_type in FFT_TYPES
        and 1 <= k <= x.ndim
        and all(n >= 1 for n in fft_lengths)
        and x.shape[x.ndim - k :] == _in_trailing(fft_type, fft_lengths)
        and x.dtype.kind == ("c" if wants_complex else "f")
    )
    if not ok:
        raise TypeError(
            f"primitive 'fft' ({fft_type}, lengths {fft_lengths}) cannot transform "
            f"{x.str_short()}: it needs trailing axes {_in_trailing(fft_type, fft_lengths)} "
            f"of a {'complex' if wants_complex else 'real floating'} dtype"
        )
    shape = x.shape[: x.ndim - k] + _out_trailing(fft_type, fft_lengths)
    if fft_type == "rfft":
        return ShapedArray(shape, complex_dtype(x.dtype))
    if fft_type == "irfft":
        return ShapedArray(shape, real_dtype(x.dtype))
    return ShapedArray(shape, x.dtype)


def _reflect(x, k: int):
    """x[..., (-n) mod N] along each of the trailing k axes (index 0 stays, the rest reverse)."""
    shape = aval_of(x).shape
    nd = len(shape)
    for axis in range(nd - k, nd):
        n = shape[axis]
        if n <= 2:  # (-n) mod N is the identity for N = 1, 2
            continue
        start, limit = [0] * nd, list(shape)
        limit[axis] = 1
        head = slice_(x, start_indices=start, limit_indices=limit)
        start[axis], limit[axis] = 1, n
        tail = slice_(x, start_indices=start, limit_indices=limit)
        x = concatenate([head, rev(tail, dimensions=(axis,))], dimension=axis)
    return x


def _bin_weights(ct, n: int, single: float, double: float):
    """Per-bin weights of a half spectrum of a length-n axis, as an array of ct's shape and dtype:
    `single` for the zero bin and (n even) the Nyquist bin, which stand for one frequency, and
    `double` for the others, which stand for a conjugate pair."""
    aval = aval_of(ct)
    weights = np.full(half_length(n), double)
    weights[0] = single
    if n % 2 == 0:
        weights[-1] = single
    weights = weights.astype(aval.dtype)
    return broadcast_in_dim(weights, shape=aval.shape, broadcast_dimensions=(aval.ndim - 1,))


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    k = len(fft_lengths)
    if fft_type in ("fft", "ifft"):
        # the DFT matrix exp(-2 pi i k n / N) is symmetric, and so is its inverse
        return [fft(ct, fft_type=fft_type, fft_lengths=fft_lengths)]
    n_total = math.prod(fft_lengths)
    if fft_type == "rfft":
        # <ct, rfft x> = sum_n x_n Re sum_k ct_k e^{-2 pi i k.n/N}; irfft sums the stored bins
        # with their multiplicity and the opposite sign of the exponent, hence weights and n -> -n.
        w = _bin_weights(ct, fft_lengths[-1], n_total, n_total / 2)
        return [_reflect(fft(ew.mul(ct, w), fft_type="irfft", fft_lengths=fft_lengths), k)]
    # irfft: <u, irfft v> = Re sum_k v_k (w_k / N) sum_n u_n e^{+2 pi i k.n/N}
    y = fft(_reflect(ct, k), fft_type="rfft", fft_lengths=fft_lengths)
    return [ew.mul(y, _bin_weights(y, fft_lengths[-1], 1 / n_total, 2 / n_total))]


def _fft_batch(vals, dims, *, fft_type, fft_lengths):
    (x,), (d,) = vals, dims
    # the transform acts on trailing axes; a leading batch axis is left alone
    return fft(moveaxis(x, d, 0), fft_type=fft_type, fft_lengths=fft_lengths), 0


fft_p.impl = _fft_impl
fft_p.abstract_eval = _fft_abstract_eval
fft_p.jvp = linear_jvp(fft_p)
fft_p.transpose = _fft_transpose
fft_p.batch = _fft_batch


def fft(x, *, fft_type: str, fft_lengths):
    return fft_p.bind(x, fft_type=str(fft_type), fft_lengths=tuple(int(n) for n in fft_lengths))
