"""Elementwise primitives: arithmetic, transcendental functions, comparisons, select, casts.

The family constructors `unary` and `binary` declare a primitive with all of its rules in one
call, so the common case reads like a table of calculus:
`sin_p = unary("sin", np.sin, deriv=lambda x, y: cos(x))`. Derivatives are written with
primitives, so rules differentiate again.

Operands of a binary primitive have exactly one shape and dtype (functrans.numpy broadcasts and
promotes first). Each primitive is declared once, with all its rules, in one block: the families,
arithmetic, complex parts and casts in elementwise_base.py (the layer the families' own rules
use), the rest below; this module re-exports both.
"""

from __future__ import annotations

import numpy as np

from functrans.core import Primitive, Zero, aval_of, is_float_dtype, is_undefined
from functrans.primitives.base import check_same_avals

# The families and the linear primitives live in elementwise_base.py. Every public name there is
# imported here; those this module does not use itself are re-exported (noqa: F401), so that
# `ew.<name>`, `from functrans.primitives.elementwise import ...` and the registry, which walks
# this module's namespace, find them here as before.
from functrans.primitives.elementwise_base import (
    _real_dtype,
    add,
    add_p,  # noqa: F401
    binary,
    conj,
    conj_p,  # noqa: F401
    convert_element_type,
    convert_element_type_p,  # noqa: F401
    ct_like,  # noqa: F401
    div,
    div_p,  # noqa: F401
    elementwise_batch,
    imag,  # noqa: F401
    imag_p,  # noqa: F401
    mul,
    mul_p,  # noqa: F401
    neg,
    neg_p,  # noqa: F401
    raise_nonlinear_div,  # noqa: F401
    real,
    real_p,  # noqa: F401
    sub,
    sub_p,  # noqa: F401
    unary,
)
from functrans.primitives.structural import full_like, zeros


def _bool_dtype(_):
    return np.dtype(bool)


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
# np.reciprocal: 1 / x for real x, but its own algorithm (other last bits) for complex x
reciprocal_p = unary("reciprocal", np.reciprocal, deriv=lambda x, y: neg(mul(y, y)))

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


def reciprocal(x):
    return reciprocal_p.bind(x)


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
# bitwise operations on integers (the operators & | ^ ~; on booleans they are the logical ones)
bitwise_and_p = binary("bitwise_and", np.bitwise_and, zero_derivative=True)
bitwise_or_p = binary("bitwise_or", np.bitwise_or, zero_derivative=True)
bitwise_xor_p = binary("bitwise_xor", np.bitwise_xor, zero_derivative=True)
bitwise_not_p = unary("bitwise_not", np.invert, zero_derivative=True)
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


def bitwise_and(x, y):
    return bitwise_and_p.bind(x, y)


def bitwise_or(x, y):
    return bitwise_or_p.bind(x, y)


def bitwise_xor(x, y):
    return bitwise_xor_p.bind(x, y)


def bitwise_not(x):
    return bitwise_not_p.bind(x)


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
# stop_gradient: the identity, with a zero derivative (in every transformation that asks).

stop_gradient_p = unary("stop_gradient", lambda x: x, zero_derivative=True)


def stop_gradient(x):
    return stop_gradient_p.bind(x)
