"""Elementwise primitives: arithmetic, transcendental functions, comparisons, select, casts.

The family constructors `unary` and `binary` declare a primitive with all of its rules in one
call, so the common case reads like a table of calculus:
`sin_p = unary("sin", np.sin, deriv=lambda x, y: cos(x))`. Derivatives are written with
primitives, so rules differentiate again.

Operands of a binary primitive have exactly one shape and dtype (functrans.numpy broadcasts and
promotes first). Each primitive is declared once, with all its rules, in one block below.
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
from functrans.primitives.structural import bdim_to, full, full_like, linear_jvp, zeros


def _bool_dtype(_):
    return np.dtype(bool)


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


# ---------------------------------------------------------------------------------------------
# Transcendental and other smooth unary functions (a calculus table)

exp_p = unary("exp", np.exp, deriv=lambda x, y: y)
log_p = unary("log", np.log, deriv=lambda x, y: div(full_like(x, 1), x))
log1p_p = unary("log1p", np.log1p, deriv=lambda x, y: div(full_like(x, 1), add(x, full_like(x, 1))))
expm1_p = unary("expm1", np.expm1, deriv=lambda x, y: add(y, full_like(y, 1)))
sin_p = unary("sin", np.sin, deriv=lambda x, y: cos(x))
cos_p = unary("cos", np.cos, deriv=lambda x, y: neg(sin(x)))
tan_p = unary("tan", np.tan, deriv=lambda x, y: add(full_like(y, 1), mul(y, y)))
tanh_p = unary("tanh", np.tanh, deriv=lambda x, y: sub(full_like(y, 1), mul(y, y)))
sqrt_p = unary("sqrt", np.sqrt, deriv=lambda x, y: div(full_like(y, 0.5), y))


def _real_dtype(dtype):
    return np.empty((), dtype).real.dtype


abs_p = unary("abs", np.abs, out_dtype=_real_dtype)


def _abs_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = abs(x)
    if aval_of(x).dtype.kind != "c":
        # Kink convention: d|x|/dx at 0 is sign(0) = 0 (as JAX and autograd).
        return y, mul(t, sign(x))
    # d|z| = Re(conj(z) dz) / |z|; at z = 0 the numerator is 0 and we divide by 1 instead, so
    # the derivative there is 0, as on the real line.
    safe_y = select_n(eq(y, zeros(aval_of(y))), y, full_like(y, 1))
    return y, div(real(mul(conj(x), t)), safe_y)


abs_p.jvp = _abs_jvp
sign_p = unary("sign", np.sign, zero_derivative=True)
floor_p = unary("floor", np.floor, zero_derivative=True)
ceil_p = unary("ceil", np.ceil, zero_derivative=True)
round_p = unary("round", np.round, zero_derivative=True)


def exp(x):
    return exp_p.bind(x)


def log(x):
    return log_p.bind(x)


def log1p(x):
    return log1p_p.bind(x)


def expm1(x):
    return expm1_p.bind(x)


def sin(x):
    return sin_p.bind(x)


def cos(x):
    return cos_p.bind(x)


def tan(x):
    return tan_p.bind(x)


def tanh(x):
    return tanh_p.bind(x)


def sqrt(x):
    return sqrt_p.bind(x)


def abs(x):  # noqa: A001 - the NumPy name
    return abs_p.bind(x)


def sign(x):
    return sign_p.bind(x)


def floor(x):
    return floor_p.bind(x)


def ceil(x):
    return ceil_p.bind(x)


def round(x):  # noqa: A001 - the NumPy name
    return round_p.bind(x)


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


def _one(x):
    return full_like(x, 1)


def _safe(value, bad):
    """`value` with 1 where `bad` holds (the inner where of the double-where idiom)."""
    return select_n(bad, value, _one(value))


# ---------------------------------------------------------------------------------------------
# Powers


def _integer_pow_impl(x, *, y):
    # np.power on integers rejects negative exponents; on floats it is exact for small ints.
    return np.power(x, y) if y >= 0 or is_float_dtype(x.dtype) else np.power(x.astype(float), y)


def _integer_pow_deriv(x, out, *, y):
    if y == 0:
        return zeros(aval_of(x))
    if y == 1:
        return full_like(x, 1)
    return mul(full_like(x, y), integer_pow(x, y=y - 1))


integer_pow_p = unary("integer_pow", _integer_pow_impl, deriv=_integer_pow_deriv)


def integer_pow(x, *, y: int):
    return integer_pow_p.bind(x, y=y)


def _pow_dy(x, y, out):
    # d(x^y)/dy = log(x) x^y, taken as 0 where x == 0 (the limit for y > 0), as JAX does.
    safe_x = select_n(eq(x, zeros(aval_of(x))), x, full_like(x, 1))
    return mul(log(safe_x), out)


def _pow_dx(x, y, out):
    # d(x^y)/dx = y x^(y-1); where y == 0 it is 0 (x^0 is constant), computed with a safe
    # exponent so that 0 ** -1 never appears. x ** 2.0 and x ** 1.0 are exact at x = 0.
    y_is_zero = eq(y, zeros(aval_of(y)))
    dx = mul(y, pow(x, sub(_safe(y, y_is_zero), full_like(y, 1))))
    return select_n(y_is_zero, dx, zeros(aval_of(x)))


pow_p = binary("pow", np.power, derivs=(_pow_dx, _pow_dy))


def pow(x, y):  # noqa: A001 - the lax name
    return pow_p.bind(x, y)


# ---------------------------------------------------------------------------------------------
# Maximum and minimum. Tie convention: at x == y each operand gets half the tangent (as JAX).


def _pick(first, x, y):
    """1 where `first` holds, 1/2 where x == y, else 0, in x's dtype."""
    one_half = convert_element_type(eq(x, y), new_dtype=aval_of(x).dtype)
    one_half = mul(one_half, full_like(x, 0.5))
    return add(convert_element_type(first, new_dtype=aval_of(x).dtype), one_half)


max_p = binary(
    "max",
    np.maximum,
    derivs=(lambda x, y, out: _pick(gt(x, y), x, y), lambda x, y, out: _pick(gt(y, x), x, y)),
)
min_p = binary(
    "min",
    np.minimum,
    derivs=(lambda x, y, out: _pick(lt(x, y), x, y), lambda x, y, out: _pick(lt(y, x), x, y)),
)


def max(x, y):  # noqa: A001 - the lax name
    return max_p.bind(x, y)


def min(x, y):  # noqa: A001 - the lax name
    return min_p.bind(x, y)


# ---------------------------------------------------------------------------------------------
# Comparisons and logic: boolean outputs, no tangents

eq_p = binary("eq", np.equal, zero_derivative=True, out_dtype=_bool_dtype)
ne_p = binary("ne", np.not_equal, zero_derivative=True, out_dtype=_bool_dtype)
lt_p = binary("lt", np.less, zero_derivative=True, out_dtype=_bool_dtype)
le_p = binary("le", np.less_equal, zero_derivative=True, out_dtype=_bool_dtype)
gt_p = binary("gt", np.greater, zero_derivative=True, out_dtype=_bool_dtype)
ge_p = binary("ge", np.greater_equal, zero_derivative=True, out_dtype=_bool_dtype)
and_p = binary("and", np.logical_and, zero_derivative=True, out_dtype=_bool_dtype)
or_p = binary("or", np.logical_or, zero_derivative=True, out_dtype=_bool_dtype)
not_p = unary("not", np.logical_not, zero_derivative=True, out_dtype=_bool_dtype)
isnan_p = unary("isnan", np.isnan, zero_derivative=True, out_dtype=_bool_dtype)
isfinite_p = unary("isfinite", np.isfinite, zero_derivative=True, out_dtype=_bool_dtype)
signbit_p = unary("signbit", np.signbit, zero_derivative=True, out_dtype=_bool_dtype)


def eq(x, y):
    return eq_p.bind(x, y)


def ne(x, y):
    return ne_p.bind(x, y)


def lt(x, y):
    return lt_p.bind(x, y)


def le(x, y):
    return le_p.bind(x, y)


def gt(x, y):
    return gt_p.bind(x, y)


def ge(x, y):
    return ge_p.bind(x, y)


def logical_and(x, y):
    return and_p.bind(x, y)


def logical_or(x, y):
    return or_p.bind(x, y)


def logical_not(x):
    return not_p.bind(x)


def isnan(x):
    return isnan_p.bind(x)


def isfinite(x):
    return isfinite_p.bind(x)


def signbit(x):
    return signbit_p.bind(x)


# ---------------------------------------------------------------------------------------------
# select_n(which, *cases): cases[which] elementwise; `which` is boolean (two cases) or integer.

select_n_p = Primitive("select_n")


def _select_n_impl(which, *cases):
    if which.dtype == bool:
        return np.where(which, cases[1], cases[0])
    return np.choose(which, cases)


def _select_n_abstract_eval(which, *cases):
    case = check_same_avals("select_n", cases)
    if which.shape != case.shape:
        raise TypeError(
            f"primitive 'select_n' needs a predicate of the cases' shape {case.shape}, "
            f"got {which.str_short()}"
        )
    if which.dtype == bool and len(cases) != 2:
        raise TypeError("primitive 'select_n' with a boolean predicate takes exactly two cases")
    return case


def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n(which, *cases)
    case_tangents = tangents[1:]
    if all(type(t) is Zero for t in case_tangents):
        return out, Zero(aval_of(out))
    case_tangents = [zeros(t.aval) if type(t) is Zero else t for t in case_tangents]
    return out, select_n(which, *case_tangents)


def _select_n_transpose(ct, which, *cases):
    # The transpose routes the cotangent back to the case that was picked; the rest get zero.
    zero = zeros(aval_of(ct))
    return [None] + [
        select_n(which, *[ct if j == i else zero for j in range(len(cases))])
        if is_undefined(c)
        else None
        for i, c in enumerate(cases)
    ]


select_n_p.impl = _select_n_impl
select_n_p.abstract_eval = _select_n_abstract_eval
select_n_p.jvp = _select_n_jvp
select_n_p.transpose = _select_n_transpose
select_n_p.batch = elementwise_batch(select_n_p)


def select_n(which, *cases):
    return select_n_p.bind(which, *cases)


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


# ---------------------------------------------------------------------------------------------
# stop_gradient: the identity, with a zero derivative (in every transformation that asks).

stop_gradient_p = unary("stop_gradient", lambda x: x, zero_derivative=True)


def stop_gradient(x):
    return stop_gradient_p.bind(x)
