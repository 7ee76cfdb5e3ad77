"""Linear-algebra primitives (factorizations, solves, eigendecompositions) with their rules."""

from __future__ import annotations
