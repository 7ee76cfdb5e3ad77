"""functrans: composable function transformations for NumPy.

Write a pure function with `functrans.numpy`; get back its derivatives (`grad`, `jvp`, `vjp`,
`jacfwd`, `jacrev`, `hessian`, ...), its batched version (`vmap`) and its staged program
(`make_jaxpr`). Forward mode is written once per primitive; reverse mode is derived from it by
linearizing and transposing.
"""

from functrans import config, debug, lax, numpy, tree_util  # noqa: F401
from functrans.api import (
    grad,
    jvp,
    linear_transpose,
    linearize,
    make_jaxpr,
    stop_gradient,
    value_and_grad,
    vjp,
)
from functrans.api_jacobians import hessian, hvp, jacfwd, jacobian, jacrev
from functrans.api_vmap import vmap
from functrans.checkpoint import (
    checkpoint,
    checkpoint_name,
    checkpoint_policies,
    remat,
    saved_residuals,
)
from functrans.custom_derivatives import custom_jvp, custom_vjp
from functrans.errors import (
    BatchingError,
    ConcretizationError,
    LeakedTracerError,
    NonDifferentiableInputError,
    NonScalarOutputError,
)
from functrans.jit import jit

__version__ = "0.1.0"

__all__ = [
    "BatchingError",
    "checkpoint",
    "checkpoint_name",
    "checkpoint_policies",
    "config",
    "debug",
    "remat",
    "saved_residuals",
    "custom_jvp",
    "custom_vjp",
    "ConcretizationError",
    "LeakedTracerError",
    "NonDifferentiableInputError",
    "NonScalarOutputError",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jit",
    "jvp",
    "lax",
    "linear_transpose",
    "linearize",
    "make_jaxpr",
    "numpy",
    "stop_gradient",
    "tree_util",
    "value_and_grad",
    "vjp",
    "vmap",
]
