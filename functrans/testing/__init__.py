"""functrans.testing: the checks users run on their own functions (and functrans on itself).

`check_jvp` compares forward mode with central differences, `check_vjp` reverse mode with forward
mode by the dot-product identity, and `check_grads` does both up to any order. They differentiate
the floating-point leaves of pytree arguments and report failures by argument key path.
"""

from functrans.testing._checks import check_grads, check_jvp, check_vjp

__all__ = ["check_grads", "check_jvp", "check_vjp"]
