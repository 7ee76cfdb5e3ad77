"""Special functions as primitives (erf, lgamma, digamma, ...) where no composition of
elementary primitives is accurate or fast enough."""

from __future__ import annotations
