"""The primitive set: small, lax-like, exact shapes, no implicit broadcasting.

Operands are positional, params keyword-only and hashable. Each primitive is declared once with
all its rules (impl, abstract_eval, jvp, transpose where linear, batch). `ALL_PRIMITIVES` is the
registry the rule-check tests walk.
"""

from functrans.core import Primitive
from functrans.primitives import (
    dot,
    elementwise,
    fft,
    indexing,
    linalg,
    reductions,
    sorting,
    special,
    structural,
    transcendental,
)
from functrans.primitives.dot import dot_general, dot_general_p
from functrans.primitives.elementwise import *  # noqa: F401,F403 - the wrappers and _p objects
from functrans.primitives.elementwise import add_p
from functrans.primitives.indexing import *  # noqa: F401,F403
from functrans.primitives.reductions import *  # noqa: F401,F403
from functrans.primitives.structural import *  # noqa: F401,F403
from functrans.primitives.transcendental import *  # noqa: F401,F403

# Every module that declares primitives; the registry below and the rule checks walk them all.
PRIMITIVE_MODULES = (
    elementwise,
    transcendental,
    structural,
    reductions,
    dot,
    indexing,
    sorting,
    special,
    linalg,
    fft,
)

ALL_PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for module in PRIMITIVE_MODULES
    for p in vars(module).values()
    if isinstance(p, Primitive)
}

__all__ = ["ALL_PRIMITIVES", "PRIMITIVE_MODULES", "add_p", "dot_general", "dot_general_p"]
