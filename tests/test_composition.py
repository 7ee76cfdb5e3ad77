"""Composition suite: the same derivative computed several ways must agree, with analytic results
where they are known. Covers Hessians by every mode pair, jacfwd == jacrev, higher-order grads,
perturbation confusion, and vmap composed with every differentiation transform."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp

RNG = np.random.default_rng(2)
TOL = dict(rtol=1e-10, atol=1e-12)


def tree_allclose(a, b, **tol):
    la, ta = ft.tree_util.tree_flatten(a)
    lb, tb = ft.tree_util.tree_flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y)
        np.testing.assert_allclose(x, y, **(tol or TOL))


# ---------------------------------------------------------------------------------------------
# Hessians: four mode combinations and the analytic result

A_SYM = RNG.normal(size=(4, 4))
A_SYM = A_SYM + A_SYM.T
V4 = RNG.normal(size=4)


def _h_sin_x2(x):
    return np.diag(2 * np.sin(x) + 4 * x * np.cos(x) - x**2 * np.sin(x))


def _h_quad_exp(x):
    return A_SYM + np.diag(np.exp(x))


def _h_logsumexp(x):
    p = np.exp(x) / np.sum(np.exp(x))
    return np.diag(p) - np.outer(p, p)


def _h_tanh_layer(W):
    # f(W) = sum_i tanh(z_i), z = W v: d2f/dW_ij dW_kl = delta_ik * tanh''(z_i) v_j v_l
    z = W @ V4
    t2 = -2 * np.tanh(z) * (1 - np.tanh(z) ** 2)
    n, m = W.shape
    H = np.zeros((n, m, n, m))
    for i in range(n):
        H[i, :, i, :] = t2[i] * np.outer(V4, V4)
    return H


HESSIAN_CASES = {
    "sin_x2": (lambda x: fnp.sum(fnp.sin(x) * x**2), _h_sin_x2, (4,)),
    "quad_exp": (lambda x: 0.5 * x @ (A_SYM @ x) + fnp.sum(fnp.exp(x)), _h_quad_exp, (4,)),
    "logsumexp": (lambda x: fnp.log(fnp.sum(fnp.exp(x))), _h_logsumexp, (4,)),
    "tanh_layer": (lambda W: fnp.sum(fnp.tanh(W @ V4)), _h_tanh_layer, (3, 4)),
}

MODE_PAIRS = {
    "fwd_over_rev": lambda f: ft.jacfwd(ft.jacrev(f)),
    "rev_over_fwd": lambda f: ft.jacrev(ft.jacfwd(f)),
    "rev_over_rev": lambda f: ft.jacrev(ft.jacrev(f)),
    "fwd_over_fwd": lambda f: ft.jacfwd(ft.jacfwd(f)),
    "hessian": ft.hessian,
    "jacobian_of_grad": lambda f: ft.jacobian(ft.grad(f)),
}


@pytest.mark.parametrize("mode", sorted(MODE_PAIRS))
@pytest.mark.parametrize("case", sorted(HESSIAN_CASES))
def test_hessians_agree_with_analytic(case, mode):
    f, h_ref, shape = HESSIAN_CASES[case]
    x = RNG.normal(size=shape)
    H = MODE_PAIRS[mode](f)(x)
    assert H.shape == shape + shape
    np.testing.assert_allclose(H, h_ref(x), rtol=1e-9, atol=1e-11)


def test_hessian_of_two_arguments_nested_blocks():
    def f(x, y):
        return fnp.sum(x**2 * y) + fnp.sum(y**3)

    x, y = RNG.normal(size=2), RNG.normal(size=2)
    for hess in (ft.hessian, lambda f, argnums: ft.jacrev(ft.jacfwd(f, argnums), argnums)):
        H = hess(f, argnums=(0, 1))(x, y)
        (Hxx, Hxy), (Hyx, Hyy) = H
        np.testing.assert_allclose(Hxx, np.diag(2 * y), **TOL)
        np.testing.assert_allclose(Hxy, np.diag(2 * x), **TOL)
        np.testing.assert_allclose(Hyx, np.diag(2 * x), **TOL)
        np.testing.assert_allclose(Hyy, np.diag(6 * y), **TOL)


def test_hvp_agrees_with_hessian_times_vector():
    f, _, shape = HESSIAN_CASES["tanh_layer"]
    W, T = RNG.normal(size=shape), RNG.normal(size=shape)
    hv = ft.hvp(f, (W,), (T,))
    H = ft.hessian(f)(W)
    np.testing.assert_allclose(hv, np.tensordot(H, T, axes=2), **TOL)
    # and the reverse-over-forward way of computing it
    hv2 = ft.grad(lambda w: ft.jvp(f, (w,), (T,))[1])(W)
    np.testing.assert_allclose(hv2, hv, **TOL)


# ---------------------------------------------------------------------------------------------
# jacfwd == jacrev on random functions of several inputs and outputs (pytrees)

UNARY = {
    "sin": (fnp.sin,),
    "tanh": (fnp.tanh,),
    "exp": (lambda z: fnp.exp(0.3 * z),),
    "square": (lambda z: z * z,),
    "cos": (fnp.cos,),
}


@st.composite
def random_problem(draw):
    n = draw(st.integers(1, 4))
    m = draw(st.integers(1, 3))
    p = draw(st.integers(1, 4))
    ops = draw(st.lists(st.sampled_from(sorted(UNARY)), min_size=3, max_size=3))
    seed = draw(st.integers(0, 2**31 - 1))
    return n, m, p, ops, seed


def _make_function(n, m, p, ops, rng):
    A = rng.normal(size=(p, n))
    B = rng.normal(size=(p, m))
    u, v, w = (UNARY[o][0] for o in ops)

    def f(params, y):
        x, s = params["x"], params["s"]
        z = u(A @ x) + v(B @ y) * s
        return {"z": z, "pair": (fnp.sum(w(z)) * s, fnp.outer(x, y) * s)}

    return f


@given(random_problem())
def test_jacfwd_equals_jacrev_random(problem):
    n, m, p, ops, seed = problem
    rng = np.random.default_rng(seed)
    f = _make_function(n, m, p, ops, rng)
    params = {"x": rng.normal(size=n), "s": rng.normal()}
    y = rng.normal(size=m)
    jf = ft.jacfwd(f, argnums=(0, 1))(params, y)
    jr = ft.jacrev(f, argnums=(0, 1))(params, y)
    jj = ft.jacobian(f, argnums=(0, 1))(params, y)
    tree_allclose(jf, jr)
    tree_allclose(jf, jj)
    # block shapes: out.shape + in.shape
    assert jf["z"][0]["x"].shape == (p, n)
    assert jf["z"][1].shape == (p, m)
    assert jf["pair"][1][0]["s"].shape == (n, m)
    assert jf["pair"][0][0]["s"].shape == ()
    # one column checked against a jvp, one row against a vjp
    t_y = rng.normal(size=m)
    zero_params = {"x": np.zeros(n), "s": np.zeros(())}
    _, tan = ft.jvp(f, (params, y), (zero_params, t_y))
    np.testing.assert_allclose(tan["z"], jf["z"][1] @ t_y, **TOL)
    _, vjp_fn = ft.vjp(f, params, y)
    ct = {"z": rng.normal(size=p), "pair": (np.array(0.0), np.zeros((n, m)))}
    ct_params, ct_y = vjp_fn(ct)
    np.testing.assert_allclose(ct_params["x"], ct["z"] @ jr["z"][0]["x"], **TOL)
    np.testing.assert_allclose(ct_y, ct["z"] @ jr["z"][1], **TOL)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_jacfwd_equals_jacrev_matrix_inputs(r, c, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(r, c))
    v = rng.normal(size=c)

    def f(W, v):
        h = fnp.tanh(W @ v)
        return h[:, None] * W + fnp.sum(h**2)

    jf = ft.jacfwd(f, argnums=(0, 1))(W, v)
    jr = ft.jacrev(f, argnums=(0, 1))(W, v)
    tree_allclose(jf, jr)
    assert jf[0].shape == (r, c, r, c) and jf[1].shape == (r, c, c)


# ---------------------------------------------------------------------------------------------
# higher-order grads, closures, perturbation confusion

THIRD = {
    "sin_x": (lambda x: fnp.sin(x) * x, lambda x: -np.cos(x) * x - 3 * np.sin(x)),
    "exp2x": (lambda x: fnp.exp(2.0 * x), lambda x: 8 * np.exp(2 * x)),
    "x4": (lambda x: x**4, lambda x: 24 * x),
    "tanh": (fnp.tanh, lambda x: -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2)),
    "log": (fnp.log, lambda x: 2 / x**3),
}


@pytest.mark.parametrize("name", sorted(THIRD))
def test_third_derivative(name):
    f, d3 = THIRD[name]
    g3 = ft.grad(ft.grad(ft.grad(f)))
    for x in (0.3, 1.1, 2.0):
        np.testing.assert_allclose(g3(x), d3(x), rtol=1e-9, atol=1e-12)
    # the same by forward-over-forward-over-reverse
    f3 = ft.jacfwd(ft.jacfwd(ft.grad(f)))
    np.testing.assert_allclose(f3(0.7), d3(0.7), rtol=1e-9)


def test_nested_grad_with_closures():
    # g(x) = d/dy [x * y^2] at y = x  = 2 x^2;  g'(x) = 4x
    def g(x):
        return ft.grad(lambda y: x * y**2)(x)

    np.testing.assert_allclose(ft.grad(g)(1.5), 6.0)
    # h(x) = d/dy sin(x y) at y = 1  = x cos(x);  h'(x) = cos x - x sin x
    h = lambda x: ft.grad(lambda y: fnp.sin(x * y))(1.0)  # noqa: E731
    x = 0.8
    np.testing.assert_allclose(h(x), x * np.cos(x))
    np.testing.assert_allclose(ft.grad(h)(x), np.cos(x) - x * np.sin(x), **TOL)
    np.testing.assert_allclose(ft.jvp(h, (x,), (1.0,))[1], np.cos(x) - x * np.sin(x), **TOL)


@pytest.mark.parametrize(
    "d",
    [
        lambda f: ft.grad(f),
        lambda f: lambda x: ft.jvp(f, (x,), (1.0,))[1],
        lambda f: ft.jacfwd(f),
        lambda f: ft.jacrev(f),
    ],
    ids=["grad", "jvp", "jacfwd", "jacrev"],
)
@pytest.mark.parametrize(
    "outer",
    [
        lambda f: ft.grad(f),
        lambda f: lambda x: ft.jvp(f, (x,), (1.0,))[1],
        lambda f: ft.jacfwd(f),
        lambda f: ft.jacrev(f),
    ],
    ids=["grad", "jvp", "jacfwd", "jacrev"],
)
def test_perturbation_confusion(outer, d):
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 everywhere; a confused implementation gives 2
    def f(x):
        return x * d(lambda y: x + y)(1.0)

    for x in (0.0, 1.0, -2.5):
        np.testing.assert_allclose(outer(f)(x), 1.0)

    # Siskind & Pearlmutter: d/dx [x * d/dy (x * y) at y=2] = d/dx [x^2] = 2x
    def g(x):
        return x * d(lambda y: x * y)(2.0)

    np.testing.assert_allclose(outer(g)(3.0), 6.0)


# ---------------------------------------------------------------------------------------------
# vmap composed with differentiation


def _sigmoid(z):
    return 1.0 / (1.0 + fnp.exp(-z))


def _logistic_loss(w, x, y):
    p = _sigmoid(fnp.dot(w, x))
    return -(y * fnp.log(p) + (1.0 - y) * fnp.log(1.0 - p))


@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_per_example_gradients_vmap_equals_loop(batch, dim, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=dim)
    X = rng.normal(size=(batch, dim))
    Y = (rng.random(batch) > 0.5).astype(float)
    per_ex = ft.vmap(ft.grad(_logistic_loss), in_axes=(None, 0, 0))(w, X, Y)
    assert per_ex.shape == (batch, dim)
    loop = np.stack([ft.grad(_logistic_loss)(w, X[i], Y[i]) for i in range(batch)])
    np.testing.assert_allclose(per_ex, loop, **TOL)
    sig = 1 / (1 + np.exp(-(X @ w)))
    np.testing.assert_allclose(per_ex, (sig - Y)[:, None] * X, rtol=1e-9, atol=1e-12)
    # grad of the summed vmapped loss is the sum of the per-example gradients
    total = ft.grad(lambda w: fnp.sum(ft.vmap(_logistic_loss, in_axes=(None, 0, 0))(w, X, Y)))(w)
    np.testing.assert_allclose(total, per_ex.sum(axis=0), **TOL)


@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([0, 1]),
    st.sampled_from([0, 1, -1]),
    st.integers(0, 2**31 - 1),
)
def test_vmap_equals_loop_random(batch, n, in_axis, out_axis, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, n))
    x = rng.normal(size=(batch, n) if in_axis == 0 else (n, batch))
    c = rng.normal(size=3)

    def f(x, c):
        return fnp.tanh(A @ x) * c + fnp.max(x)

    out = ft.vmap(f, in_axes=(in_axis, None), out_axes=out_axis)(x, c)
    ref = np.stack([f(np.take(x, i, axis=in_axis), c) for i in range(batch)], axis=out_axis)
    np.testing.assert_allclose(out, ref, **TOL)


def _f_vec(x):
    return fnp.stack([fnp.sin(x[0]) * x[1], fnp.sum(x**2), fnp.exp(x[2] * x[0])])


def test_jacfwd_of_vmap():
    X = RNG.normal(size=(4, 3))
    J = ft.jacfwd(ft.vmap(_f_vec))(X)  # (4, 3, 4, 3): block diagonal in the batch
    assert J.shape == (4, 3, 4, 3)
    for i in range(4):
        for k in range(4):
            ref = ft.jacrev(_f_vec)(X[i]) if i == k else np.zeros((3, 3))
            np.testing.assert_allclose(J[i, :, k, :], ref, **TOL)
    np.testing.assert_allclose(ft.jacrev(ft.vmap(_f_vec))(X), J, **TOL)


def test_vmap_of_jacrev_and_jacfwd():
    X = RNG.normal(size=(5, 3))
    Jr = ft.vmap(ft.jacrev(_f_vec))(X)
    Jf = ft.vmap(ft.jacfwd(_f_vec))(X)
    assert Jr.shape == (5, 3, 3)
    for i in range(5):
        x = X[i]
        ref = np.array(
            [
                [np.cos(x[0]) * x[1], np.sin(x[0]), 0.0],
                2 * x,
                [x[2] * np.exp(x[2] * x[0]), 0.0, x[0] * np.exp(x[2] * x[0])],
            ]
        )
        np.testing.assert_allclose(Jr[i], ref, **TOL)
    np.testing.assert_allclose(Jf, Jr, **TOL)


def test_vmap_of_hessian():
    f = HESSIAN_CASES["sin_x2"][0]
    X = RNG.normal(size=(3, 4))
    H = ft.vmap(ft.hessian(f))(X)
    assert H.shape == (3, 4, 4)
    for i in range(3):
        np.testing.assert_allclose(H[i], _h_sin_x2(X[i]), rtol=1e-9, atol=1e-11)
    H1 = ft.vmap(ft.hessian(f), in_axes=1)(X.T)
    np.testing.assert_allclose(H1, H, **TOL)


def test_jvp_of_vmap_and_vmap_of_jvp():
    X, T = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    y, t = ft.jvp(ft.vmap(_f_vec), (X,), (T,))
    y2, t2 = ft.vmap(lambda x, t: ft.jvp(_f_vec, (x,), (t,)))(X, T)
    np.testing.assert_allclose(y, y2, **TOL)
    np.testing.assert_allclose(t, t2, **TOL)
    for i in range(4):
        np.testing.assert_allclose(t[i], ft.jacfwd(_f_vec)(X[i]) @ T[i], **TOL)
    # one primal, many tangents: vmap over the tangent only
    tans = ft.vmap(lambda t: ft.jvp(_f_vec, (X[0],), (t,))[1])(T)
    np.testing.assert_allclose(tans, T @ ft.jacfwd(_f_vec)(X[0]).T, **TOL)


def test_vmap_of_vmap():
    X = RNG.normal(size=(2, 3, 4))
    out = ft.vmap(ft.vmap(lambda v: fnp.sum(fnp.sin(v) * v)))(X)
    np.testing.assert_allclose(out, np.sum(np.sin(X) * X, axis=-1), **TOL)
    out = ft.vmap(ft.vmap(_f_vec, in_axes=1), in_axes=2)(RNG.normal(size=(3, 2, 5)))
    assert out.shape == (5, 2, 3)
    # vmap(vmap(grad)) = per-element gradients of a 2-D batch
    G = ft.vmap(ft.vmap(ft.grad(lambda v: fnp.sum(v**3))))(X)
    np.testing.assert_allclose(G, 3 * X**2, **TOL)


def test_linearize_under_vmap():
    X, T = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    # vmap over the tangents of one linearization
    _, f_jvp = ft.linearize(_f_vec, X[0])
    tans = ft.vmap(f_jvp)(T)
    np.testing.assert_allclose(tans, T @ ft.jacfwd(_f_vec)(X[0]).T, **TOL)
    # linearize inside a vmapped function (a different point per batch element)
    out = ft.vmap(lambda x, t: ft.linearize(_f_vec, x)[1](t))(X, T)
    ref = np.stack([ft.jvp(_f_vec, (X[i],), (T[i],))[1] for i in range(4)])
    np.testing.assert_allclose(out, ref, **TOL)


def test_grad_of_vmap_of_grad():
    # d/dw sum_i d/dx_i loss(w, x_i): a mixed second derivative through vmap
    def loss(w, x):
        return fnp.sum(fnp.sin(w * x))

    w, X = RNG.normal(size=3), RNG.normal(size=(5, 3))
    g = ft.grad(lambda w: fnp.sum(ft.vmap(ft.grad(loss, argnums=1), in_axes=(None, 0))(w, X)))(w)
    # d/dx sin(w x) = w cos(w x); d/dw of that = cos(w x) - w x sin(w x)
    ref = np.sum(np.cos(w * X) - w * X * np.sin(w * X), axis=0)
    np.testing.assert_allclose(g, ref, **TOL)
