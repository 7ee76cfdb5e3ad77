"""functrans.numpy.fft: NumPy's discrete Fourier transforms, differentiable and batchable."""

from __future__ import annotations

__all__: list[str] = []
