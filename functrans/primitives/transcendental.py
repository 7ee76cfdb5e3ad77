"""More elementwise primitives: the rest of the calculus table and smooth binary functions.

Logarithms and exponentials in other bases, hyperbolic and inverse trigonometric functions, cube
root, the logistic sigmoid, atan2/hypot/logaddexp, and division with rounding (rem,
floor_divide). They are declared with the `unary`/`binary` families (elementwise_base.py), each
in one block with all its rules; derivatives are written with primitives so they differentiate
again.
"""

from __future__ import annotations

import numpy as np

from functrans.core import aval_of
from functrans.primitives.elementwise import (
    _one,
    _safe,
    add,
    binary,
    div,
    eq,
    exp,
    mul,
    neg,
    select_n,
    sqrt,
    sub,
    unary,
)
from functrans.primitives.structural import full_like, zeros

# ---------------------------------------------------------------------------------------------
# More of the calculus table: logarithms and exponentials in other bases, hyperbolic and inverse
# trigonometric functions, cube root, the logistic sigmoid. All are holomorphic where NumPy
# accepts complex input, so `t * f'(x)` is also the complex JVP.

_LN2 = float(np.log(2.0))
_LN10 = float(np.log(10.0))


def _rsqrt_one_minus_sq(x):
    # 1 / sqrt(1 - x^2), with (1 - x)(1 + x) accurate near |x| = 1
    return div(_one(x), sqrt(mul(sub(_one(x), x), add(_one(x), x))))


exp2_p = unary("exp2", np.exp2, deriv=lambda x, y: mul(y, full_like(y, _LN2)))
log2_p = unary("log2", np.log2, deriv=lambda x, y: div(_one(x), mul(x, full_like(x, _LN2))))
log10_p = unary("log10", np.log10, deriv=lambda x, y: div(_one(x), mul(x, full_like(x, _LN10))))
sinh_p = unary("sinh", np.sinh, deriv=lambda x, y: cosh(x))
cosh_p = unary("cosh", np.cosh, deriv=lambda x, y: sinh(x))
asin_p = unary("asin", np.arcsin, deriv=lambda x, y: _rsqrt_one_minus_sq(x))
acos_p = unary("acos", np.arccos, deriv=lambda x, y: neg(_rsqrt_one_minus_sq(x)))
atan_p = unary("atan", np.arctan, deriv=lambda x, y: div(_one(x), add(_one(x), mul(x, x))))
asinh_p = unary("asinh", np.arcsinh, deriv=lambda x, y: div(_one(x), sqrt(add(mul(x, x), _one(x)))))
acosh_p = unary(
    "acosh",
    np.arccosh,
    deriv=lambda x, y: div(_one(x), mul(sqrt(sub(x, _one(x))), sqrt(add(x, _one(x))))),
)
atanh_p = unary(
    "atanh",
    np.arctanh,
    deriv=lambda x, y: div(_one(x), mul(sub(_one(x), x), add(_one(x), x))),
)
# d cbrt(x)/dx = 1 / (3 cbrt(x)^2): inf at 0, like sqrt
cbrt_p = unary("cbrt", np.cbrt, deriv=lambda x, y: div(_one(y), mul(full_like(y, 3), mul(y, y))))


def _logistic_impl(x):
    # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) otherwise: exp never overflows
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    one = np.ones((), x.dtype)
    return np.where(x >= 0, one / (one + e), e / (one + e))


logistic_p = unary("logistic", _logistic_impl, deriv=lambda x, y: mul(y, sub(_one(y), y)))
trunc_p = unary("trunc", np.trunc, zero_derivative=True)


def exp2(x):
    return exp2_p.bind(x)


def log2(x):
    return log2_p.bind(x)


def log10(x):
    return log10_p.bind(x)


def sinh(x):
    return sinh_p.bind(x)


def cosh(x):
    return cosh_p.bind(x)


def asin(x):
    return asin_p.bind(x)


def acos(x):
    return acos_p.bind(x)


def atan(x):
    return atan_p.bind(x)


def asinh(x):
    return asinh_p.bind(x)


def acosh(x):
    return acosh_p.bind(x)


def atanh(x):
    return atanh_p.bind(x)


def cbrt(x):
    return cbrt_p.bind(x)


def logistic(x):
    return logistic_p.bind(x)


def trunc(x):
    return trunc_p.bind(x)


# ---------------------------------------------------------------------------------------------
# Smooth binary functions. Where a partial derivative is 0/0 (atan2 and hypot at the origin,
# logaddexp of two -inf) it is taken as 0, and the division is by a safe value instead, so no
# NaN reaches a derivative (the double-where idiom of docs/conventions.md).


def _squared_radius(x, y):
    r2 = add(mul(x, x), mul(y, y))
    return _safe(r2, eq(r2, zeros(aval_of(r2))))


atan2_p = binary(
    "atan2",
    np.arctan2,
    derivs=(
        lambda x, y, out: div(y, _squared_radius(x, y)),
        lambda x, y, out: neg(div(x, _squared_radius(x, y))),
    ),
)


def _hypot_deriv(x, h):
    # d hypot(x, y)/dx = x / hypot(x, y): no squares, so no overflow; 0 at the origin
    return div(x, _safe(h, eq(h, zeros(aval_of(h)))))


hypot_p = binary(
    "hypot",
    np.hypot,
    derivs=(lambda x, y, out: _hypot_deriv(x, out), lambda x, y, out: _hypot_deriv(y, out)),
)


def _logaddexp_deriv(x, out, base_exp=None):
    # d logaddexp(x, y)/dx = exp(x - out), in [0, 1] since out >= x: never overflows. Where
    # x == out (also at +-inf) the exponent is 0; where out == -inf (both operands -inf) the
    # derivative is taken as 0, as for logsumexp of an all -inf row. (logaddexp2: 2^(x - out).)
    same = eq(x, out)
    zero = zeros(aval_of(x))
    exponent = sub(select_n(same, x, zero), select_n(same, out, zero))  # never inf - inf
    no_mass = eq(out, full_like(out, -np.inf))
    return select_n(no_mass, (base_exp or exp)(exponent), zeros(aval_of(x)))


logaddexp_p = binary(
    "logaddexp",
    np.logaddexp,
    derivs=(
        lambda x, y, out: _logaddexp_deriv(x, out),
        lambda x, y, out: _logaddexp_deriv(y, out),
    ),
)


# NumPy's own logaddexp2 (log2(2^x + 2^y) in its own arithmetic: a composition through
# logaddexp differs in the last bit for a third of inputs)
logaddexp2_p = binary(
    "logaddexp2",
    np.logaddexp2,
    derivs=(
        lambda x, y, out: _logaddexp_deriv(x, out, exp2),
        lambda x, y, out: _logaddexp_deriv(y, out, exp2),
    ),
)


def logaddexp2(x, y):
    return logaddexp2_p.bind(x, y)


def atan2(x, y):
    return atan2_p.bind(x, y)


def hypot(x, y):
    return hypot_p.bind(x, y)


def logaddexp(x, y):
    return logaddexp_p.bind(x, y)


# ---------------------------------------------------------------------------------------------
# Division with rounding. rem is C's fmod (the sign of x); NumPy's remainder is composed from it
# in functrans.numpy. floor_divide is piecewise constant; NumPy computes it from fmod, which is
# not always floor(x / y) (floor_divide(1, 0.1) is 9), so it is its own primitive.

rem_p = binary(
    "rem",
    np.fmod,
    derivs=(lambda x, y, out: _one(x), lambda x, y, out: neg(trunc(div(x, y)))),
)
floor_divide_p = binary("floor_divide", np.floor_divide, zero_derivative=True)


def rem(x, y):
    return rem_p.bind(x, y)


def floor_divide(x, y):
    return floor_divide_p.bind(x, y)
