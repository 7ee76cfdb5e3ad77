"""functrans.scipy.special: stable special functions (logsumexp, softmax, xlogy, erf, ...)."""

from __future__ import annotations

__all__: list[str] = []
