"""Checks and helpers shared by every primitive module (they use no primitive themselves).

Family constructors live with their primitives: `unary`/`binary` in elementwise_base.py,
`linear_jvp` and the batch-axis movers in structural.py.
"""

from __future__ import annotations

from typing import Any

from functrans.core import ShapedArray, aval_of, is_undefined
from functrans.errors import NonLinearError

# ---------------------------------------------------------------------------------------------
# Shape and dtype checks shared by the families


def check_same_avals(name: str, avals: tuple[ShapedArray, ...]) -> ShapedArray:
    first = avals[0]
    for a in avals[1:]:
        if a.shape != first.shape or a.dtype != first.dtype:
            raise TypeError(
                f"primitive '{name}' needs operands of one shape and dtype, got "
                + ", ".join(x.str_short() for x in avals)
                + "; functrans.numpy broadcasts and promotes before calling it."
            )
    return first


def require_linear(name: str, *args: Any) -> None:
    if sum(map(is_undefined, args)) > 1:
        raise NonLinearError(
            f"reverse mode: '{name}' multiplies two values that both depend on the differentiated "
            "input; the linearized program is not linear in them (a custom JVP rule that is "
            "not linear in its tangents?)"
        )


# ---------------------------------------------------------------------------------------------
# Batching helpers


def batch_size(vals, dims) -> int:
    for v, d in zip(vals, dims):
        if d is not None:
            return aval_of(v).shape[d]
    raise AssertionError("batch rule called without a batched operand")
