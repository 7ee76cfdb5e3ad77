"""Eager linearization, derived once per primitive signature and compiled.

Reverse mode at the top level (grad, vjp, jacrev) linearizes: each primitive's JVP rule runs on
concrete primals with staged tangents, so the primal work happens now and the tangent work is
recorded, then transposed. For one *signature* — primitive, params, operand shapes and dtypes,
and which operands carry a tangent — the rule always does the same work. So the first time a
signature is seen twice, this module derives its split once, with the ordinary machinery:

  - the known part: the rule's primal and residual computations, staged into a program;
  - the linear part: the rule's tangent computations, partially evaluated against the
    residuals (a small linear program);
  - its transpose: the linear program run through `backward_pass` while staging.

The known part and the transpose are compiled to NumPy code. From then on, linearizing that
primitive is one generated call plus one `lin` equation in the linear program, and transposing
it is one generated call. Reverse mode is still the transpose of the linearized JVP rule; it is
only worked out once per signature instead of on every call.

Directly under an eager vmap (`vmap(grad(f))`: per-example gradients) the primals are batched
values; a rule's known program is then staged once more under the batching interpreter and
compiled (`BatchedRule`), and a transpose evaluated on batched values (a pullback under vmap, as
in jacrev) runs a batched compiled program (`Transposed.batched`). Inside another transformation
(the inner grads of grad(grad(f)), grad under jit) the primals are tracers: the known program
and the transposes are compiled to `bind`s on the trace below instead (`compile_bind`,
`NestedLinearizeJVPTrace`), the operations the rule would send there, in the same order.

Only primitives whose params are plain values (numbers, strings, dtypes, tuples of them) are
compiled: higher-order primitives (functions or programs as params), effectful ones and those
with their own partial-evaluation rule take the general path, as does everything while
`debug_nans` is on (its reports name the equation being evaluated).
"""

from functrans.interpreters.lincache._compile import MAX_CONST_BYTES, compile_bind, compile_exact
from functrans.interpreters.lincache._derive import (
    BatchedRule,
    LinRule,
    Transposed,
    _rules,
    compiling,
    derive,
    params_key,
)
from functrans.interpreters.lincache._eqns import (
    LIN_EQNS,
    LinEqn,
    ScalarLinEqn,
    lin1_p,
    lin_p,
    transpose_direct,
    transpose_into,
)
from functrans.interpreters.lincache._traces import LinearizeJVPTrace, NestedLinearizeJVPTrace

__all__ = [
    "LIN_EQNS",
    "MAX_CONST_BYTES",
    "BatchedRule",
    "LinEqn",
    "LinRule",
    "LinearizeJVPTrace",
    "NestedLinearizeJVPTrace",
    "ScalarLinEqn",
    "Transposed",
    "_rules",
    "compile_bind",
    "compile_exact",
    "compiling",
    "derive",
    "lin1_p",
    "lin_p",
    "params_key",
    "transpose_direct",
    "transpose_into",
]
