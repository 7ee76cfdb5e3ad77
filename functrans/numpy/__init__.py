"""functrans.numpy: the NumPy namespace, differentiable and batchable.

Every function follows NumPy's semantics (broadcasting, dtype promotion, axis and keepdims
handling) and is composed from functrans primitives, so it declares no derivative rules of its
own. On concrete NumPy inputs the result is a plain NumPy value. Each private module lists its
public names in `__all__`; this namespace is their union.
"""

from numpy import (  # noqa: F401 - dtypes and constants, as in NumPy
    bool_,
    complex64,
    complex128,
    e,
    euler_gamma,
    float32,
    float64,
    inf,
    int32,
    int64,
    nan,
    newaxis,
    pi,
)

from functrans.numpy import _indexing, fft, linalg  # noqa: F401
from functrans.numpy._creation import *  # noqa: F403
from functrans.numpy._diagonals import *  # noqa: F403
from functrans.numpy._elementwise import *  # noqa: F403
from functrans.numpy._indexing import *  # noqa: F403
from functrans.numpy._padding import *  # noqa: F403
from functrans.numpy._piecewise import *  # noqa: F403
from functrans.numpy._products import *  # noqa: F403
from functrans.numpy._reductions import *  # noqa: F403
from functrans.numpy._shapes import *  # noqa: F403
from functrans.numpy._sorting import *  # noqa: F403

# isort: split
# The tracer methods are attached last: they refer to the whole namespace above.
from functrans.numpy import _methods

_methods.attach()
