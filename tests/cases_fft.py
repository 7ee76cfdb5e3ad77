"""Rule-check cases of the `fft` primitive (functrans/primitives/fft.py): every transform type,
one and several trailing axes, even and odd lengths (the Nyquist bin of the real transforms),
single precision. All are linear in their operand."""

from __future__ import annotations

import numpy as np
from cases import add_case, normal

for _tag, _type, _shape, _lengths, _dtype in [
    ("fft-1d", "fft", (3, 5), (5,), np.complex128),
    ("fft-2d", "fft", (2, 4, 3), (4, 3), np.complex128),
    ("fft-c64", "fft", (2, 6), (6,), np.complex64),
    ("ifft-1d", "ifft", (4,), (4,), np.complex128),
    ("ifft-2d", "ifft", (3, 2, 5), (3, 2, 5), np.complex128),
    ("rfft-even", "rfft", (3, 6), (6,), np.float64),
    ("rfft-odd", "rfft", (5,), (5,), np.float64),
    ("rfft-2d", "rfft", (2, 3, 4), (3, 4), np.float64),
    ("rfft-f32", "rfft", (2, 8), (8,), np.float32),
    ("irfft-even", "irfft", (3, 4), (6,), np.complex128),
    ("irfft-odd", "irfft", (4,), (7,), np.complex128),
    ("irfft-2d", "irfft", (2, 3, 3), (3, 4), np.complex128),
    ("irfft-len1", "irfft", (2, 1), (1,), np.complex128),
]:
    add_case(
        "fft",
        lambda rng, _shape=_shape, _dtype=_dtype: (normal(rng, _shape, _dtype),),
        params={"fft_type": _type, "fft_lengths": _lengths},
        tag=_tag,
        linear=(0,),
    )
