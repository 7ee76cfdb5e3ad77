"""functrans.testing: the checks users run on their own functions (and functrans on itself).

`check_jvp` compares forward mode with central differences, `check_vjp` reverse mode with forward
mode by the dot-product identity, `check_complex_step` forward mode with the complex step, and
`check_grads` does them up to any order. The `assert_*` properties compare two ways of computing
the same thing (jacfwd/jacrev, vmap/loop, a hand-written gradient/grad) and `check_transforms`
runs all that apply; draw their inputs with `functrans.testing.strategies` (needs hypothesis,
which nothing else here imports). Failures name the argument or output by key path.
"""

from functrans.testing._checks import check_complex_step, check_grads, check_jvp, check_vjp
from functrans.testing.properties import (
    assert_grad_matches,
    assert_hessian_symmetric,
    assert_jacfwd_matches_jacrev,
    assert_jvp_matches_fd,
    assert_vjp_matches_jvp,
    assert_vmap_matches_loop,
    check_transforms,
)

__all__ = [
    "assert_grad_matches",
    "assert_hessian_symmetric",
    "assert_jacfwd_matches_jacrev",
    "assert_jvp_matches_fd",
    "assert_vjp_matches_jvp",
    "assert_vmap_matches_loop",
    "check_complex_step",
    "check_grads",
    "check_jvp",
    "check_vjp",
    "check_transforms",
]
