"""jit's generated code gives the impls' (eager's) results bit for bit: values, dtype, shape and
memory layout, on arrays and on the Python-float program of scalar signatures.

Covers the `math` functions and `**` of the scalar program (used only where they agree with
NumPy on this machine), integer powers (np.power, as the impl), in-place writes (kept only where
they give the layout NumPy would allocate), programs of constants, negative powers of scalars,
the scalar program's fallback to NumPy, and a hypothesis sweep of unary functions and powers over
dtypes and layouts, jit(grad(f)) included.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans import codegen
from functrans.scipy import special

RNG = np.random.default_rng(7)


def _assert_same(got, want):
    """Bit for bit: values (nans where eager has them, zeros of eager's sign), dtype, shape and,
    for arrays, C-contiguity."""
    got_leaves = ft.tree_util.tree_leaves(got)
    want_leaves = ft.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves, strict=True):
        g_arr, w_arr = np.asarray(g), np.asarray(w)
        assert g_arr.dtype == w_arr.dtype, (g_arr.dtype, w_arr.dtype)
        assert g_arr.shape == w_arr.shape, (g_arr.shape, w_arr.shape)
        if isinstance(w, np.ndarray) and w.ndim:
            assert g_arr.flags.c_contiguous == w.flags.c_contiguous, "memory layout differs"
        np.testing.assert_array_equal(g_arr, w_arr)
        if w_arr.dtype.kind in "fc":  # assert_array_equal takes 0.0 == -0.0
            np.testing.assert_array_equal(_sign_bits(g_arr), _sign_bits(w_arr))


def _sign_bits(a: np.ndarray) -> np.ndarray:
    """The sign bit of every real number in a (real and imaginary parts for complex)."""
    return np.signbit(np.ascontiguousarray(a).reshape(-1).view(a.real.dtype))


def _quiet(fn, *args):
    """fn(*args) without NumPy's warnings (log(0), overflow, ...)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args)


def _spread(n: int, scale: float) -> list[float]:
    return RNG.uniform(-scale, scale, n).tolist()


# ---------------------------------------------------------------------------------------------
# The scalar program's math functions


def test_scalar_tanh_is_numpys_tanh():
    # math.tanh differs from np.tanh in a third of inputs on some CPUs (AVX2 NumPy builds)
    f = fnp.tanh
    g = ft.grad(lambda x: fnp.tanh(x) ** 2)
    jf, jg = ft.jit(f), ft.jit(g)
    for x in _spread(300, 3.0):
        _assert_same(jf(x), f(x))
    for x in _spread(100, 3.0):
        _assert_same(jg(x), g(x))


@pytest.mark.parametrize("name", codegen._MATH_FUNCTIONS)
@pytest.mark.parametrize("use_math", [True, False], ids=["math-if-it-agrees", "numpy-forced"])
def test_scalar_math_function_is_the_impl(name, use_math, monkeypatch):
    if not use_math:  # the NumPy spelling, whatever this machine's math library does
        monkeypatch.setattr(codegen, "_math_agrees", lambda name, impl: False)
    fn = getattr(fnp, name)
    f = lambda x: fn(x) * 0.5 + x  # noqa: E731 - operators after it run on what it returned
    jitted = ft.jit(f)
    if not use_math:
        assert f"np.{fn.__name__}(" in jitted.lower(0.7).compiled.scalar_source
    xs = _spread(200, 4.0) + _spread(100, 60.0) + [0.0, -0.0, 1.0, -1.0, 1e-300, 1e300]
    for x in xs:
        _assert_same(_quiet(jitted, x), _quiet(f, x))


def test_agreement_check_rejects_a_function_one_ulp_off():
    # sqrt is correctly rounded in IEEE arithmetic, so math.sqrt is np.sqrt on every machine
    assert codegen._same_bits(math.sqrt, np.sqrt)
    assert not codegen._same_bits(lambda x: math.nextafter(math.sqrt(x), math.inf), np.sqrt)
    assert not codegen._same_bits(lambda x: x * x * x, lambda x: np.power(x, 3))


# ---------------------------------------------------------------------------------------------
# integer_pow computes np.power, as its impl


def test_cube_of_an_array_is_numpys_power():
    x = RNG.uniform(-3, 3, 2000)
    _assert_same(ft.jit(lambda x: x**3)(x), fnp.power(x, 3))
    g = ft.grad(lambda x: fnp.sum(x**4))  # its derivative is 4 x**3
    _assert_same(ft.jit(g)(x), g(x))


def test_complex_square_is_numpys_power():
    z = RNG.uniform(-3, 3, 200) + 1j * RNG.uniform(-3, 3, 200)
    _assert_same(ft.jit(fnp.square)(z), fnp.square(z))
    _assert_same(ft.jit(lambda z: fnp.power(z, 2))(z), fnp.power(z, 2))


@pytest.mark.parametrize("y", [-3, -2, -1, 0, 2, 3, 4, 5, 7])
def test_scalar_integer_power_is_the_impl(y):
    f = lambda x: fnp.power(x, y)  # noqa: E731 - (x**y on a Python float is Python's)
    jitted = ft.jit(f)
    for x in _spread(200, 3.0) + [0.0, -0.0, 1e-200, -1e200, 1e300]:
        _assert_same(_quiet(jitted, x), _quiet(f, x))


# ---------------------------------------------------------------------------------------------
# Negative powers and programs of constants on the scalar path


def test_negative_powers_of_scalars():
    for f in [
        lambda x: fnp.power(x, -1),
        lambda x: fnp.power(fnp.asarray(x), -2),
        ft.grad(lambda x: x**-2),
        ft.hessian(lambda x: x**-1),
    ]:
        for x in (0.7, -1.3, np.float64(2.5)):
            _assert_same(ft.jit(f)(x), f(x))
    f = lambda x: fnp.power(x, -1)  # noqa: E731 - at 0 Python raises: the NumPy version runs
    _assert_same(_quiet(ft.jit(f), 0.0), _quiet(f, 0.0))


@pytest.mark.parametrize(
    "f",
    [
        lambda: fnp.sum(np.arange(3.0)),
        lambda: fnp.asarray(1.0),
        lambda: fnp.sin(2.0),
        lambda: (fnp.cos(1.0), fnp.asarray(True)),
    ],
    ids=["sum-of-a-constant", "constant", "sin-of-a-literal", "two-outputs"],
)
def test_a_program_of_constants(f):
    _assert_same(ft.jit(f)(), f())


def test_the_two_sources_run_on_their_own():
    # the scalar program's helpers (erf's, erfc's impl) are not confused with the array program's
    f = lambda x: special.erf(2.0 * x) + special.erfc(x * 3.0)  # noqa: E731
    lowered = ft.jit(f).lower(0.7)
    namespace = lowered.namespace
    exec(compile(lowered.source, "<test>", "exec"), namespace)  # noqa: S102
    _assert_same(namespace["program_scalars"](0.7), ft.jit(f)(0.7))
    _assert_same(namespace["program"](np.asarray(0.7))[0], f(0.7))


@pytest.mark.parametrize(
    "f, x",
    [
        (lambda x: fnp.divide(1.0, x), 0.0),
        (lambda x: fnp.log(x), 0.0),
        (lambda x: fnp.log(x), -1.0),
        (lambda x: fnp.exp(x) * 2.0, 1000.0),
        (lambda x: fnp.sqrt(x), -1.0),
        (lambda x: fnp.power(x, -2), 0.0),
        (lambda x: fnp.power(x, 5), 1e100),
    ],
    ids=["1/0", "log(0)", "log(-1)", "exp-overflow", "sqrt(-1)", "0**-2", "pow-overflow"],
)
def test_scalar_program_falls_back_to_numpy_where_python_raises(f, x):
    _assert_same(_quiet(ft.jit(f), x), _quiet(f, x))
    # under np.errstate(all="raise") the NumPy version raises what eager raises
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        f(x)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        ft.jit(f)(x)


# ---------------------------------------------------------------------------------------------
# In-place writes keep eager's memory layout


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "T" and a.ndim > 1:  # a view of a C array with its first two axes swapped
        return np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)
    return np.ascontiguousarray(a)


def test_in_place_write_after_a_fortran_input_keeps_eager_layout():
    x = np.asfortranarray(RNG.standard_normal((64, 64)))
    z = RNG.standard_normal((64, 64))
    f = lambda x, z: fnp.sum(fnp.exp(x) + z, axis=1)  # noqa: E731 - pairwise sums see the layout
    _assert_same(ft.jit(f)(x, z), f(x, z))
    g = lambda x, z: fnp.exp(x) + z  # noqa: E731
    _assert_same(ft.jit(g)(x, z), g(x, z))


@pytest.mark.parametrize("x_layout", ["C", "F", "T"])
@pytest.mark.parametrize("z_layout", ["C", "F", "T"])
def test_in_place_writes_keep_eager_layout(x_layout, z_layout):
    x = _layout(RNG.standard_normal((5, 7)), x_layout)
    z = _layout(RNG.standard_normal((5, 7)), z_layout)
    b = RNG.standard_normal(7)
    fs = [
        lambda x, z: fnp.exp(x) + z,
        lambda x, z: z * fnp.sin(x),
        lambda x, z: fnp.tanh(fnp.exp(x) * z + b) - x,
        lambda x, z: fnp.sum(fnp.cos(x) * z, axis=0),
        lambda x, z: fnp.sum((fnp.exp(x) + z) ** 3, axis=1),
        lambda x, z: fnp.cos(x.T) * z.T,
    ]
    for f in fs:
        _assert_same(ft.jit(f)(x, z), f(x, z))


def test_in_place_write_is_kept_where_layout_cannot_change():
    x, z = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    one_d = ft.jit(lambda x, z: fnp.exp(x) + z).lower(x[0], z[0]).compiled.source
    assert "out=v2)" in one_d, one_d  # a dense vector is C-contiguous: no guard
    unary = ft.jit(lambda x: -fnp.exp(x)).lower(x).compiled.source
    assert "out=v1)" in unary, unary  # no other operand has a say in the layout
    row = ft.jit(lambda x, b: fnp.exp(x) * b).lower(x, z[0]).compiled.source
    assert "flags" not in row, row  # a broadcast row has no say in the layout
    guarded = ft.jit(lambda x, z: fnp.exp(x) + z).lower(x, z).compiled.source
    assert "out=v2 if v2.flags.c_contiguous or v2.strides == a1.strides else None" in guarded


# ---------------------------------------------------------------------------------------------
# A hypothesis sweep: unary functions and integer powers, scalars and arrays, every layout


def _power(y: int):
    return lambda x: fnp.power(x, y)  # (x**y on a Python float would be Python's)


def _composed(f):  # in-place writes into f's result, with operands of x's layout and of C's
    return lambda x, z: f(x) * z + x


def _grad_of(f):
    return ft.grad(lambda x: f(x) * x)


UNARY = {
    "sin": fnp.sin,
    "cos": fnp.cos,
    "tan": fnp.tan,
    "tanh": fnp.tanh,
    "exp": fnp.exp,
    "log": fnp.log,
    "log1p": fnp.log1p,
    "expm1": fnp.expm1,
    "sqrt": fnp.sqrt,
    "arctan": fnp.arctan,
    "sinh": fnp.sinh,
    "abs": fnp.abs,
    "negative": fnp.negative,
    "square": fnp.square,
    "reciprocal": fnp.reciprocal,
    **{f"power{y}": _power(y) for y in (-3, -2, -1, 0, 2, 3, 4, 5, 7)},
}
COMPOSED = {name: _composed(f) for name, f in UNARY.items()}
GRADS = {name: _grad_of(f) for name, f in UNARY.items()}
# one jitted function per case, reused across examples (its cache holds each signature)
JITTED = {name: ft.jit(f) for name, f in UNARY.items()}
JITTED_COMPOSED = {name: ft.jit(f) for name, f in COMPOSED.items()}
JITTED_GRADS = {name: ft.jit(g) for name, g in GRADS.items()}

DTYPES = [np.float32, np.float64, np.complex128]


def _values(dtype, n: int) -> st.SearchStrategy:
    width = 32 if dtype == np.float32 else 64
    real = st.floats(-6, 6, width=width) | st.floats(-(2.0**-10), 2.0**-10, width=width)
    if dtype == np.complex128:
        return st.lists(st.builds(complex, real, real), min_size=n, max_size=n)
    return st.lists(real, min_size=n, max_size=n)


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_jit_of_unary_functions_and_powers_is_eager_bitwise(name, data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    shape = data.draw(st.sampled_from([(), (6,), (3, 4), (4, 3, 2)]), label="shape")
    layout = data.draw(st.sampled_from(["C", "F", "T"]), label="layout")
    n = math.prod(shape)
    x = np.array(data.draw(_values(dtype, n), label="x"), dtype).reshape(shape)
    z = np.array(data.draw(_values(dtype, n), label="z"), dtype).reshape(shape)
    x = _layout(x, layout) if x.ndim else x
    f, jitted = UNARY[name], JITTED[name]
    _assert_same(_quiet(jitted, x), _quiet(f, x))
    _assert_same(_quiet(JITTED_COMPOSED[name], x, z), _quiet(COMPOSED[name], x, z))
    if x.ndim == 0:  # a Python float takes the scalar path, NumPy scalars their own
        scalar = float(x) if dtype == np.float64 else x[()]
        _assert_same(_quiet(jitted, scalar), _quiet(f, scalar))
        if dtype != np.complex128:
            _assert_same(_quiet(JITTED_GRADS[name], scalar), _quiet(GRADS[name], scalar))
