"""Elementwise functions of functrans.numpy: NumPy's broadcasting and promotion over primitives.

Results have NumPy's dtypes: Python scalars are weak (NEP 50), and functions that need floating
point (sin, sqrt, divide, ...) take integers and booleans to the smallest float type that holds
them, as NumPy's ufunc loops do (int8 -> float16, int16 -> float32, int64 -> float64). Functions
with a kink or a removable singularity are composed so that their derivatives stay finite where
the math is; docs/conventions.md lists the conventions.
"""

from __future__ import annotations

import sys

import numpy as np

from functrans import core
from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    asarray,
    broadcast_all,
    promote_and_broadcast,
    result_dtype,
)
from functrans.primitives import elementwise as ew
from functrans.primitives import full
from functrans.primitives import transcendental as tr

# ---------------------------------------------------------------------------------------------
# Promotion helpers


def _inexact_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of NumPy's float loop for an operand of `dtype` (itself if inexact)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind in "fc" else np.result_type(dtype, np.float16)


def _cast(x, dtype):
    return ew.convert_element_type(asarray(x), new_dtype=dtype)


def _const(x, value):
    """`value` as an array of x's shape and dtype."""
    aval = aval_of(x)
    return full(aval.shape, value, aval.dtype)


def _to_inexact(x):
    if (isinstance(x, Tracer) or type(x) is np.ndarray) and aval_of(x).dtype.kind in "fc":
        return x
    x = asarray(x)
    return _cast(x, _inexact_dtype(aval_of(x).dtype))


def _inexact_operands(*args):
    """Operands promoted to one inexact dtype (NumPy's float loop) and broadcast."""
    dtype = result_dtype(*args)
    if dtype.kind in "fc":
        return promote_and_broadcast(*args)
    dtype = _inexact_dtype(dtype)
    return broadcast_all(*[_cast(a, dtype) for a in args])


_current_trace_get = core._current_trace.get


def _primitive_of(prim_fn):
    """The primitive a thin wrapper `def sin(x): return sin_p.bind(x)` binds, if it is one."""
    prim = getattr(sys.modules[prim_fn.__module__], f"{prim_fn.__name__}_p", None)
    code = prim_fn.__code__
    thin = code.co_argcount == 1 and code.co_names == (f"{prim_fn.__name__}_p", "bind")
    return prim if thin else None


def _unary_inexact(prim_fn, name=None):
    """A NumPy ufunc of one operand computed in floating point."""
    prim = _primitive_of(prim_fn)
    current = _current_trace_get

    def fn(x):
        # a traced float goes straight to the interpreter (the hot path of eager grad)
        if prim is not None and isinstance(x, Tracer) and x.aval.dtype.kind in "fc":
            return current().process_primitive(prim, (x,), {})
        return prim_fn(_to_inexact(x))

    fn.__name__ = name or prim_fn.__name__
    return fn


def _binary_inexact(prim_fn, name):
    def fn(x, y):
        return prim_fn(*_inexact_operands(x, y))

    fn.__name__ = name
    return fn


# ---------------------------------------------------------------------------------------------
# Smooth unary functions

exp = _unary_inexact(ew.exp)
exp2 = _unary_inexact(tr.exp2)
expm1 = _unary_inexact(ew.expm1)
log = _unary_inexact(ew.log)
log2 = _unary_inexact(tr.log2)
log10 = _unary_inexact(tr.log10)
log1p = _unary_inexact(ew.log1p)
sqrt = _unary_inexact(ew.sqrt)
cbrt = _unary_inexact(tr.cbrt)
sin = _unary_inexact(ew.sin)
cos = _unary_inexact(ew.cos)
tan = _unary_inexact(ew.tan)
arcsin = asin = _unary_inexact(tr.asin, "arcsin")
arccos = acos = _unary_inexact(tr.acos, "arccos")
arctan = atan = _unary_inexact(tr.atan, "arctan")
sinh = _unary_inexact(tr.sinh)
cosh = _unary_inexact(tr.cosh)
tanh = _unary_inexact(ew.tanh)
arcsinh = asinh = _unary_inexact(tr.asinh, "arcsinh")
arccosh = acosh = _unary_inexact(tr.acosh, "arccosh")
arctanh = atanh = _unary_inexact(tr.atanh, "arctanh")


def deg2rad(x):
    x = _to_inexact(x)
    t = aval_of(x).dtype.type  # the factor rounded as NumPy's, in x's precision
    return ew.mul(x, _const(x, t(np.pi) / t(180)))


def rad2deg(x):
    x = _to_inexact(x)
    t = aval_of(x).dtype.type
    return ew.mul(x, _const(x, t(180) / t(np.pi)))


radians = deg2rad
degrees = rad2deg


# |x| below which sinc uses its Taylor polynomial: there the quotient's derivatives cancel
# catastrophically, and the polynomial (error < 1e-17) has the exact derivatives at 0.
_SINC_TAYLOR = 1e-4


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0, with exact derivatives of every order up to 4 at 0."""
    x = asarray(x)
    if aval_of(x).dtype.kind not in "fc":
        x = _cast(x, np.float64)  # NumPy multiplies by pi first
    size = ew.abs(x)  # real for complex x
    small = ew.lt(size, _const(size, _SINC_TAYLOR))
    z = ew.mul(_const(x, np.pi), ew.select_n(small, x, _const(x, 1)))  # double where
    quotient = ew.div(ew.sin(z), z)
    z2 = ew.integer_pow(ew.mul(_const(x, np.pi), x), y=2)
    taylor = ew.sub(_const(x, 1), ew.mul(z2, ew.sub(_const(x, 1 / 6), ew.div(z2, _const(x, 120)))))
    return ew.select_n(small, quotient, taylor)


# ---------------------------------------------------------------------------------------------
# Arithmetic


def negative(x):
    if isinstance(x, Tracer):  # (the hot path: -x on a traced value)
        return _current_trace_get().process_primitive(ew.neg_p, (x,), {})
    return ew.neg(asarray(x))


def positive(x):
    x = asarray(x)
    return x if isinstance(x, Tracer) else np.positive(x)


def _copy(x):
    """x itself if traced; a concrete array is copied, as NumPy's functions return new arrays."""
    return x if isinstance(x, Tracer) else np.array(x)


def copy(a, order="K"):
    """numpy.copy (and the `.copy()` method): a traced value is immutable, so it is its own
    copy; a concrete array is copied in `order`."""
    a = asarray(a)
    return a if isinstance(a, Tracer) else np.array(a, order=order, copy=True)


def add(x, y):
    return _current_trace_get().process_primitive(ew.add_p, tuple(promote_and_broadcast(x, y)), {})


def subtract(x, y):
    return _current_trace_get().process_primitive(ew.sub_p, tuple(promote_and_broadcast(x, y)), {})


def multiply(x, y):
    return _current_trace_get().process_primitive(ew.mul_p, tuple(promote_and_broadcast(x, y)), {})


def true_divide(x, y):
    operands = tuple(promote_and_broadcast(x, y, to_inexact=True))
    return _current_trace_get().process_primitive(ew.div_p, operands, {})


divide = true_divide


def floor_divide(x, y):
    return tr.floor_divide(*_arithmetic_operands(x, y))


def fmod(x, y):
    """C's fmod: the remainder has the sign of x."""
    return tr.rem(*_arithmetic_operands(x, y))


def remainder(x, y):
    """Python's modulo: the remainder has the sign of y (NumPy's algorithm, on fmod)."""
    x, y = _arithmetic_operands(x, y)
    r = tr.rem(x, y)
    if aval_of(r).dtype.kind in "bu":
        return r
    zero = _const(r, 0)
    nonzero = ew.ne(r, zero)  # also NaN
    wrong_sign = ew.logical_and(nonzero, ew.ne(ew.lt(r, zero), ew.lt(y, zero)))
    r = ew.select_n(wrong_sign, r, ew.add(r, y))
    if aval_of(r).dtype.kind in "fc":
        # an exact zero takes the sign of y, as in NumPy
        signed_zero = ew.select_n(ew.signbit(y), zero, _const(r, -0.0))
        r = ew.select_n(nonzero, signed_zero, r)
    return r


mod = remainder


def _bool_as_int8(x):
    """NumPy computes arithmetic ufuncs of booleans in int8."""
    return _cast(x, np.int8) if aval_of(x).dtype == bool else x


def _arithmetic_operands(x, y):
    """Promoted, broadcast operands of an arithmetic ufunc: two booleans compute in int8."""
    return [_bool_as_int8(a) for a in promote_and_broadcast(x, y)]


def reciprocal(x):
    x = _bool_as_int8(asarray(x))
    if aval_of(x).dtype.kind in "fc":
        return ew.reciprocal(x)
    # NumPy's integer reciprocal is C integer division 1 / x
    dtype = aval_of(x).dtype
    q = tr.trunc(ew.div(_const(_cast(x, np.float64), 1), _cast(x, np.float64)))
    return _cast(q, dtype)


def square(x):
    x = _bool_as_int8(asarray(x))
    if aval_of(x).dtype.kind == "c":  # np.square(z) is z * z, not np.power(z, 2), bit for bit
        return ew.mul(x, x)
    return ew.integer_pow(x, y=2)


def power(x, y):
    """x ** y; an integer Python exponent uses repeated multiplication (exact, differentiable
    at x = 0)."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        dtype = result_dtype(x, y)  # (before asarray: a Python x is weakly typed)
        x = asarray(x)
        if y < 0 and dtype.kind in "iub":
            raise ValueError("Integers to negative integer powers are not allowed.")
        return ew.integer_pow(ew.convert_element_type(x, new_dtype=dtype), y=int(y))
    return ew.pow(*_arithmetic_operands(x, y))


pow = power  # noqa: A001 - the NumPy 2 name


def float_power(x, y):
    """x ** y in at least float64 (complex128 for complex operands)."""
    dtype = np.result_type(result_dtype(x, y), np.float64)
    return ew.pow(*broadcast_all(_cast(x, dtype), _cast(y, dtype)))


def logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow; its derivatives are in [0, 1]."""
    return tr.logaddexp(*_inexact_operands(x, y))


def logaddexp2(x, y):
    """log2(2**x + 2**y), as NumPy computes it."""
    return tr.logaddexp2(*_inexact_operands(x, y))


arctan2 = atan2 = _binary_inexact(tr.atan2, "arctan2")
hypot = _binary_inexact(tr.hypot, "hypot")


# ---------------------------------------------------------------------------------------------
# Absolute value, sign and friends


def absolute(x):
    return ew.abs(asarray(x))


abs = absolute  # noqa: A001 - the NumPy name


def fabs(x):
    x = asarray(x)
    if aval_of(x).dtype.kind == "c":
        raise TypeError("ufunc 'fabs' not supported for complex input; use absolute")
    return ew.abs(_to_inexact(x))


def sign(x):
    x = asarray(x)
    if aval_of(x).dtype.kind != "c":
        return ew.sign(x)
    # NumPy 2: z / |z| (0 at 0); differentiable away from 0
    r = ew.abs(x)
    zero = ew.eq(r, _const(r, 0))
    safe = ew.select_n(zero, r, _const(r, 1))
    return ew.div(x, ew.convert_element_type(safe, new_dtype=aval_of(x).dtype))


def signbit(x):
    return ew.signbit(asarray(x))


def copysign(x, y):
    """|x| with the sign bit of y; d/dx is +-sign(x) (0 at x = 0)."""
    x, y = _inexact_operands(x, y)
    magnitude = ew.abs(x)
    return ew.select_n(ew.signbit(y), magnitude, ew.neg(magnitude))


def heaviside(x, h0):
    """0 for x < 0, h0 at x == 0, 1 for x > 0 (NaN stays NaN); the derivative flows to h0."""
    x, h0 = _inexact_operands(x, h0)
    step = ew.select_n(ew.gt(x, _const(x, 0)), _const(x, 0), _const(x, 1))
    out = ew.select_n(ew.eq(x, _const(x, 0)), step, h0)
    return ew.select_n(ew.isnan(x), out, x)


# ---------------------------------------------------------------------------------------------
# Complex parts


def real(x):
    x = asarray(x)
    return ew.real(x) if aval_of(x).dtype.kind == "c" else x


def imag(x):
    x = asarray(x)
    if aval_of(x).dtype.kind == "c":
        return ew.imag(x)
    return _const(x, 0)


def conjugate(x):
    x = asarray(x)
    kind = aval_of(x).dtype.kind
    if kind == "b":
        return _cast(x, np.int8)  # NumPy's conjugate has no boolean loop
    return ew.conj(x) if kind == "c" else _copy(x)


conj = conjugate


def angle(z, deg=False):
    """The argument of z: arctan2(imag(z), real(z)); 0 or pi for real z."""
    z = asarray(z)
    if aval_of(z).dtype.kind == "c":
        out = tr.atan2(ew.imag(z), ew.real(z))
    else:
        out = arctan2(0, z)
    return rad2deg(out) if deg else out


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, +inf -> posinf (default: the largest finite value), -inf -> neginf."""
    x = asarray(x)
    dtype = aval_of(x).dtype
    if dtype.kind == "c":
        parts = [nan_to_num(p, nan=nan, posinf=posinf, neginf=neginf) for p in (real(x), imag(x))]
        return ew.add(_cast(parts[0], dtype), ew.mul(_cast(parts[1], dtype), _const(x, 1j)))
    if dtype.kind != "f":
        return _copy(x)
    info = np.finfo(dtype)
    x = ew.select_n(ew.isnan(x), x, _const(x, nan))
    x = ew.select_n(
        ew.eq(x, _const(x, np.inf)), x, _const(x, info.max if posinf is None else posinf)
    )
    x = ew.select_n(
        ew.eq(x, _const(x, -np.inf)), x, _const(x, info.min if neginf is None else neginf)
    )
    return x


# ---------------------------------------------------------------------------------------------
# Selection and casts


def astype(x, dtype, *, copy: bool = True):
    """x converted to `dtype` (numpy.astype, and the `.astype` method of traced values).

    A traced value is immutable, so `copy` changes nothing for it; a NumPy array or scalar is
    converted by numpy.astype (copy=False returns x itself when the dtype already matches).
    Example: fnp.astype(x, np.float32)
    """
    if isinstance(x, Tracer):
        return ew.convert_element_type(x, new_dtype=np.dtype(dtype))
    return np.astype(x, np.dtype(dtype), copy=copy)


__all__ = [
    "copy",
    "abs",
    "absolute",
    "acos",
    "acosh",
    "add",
    "angle",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "asin",
    "asinh",
    "astype",
    "atan",
    "atan2",
    "atanh",
    "cbrt",
    "conj",
    "conjugate",
    "copysign",
    "cos",
    "cosh",
    "deg2rad",
    "degrees",
    "divide",
    "exp",
    "exp2",
    "expm1",
    "fabs",
    "float_power",
    "floor_divide",
    "fmod",
    "heaviside",
    "hypot",
    "imag",
    "log",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logaddexp2",
    "mod",
    "multiply",
    "nan_to_num",
    "negative",
    "positive",
    "pow",
    "power",
    "rad2deg",
    "radians",
    "real",
    "reciprocal",
    "remainder",
    "sign",
    "signbit",
    "sin",
    "sinc",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "true_divide",
]
