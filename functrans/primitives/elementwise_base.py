"""The base of the elementwise primitives: the `unary`/`binary` family constructors with their
batch rule, and the linear and bilinear primitives their rules and cotangent casts are written with
(neg, add, sub, mul, div, the complex parts real/imag/conj, convert_element_type).

elementwise.py builds the rest of the calculus table on these and re-exports every public name
here, so `functrans.primitives.elementwise` stays the one module to import; this module imports
nothing from it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from functrans import core
from functrans.core import (
    Primitive,
    ShapedArray,
    UndefPrimal,
    Zero,
    _current_trace,
    aval_of,
    eval_trace,
    is_float_dtype,
    is_undefined,
)
from functrans.errors import nonlinear_error
from functrans.primitives.base import batch_size, check_same_avals, require_linear
from functrans.primitives.structural import bdim_to, full, full_like, linear_jvp


def ct_like(ct: Any, aval: ShapedArray) -> Any:
    """The cotangent as the operand's dtype (a float32 operand takes a float32 cotangent).

    A complex cotangent of a real operand keeps its real part: for real v,
    Re(<ct, v>) = <Re(ct), v>, so that is the transpose of the real-to-complex embedding.
    """
    ct_dtype = aval_of(ct).dtype
    if ct_dtype == aval.dtype:
        return ct
    if ct_dtype.kind == "c" and aval.dtype.kind != "c":
        ct = real(ct)
    return convert_element_type(ct, new_dtype=aval.dtype)


def _unit_batch_axis(v: Any, d: int | None, dst: int) -> Any:
    """A concrete operand with its batch axis at dst, or a unit axis there if it has none."""
    if d == dst:
        return v
    if d is not None:
        return np.moveaxis(v, d, dst)
    v = np.asarray(v)
    return v.reshape(v.shape[:dst] + (1,) + v.shape[dst:])


def elementwise_batch(prim: Primitive) -> Callable:
    """Batch rule for an elementwise primitive: align the batch axes, then apply it once."""

    def batch(vals, dims, **params):
        dst = next(d for d in dims if d is not None)
        if all(d == dst for d in dims):
            return prim.bind(*vals, **params), dst
        if _current_trace.get() is eval_trace and core.output_check is None:
            # On concrete values NumPy broadcasts an unbatched operand given a unit batch axis:
            # the same elements, without a zero-stride operand (slower in ufunc loops).
            return prim.impl(
                *[_unit_batch_axis(v, d, dst) for v, d in zip(vals, dims)], **params
            ), dst
        size = batch_size(vals, dims)
        vals = [bdim_to(v, d, dst, size) for v, d in zip(vals, dims)]
        return prim.bind(*vals, **params), dst

    return batch


# ---------------------------------------------------------------------------------------------
# Families


# Primitives whose derivative is zero wherever it exists (floor, sign, comparisons, ...): their
# tangent is a symbolic zero, so eager forward mode gives their results as plain values.
ZERO_DERIVATIVE: set[Primitive] = set()


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
            (x,), (t,) = primals, tangents
            y = p.bind(x, **params)
            return y, mul(t, deriv(x, y, **params))

        p.jvp = jvp
    elif zero_derivative:

        def zero_jvp(primals, tangents, **params):
            y = p.bind(*primals, **params)
            return y, Zero(aval_of(y))

        p.jvp = zero_jvp
        ZERO_DERIVATIVE.add(p)
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
        if x is y or (x.shape == y.shape and x.dtype == y.dtype):  # (functrans.numpy's operands)
            a = x
        else:
            a = check_same_avals(name, (x, y))  # (raises)
        return a if out_dtype is None else ShapedArray(a.shape, out_dtype(a.dtype))

    p.abstract_eval = abstract_eval
    if derivs is not None:

        def jvp(primals, tangents, **params):
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
        ZERO_DERIVATIVE.add(p)
    p.batch = elementwise_batch(p)
    return p


# ---------------------------------------------------------------------------------------------
# Linear and bilinear arithmetic
#
# NumPy's ufunc call costs about 1 µs on scalars, the operator 0.06 µs, with the same result for
# plain NumPy operands. Anything else takes the ufunc: two Python scalars (a Literal pair), where
# NumPy's rules differ from Python's (1.0 / 0.0 is inf, not ZeroDivisionError), and ndarray
# subclasses, whose operators may mean something else (np.matrix's * is a matrix product).

_OPERATOR_TYPES = frozenset(
    [np.ndarray] + [np.dtype(c).type for c in "?bhilqBHILQefdgFDG"]  # the NumPy scalar types
)


def _operator_impl(op: Callable, ufunc: np.ufunc) -> Callable:
    def impl(x, y):
        if type(x) in _OPERATOR_TYPES and type(y) in _OPERATOR_TYPES:
            return op(x, y)
        return ufunc(x, y)

    impl.__name__ = ufunc.__name__
    # what impl does, for code generators that inline it: the operator's symbol, the ufunc and
    # the set of types the operator is used for
    impl.inline = ({operator.add: "+", operator.sub: "-", operator.mul: "*"}.get(op, "/"), ufunc)
    impl.operator_types = _OPERATOR_TYPES
    return impl


def _neg_impl(x):
    return -x if type(x) in _OPERATOR_TYPES else np.negative(x)


neg_p = unary("neg", _neg_impl)
neg_p.jvp = linear_jvp(neg_p)
neg_p.transpose = lambda ct, x: [neg(ct)]


def neg(x):
    return neg_p.bind(x)


add_p = binary("add", _operator_impl(operator.add, np.add))


def _add_jvp(primals, tangents):
    tx, ty = tangents
    out = add(*primals)
    if type(tx) is Zero:
        return out, ty
    return out, tx if type(ty) is Zero else add(tx, ty)


add_p.jvp = _add_jvp
add_p.transpose = lambda ct, x, y: [
    ct if is_undefined(x) else None,
    ct if is_undefined(y) else None,
]


def add(x, y):
    return add_p.bind(x, y)


sub_p = binary("sub", _operator_impl(operator.sub, np.subtract))


def _sub_jvp(primals, tangents):
    tx, ty = tangents
    out = sub(*primals)
    if type(ty) is Zero:
        return out, tx
    return out, neg(ty) if type(tx) is Zero else sub(tx, ty)


sub_p.jvp = _sub_jvp
sub_p.transpose = lambda ct, x, y: [
    ct if is_undefined(x) else None,
    neg(ct) if is_undefined(y) else None,
]


def sub(x, y):
    return sub_p.bind(x, y)


mul_p = binary(
    "mul",
    _operator_impl(operator.mul, np.multiply),
    derivs=(lambda x, y, out: y, lambda x, y, out: x),
)


def _mul_transpose(ct, x, y):
    if type(x) is UndefPrimal:
        if type(y) is UndefPrimal:
            require_linear("mul", x, y)
        return [mul(ct, y), None]
    return [None, mul(x, ct)]


mul_p.transpose = _mul_transpose


def mul(x, y):
    return mul_p.bind(x, y)


div_p = binary(
    "div",
    _operator_impl(operator.truediv, np.true_divide),
    derivs=(lambda x, y, out: div(full_like(y, 1), y), lambda x, y, out: neg(div(out, y))),
)


def _div_abstract_eval(x, y):
    a = check_same_avals("div", (x, y))
    if a.dtype.kind not in "fc":  # true division of integers makes floats: promote first
        raise TypeError(
            f"primitive 'div' needs floating-point operands, got {a.str_short()}; "
            "functrans.numpy.true_divide promotes integers to floating point before calling it."
        )
    return a


div_p.abstract_eval = _div_abstract_eval


def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise_nonlinear_div()
    return [div(ct, y), None]


def raise_nonlinear_div():
    raise nonlinear_error("div (in its denominator)")


div_p.transpose = _div_transpose


def div(x, y):
    return div_p.bind(x, y)


def _real_dtype(dtype):
    return np.empty((), dtype).real.dtype


# ---------------------------------------------------------------------------------------------
# Complex parts. real, imag and conj are linear over the reals (not complex-linear), so their
# transposes are taken for the pairing Re(sum(u * v)) that functrans uses for complex values:
# real^T(u) = u, imag^T(u) = -i u, conj^T(u) = conj(u).

real_p = unary("real", np.real, out_dtype=_real_dtype)
real_p.jvp = linear_jvp(real_p)
real_p.transpose = lambda ct, x: [convert_element_type(ct, new_dtype=x.aval.dtype)]
imag_p = unary("imag", np.imag, out_dtype=_real_dtype)
imag_p.jvp = linear_jvp(imag_p)
imag_p.transpose = lambda ct, x: [
    mul(convert_element_type(ct, new_dtype=x.aval.dtype), full(x.aval.shape, -1j, x.aval.dtype))
]
conj_p = unary("conj", np.conj)
conj_p.jvp = linear_jvp(conj_p)
conj_p.transpose = lambda ct, x: [conj(ct)]


def real(x):
    return real_p.bind(x)


def imag(x):
    return imag_p.bind(x)


def conj(x):
    return conj_p.bind(x)


# ---------------------------------------------------------------------------------------------
# convert_element_type: linear between float dtypes; integer and boolean results carry no tangent

convert_element_type_p = Primitive("convert_element_type")


def _convert_impl(x, *, new_dtype):
    return np.asarray(x).astype(new_dtype)


def _convert_jvp(primals, tangents, *, new_dtype):
    (x,), (t,) = primals, tangents
    out = convert_element_type(x, new_dtype=new_dtype)
    if not is_float_dtype(new_dtype) or type(t) is Zero:
        return out, Zero(aval_of(out))
    return out, convert_element_type(t, new_dtype=new_dtype)


def _convert_transpose(ct, x, *, new_dtype):
    return [ct_like(ct, x.aval)]


convert_element_type_p.impl = _convert_impl
convert_element_type_p.abstract_eval = lambda x, *, new_dtype: ShapedArray(x.shape, new_dtype)
convert_element_type_p.jvp = _convert_jvp
convert_element_type_p.transpose = _convert_transpose
convert_element_type_p.batch = elementwise_batch(convert_element_type_p)


def convert_element_type(x, *, new_dtype):
    new_dtype = np.dtype(new_dtype)
    if aval_of(x).dtype == new_dtype:
        return x
    return convert_element_type_p.bind(x, new_dtype=new_dtype)
