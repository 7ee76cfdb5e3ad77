"""functrans.scipy: the parts of SciPy's API that numerical code differentiates most
(special functions, triangular solves, matrix exponential)."""

from functrans.scipy import linalg, special  # noqa: F401
