"""functrans.numpy elementwise functions: NumPy's values and dtypes, derivatives, vmap, and the
documented conventions (kinks, stable rules, complex gradients, the where pitfall)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import check_grads

RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.standard_normal(shape)


def _positive(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def _unit(*shape):
    return RNG.uniform(-0.8, 0.8, shape)


def _above_one(*shape):
    return RNG.uniform(1.2, 3.0, shape)


def _off_integers(*shape):
    return RNG.integers(-3, 3, shape) + RNG.uniform(0.15, 0.85, shape)


def _nonzero(*shape):
    return RNG.choice([-1.0, 1.0], shape) * RNG.uniform(0.3, 2.0, shape)


# name -> operand samplers (one per operand), inside the smooth domain
UNARY = {
    "negative": _normal,
    "positive": _normal,
    "abs": _nonzero,
    "absolute": _nonzero,
    "fabs": _nonzero,
    "sign": _nonzero,
    "reciprocal": _nonzero,
    "square": _normal,
    "sqrt": _positive,
    "cbrt": _nonzero,
    "exp": _normal,
    "exp2": _normal,
    "expm1": _normal,
    "log": _positive,
    "log2": _positive,
    "log10": _positive,
    "log1p": _positive,
    "sin": _normal,
    "cos": _normal,
    "tan": _unit,
    "arcsin": _unit,
    "arccos": _unit,
    "arctan": _normal,
    "sinh": _normal,
    "cosh": _normal,
    "tanh": _normal,
    "arcsinh": _normal,
    "arccosh": _above_one,
    "arctanh": _unit,
    "deg2rad": _normal,
    "rad2deg": _normal,
    "radians": _normal,
    "degrees": _normal,
    "sinc": _normal,
    "floor": _off_integers,
    "ceil": _off_integers,
    "round": _off_integers,
    "rint": _off_integers,
    "trunc": _off_integers,
    "fix": _off_integers,
    "real": _normal,
    "imag": _normal,
    "conj": _normal,
    "conjugate": _normal,
    "angle": _nonzero,
    "nan_to_num": _normal,
    "signbit": _nonzero,
    "isnan": _normal,
    "isfinite": _normal,
    "isinf": _normal,
    "logical_not": _normal,
}
BINARY = {
    "add": (_normal, _normal),
    "subtract": (_normal, _normal),
    "multiply": (_normal, _normal),
    "divide": (_normal, _nonzero),
    "true_divide": (_normal, _nonzero),
    "floor_divide": (_off_integers, _nonzero),
    "power": (_positive, _normal),
    "float_power": (_positive, _normal),
    "mod": (_off_integers, _nonzero),
    "remainder": (_off_integers, _nonzero),
    "fmod": (_off_integers, _nonzero),
    "logaddexp": (_normal, _normal),
    "logaddexp2": (_normal, _normal),
    "arctan2": (_nonzero, _nonzero),
    "hypot": (_nonzero, _normal),
    "maximum": (_normal, _normal),
    "minimum": (_normal, _normal),
    "fmax": (_normal, _normal),
    "fmin": (_normal, _normal),
    "heaviside": (_nonzero, _normal),
    "copysign": (_nonzero, _nonzero),
    "equal": (_normal, _normal),
    "not_equal": (_normal, _normal),
    "less": (_normal, _normal),
    "less_equal": (_normal, _normal),
    "greater": (_normal, _normal),
    "greater_equal": (_normal, _normal),
    "logical_and": (_nonzero, _nonzero),
    "logical_or": (_nonzero, _nonzero),
    "logical_xor": (_nonzero, _nonzero),
}
# piecewise constant or boolean: derivative 0
NONDIFF = {
    "sign",
    "floor",
    "ceil",
    "round",
    "rint",
    "trunc",
    "fix",
    "floor_divide",
    "signbit",
    "isnan",
    "isfinite",
    "isinf",
    "logical_not",
    "heaviside",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "imag",
    "angle",
}
# NumPy 2 aliases
ALIASES = {
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
    "atan2": "arctan2",
    "pow": "power",
}


def _assert_like_numpy(got, want, what):
    got_arr, want_arr = np.asarray(got), np.asarray(want)
    assert got_arr.shape == want_arr.shape, f"{what}: shape {got_arr.shape} != {want_arr.shape}"
    assert got_arr.dtype == want_arr.dtype, f"{what}: dtype {got_arr.dtype} != {want_arr.dtype}"
    if want_arr.dtype.kind in "fc":
        tol = 1e-3 if np.finfo(want_arr.dtype).bits <= 32 else 1e-12
        np.testing.assert_allclose(got_arr, want_arr, rtol=tol, atol=tol, err_msg=what)
    else:
        np.testing.assert_array_equal(got_arr, want_arr, err_msg=what)


def _np_fn(name):
    return getattr(np, name)


# ---------------------------------------------------------------------------------------------
# Values and dtypes match NumPy


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_numpy(name):
    draw = UNARY[name]
    for x in (draw(2, 3), draw(), draw(4).astype(np.float32)):
        _assert_like_numpy(getattr(fnp, name)(x), _np_fn(name)(x), f"{name}({x.dtype}{x.shape})")
    x = draw(3)
    _assert_like_numpy(getattr(fnp, name)(float(x[0])), _np_fn(name)(float(x[0])), name)
    # integer and boolean inputs: NumPy's float loop (int8 -> float16, int16 -> float32, ...)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for dtype in (np.int8, np.int16, np.int64, np.bool_):
            if (
                name in ("negative", "positive", "reciprocal", "sign", "square")
                and dtype is np.bool_
            ):
                continue
            xi = (
                np.array([1, 0, 3, 2], dtype)
                if dtype is not np.bool_
                else np.array([1, 0, 1, 0], bool)
            )
            _assert_like_numpy(getattr(fnp, name)(xi), _np_fn(name)(xi), f"{name}({xi.dtype})")


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_numpy(name):
    dx, dy = BINARY[name]
    fn, ref = getattr(fnp, name), _np_fn(name)
    cases = [
        (dx(2, 3), dy(2, 3)),
        (dx(2, 3), dy(3)),  # broadcasting
        (dx(4, 1), dy(1, 3)),
        (dx(), dy()),
        (dx(3).astype(np.float32), dy(3).astype(np.float32)),
        (dx(3).astype(np.float32), float(dy())),  # a Python float is weak: float32 stays
        (float(dx()), dy(3).astype(np.float32)),
        (dx(3).astype(np.float32), dy(3)),  # float32 with float64 promotes
    ]
    for x, y in cases:
        _assert_like_numpy(fn(x, y), ref(x, y), f"{name}({np.shape(x)}, {np.shape(y)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        xi, yi = np.array([3, -2, 5, 7], np.int16), np.array([2, 3, -4, 1], np.int16)
        if name not in ("power",):
            _assert_like_numpy(fn(xi, yi), ref(xi, yi), f"{name}(int16, int16)")
        _assert_like_numpy(fn(xi, 2), ref(xi, 2), f"{name}(int16, Python int)")
        _assert_like_numpy(fn(xi, 2.5), ref(xi, 2.5), f"{name}(int16, Python float)")


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_numpy2_aliases(alias):
    assert getattr(fnp, alias) is getattr(fnp, ALIASES[alias])


def test_rounding_and_remainder_edge_values():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.0, 3.0, -3.0])
    for name in ("round", "rint", "floor", "ceil", "trunc", "fix"):
        _assert_like_numpy(getattr(fnp, name)(x), getattr(np, name)(x), name)
    _assert_like_numpy(fnp.round(x * 1.2345, 2), np.round(x * 1.2345, 2), "round decimals=2")
    _assert_like_numpy(fnp.round(x * 123.0, -1), np.round(x * 123.0, -1), "round decimals=-1")
    _assert_like_numpy(fnp.round(np.array([15, 25]), -1), np.round(np.array([15, 25]), -1), "int")
    # floor_divide is not floor(x / y): NumPy gives 9 here
    assert fnp.floor_divide(1.0, 0.1) == np.floor_divide(1.0, 0.1) == 9.0
    a = np.array([3.0, -3.0, 3.0, -3.0, 5.5, -5.5, 0.0, 1.0])
    b = np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0, -2.0, 0.0])
    with np.errstate(invalid="ignore"):
        for name in ("remainder", "fmod"):
            got, want = getattr(fnp, name)(a, b), getattr(np, name)(a, b)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # signed zeros
    np.testing.assert_array_equal(fnp.mod(np.arange(-5, 5), 3), np.mod(np.arange(-5, 5), 3))


def test_special_values_match_numpy():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.0])
    with np.errstate(all="ignore"):
        for name in ("sinc", "sign", "copysign", "nan_to_num", "isinf", "signbit", "fabs"):
            args = (x, -x) if name == "copysign" else (x,)
            got, want = getattr(fnp, name)(*args), getattr(np, name)(*args)
            np.testing.assert_array_equal(got, want, err_msg=name)
        for name in ("logaddexp", "hypot", "fmax", "fmin", "maximum", "arctan2", "heaviside"):
            for y in (x[::-1], np.full_like(x, np.nan), np.full_like(x, -np.inf)):
                np.testing.assert_array_equal(getattr(fnp, name)(x, y), getattr(np, name)(x, y))
    np.testing.assert_array_equal(
        fnp.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0),
        np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0),
    )
    z = np.array([complex(np.nan, np.inf), complex(1, -np.inf), 2 + 3j])
    np.testing.assert_array_equal(fnp.nan_to_num(z), np.nan_to_num(z))
    assert fnp.nan_to_num(np.float32(np.inf)).dtype == np.float32


def test_clip_matches_numpy():
    x = np.linspace(-2, 2, 9)
    for lo, hi in [(-1.0, 1.0), (None, 0.5), (-0.5, None), (1.0, -1.0)]:
        _assert_like_numpy(fnp.clip(x, lo, hi), np.clip(x, lo, hi), f"clip({lo}, {hi})")
    _assert_like_numpy(fnp.clip(x, min=-1, max=1), np.clip(x, min=-1, max=1), "min/max keywords")
    lo, hi = np.full((3, 1), -0.5), np.full((9,), 0.7)
    _assert_like_numpy(fnp.clip(x, lo, hi), np.clip(x, lo, hi), "array bounds, broadcast")
    x32 = x.astype(np.float32)
    _assert_like_numpy(fnp.clip(x32, 0, 1), np.clip(x32, 0, 1), "float32 stays float32")
    _assert_like_numpy(fnp.clip(np.arange(5), 1, 3), np.clip(np.arange(5), 1, 3), "integers")
    np.testing.assert_array_equal(fnp.clip(np.array([np.nan, 2.0]), 0, 1), [np.nan, 1.0])


def test_complex_values_match_numpy():
    z = RNG.standard_normal((2, 3)) + 1j * RNG.standard_normal((2, 3))
    for name in (
        "real",
        "imag",
        "conj",
        "conjugate",
        "angle",
        "abs",
        "sign",
        "exp",
        "sin",
        "sqrt",
        "log",
        "square",
        "reciprocal",
        "sinh",
        "cosh",
        "arctan",
        "exp2",
        "log2",
        "log10",
        "negative",
        "tanh",
    ):
        _assert_like_numpy(getattr(fnp, name)(z), getattr(np, name)(z), name)
    _assert_like_numpy(fnp.angle(z, deg=True), np.angle(z, deg=True), "angle deg")
    _assert_like_numpy(fnp.angle(np.array([-1.0, 2.0])), np.angle(np.array([-1.0, 2.0])), "real")
    c64 = z.astype(np.complex64)
    for name in ("real", "imag", "abs", "angle"):
        _assert_like_numpy(getattr(fnp, name)(c64), getattr(np, name)(c64), f"{name}(complex64)")
    _assert_like_numpy(fnp.multiply(z, 2.0), z * 2.0, "complex * Python float")
    _assert_like_numpy(fnp.add(np.ones(3, np.float32), 1j), np.ones(3, np.float32) + 1j, "c64")
    for name in ("power", "divide", "float_power"):
        _assert_like_numpy(getattr(fnp, name)(z, z[::-1]), getattr(np, name)(z, z[::-1]), name)
    with pytest.raises(TypeError, match="fabs"):
        fnp.fabs(z)


def test_negative_integer_power_of_integers_is_an_error_as_in_numpy():
    with pytest.raises(ValueError, match="negative integer powers"):
        fnp.power(np.arange(1, 4), -1)
    _assert_like_numpy(fnp.power(np.arange(1, 4), 2), np.power(np.arange(1, 4), 2), "int power")


def test_plain_numpy_calls_dispatch_to_functrans():
    x = np.array([0.3, 0.7])

    def f(x):
        return np.sum(
            np.hypot(x, 1.0)
            + np.arctan2(x, 2.0)
            + np.logaddexp(x, 0.0)
            + np.cbrt(x)
            + np.sinh(x)
            + np.exp2(x)
            + np.log10(x)
            + np.fmod(x, 0.5)
            + np.clip(x, 0.4, 1.0)
            + np.sinc(x)
            + np.copysign(x, -1.0)
            + np.float_power(x, 3.0)
        )

    def g(x):
        return fnp.sum(
            fnp.hypot(x, 1.0)
            + fnp.arctan2(x, 2.0)
            + fnp.logaddexp(x, 0.0)
            + fnp.cbrt(x)
            + fnp.sinh(x)
            + fnp.exp2(x)
            + fnp.log10(x)
            + fnp.fmod(x, 0.5)
            + fnp.clip(x, 0.4, 1.0)
            + fnp.sinc(x)
            + fnp.copysign(x, -1.0)
            + fnp.float_power(x, 3.0)
        )

    np.testing.assert_allclose(ft.grad(f)(x), ft.grad(g)(x), rtol=1e-12)
    np.testing.assert_allclose(f(x), g(x), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Derivatives: forward and reverse against central differences, order 2, and vmap


def _diff_unary():
    return sorted(n for n in UNARY if n not in NONDIFF)


def _diff_binary():
    return sorted(n for n in BINARY if n not in NONDIFF)


@pytest.mark.parametrize("name", _diff_unary())
def test_unary_derivatives(name):
    fn = getattr(fnp, name)
    check_grads(fn, (UNARY[name](2, 3),), order=2, seed=1)
    check_grads(fn, (UNARY[name](3).astype(np.float32),), order=1, seed=2)


@pytest.mark.parametrize("name", _diff_binary())
def test_binary_derivatives(name):
    fn = getattr(fnp, name)
    dx, dy = BINARY[name]
    if name in ("maximum", "minimum", "fmax", "fmin"):
        x = _normal(2, 3)
        y = x + _nonzero(2, 3)  # keep the operands apart (smooth)
    else:
        x, y = dx(2, 3), dy(2, 3)
    check_grads(fn, (x, y), order=2, seed=3)
    check_grads(lambda a: fn(a, y[0]), (x,), order=1, seed=4)  # broadcast operand


@pytest.mark.parametrize("name", _diff_unary() + _diff_binary())
def test_vmap_matches_loop(name):
    fn = getattr(fnp, name)
    if name in UNARY:
        xs = UNARY[name](4, 3)
        want = np.stack([fn(x) for x in xs])
        np.testing.assert_allclose(ft.vmap(fn)(xs), want, rtol=1e-12, atol=1e-14)
        grads = np.stack([ft.grad(lambda v: fnp.sum(fn(v)))(x) for x in xs])
        got = ft.vmap(ft.grad(lambda v: fnp.sum(fn(v))))(xs)
        np.testing.assert_allclose(got, grads, rtol=1e-12, atol=1e-14)
    else:
        dx, dy = BINARY[name]
        xs, x, ys, y = dx(4, 3), dx(3), dy(4, 3), dy(3)
        want = np.stack([fn(xi, y) for xi in xs])
        np.testing.assert_allclose(ft.vmap(fn, in_axes=(0, None))(xs, y), want, rtol=1e-12)
        want = np.stack([fn(x, yi) for yi in ys], axis=1)
        got = ft.vmap(fn, in_axes=(None, 1), out_axes=1)(x, ys.T)
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(NONDIFF & set(UNARY)))
def test_piecewise_constant_functions_have_zero_derivative(name):
    x = UNARY[name](5)
    _, t = ft.jvp(lambda v: fnp.asarray(getattr(fnp, name)(v), float) * 1.0, (x,), (np.ones(5),))
    assert np.all(np.asarray(t) == 0)


def test_jit_and_staging_of_compositions():
    x = _positive(3)
    for fn in (
        fnp.sinc,
        lambda v: fnp.remainder(v, 0.3),
        lambda v: fnp.clip(v, 0.7, 1.5),
        lambda v: fnp.logaddexp2(v, 1.0),
        lambda v: fnp.nan_to_num(fnp.log(v - 1.0)),
    ):
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(ft.jit(fn)(x), fn(x))
            g = ft.grad(lambda v, fn=fn: fnp.sum(fn(v)))
            np.testing.assert_allclose(ft.jit(g)(x), g(x), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Conventions at kinks and special points (docs/conventions.md)


def test_abs_and_sqrt_at_zero():
    assert ft.grad(fnp.abs)(0.0) == 0.0
    assert ft.grad(fnp.fabs)(0.0) == 0.0
    with np.errstate(divide="ignore"):
        assert ft.grad(fnp.sqrt)(0.0) == np.inf
        assert ft.grad(fnp.cbrt)(0.0) == np.inf


def test_maximum_ties_split_and_fmax_ignores_nan():
    assert ft.grad(fnp.maximum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
    assert ft.grad(fnp.minimum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
    assert ft.grad(fnp.fmax, argnums=(0, 1))(2.0, np.nan) == (1.0, 0.0)
    assert ft.grad(fnp.fmin, argnums=(0, 1))(np.nan, 2.0) == (0.0, 1.0)


def test_clip_derivative_is_one_on_the_closed_interval():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    g = ft.grad(lambda v: fnp.sum(fnp.clip(v, -1.0, 1.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    glo, ghi = ft.grad(lambda lo, hi: fnp.sum(fnp.clip(x, lo, hi)), argnums=(0, 1))(-1.0, 1.0)
    assert (glo, ghi) == (1.0, 1.0)  # only where x is strictly beyond the bound
    # lo > hi: everything is hi, and the derivative goes to hi
    assert ft.grad(lambda hi: fnp.sum(fnp.clip(x, 1.0, hi)))(-1.0) == 5.0


def test_power_with_zero_base_has_finite_derivatives():
    assert ft.grad(lambda x: x**2.0)(0.0) == 0.0
    assert ft.grad(ft.grad(lambda x: x**2.0))(0.0) == 2.0
    assert ft.grad(lambda x: x**1.0)(0.0) == 1.0
    assert ft.grad(lambda x: x**0.0)(0.0) == 0.0
    assert ft.grad(lambda x: x**2)(0.0) == 0.0
    assert ft.grad(lambda y: 0.0**y)(2.0) == 0.0
    assert ft.grad(lambda x: fnp.float_power(x, 3.0))(0.0) == 0.0
    g = ft.grad(lambda x, y: fnp.power(x, y), argnums=(0, 1))(np.float64(0.0), np.float64(3.0))
    assert g == (0.0, 0.0)
    with np.errstate(divide="ignore"):
        assert ft.grad(lambda x: x**0.5)(0.0) == np.inf  # the math is infinite here


def test_hypot_and_arctan2_at_the_origin():
    assert ft.grad(fnp.hypot, argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)
    assert ft.grad(fnp.arctan2, argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)
    # hypot's derivative does not overflow where x**2 would
    g = ft.grad(fnp.hypot, argnums=(0, 1))(3e200, 4e200)
    np.testing.assert_allclose(g, (0.6, 0.8))


def test_logaddexp_is_stable():
    assert ft.grad(lambda x: fnp.logaddexp(x, 0.0))(1000.0) == 1.0
    assert ft.grad(lambda x: fnp.logaddexp(x, 0.0))(-1000.0) == 0.0
    assert ft.grad(lambda x: fnp.logaddexp2(x, 0.0))(2000.0) == 1.0
    g = ft.grad(fnp.logaddexp, argnums=(0, 1))(-np.inf, -np.inf)
    assert g == (0.0, 0.0)
    assert ft.grad(fnp.logaddexp, argnums=(0, 1))(-np.inf, 2.0) == (0.0, 1.0)
    assert ft.grad(fnp.logaddexp, argnums=(0, 1))(np.inf, 2.0) == (1.0, 0.0)
    h = ft.hessian(lambda x: fnp.logaddexp(x, 0.0))(800.0)
    assert h == 0.0
    # log1p(exp(x)) written out: finite gradient wherever its value is finite
    assert ft.grad(lambda x: fnp.log1p(fnp.exp(x)))(700.0) == 1.0


def test_sinc_derivatives_at_zero():
    assert fnp.sinc(0.0) == 1.0
    assert ft.grad(fnp.sinc)(0.0) == 0.0
    np.testing.assert_allclose(ft.grad(ft.grad(fnp.sinc))(0.0), -(np.pi**2) / 3, rtol=1e-14)
    d4 = ft.grad(ft.grad(ft.grad(ft.grad(fnp.sinc))))(0.0)
    np.testing.assert_allclose(d4, np.pi**4 / 5, rtol=1e-12)
    # near (not at) 0 the derivative is still accurate, on both sides of the Taylor threshold
    for x in (1e-9, 5e-5, 2e-4, 1e-2, -0.3):
        # the Maclaurin series of sinc', summed far enough for these x
        k = np.arange(1, 12)
        terms = (-1.0) ** k * 2 * k * np.pi ** (2 * k) * x ** (2 * k - 1)
        want = np.sum(terms / np.array([math.factorial(int(2 * j + 1)) for j in k]))
        np.testing.assert_allclose(ft.grad(fnp.sinc)(x), want, rtol=1e-9)


def test_where_pitfall_and_double_where():
    def naive(x):
        return fnp.where(x > 0, fnp.sqrt(x), 0.0)

    def double_where(x):
        ok = x > 0
        return fnp.where(ok, fnp.sqrt(fnp.where(ok, x, 1.0)), 0.0)

    with np.errstate(all="ignore"):
        assert np.isnan(ft.grad(naive)(0.0))
    assert ft.grad(double_where)(0.0) == 0.0
    assert ft.grad(double_where)(4.0) == 0.25


def test_copysign_and_heaviside_derivatives():
    assert ft.grad(lambda x: fnp.copysign(x, -1.0))(2.0) == -1.0
    assert ft.grad(lambda x: fnp.copysign(x, 1.0))(-2.0) == -1.0
    assert ft.grad(lambda h: fnp.heaviside(np.array([-1.0, 0.0, 1.0]), h).sum())(0.5) == 1.0


# ---------------------------------------------------------------------------------------------
# Complex numbers: JAX's convention, checked against finite differences of real and imaginary parts


def _fd_conj_gradient(f, z, eps=1e-6):
    """df/da - i df/db for a real f of z = a + ib, by central differences."""
    z = np.asarray(z, complex)
    out = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = eps
        da = (f(z + e) - f(z - e)) / (2 * eps)
        db = (f(z + 1j * e) - f(z - 1j * e)) / (2 * eps)
        out[idx] = da - 1j * db
    return out


COMPLEX_TO_REAL = {
    "abs2": lambda z: fnp.sum(fnp.real(z * fnp.conj(z))),
    "abs": lambda z: fnp.sum(fnp.abs(z)),
    "real_imag": lambda z: fnp.sum(fnp.real(z) ** 2 * fnp.imag(z)),
    "angle": lambda z: fnp.sum(fnp.angle(z)),
    "holomorphic_then_real": lambda z: fnp.sum(fnp.real(fnp.exp(z) * z + fnp.sin(z) / z)),
    "imag_of_square": lambda z: fnp.sum(fnp.imag(fnp.square(z))),
    "conj_product": lambda z: fnp.sum(fnp.real(fnp.conjugate(z) * (1 + 2j) * z[::-1])),
    "log_abs": lambda z: fnp.sum(fnp.log(fnp.abs(z))),
    "sign": lambda z: fnp.sum(fnp.real(fnp.sign(z) * (0.3 - 2j))),
}


@pytest.mark.parametrize("name", sorted(COMPLEX_TO_REAL))
def test_grad_of_real_function_of_complex_input(name):
    f = COMPLEX_TO_REAL[name]
    z = np.array([0.8 + 0.6j, -1.2 + 0.4j, 0.5 - 1.5j])
    g = ft.grad(f)(z)
    assert g.dtype == np.complex128
    np.testing.assert_allclose(g, _fd_conj_gradient(f, z), rtol=1e-6, atol=1e-8)


def test_complex_gradient_convention_example():
    # JAX's convention: grad(f)(z) = df/da - i df/db, the conjugate of the ascent direction
    assert ft.grad(lambda z: fnp.real(z * fnp.conj(z)))(3.0 + 4.0j) == 6.0 - 8.0j
    np.testing.assert_allclose(ft.grad(fnp.abs)(3.0 + 4.0j), 0.6 - 0.8j, rtol=1e-15)
    assert ft.grad(fnp.abs)(0j) == 0j
    assert ft.grad(fnp.imag)(1.0 + 1.0j) == -1j
    assert ft.grad(fnp.real)(1.0 + 1.0j) == 1.0
    z32 = np.complex64(1 + 2j)
    assert ft.grad(lambda z: fnp.abs(z) ** 2)(z32).dtype == np.complex64


def test_complex_arithmetic_under_jvp_vjp_and_hessian_of_real_parts():
    z = np.array([0.8 + 0.6j, -1.2 + 0.4j])
    w = np.array([0.3 - 0.2j, 1.0 + 1.5j])
    for f in (
        lambda z, w: z * w / (z + 2.0) - fnp.conj(w) ** 2,
        lambda z, w: fnp.exp(z) * fnp.abs(w) + fnp.sqrt(z) - 1j * fnp.real(w),
        lambda z, w: fnp.power(z, w) + fnp.arctan(z) * fnp.imag(w),
    ):
        check_grads(f, (z, w), order=2, seed=5)
    # a real function of the real and imaginary parts: complex gradient = packed real gradient
    f = lambda z: fnp.sum(fnp.real(z) ** 3 * fnp.imag(z) + fnp.abs(z) ** 2)  # noqa: E731
    g = ft.grad(f)(z)
    a, b = z.real, z.imag
    np.testing.assert_allclose(g.real, 3 * a**2 * b + 2 * a, rtol=1e-12)
    np.testing.assert_allclose(-g.imag, a**3 + 2 * b, rtol=1e-12)


def test_complex_vmap_matches_loop():
    zs = RNG.standard_normal((4, 3)) + 1j * RNG.standard_normal((4, 3))
    for fn in (fnp.real, fnp.imag, fnp.conj, fnp.abs, fnp.angle):
        np.testing.assert_array_equal(ft.vmap(fn)(zs), np.stack([fn(z) for z in zs]))
        g = ft.grad(lambda z, fn=fn: fnp.sum(fn(z) * 1.0).real)
        np.testing.assert_allclose(ft.vmap(g)(zs), np.stack([g(z) for z in zs]), rtol=1e-14)


@pytest.mark.parametrize("decimals", [-2, 2])
def test_round_with_decimals_stages(decimals):
    for x in (np.array([123, 456, -789]), np.array([1.2345, -2.5551, 149.5])):
        got = ft.jit(lambda x: fnp.round(x, decimals))(x)
        np.testing.assert_array_equal(got, np.round(x, decimals))
        assert np.asarray(got).dtype == x.dtype


@pytest.mark.parametrize("name", ["power", "floor_divide", "fmod", "remainder", "mod"])
def test_arithmetic_of_two_booleans_is_int8_as_in_numpy(name):
    a, b = np.array([True, True, False]), np.array([True, True, True])
    fn = getattr(fnp, name)
    want = getattr(np, name)(a, b)
    for got in (fn(a, b), ft.jit(fn)(a, b), ft.jit(lambda: fn(a, b))()):
        assert got.dtype == want.dtype == np.int8
        np.testing.assert_array_equal(got, want)
    assert str(ft.make_jaxpr(fn)(a, b).out_avals[0]) == "i8[3]"


@pytest.mark.parametrize(
    "start, stop, num, endpoint",
    [
        ([0.1, 5.0], [0.73, 5.0], 50, True),  # one lane has a zero step: NumPy's other formula
        ([0.0, 1e-310], [1e-320, 1e-310], 7, False),  # denormal steps
        ([0.1, 5.0], [0.73, 5.5], 9, True),
        (0.0, 1.0, 1, True),  # no step: NaN
        (0.0, 1.0, 0, True),
    ],
)
def test_traced_linspace_is_numpys(start, stop, num, endpoint):
    start, stop = np.asarray(start), np.asarray(stop)
    want, want_step = np.linspace(start, stop, num, endpoint=endpoint, retstep=True)

    def f(a, b):
        return fnp.linspace(a, b, num, endpoint=endpoint, retstep=True)

    for got, step in (f(start, stop), ft.jit(f)(start, stop)):
        assert got.tobytes() == want.tobytes()
        np.testing.assert_array_equal(step, want_step)


def test_traced_linspace_to_integers_rounds_down_as_numpy():
    want = np.linspace(-2.0, 2.0, 5, endpoint=False, dtype=int)
    got = ft.jit(lambda a: fnp.linspace(a, 2.0, 5, endpoint=False, dtype=int))(-2.0)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
    with pytest.raises(TypeError):
        ft.jit(lambda a: fnp.linspace(a, 2.0, 5.0))(0.0)


def test_sinc_of_complex_values_under_jit():
    z = np.array([0.5 + 0.1j, 0j, 1e-9 + 1e-9j, -2.0 + 0.5j])
    np.testing.assert_array_equal(ft.jit(fnp.sinc)(z), fnp.sinc(z))
    np.testing.assert_allclose(fnp.sinc(z), np.sinc(z), rtol=1e-15, atol=1e-15)


def test_power_operator_of_tracers_is_numpys_operator():
    # NumPy's ** takes sqrt for 0.5 (its special values and complex bits differ from np.power)
    x = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, 2.0, 1e-300])
    z = np.array([1 + 2j, -3 - 0.5j, 0.25 + 1e-3j])
    with np.errstate(all="ignore"):
        for a in (x, z):
            for e in (0.5, 3, 1, -0.5):
                want = a**e
                got = ft.jit(lambda v, e=e: v**e)(a)
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (a.dtype, e)
        want = x**-1
        assert ft.jit(lambda v: v**-1)(x).tobytes() == want.tobytes()
    # ** 2 is NumPy's square: z * z for complex z (np.power(z, 2) rounds differently), int8
    # for booleans
    for a in (z, x, np.array([True, False]), np.arange(3)):
        want = a**2
        got = ft.jit(lambda v: v**2)(a)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), a.dtype
    assert fnp.square(z).tobytes() == np.square(z).tobytes()
    # ** -1 of complex values is NumPy's reciprocal (not 1 / z), eagerly and under jit
    assert fnp.reciprocal(z).tobytes() == np.reciprocal(z).tobytes()
    assert ft.jit(lambda v: v**-1)(z).tobytes() == (z**-1).tobytes()


@pytest.mark.parametrize(
    "name, big",
    [
        ("less", 256),
        ("greater_equal", -1),
        ("equal", -1),
        ("not_equal", 1000),
        ("greater", 2**70),
        ("less_equal", -(2**70)),
        ("add", 255),
        ("true_divide", 300),
    ],
)
def test_python_ints_beyond_the_dtype_answer_as_numpy(name, big):
    # comparisons with ints out of the dtype's range are exact, as in NumPy 2; in-range
    # arithmetic wraps as NumPy's; where and clip take such ints as NumPy does
    x = np.array([1, 2, 250], np.uint8)
    want = getattr(np, name)(x, big)
    fn = lambda x: getattr(fnp, name)(x, big)  # noqa: E731
    for got in (fn(x), ft.jit(fn)(x), ft.vmap(fn)(x)):
        assert np.asarray(got).dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    c = x > 1
    np.testing.assert_array_equal(fnp.where(c, x, 300), np.where(c, x, 300))
    np.testing.assert_array_equal(fnp.clip(x, 0, 300), np.clip(x, 0, 300))


@pytest.mark.parametrize(
    "dtype, big", [(np.int64, 2**63), (np.uint8, 300), (np.int32, -(2**31) - 1)]
)
def test_python_ints_out_of_the_dtypes_range_overflow_as_in_numpy(dtype, big):
    x = np.arange(3, dtype=dtype)
    for fn in (np.add, np.maximum):
        with pytest.raises(OverflowError):
            fn(x, big)
        with pytest.raises(OverflowError):
            getattr(fnp, fn.__name__)(x, big)
        with pytest.raises(OverflowError):
            ft.jit(lambda x, fn=fn: getattr(fnp, fn.__name__)(x, big))(x)
