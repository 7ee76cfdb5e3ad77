"""Array creation in functrans.numpy: asarray/array (lists may hold traced values), and
constructors of constants, which return plain NumPy arrays (they carry no derivative)."""

from __future__ import annotations

import numpy as np

from functrans.numpy._base import asarray


def array(x, dtype=None):
    """Like numpy.array; lists may contain traced values (they are stacked)."""
    return asarray(x, dtype)


arange = np.arange
eye = np.eye
identity = np.identity
linspace = np.linspace
ones = np.ones
zeros = np.zeros

__all__ = ["arange", "array", "asarray", "eye", "identity", "linspace", "ones", "zeros"]
