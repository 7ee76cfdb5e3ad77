"""Constructors for primitive families and the batching helpers they share.

A family constructor declares a primitive with all of its rules in one call, so the common case
reads like a table of calculus: `sin_p = unary("sin", np.sin, deriv=lambda x, y: cos(x))`.
Every derivative is written with primitives, so rules differentiate again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.core import Primitive, ShapedArray, UndefPrimal, Zero, aval_of, is_undefined
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


def ct_like(ct: Any, aval: ShapedArray) -> Any:
    """The cotangent as the operand's dtype (a float32 operand takes a float32 cotangent)."""
    from functrans.primitives.elementwise import convert_element_type

    return ct if aval_of(ct).dtype == aval.dtype else convert_element_type(ct, new_dtype=aval.dtype)


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


def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move one axis of x (a view for NumPy arrays, a transpose primitive when traced)."""
    if src == dst:
        return x
    from functrans.primitives.structural import transpose

    perm = [i for i in range(aval_of(x).ndim) if i != src]
    perm.insert(dst, src)
    return transpose(x, permutation=tuple(perm))


def bdim_to(x: Any, d: int | None, dst: int, size: int) -> Any:
    """x with its batch axis at `dst`; unbatched x is broadcast (a zero-copy view in NumPy)."""
    if d is not None:
        return moveaxis(x, d, dst)
    from functrans.primitives.structural import broadcast_in_dim

    aval = aval_of(x)
    shape = aval.shape[:dst] + (size,) + aval.shape[dst:]
    dims = tuple(i if i < dst else i + 1 for i in range(aval.ndim))
    return broadcast_in_dim(x, shape=shape, broadcast_dimensions=dims)


def elementwise_batch(prim: Primitive) -> Callable:
    """Batch rule for an elementwise primitive: align the batch axes, then apply it once."""

    def batch(vals, dims, **params):
        dst = next(d for d in dims if d is not None)
        if all(d == dst for d in dims):
            return prim.bind(*vals, **params), dst
        size = batch_size(vals, dims)
        vals = [bdim_to(v, d, dst, size) for v, d in zip(vals, dims)]
        return prim.bind(*vals, **params), dst

    return batch


# ---------------------------------------------------------------------------------------------
# Families


def unary(
    name: str,
    impl: Callable,
    *,
    deriv: Callable[..., Any] | None = None,
    zero_derivative: bool = False,
    out_dtype: Callable[[np.dtype], np.dtype] | None = None,
) -> Primitive:
    """An elementwise primitive of one operand.

    deriv(x, y, **params) gives dy/dx from the input x and output y (with primitives);
    zero_derivative marks piecewise-constant functions (floor, sign, ...).
    """
    p = Primitive(name)
    p.impl = impl

    def abstract_eval(aval, **params):
        return aval if out_dtype is None else ShapedArray(aval.shape, out_dtype(aval.dtype))

    p.abstract_eval = abstract_eval
    if deriv is not None:

        def jvp(primals, tangents, **params):
            from functrans.primitives.elementwise import mul

            (x,), (t,) = primals, tangents
            y = p.bind(x, **params)
            return y, mul(t, deriv(x, y, **params))

        p.jvp = jvp
    elif zero_derivative:

        def zero_jvp(primals, tangents, **params):
            y = p.bind(*primals, **params)
            return y, Zero(aval_of(y))

        p.jvp = zero_jvp
    p.batch = elementwise_batch(p)
    return p


def binary(
    name: str,
    impl: Callable,
    *,
    derivs: tuple[Callable | None, Callable | None] | None = None,
    zero_derivative: bool = False,
    out_dtype: Callable[[np.dtype], np.dtype] | None = None,
) -> Primitive:
    """An elementwise primitive of two operands of identical shape and dtype.

    derivs[i](x, y, out) gives d out / d operand_i (None: that partial is zero).
    """
    p = Primitive(name)
    p.impl = impl

    def abstract_eval(x, y, **params):
        a = check_same_avals(name, (x, y))
        return a if out_dtype is None else ShapedArray(a.shape, out_dtype(a.dtype))

    p.abstract_eval = abstract_eval
    if derivs is not None:

        def jvp(primals, tangents, **params):
            from functrans.primitives.elementwise import add, mul

            x, y = primals
            out = p.bind(x, y, **params)
            t_out = None
            for t, d in zip(tangents, derivs):
                if type(t) is Zero or d is None:
                    continue
                term = mul(t, d(x, y, out))
                t_out = term if t_out is None else add(t_out, term)
            return out, Zero(aval_of(out)) if t_out is None else t_out

        p.jvp = jvp
    elif zero_derivative:

        def zero_jvp(primals, tangents, **params):
            out = p.bind(*primals, **params)
            return out, Zero(aval_of(out))

        p.jvp = zero_jvp
    p.batch = elementwise_batch(p)
    return p


def linear_jvp(prim: Primitive) -> Callable:
    """JVP of a primitive linear in all its operands: apply it to the tangents."""

    def jvp(primals, tangents, **params):
        from functrans.primitives.structural import zeros

        out = prim.bind(*primals, **params)
        tangents = [zeros(t.aval) if type(t) is Zero else t for t in tangents]
        return out, prim.bind(*tangents, **params)

    return jvp


def undefined_avals(args) -> list[ShapedArray | None]:
    return [a.aval if type(a) is UndefPrimal else None for a in args]
