"""functrans.numpy: the NumPy namespace, differentiable and batchable.

Every function follows NumPy's semantics (broadcasting, dtype promotion, axis and keepdims
handling) and is composed from functrans primitives, so it declares no derivative rules of its
own. On concrete NumPy inputs the result is a plain NumPy value.
"""

from numpy import (  # noqa: F401  # noqa: F401 - dtypes and constructors of constants, as in NumPy
    arange,
    bool_,
    complex64,
    complex128,
    e,
    euler_gamma,
    eye,
    float32,
    float64,
    identity,
    inf,
    int32,
    int64,
    linspace,
    nan,
    newaxis,
    ones,
    pi,
    zeros,
)

from functrans.numpy import _indexing  # noqa: F401
from functrans.numpy._base import asarray
from functrans.numpy._elementwise import (  # noqa: F401
    abs,
    absolute,
    add,
    astype,
    ceil,
    clip,
    cos,
    divide,
    equal,
    exp,
    expm1,
    floor,
    floor_divide,
    greater,
    greater_equal,
    isfinite,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    positive,
    power,
    reciprocal,
    sign,
    sin,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    true_divide,
    where,
)
from functrans.numpy._indexing import at, take  # noqa: F401
from functrans.numpy._products import dot, inner, matmul, outer, tensordot, vdot  # noqa: F401
from functrans.numpy._reductions import (  # noqa: F401
    amax,
    amin,
    argmax,
    argmin,
    max,
    mean,
    min,
    prod,
    sum,
)
from functrans.numpy._shapes import (  # noqa: F401
    atleast_1d,
    broadcast_to,
    concatenate,
    expand_dims,
    full_like,
    moveaxis,
    ndim,
    ones_like,
    ravel,
    reshape,
    shape,
    size,
    squeeze,
    stack,
    swapaxes,
    transpose,
    zeros_like,
)


def array(x, dtype=None):
    """Like numpy.array; lists may contain traced values (they are stacked)."""
    return asarray(x, dtype)


from functrans.numpy import _methods  # noqa: E402

_methods.attach()
