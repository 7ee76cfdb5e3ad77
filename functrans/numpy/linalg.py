"""functrans.numpy.linalg: NumPy's linear algebra, differentiable in both modes and batchable."""

from __future__ import annotations

__all__: list[str] = []
