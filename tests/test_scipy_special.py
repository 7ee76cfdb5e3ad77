"""functrans.scipy.special: SciPy's values, derivatives to order 2, vmap, and the stable rules
(logsumexp/softmax with -inf slices, xlogy at 0, expit/softplus at extremes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
import functrans.scipy.special as fsp
from functrans.testing import check_grads

sc = pytest.importorskip("scipy.special")  # the oracle; CI installs it with the `test` extra

RNG = np.random.default_rng(1)


def _assert_like(got, want, what, tol=None):
    got_arr, want_arr = np.asarray(got), np.asarray(want)
    assert got_arr.shape == want_arr.shape, f"{what}: shape {got_arr.shape} != {want_arr.shape}"
    assert got_arr.dtype == want_arr.dtype, f"{what}: dtype {got_arr.dtype} != {want_arr.dtype}"
    if tol is None:
        tol = 1e-5 if want_arr.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got_arr, want_arr, rtol=tol, atol=tol, err_msg=what)


# name -> sampler inside the smooth domain
UNARY = {
    "expit": lambda *s: RNG.standard_normal(s) * 3,
    "logit": lambda *s: RNG.uniform(0.05, 0.95, s),
    "entr": lambda *s: RNG.uniform(0.1, 3.0, s),
    "erf": lambda *s: RNG.standard_normal(s),
    "erfc": lambda *s: RNG.standard_normal(s),
    "gammaln": lambda *s: RNG.uniform(0.3, 5.0, s),
    "digamma": lambda *s: RNG.uniform(0.5, 5.0, s),
    "psi": lambda *s: RNG.uniform(0.5, 5.0, s),
    "softplus": lambda *s: RNG.standard_normal(s) * 3,
}
BINARY = {
    "xlogy": (lambda *s: RNG.standard_normal(s), lambda *s: RNG.uniform(0.3, 3.0, s)),
    "xlog1py": (lambda *s: RNG.standard_normal(s), lambda *s: RNG.uniform(-0.7, 3.0, s)),
}
REDUCING = ("logsumexp", "softmax", "log_softmax")


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_derivatives(name):
    fn, ref, draw = getattr(fsp, name), getattr(sc, name), UNARY[name]
    for x in (draw(2, 3), draw(), draw(4).astype(np.float32)):
        _assert_like(fn(x), ref(x), f"{name}({x.dtype}{np.shape(x)})")
    _assert_like(fn(np.array([1, 2])), ref(np.array([1, 2])), f"{name}(int)")
    check_grads(fn, (draw(2, 3),), order=2, seed=0)
    xs = draw(3, 2)
    np.testing.assert_allclose(ft.vmap(fn)(xs), np.stack([fn(x) for x in xs]), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_and_derivatives(name):
    fn, ref = getattr(fsp, name), getattr(sc, name)
    dx, dy = BINARY[name]
    for x, y in ((dx(2, 3), dy(2, 3)), (dx(2, 3), dy(3)), (dx(), dy()), (dx(3), 2.0)):
        _assert_like(fn(x, y), ref(x, y), f"{name}({np.shape(x)}, {np.shape(y)})")
    x32, y32 = dx(3).astype(np.float32), dy(3).astype(np.float32)
    _assert_like(fn(x32, y32), ref(x32, y32), f"{name}(float32)")
    check_grads(fn, (dx(2, 3), dy(2, 3)), order=2, seed=1)


def test_polygamma():
    x = RNG.uniform(0.5, 4.0, (2, 3))
    for n in (0, 1, 2, 3):
        _assert_like(fsp.polygamma(n, x), sc.polygamma(n, x), f"polygamma({n})")
        check_grads(lambda v, n=n: fsp.polygamma(n, v), (x,), order=2, seed=n)
    _assert_like(fsp.polygamma(1, x.astype(np.float32)), sc.polygamma(1, x).astype(np.float32), "")
    np.testing.assert_allclose(ft.grad(fsp.gammaln)(3.5), sc.digamma(3.5), rtol=1e-14)
    np.testing.assert_allclose(ft.grad(fsp.digamma)(3.5), sc.polygamma(1, 3.5), rtol=1e-14)
    np.testing.assert_allclose(
        ft.grad(ft.grad(fsp.erf))(0.7), -2 * 0.7 * 2 / np.sqrt(np.pi) * np.exp(-0.49), rtol=1e-14
    )
    with pytest.raises(ValueError, match="non-negative"):
        fsp.polygamma(-1, x)


def test_special_values_at_the_edges():
    with np.errstate(all="ignore"):
        x = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, -1.0, np.nan])
        y = np.array([0.0, np.inf, -1.0, np.nan, 2.0, 0.0, -np.inf, 3.0, 1.0])
        np.testing.assert_allclose(fsp.xlogy(x, y), sc.xlogy(x, y), rtol=1e-15)
        np.testing.assert_allclose(fsp.xlog1py(x, y - 1.0), sc.xlog1py(x, y - 1.0), rtol=1e-15)
        e = np.array([0.0, -1.0, 1.0, np.nan, np.inf])
        np.testing.assert_array_equal(fsp.entr(e), sc.entr(e))
        p = np.array([0.0, 1.0, 0.5, 1e-300])
        np.testing.assert_array_equal(fsp.logit(p), sc.logit(p))
        big = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
        np.testing.assert_allclose(fsp.expit(big), sc.expit(big), rtol=1e-15)
        np.testing.assert_allclose(fsp.softplus(big), np.logaddexp(big, 0.0), rtol=1e-15)
        np.testing.assert_allclose(fsp.erfc(np.array([5.0, 10.0])), sc.erfc([5.0, 10.0]))
        np.testing.assert_allclose(
            fsp.gammaln(np.array([-1.5, -0.5, 100.0])), sc.gammaln([-1.5, -0.5, 100.0])
        )


# ---------------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax


def test_logsumexp_matches_scipy():
    a = RNG.standard_normal((2, 3, 4))
    for axis in (None, 0, 1, -1, (0, 2)):
        for keepdims in (False, True):
            _assert_like(
                fsp.logsumexp(a, axis=axis, keepdims=keepdims),
                sc.logsumexp(a, axis=axis, keepdims=keepdims),
                f"axis={axis} keepdims={keepdims}",
            )
    b = RNG.uniform(0.5, 2.0, (3, 4))
    _assert_like(fsp.logsumexp(a, axis=-1, b=b), sc.logsumexp(a, axis=-1, b=b), "b")
    signed_b = RNG.standard_normal((3, 4))
    got = fsp.logsumexp(a, axis=(0, 2), b=signed_b, return_sign=True)
    want = sc.logsumexp(a, axis=(0, 2), b=signed_b, return_sign=True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    a32 = a.astype(np.float32)
    _assert_like(fsp.logsumexp(a32, axis=1), sc.logsumexp(a32, axis=1), "float32")
    # large values do not overflow
    big = np.array([1000.0, 1000.0, -1000.0])
    _assert_like(fsp.logsumexp(big), sc.logsumexp(big), "big")


def test_logsumexp_derivatives():
    a = RNG.standard_normal((3, 4))
    check_grads(lambda v: fsp.logsumexp(v, axis=1), (a,), order=2, seed=0)
    b = RNG.uniform(0.5, 2.0, (3, 4))
    check_grads(lambda v, w: fsp.logsumexp(v, axis=0, b=w), (a, b), order=2, seed=1)
    g = ft.grad(lambda v: fnp.sum(fsp.logsumexp(v, axis=1)))(a)
    np.testing.assert_allclose(g, sc.softmax(a, axis=1), rtol=1e-13)
    # ties in the maximum do not matter (the shift is a constant)
    np.testing.assert_allclose(ft.grad(fsp.logsumexp)(np.array([2.0, 2.0])), [0.5, 0.5])
    np.testing.assert_allclose(ft.grad(fsp.logsumexp)(np.array([1000.0, 0.0])), [1.0, 0.0])
    xs = RNG.standard_normal((5, 3))
    np.testing.assert_allclose(
        ft.vmap(fsp.logsumexp)(xs), [fsp.logsumexp(x) for x in xs], rtol=1e-14
    )
    np.testing.assert_allclose(
        ft.vmap(lambda x: fsp.logsumexp(x, axis=0), in_axes=1)(xs.T),
        [fsp.logsumexp(x) for x in xs],
        rtol=1e-14,
    )


def test_all_minus_inf_slices_give_zero_gradient_not_nan():
    a = np.array([[1.0, 2.0, 3.0], [-np.inf, -np.inf, -np.inf]])
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(fsp.logsumexp(a, axis=1), sc.logsumexp(a, axis=1), rtol=1e-15)
        out, sign = fsp.logsumexp(a, axis=1, return_sign=True)
        np.testing.assert_array_equal(sign, [1.0, 0.0])
    g = ft.grad(lambda v: fnp.sum(fsp.logsumexp(v, axis=1)))(a)
    np.testing.assert_allclose(g[0], sc.softmax(a[0]))
    np.testing.assert_array_equal(g[1], 0.0)
    # forward mode too, and second order
    _, t = ft.jvp(lambda v: fsp.logsumexp(v, axis=1), (a,), (np.ones_like(a),))
    np.testing.assert_allclose(t, [1.0, 0.0])
    h = ft.hessian(fsp.logsumexp)(a[1])
    np.testing.assert_array_equal(h, 0.0)
    # softmax: the empty row is 0 (SciPy: NaN), with zero derivative
    s = fsp.softmax(a, axis=1)
    np.testing.assert_allclose(s[0], sc.softmax(a[0]))
    np.testing.assert_array_equal(s[1], 0.0)
    w = RNG.standard_normal(a.shape)
    g = ft.grad(lambda v: fnp.sum(fsp.softmax(v, axis=1) * w))(a)
    assert np.all(np.isfinite(g)) and np.all(g[1] == 0.0)
    # log_softmax: the empty row is -inf (SciPy: NaN), its derivative that of x (no NaN)
    ls = fsp.log_softmax(a, axis=1)
    np.testing.assert_allclose(ls[0], sc.log_softmax(a[0]))
    np.testing.assert_array_equal(ls[1], -np.inf)
    g = ft.grad(lambda v: fsp.log_softmax(v, axis=1)[1, 0])(a)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    # a single -inf entry in a finite row: exact zero weight, finite gradient
    x = np.array([0.0, -np.inf, 1.0])
    np.testing.assert_allclose(fsp.softmax(x), sc.softmax(x))
    assert np.all(np.isfinite(ft.grad(lambda v: fsp.log_softmax(v)[0])(x)))


def test_softmax_and_log_softmax_match_scipy():
    x = RNG.standard_normal((3, 4)) * 5
    for axis in (None, 0, 1, -1):
        _assert_like(fsp.softmax(x, axis=axis), sc.softmax(x, axis=axis), f"softmax {axis}")
        _assert_like(
            fsp.log_softmax(x, axis=axis), sc.log_softmax(x, axis=axis), f"log_softmax {axis}"
        )
    x32 = x.astype(np.float32)
    _assert_like(fsp.softmax(x32, axis=1), sc.softmax(x32, axis=1), "softmax float32")
    _assert_like(fsp.log_softmax(x32, axis=1), sc.log_softmax(x32, axis=1), "log_softmax f32")
    big = np.array([1000.0, 0.0, -1000.0])
    _assert_like(fsp.softmax(big), sc.softmax(big), "big")
    _assert_like(fsp.log_softmax(big), sc.log_softmax(big), "big")
    for fn in (fsp.softmax, fsp.log_softmax):
        check_grads(lambda v, fn=fn: fn(v, axis=1), (x / 5,), order=2, seed=2)
        xs = RNG.standard_normal((4, 3))
        np.testing.assert_allclose(
            ft.vmap(fn)(xs), np.stack([fn(v) for v in xs]), rtol=1e-14, atol=1e-15
        )


# ---------------------------------------------------------------------------------------------
# Stable rules at 0 and at extremes


def test_xlogy_and_xlog1py_are_finite_at_zero():
    gx, gy = ft.grad(fsp.xlogy, argnums=(0, 1))(0.0, 0.0)
    assert (gx, gy) == (0.0, 0.0)
    gx, gy = ft.grad(fsp.xlogy, argnums=(0, 1))(0.0, 2.0)
    assert gy == 0.0
    np.testing.assert_allclose(gx, np.log(2.0), rtol=1e-15)
    gx, gy = ft.grad(fsp.xlog1py, argnums=(0, 1))(0.0, -1.0)
    assert (gx, gy) == (0.0, 0.0)
    gx, gy = ft.grad(fsp.xlog1py, argnums=(0, 1))(0.0, 1.0)
    assert gy == 0.0
    np.testing.assert_allclose(gx, np.log(2.0), rtol=1e-15)
    # second order too: a KL-style loss at p = 0
    p = np.array([0.0, 0.5, 0.5])
    h = ft.hessian(lambda q: fnp.sum(fsp.xlogy(p, q)))(np.array([0.0, 0.5, 0.5]))
    assert np.all(np.isfinite(h))
    assert ft.grad(fsp.entr)(0.0) == 0.0


def test_expit_softplus_logaddexp_never_overflow_in_the_gradient():
    for x in (-1000.0, -40.0, 0.0, 40.0, 1000.0):
        g = ft.grad(fsp.softplus)(x)
        np.testing.assert_allclose(g, sc.expit(x), rtol=1e-14, atol=1e-300)
        g2 = ft.grad(ft.grad(fsp.softplus))(x)
        assert np.isfinite(g2)
        assert np.isfinite(ft.grad(fsp.expit)(x)) and np.isfinite(ft.grad(ft.grad(fsp.expit))(x))
        assert np.isfinite(ft.grad(lambda v: fnp.logaddexp(v, -v))(x))


def test_missing_scipy_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match=r"pip install functrans\[scipy\]"):
        fsp.erf(np.array([0.5]))
    # the compositions need no SciPy
    np.testing.assert_allclose(fsp.logsumexp(np.zeros(2)), np.log(2.0))
