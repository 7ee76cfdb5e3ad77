"""functrans.scipy.linalg: solve_triangular and expm, differentiable and batchable."""

from __future__ import annotations

__all__: list[str] = []
