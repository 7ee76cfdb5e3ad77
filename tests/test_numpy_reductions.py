"""functrans.numpy reductions against NumPy: values over shapes, axes, keepdims and dtypes
(hypothesis), derivatives against central differences in both modes, vmap against a loop,
staged against eager, and the conventions at ties, zeros and NaNs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import check_grads


def _distinct(rng, shape):
    """Values at least ~0.4 apart: no ties, so max/min/sort/median are smooth."""
    n = int(np.prod(shape))
    x = rng.permutation(n) * 0.5 - n * 0.25 + rng.uniform(-0.05, 0.05, n)
    return x.reshape(shape)


def _unit(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape)


def _assert_like_numpy(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "fc":
        tol = 1e-5 if want.dtype.itemsize <= 4 else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# Values: every axis-reduction against NumPy over shapes, axes (int, negative, tuple, None),
# keepdims and dtypes

AXIS_REDUCTIONS = [
    "sum", "prod", "mean", "max", "min", "amax", "amin", "var", "std", "ptp", "median",
    "all", "any", "count_nonzero", "nansum", "nanmean", "nanmax", "nanmin",
]  # fmt: skip
TUPLE_AXES_UNSUPPORTED_BY_NUMPY = {"ptp"}
DTYPES = [np.float64, np.float32, np.int32, np.bool_]


@st.composite
def _axis(draw, ndim, allow_tuple=True):
    kind = draw(st.sampled_from(["none", "int", "tuple"] if allow_tuple else ["none", "int"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(
        st.lists(
            st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda a: a % ndim
        )
    )
    return tuple(axes)


@pytest.mark.parametrize("name", AXIS_REDUCTIONS)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_reduction_values_match_numpy(name, data, seed):
    shape = data.draw(array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    dtype = data.draw(st.sampled_from(DTYPES))
    if name in ("median", "ptp") and dtype == np.bool_:  # NumPy cannot subtract booleans
        dtype = np.float64
    axis = data.draw(_axis(len(shape), allow_tuple=name not in TUPLE_AXES_UNSUPPORTED_BY_NUMPY))
    keepdims = data.draw(st.booleans())
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if name.startswith("nan") and dtype in (np.float64, np.float32) and x.size > 1:
        x.reshape(-1)[rng.random(x.size) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = getattr(np, name)(x, axis=axis, keepdims=keepdims)
        got = getattr(fnp, name)(x, axis=axis, keepdims=keepdims)
    _assert_like_numpy(got, want)


@pytest.mark.parametrize("name", ["var", "std"])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_var_std_ddof_and_dtype(name, data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    axis = data.draw(_axis(len(shape)))
    ddof = data.draw(st.integers(0, 1))
    dtype = data.draw(st.sampled_from([None, np.float32, np.float64]))
    x = np.random.default_rng(seed).standard_normal(shape)
    _assert_like_numpy(
        getattr(fnp, name)(x, axis=axis, ddof=ddof, dtype=dtype),
        getattr(np, name)(x, axis=axis, ddof=ddof, dtype=dtype),
    )


def test_complex_var_is_real():
    z = np.random.default_rng(0).standard_normal((3, 4)) * (1 + 2j)
    _assert_like_numpy(fnp.var(z, axis=1), np.var(z, axis=1))


def test_sum_and_mean_dtypes_follow_numpy():
    i8 = np.arange(6, dtype=np.int8).reshape(2, 3)
    for fn in ("sum", "prod", "mean", "cumsum", "cumprod"):
        _assert_like_numpy(getattr(fnp, fn)(i8, axis=1), getattr(np, fn)(i8, axis=1))
        _assert_like_numpy(
            getattr(fnp, fn)(i8, axis=0, dtype=np.float32),
            getattr(np, fn)(i8, axis=0, dtype=np.float32),
        )


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_quantile_and_percentile_match_numpy(method, data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = data.draw(_axis(len(shape)))
    keepdims = data.draw(st.booleans())
    q = data.draw(
        st.one_of(
            st.floats(0, 1),
            st.lists(st.floats(0, 1), min_size=1, max_size=3),
        )
    )
    x = np.random.default_rng(seed).standard_normal(shape)
    _assert_like_numpy(
        fnp.quantile(x, q, axis=axis, method=method, keepdims=keepdims),
        np.quantile(x, q, axis=axis, method=method, keepdims=keepdims),
    )
    _assert_like_numpy(
        fnp.percentile(x, np.asarray(q) * 100, axis=axis, method=method),
        np.percentile(x, np.asarray(q) * 100, axis=axis, method=method),
    )


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_cumulative_diff_and_arg_reductions_match_numpy(data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(_axis(len(shape), allow_tuple=False))
    x = np.random.default_rng(seed).standard_normal(shape)
    for name in ("cumsum", "cumprod", "argmax", "argmin"):
        _assert_like_numpy(getattr(fnp, name)(x, axis=axis), getattr(np, name)(x, axis=axis))
    keep = data.draw(st.booleans())
    _assert_like_numpy(fnp.argmax(x, axis, keepdims=keep), np.argmax(x, axis, keepdims=keep))
    ax = -1 if axis is None else axis
    n = data.draw(st.integers(0, 3))
    _assert_like_numpy(fnp.diff(x, n, axis=ax), np.diff(x, n, axis=ax))
    _assert_like_numpy(
        fnp.diff(x, axis=ax, prepend=0.5, append=x), np.diff(x, axis=ax, prepend=0.5, append=x)
    )
    b = x > 0
    _assert_like_numpy(fnp.diff(b, axis=ax), np.diff(b, axis=ax))


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_trace_and_average_match_numpy(data, seed):
    shape = data.draw(array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    offset = data.draw(st.integers(-3, 3))
    a1, a2 = data.draw(
        st.lists(
            st.integers(-len(shape), len(shape) - 1),
            min_size=2,
            max_size=2,
            unique_by=lambda a: a % len(shape),
        )
    )
    _assert_like_numpy(fnp.trace(x, offset, a1, a2), np.trace(x, offset, a1, a2))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    w = rng.uniform(0.5, 2.0, shape[axis])
    _assert_like_numpy(fnp.average(x, axis, weights=w), np.average(x, axis, weights=w))
    wf = rng.uniform(0.5, 2.0, shape)
    for got, want in zip(
        fnp.average(x, None, wf, returned=True), np.average(x, None, wf, returned=True)
    ):
        _assert_like_numpy(got, want)
    _assert_like_numpy(fnp.average(x, axis, keepdims=True), np.average(x, axis, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Derivatives (JVP vs central differences, VJP by the dot-product identity, second order),
# vmap vs a loop, and staged vs eager, for every differentiable reduction

X = (3, 4)
DIFFERENTIABLE = {
    "sum-axis1": (lambda x: fnp.sum(x, axis=1), _distinct),
    "sum-keepdims": (lambda x: fnp.sum(x, axis=(0, -1), keepdims=True), _distinct),
    "prod": (lambda x: fnp.prod(x, axis=0), _unit),
    "mean": (lambda x: fnp.mean(x, axis=-1), _distinct),
    "max": (lambda x: fnp.max(x, axis=1), _distinct),
    "min-all": (lambda x: fnp.min(x), _distinct),
    "amax-keepdims": (lambda x: fnp.amax(x, axis=0, keepdims=True), _distinct),
    "var-ddof1": (lambda x: fnp.var(x, axis=0, ddof=1), _distinct),
    "std": (lambda x: fnp.std(x, axis=1), _distinct),
    "ptp": (lambda x: fnp.ptp(x, axis=0), _distinct),
    "average-weights": (
        lambda x: fnp.average(x, axis=1, weights=fnp.exp(x[0])),
        _distinct,
    ),
    "median": (lambda x: fnp.median(x, axis=0), _distinct),
    "median-even": (lambda x: fnp.median(x, axis=1), _distinct),
    "quantile": (lambda x: fnp.quantile(x, [0.2, 0.7], axis=1), _distinct),
    "percentile-all": (lambda x: fnp.percentile(x, 35.0), _distinct),
    "cumsum": (lambda x: fnp.cumsum(x, axis=1), _distinct),
    "cumsum-flat": (lambda x: fnp.cumsum(x), _distinct),
    "cumprod": (lambda x: fnp.cumprod(x, axis=1), _unit),
    "diff": (lambda x: fnp.diff(x, 2, axis=1), _distinct),
    "trace": (lambda x: fnp.trace(x, 1), _distinct),
    "nansum": (lambda x: fnp.nansum(x, axis=0), _distinct),
    "nanmean": (lambda x: fnp.nanmean(x, axis=1), _distinct),
    "nanmax": (lambda x: fnp.nanmax(x, axis=1), _distinct),
    "nanmin": (lambda x: fnp.nanmin(x, axis=0), _distinct),
}


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_reduction_derivatives(name):
    fn, draw = DIFFERENTIABLE[name]
    x = draw(np.random.default_rng(len(name)), X)
    check_grads(fn, (x,), order=2, seed=1)


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_reduction_vmap_jit_and_methods(name):
    fn, draw = DIFFERENTIABLE[name]
    xs = np.stack([draw(np.random.default_rng(b), X) for b in range(3)], axis=1)
    loop = np.stack([np.asarray(fn(xs[:, b])) for b in range(3)])
    _assert_like_numpy(ft.vmap(fn, in_axes=1)(xs), loop)
    _assert_like_numpy(ft.jit(fn)(xs[:, 0]), fn(xs[:, 0]))
    grads = np.stack([ft.grad(lambda x: fnp.sum(fn(x)))(xs[:, b]) for b in range(3)])
    _assert_like_numpy(ft.vmap(ft.grad(lambda x: fnp.sum(fn(x))), in_axes=1)(xs), grads)


def test_integer_and_boolean_results_under_transforms():
    xs = np.stack([_distinct(np.random.default_rng(b), (2, 3, 4)) for b in range(3)], axis=-1)

    def f(x):
        return (
            fnp.argmax(x, axis=1),
            fnp.argmin(x, keepdims=True),
            fnp.all(x > -5, axis=(0, 2)),
            fnp.any(x > 2, axis=-1, keepdims=True),
            fnp.count_nonzero(x > 0, axis=0),
        )

    x = xs[..., 0]
    for g, w in zip(ft.jit(f)(x), f(x), strict=True):
        _assert_like_numpy(g, w)
    batched = ft.vmap(f, in_axes=-1)(xs)
    for k, b in enumerate(batched):
        _assert_like_numpy(b, np.stack([f(xs[..., i])[k] for i in range(3)]))
    grad = ft.grad(lambda x: fnp.sum(x * fnp.argmax(x, axis=0)))(x)
    np.testing.assert_array_equal(grad, np.broadcast_to(np.argmax(x, axis=0), x.shape))


def _methods(x):
    return (
        x.cumsum(axis=1), x.cumprod(), x.var(axis=0, ddof=1), x.std(), x.all(), x.any(axis=0),
        x.trace(), x.argsort(axis=0), x.sum(axis=-1, keepdims=True), x.mean(axis=(0, 1)),
        x.max(axis=0, keepdims=True), x.argmax(axis=1),
    )  # fmt: skip


def test_methods_on_tracers():
    xs = np.stack([_distinct(np.random.default_rng(b), (3, 4)) for b in range(2)])
    x = xs[0]
    want = (
        np.cumsum(x, axis=1), np.cumprod(x), np.var(x, axis=0, ddof=1), np.std(x), np.all(x),
        np.any(x, axis=0), np.trace(x), np.argsort(x, axis=0), np.sum(x, axis=-1, keepdims=True),
        np.mean(x), np.max(x, axis=0, keepdims=True), np.argmax(x, axis=1),
    )  # fmt: skip
    for g, w in zip(_methods(x), want, strict=True):
        _assert_like_numpy(g, w)
    # traced: vmap (BatchTracer) and jvp (JVPTracer) give the same values
    for k, b in enumerate(ft.vmap(_methods)(xs)):
        _assert_like_numpy(b[0], want[k])
    primals, _ = ft.jvp(_methods, (x,), (np.ones_like(x),))
    for g, w in zip(primals, want, strict=True):
        _assert_like_numpy(g, w)
    with pytest.raises(TypeError, match="fnp|functrans.numpy.sort"):
        ft.jit(lambda x: x.sort())(x)


def test_plain_numpy_calls_are_traced():
    x = _distinct(np.random.default_rng(2), (3, 4))

    def f(x):
        return np.sum(np.cumsum(x, axis=0) * np.var(x, axis=1, keepdims=True)) + np.median(x)

    g = ft.grad(f)(x)
    check_grads(f, (x,), order=1)
    assert g.shape == x.shape


# ---------------------------------------------------------------------------------------------
# Conventions


def test_max_min_ties_split_the_derivative_equally():
    x = np.array([[1.0, 3.0, 3.0, 3.0], [2.0, 2.0, 0.0, -1.0]])
    np.testing.assert_allclose(
        ft.grad(lambda x: fnp.sum(fnp.max(x, axis=1)))(x),
        [[0, 1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0, 0]],
    )
    np.testing.assert_allclose(ft.grad(fnp.min)(np.array([2.0, 1.0, 1.0])), [0, 0.5, 0.5])
    # forward mode agrees, and so does the Jacobian of amax/amin along an axis
    _, t = ft.jvp(lambda x: fnp.max(x, axis=1), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, [1.0, 1.0])
    np.testing.assert_allclose(
        ft.grad(lambda x: fnp.ptp(x))(np.array([1.0, 1.0, 5.0, 5.0])), [-0.5, -0.5, 0.5, 0.5]
    )
    np.testing.assert_allclose(
        ft.grad(fnp.nanmax)(np.array([np.nan, 4.0, 4.0, 1.0])), [0.0, 0.5, 0.5, 0.0]
    )


def test_cumprod_and_prod_derivatives_are_exact_with_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    jac = ft.jacrev(fnp.cumprod)(x)
    want = np.zeros((5, 5))
    for i in range(5):
        for j in range(i + 1):
            want[i, j] = np.prod(np.delete(x[: i + 1], j))
    np.testing.assert_array_equal(jac, want)
    np.testing.assert_array_equal(ft.jacfwd(fnp.cumprod)(x), want)
    np.testing.assert_array_equal(ft.grad(fnp.prod)(np.array([2.0, 0.0, 3.0])), [0.0, 6.0, 0.0])
    check_grads(lambda x: fnp.cumprod(x), (x,), order=2)


def test_nan_reductions_give_nan_entries_no_derivative():
    x = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, np.nan]])
    g = ft.grad(lambda x: fnp.nansum(x) + fnp.sum(fnp.nanmean(x[:1], axis=1)))(x)
    np.testing.assert_array_equal(g, [[1.5, 0.0, 1.5], [0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_like_numpy(fnp.nanmax(x, axis=1), np.nanmax(x, axis=1))
    g = ft.grad(lambda x: fnp.nanmax(x, axis=1)[0])(x)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])


def test_median_derivative_goes_to_the_middle_entries():
    x = np.array([5.0, 1.0, 4.0, 2.0])
    np.testing.assert_allclose(ft.grad(fnp.median)(x), [0.0, 0.0, 0.5, 0.5])
    np.testing.assert_allclose(ft.grad(fnp.median)(x[:3]), [0.0, 0.0, 1.0])
    _assert_like_numpy(fnp.median(np.array([1.0, np.nan, 2.0])), np.float64(np.nan))


def test_std_and_var_ddof_gradients_match_the_formula():
    x = _distinct(np.random.default_rng(3), (6,))
    n = x.size
    np.testing.assert_allclose(
        ft.grad(lambda x: fnp.var(x, ddof=1))(x), 2 * (x - x.mean()) / (n - 1), rtol=1e-12
    )
    np.testing.assert_allclose(ft.grad(fnp.std)(x), (x - x.mean()) / (n * np.std(x)), rtol=1e-12)


def test_float32_stays_float32():
    x = _distinct(np.random.default_rng(4), (3, 4)).astype(np.float32)
    for name in ("sum", "mean", "var", "std", "median", "cumsum", "cumprod", "nanmean", "max"):
        fn = getattr(fnp, name)
        assert np.asarray(fn(x, axis=0)).dtype == np.float32, name
        assert ft.grad(lambda x, fn=fn: fnp.sum(fn(x, axis=0)))(x).dtype == np.float32, name


@pytest.mark.parametrize("x", [np.arange(1, 5), np.array([1, 2, 4]), np.array([-1, -2])])
def test_mean_and_var_with_an_integer_dtype_truncate_like_numpy(x):
    for fn, np_fn in ((fnp.mean, np.mean), (fnp.var, np.var)):
        want = np_fn(x, dtype=np.int64)
        for got in (fn(x, dtype=np.int64), ft.jit(lambda x, fn=fn: fn(x, dtype=np.int64))(x)):
            assert got == want and np.asarray(got).dtype == np.int64
