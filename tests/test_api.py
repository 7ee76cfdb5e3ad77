"""Example tests of every public transform: values against analytic derivatives, pytrees,
argnums, has_aux, dtypes, and functrans.numpy under grad."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import functrans as ft
import functrans.api_jacobians as api_jacobians
import functrans.numpy as fnp
from functrans.core import Tracer

RNG = np.random.default_rng(0)
Point = namedtuple("Point", ["x", "y"])


def assert_plain(x):
    """A value handed back to the user: a NumPy array or scalar, never a tracer."""
    assert not isinstance(x, Tracer), f"a tracer escaped: {x!r}"
    assert isinstance(x, (np.ndarray, np.generic)), type(x)


def assert_all_plain(tree):
    for leaf in ft.tree_util.tree_leaves(tree):
        assert_plain(leaf)


# ---------------------------------------------------------------------------------------------
# grad / value_and_grad


def test_grad_scalar_analytic():
    g = ft.grad(lambda x: fnp.sin(x) * x)
    for x in [-1.3, 0.0, 0.5, 2.0]:
        np.testing.assert_allclose(g(x), np.cos(x) * x + np.sin(x), rtol=1e-12)


def test_grad_vector_analytic():
    x = RNG.normal(size=5)
    g = ft.grad(lambda x: fnp.sum(fnp.exp(x) * x**2))(x)
    assert_plain(g)
    assert g.shape == (5,)
    np.testing.assert_allclose(g, np.exp(x) * x**2 + 2 * x * np.exp(x), rtol=1e-12)


def test_value_and_grad():
    x = np.array([1.0, 2.0, 3.0])
    v, g = ft.value_and_grad(lambda x: fnp.sum(fnp.log(x)))(x)
    assert_plain(v)
    assert_plain(g)
    np.testing.assert_allclose(v, np.sum(np.log(x)))
    np.testing.assert_allclose(g, 1 / x)


def test_python_scalars_in():
    gx, gy = ft.grad(lambda x, y: x * y + y**3, argnums=(0, 1))(2.0, 3.0)
    np.testing.assert_allclose(gx, 3.0)
    np.testing.assert_allclose(gy, 2.0 + 27.0)
    y, t = ft.jvp(lambda x: x * x, (3.0,), (1.0,))
    assert_plain(y)
    assert_plain(t)
    np.testing.assert_allclose(t, 6.0)
    np.testing.assert_allclose(ft.jacfwd(lambda x: x**2)(3.0), 6.0)
    np.testing.assert_allclose(ft.jacrev(lambda x: x**2)(3.0), 6.0)


def test_grad_python_float_gives_numpy_scalar():
    g = ft.grad(lambda x: x**3)(2.0)
    assert_plain(g)
    assert np.ndim(g) == 0
    assert np.asarray(g).dtype == np.float64
    np.testing.assert_allclose(g, 12.0)


def test_grad_python_int_in_non_differentiated_argument():
    g = ft.grad(lambda x, n: x**n)(2.0, 3)
    np.testing.assert_allclose(g, 12.0)


@pytest.mark.parametrize("argnums", [0, -2])
def test_argnums_int_and_negative(argnums):
    f = lambda x, y: fnp.sin(x) * y  # noqa: E731
    g = ft.grad(f, argnums=argnums)(0.3, 2.0)
    np.testing.assert_allclose(g, np.cos(0.3) * 2.0)


def test_argnums_tuple():
    f = lambda x, y, z: x * y**2 + z  # noqa: E731
    gs = ft.grad(f, argnums=(0, 1))(2.0, 3.0, 5.0)
    assert isinstance(gs, tuple) and len(gs) == 2
    np.testing.assert_allclose(gs[0], 9.0)
    np.testing.assert_allclose(gs[1], 12.0)
    gs = ft.grad(f, argnums=(-1, 0))(2.0, 3.0, 5.0)
    np.testing.assert_allclose(gs[0], 1.0)
    np.testing.assert_allclose(gs[1], 9.0)
    # a one-element tuple gives a one-element tuple
    gs = ft.grad(f, argnums=(1,))(2.0, 3.0, 5.0)
    assert isinstance(gs, tuple) and len(gs) == 1
    np.testing.assert_allclose(gs[0], 12.0)


def test_grad_has_aux():
    def f(x):
        y = fnp.sum(x**2)
        return y, {"y": y, "n": 3}

    x = np.array([1.0, 2.0])
    g, aux = ft.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g, 2 * x)
    assert aux["n"] == 3
    assert_plain(aux["y"])
    np.testing.assert_allclose(aux["y"], 5.0)
    (v, aux2), g2 = ft.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(v, 5.0)
    np.testing.assert_allclose(g2, 2 * x)
    assert_plain(aux2["y"])


# ---------------------------------------------------------------------------------------------
# pytrees


def test_grad_pytree_inputs():
    params = {
        "w": np.array([1.0, -2.0]),
        "pair": (np.array(0.5), [np.array([3.0])]),
        "pt": Point(np.array(2.0), np.array(-1.0)),
        "none": None,
    }

    def f(p):
        a, (b,) = p["pair"]
        return fnp.sum(p["w"] ** 2) + a * fnp.sum(b) + p["pt"].x * p["pt"].y

    g = ft.grad(f)(params)
    assert set(g) == {"w", "pair", "pt", "none"}
    assert g["none"] is None
    assert isinstance(g["pair"], tuple) and isinstance(g["pair"][1], list)
    assert isinstance(g["pt"], Point)
    np.testing.assert_allclose(g["w"], 2 * params["w"])
    np.testing.assert_allclose(g["pair"][0], 3.0)
    np.testing.assert_allclose(g["pair"][1][0], [0.5])
    np.testing.assert_allclose(g["pt"].x, -1.0)
    np.testing.assert_allclose(g["pt"].y, 2.0)
    assert_all_plain(g)


def test_jvp_pytree_outputs():
    def f(x):
        return {"s": fnp.sin(x), "pair": (x * 2.0, None), "pt": Point(x**2, x)}

    x, t = np.array([0.1, 0.2]), np.array([1.0, -1.0])
    out, tan = ft.jvp(f, (x,), (t,))
    assert isinstance(out["pt"], Point) and isinstance(tan["pt"], Point)
    assert out["pair"][1] is None and tan["pair"][1] is None
    np.testing.assert_allclose(tan["s"], np.cos(x) * t)
    np.testing.assert_allclose(tan["pair"][0], 2 * t)
    np.testing.assert_allclose(tan["pt"].x, 2 * x * t)
    np.testing.assert_allclose(tan["pt"].y, t)
    assert_all_plain((out, tan))


def test_vjp_pytree_inputs_and_outputs():
    def f(a, b):
        return [a * b["u"], fnp.sum(b["v"])]

    a, b = np.array([1.0, 2.0]), {"u": np.array([3.0, 4.0]), "v": np.ones(3)}
    out, vjp_fn = ft.vjp(f, a, b)
    assert isinstance(out, list)
    ct = [np.array([1.0, 10.0]), np.array(2.0)]
    ga, gb = vjp_fn(ct)
    np.testing.assert_allclose(ga, ct[0] * b["u"])
    np.testing.assert_allclose(gb["u"], ct[0] * a)
    np.testing.assert_allclose(gb["v"], 2.0 * np.ones(3))
    assert_all_plain((ga, gb))


# ---------------------------------------------------------------------------------------------
# jvp / vjp / linearize / linear_transpose


def test_jvp_analytic():
    x, t = np.array([0.3, 1.2]), np.array([2.0, 0.5])
    y, ty = ft.jvp(lambda x: fnp.tanh(x) * x, (x,), (t,))
    np.testing.assert_allclose(y, np.tanh(x) * x)
    np.testing.assert_allclose(ty, ((1 - np.tanh(x) ** 2) * x + np.tanh(x)) * t)
    assert_plain(y)
    assert_plain(ty)


def test_jvp_several_primals_and_has_aux():
    def f(x, y):
        return x * y, {"ratio": x / y}

    y, ty, aux = ft.jvp(f, (2.0, 4.0), (1.0, 0.5), has_aux=True)
    np.testing.assert_allclose(y, 8.0)
    np.testing.assert_allclose(ty, 1.0 * 4.0 + 2.0 * 0.5)
    np.testing.assert_allclose(aux["ratio"], 0.5)
    assert_plain(aux["ratio"])


def test_vjp_analytic_and_one_cotangent_per_primal():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    out, vjp_fn = ft.vjp(lambda x, y: fnp.exp(x) * y, x, y)
    np.testing.assert_allclose(out, np.exp(x) * y)
    ct = np.array([0.5, 2.0])
    cts = vjp_fn(ct)
    assert isinstance(cts, tuple) and len(cts) == 2
    np.testing.assert_allclose(cts[0], ct * np.exp(x) * y)
    np.testing.assert_allclose(cts[1], ct * np.exp(x))
    # single primal: still a 1-tuple
    _, vjp1 = ft.vjp(fnp.sin, 0.5)
    (c,) = vjp1(1.0)
    np.testing.assert_allclose(c, np.cos(0.5))


def test_vjp_has_aux():
    out, vjp_fn, aux = ft.vjp(lambda x: (x**2, x + 1.0), 3.0, has_aux=True)
    np.testing.assert_allclose(out, 9.0)
    np.testing.assert_allclose(aux, 4.0)
    assert_plain(aux)
    np.testing.assert_allclose(vjp_fn(1.0)[0], 6.0)


def test_vjp_fn_reusable():
    _, vjp_fn = ft.vjp(lambda x: x**3, np.array([1.0, 2.0]))
    a = vjp_fn(np.array([1.0, 1.0]))[0]
    b = vjp_fn(np.array([2.0, 0.0]))[0]
    np.testing.assert_allclose(a, [3.0, 12.0])
    np.testing.assert_allclose(b, [6.0, 0.0])


def test_linearize_matches_jvp():
    def f(x, y):
        return fnp.sin(x) * fnp.exp(y), x @ y

    x, y = RNG.normal(size=3), RNG.normal(size=3)
    out, f_jvp = ft.linearize(f, x, y)
    ref_out = f(x, y)
    for o, r in zip(out, ref_out):
        np.testing.assert_allclose(o, r)
    for _ in range(3):
        tx, ty = RNG.normal(size=3), RNG.normal(size=3)
        lin = f_jvp(tx, ty)
        _, ref = ft.jvp(f, (x, y), (tx, ty))
        for a, b in zip(lin, ref):
            np.testing.assert_allclose(a, b, rtol=1e-12)
            assert_plain(a)


def test_linear_transpose_is_matrix_transpose():
    A = RNG.normal(size=(4, 3))
    f_t = ft.linear_transpose(lambda x: A @ x, np.zeros(3))
    for _ in range(3):
        ct = RNG.normal(size=4)
        (xt,) = f_t(ct)
        assert_plain(xt)
        np.testing.assert_allclose(xt, A.T @ ct, rtol=1e-12)
    # the full matrix of the transpose, column by column
    T = np.stack([f_t(e)[0] for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(T, A.T, rtol=1e-12)


def test_linear_transpose_two_inputs():
    def f(x, y):
        return 2.0 * x - fnp.sum(y)

    f_t = ft.linear_transpose(f, 1.0, np.zeros(3))
    cx, cy = f_t(np.float64(3.0))
    np.testing.assert_allclose(cx, 6.0)
    np.testing.assert_allclose(cy, [-3.0, -3.0, -3.0])


# ---------------------------------------------------------------------------------------------
# float32 and output types


def test_float32_stays_float32():
    x = np.array([0.5, 1.5], np.float32)
    f = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    g = ft.grad(f)(x)
    assert g.dtype == np.float32
    v, g2 = ft.value_and_grad(f)(x)
    assert np.asarray(v).dtype == np.float32 and g2.dtype == np.float32
    y, t = ft.jvp(lambda x: fnp.sin(x) * 2.0, (x,), (np.ones(2, np.float32),))
    assert y.dtype == np.float32 and t.dtype == np.float32
    out, vjp_fn = ft.vjp(lambda x: x * x, x)
    assert out.dtype == np.float32
    assert vjp_fn(np.ones(2, np.float32))[0].dtype == np.float32
    for jac in (ft.jacfwd, ft.jacrev, ft.jacobian):
        J = jac(lambda x: fnp.exp(x))(x)
        assert J.dtype == np.float32, jac
        np.testing.assert_allclose(J, np.diag(np.exp(x)), rtol=1e-6)
    assert ft.hessian(f)(x).dtype == np.float32
    gs = ft.grad(lambda x: x * 3.0)(np.float32(2.0))
    assert np.asarray(gs).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# control flow, kwargs, stop_gradient


def test_python_control_flow_inside_grad_and_jvp():
    def f(x):
        if x > 0:
            return x**2
        return -3.0 * x

    g = ft.grad(f)
    np.testing.assert_allclose(g(2.0), 4.0)
    np.testing.assert_allclose(g(-2.0), -3.0)
    np.testing.assert_allclose(ft.jvp(f, (2.0,), (1.0,))[1], 4.0)
    np.testing.assert_allclose(ft.jvp(f, (-2.0,), (1.0,))[1], -3.0)

    def loop(x):  # a loop whose trip count depends on the value
        n = 0
        while x < 10.0:
            x = x * 2.0
            n += 1
        return x

    np.testing.assert_allclose(ft.grad(loop)(3.0), 4.0)  # 3 -> 6 -> 12, d/dx = 4
    np.testing.assert_allclose(ft.grad(loop)(1.5), 8.0)


def test_kwargs_passed_through():
    def f(x, scale=1.0, *, offset):
        return scale * x**2 + offset

    g = ft.grad(f)(3.0, scale=2.0, offset=np.array(5.0))
    np.testing.assert_allclose(g, 12.0)
    v, g = ft.value_and_grad(f)(3.0, offset=1.0)
    np.testing.assert_allclose(v, 10.0)
    np.testing.assert_allclose(g, 6.0)
    J = ft.jacfwd(lambda x, *, k: x * k)(np.ones(2), k=np.array([2.0, 3.0]))
    np.testing.assert_allclose(J, np.diag([2.0, 3.0]))
    J = ft.jacrev(lambda x, *, k: x * k)(np.ones(2), k=np.array([2.0, 3.0]))
    np.testing.assert_allclose(J, np.diag([2.0, 3.0]))


def test_stop_gradient():
    np.testing.assert_allclose(ft.grad(lambda x: x * ft.stop_gradient(x))(3.0), 3.0)
    np.testing.assert_allclose(ft.grad(lambda x: ft.stop_gradient(x**2))(3.0), 0.0)
    tree = ft.stop_gradient({"a": np.array(1.0), "b": (np.array([2.0]),)})
    np.testing.assert_allclose(tree["b"][0], [2.0])
    _, t = ft.jvp(lambda x: x + ft.stop_gradient(x) ** 2, (2.0,), (1.0,))
    np.testing.assert_allclose(t, 1.0)
    H = ft.hessian(lambda x: fnp.sum(ft.stop_gradient(x) * x**2))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(H, np.diag([2.0, 4.0]))


# ---------------------------------------------------------------------------------------------
# make_jaxpr


def test_make_jaxpr_text():
    jaxpr = ft.make_jaxpr(lambda x1, x2: x1 * x2 + fnp.sin(x1))(1.0, 2.0)
    text = str(jaxpr)
    for word in ("mul", "sin", "add"):
        assert word in text, text
    assert text.count("f64[]") >= 2, text
    first_line = text.splitlines()[0]
    assert first_line.count("f64[]") == 2, text
    jaxpr32 = str(ft.make_jaxpr(lambda x: x * 2.0)(np.ones(3, np.float32)))
    assert "f32[3]" in jaxpr32, jaxpr32


# ---------------------------------------------------------------------------------------------
# Jacobians


def _f_rn_rm(x):
    return fnp.stack([fnp.sin(x[0]) * x[1], x[0] ** 2 + x[2], fnp.exp(x[1] * x[2])])


def _jac_f_rn_rm(x):
    return np.array(
        [
            [np.cos(x[0]) * x[1], np.sin(x[0]), 0.0],
            [2 * x[0], 0.0, 1.0],
            [0.0, x[2] * np.exp(x[1] * x[2]), x[1] * np.exp(x[1] * x[2])],
        ]
    )


@pytest.mark.parametrize("jac", [ft.jacfwd, ft.jacrev, ft.jacobian])
def test_jacobians_analytic(jac):
    x = np.array([0.3, -0.7, 1.1])
    J = jac(_f_rn_rm)(x)
    assert_plain(J)
    np.testing.assert_allclose(J, _jac_f_rn_rm(x), rtol=1e-12)


@pytest.mark.parametrize("jac", [ft.jacfwd, ft.jacrev, ft.jacobian])
def test_jacobian_block_shapes(jac):
    X = RNG.normal(size=(2, 3))
    J = jac(lambda X: fnp.tanh(X).T)(X)  # out (3, 2), in (2, 3)
    assert J.shape == (3, 2, 2, 3)
    ref = np.zeros((3, 2, 2, 3))
    for i in range(2):
        for j in range(3):
            ref[j, i, i, j] = 1 - np.tanh(X[i, j]) ** 2
    np.testing.assert_allclose(J, ref, rtol=1e-12)


@pytest.mark.parametrize("jac", [ft.jacfwd, ft.jacrev, ft.jacobian])
def test_jacobian_pytrees_nesting(jac):
    def f(a, b):
        return {"p": a * b[0], "q": (fnp.sum(a) + b[1],)}

    a, b = np.array([1.0, 2.0]), (np.array(3.0), np.array([4.0, 5.0, 6.0]))
    J = jac(f, argnums=(0, 1))(a, b)
    # output tree outer, argument tree inner
    assert set(J) == {"p", "q"}
    Jp_a, (Jp_b0, Jp_b1) = J["p"]
    assert Jp_a.shape == (2, 2) and Jp_b0.shape == (2,) and Jp_b1.shape == (2, 3)
    np.testing.assert_allclose(Jp_a, 3.0 * np.eye(2))
    np.testing.assert_allclose(Jp_b0, a)
    np.testing.assert_allclose(Jp_b1, 0.0)
    ((Jq_a, (Jq_b0, Jq_b1)),) = J["q"]
    assert Jq_a.shape == (3, 2) and Jq_b0.shape == (3,) and Jq_b1.shape == (3, 3)
    np.testing.assert_allclose(Jq_a, np.ones((3, 2)))
    np.testing.assert_allclose(Jq_b0, 0.0)
    np.testing.assert_allclose(Jq_b1, np.eye(3))
    assert_all_plain(J)


@pytest.mark.parametrize("jac", [ft.jacfwd, ft.jacrev])
def test_jacobian_has_aux(jac):
    J, aux = jac(lambda x: (x**2, {"m": fnp.sum(x)}), has_aux=True)(np.array([1.0, 3.0]))
    np.testing.assert_allclose(J, np.diag([2.0, 6.0]))
    np.testing.assert_allclose(aux["m"], 4.0)
    assert_plain(aux["m"])


def _spy(monkeypatch):
    calls = []
    for name in ("_forward", "_reverse"):
        orig = getattr(api_jacobians, name)

        def wrapped(*a, _orig=orig, _name=name, **k):
            calls.append(_name)
            return _orig(*a, **k)

        monkeypatch.setattr(api_jacobians, name, wrapped)
    return calls


def test_jacobian_picks_forward_when_inputs_fewer(monkeypatch):
    calls = _spy(monkeypatch)
    x = np.array([0.5, -1.0])
    J = ft.jacobian(lambda x: fnp.concatenate([fnp.sin(x), x**2, x * x[0]]))(x)
    assert calls == ["_forward"]
    ref = np.vstack([np.diag(np.cos(x)), np.diag(2 * x), np.array([[2 * x[0], 0], [x[1], x[0]]])])
    np.testing.assert_allclose(J, ref, rtol=1e-12)
    calls.clear()
    ft.jacobian(lambda x: x * 2.0)(np.ones(3))  # D == M: forward
    assert calls == ["_forward"]


def test_jacobian_picks_reverse_when_outputs_fewer(monkeypatch):
    calls = _spy(monkeypatch)
    x = RNG.normal(size=5)
    J = ft.jacobian(lambda x: fnp.stack([fnp.sum(x**2), fnp.prod(x)]))(x)
    assert calls == ["_reverse"]
    ref = np.stack([2 * x, np.array([np.prod(np.delete(x, i)) for i in range(5)])])
    np.testing.assert_allclose(J, ref, rtol=1e-12)


@pytest.mark.parametrize("jac", [ft.jacfwd, ft.jacrev, ft.jacobian])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 100])
def test_chunk_size_same_jacobian(jac, chunk_size):
    A = RNG.normal(size=(4, 7))

    def f(x, y):
        return fnp.tanh(A @ x) * fnp.sum(y)

    x, y = RNG.normal(size=7), RNG.normal(size=2)
    ref = jac(f, argnums=(0, 1))(x, y)
    got = jac(f, argnums=(0, 1), chunk_size=chunk_size)(x, y)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-12)
    sech2 = 1 - np.tanh(A @ x) ** 2
    np.testing.assert_allclose(got[0], (sech2 * np.sum(y))[:, None] * A, rtol=1e-12)


def test_hessian_and_hvp():
    A = RNG.normal(size=(3, 3))
    A = A + A.T
    f = lambda x: 0.5 * x @ (A @ x) + fnp.sum(x**3)  # noqa: E731
    x = RNG.normal(size=3)
    H = ft.hessian(f)(x)
    np.testing.assert_allclose(H, A + np.diag(6 * x), rtol=1e-12)
    v = RNG.normal(size=3)
    hv = ft.hvp(f, (x,), (v,))
    assert_plain(hv)
    np.testing.assert_allclose(hv, (A + np.diag(6 * x)) @ v, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# functrans.numpy under grad


def test_broadcasting_gradients():
    a, b = RNG.normal(size=(3, 1)), RNG.normal(size=(4,))
    ga, gb = ft.grad(lambda a, b: fnp.sum(a * b + a), argnums=(0, 1))(a, b)
    assert ga.shape == (3, 1) and gb.shape == (4,)
    np.testing.assert_allclose(ga, np.full((3, 1), b.sum() + 4))
    np.testing.assert_allclose(gb, np.full(4, a.sum()))
    gs = ft.grad(lambda s, v: fnp.sum(s * v), argnums=0)(2.0, np.arange(3.0))
    np.testing.assert_allclose(gs, 3.0)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_values_and_grads(axis, keepdims):
    x = RNG.normal(size=(2, 3, 4))
    w_shape = np.sum(x, axis=axis, keepdims=keepdims).shape
    w = RNG.normal(size=w_shape)
    for fname in ("sum", "mean", "max", "min", "prod"):
        f_np, f_fnp = getattr(np, fname), getattr(fnp, fname)
        out = f_fnp(x, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(out, f_np(x, axis=axis, keepdims=keepdims), rtol=1e-12)
        g = ft.grad(lambda x, f=f_fnp: fnp.sum(f(x, axis=axis, keepdims=keepdims) * w))(x)
        # reference gradients; wk: the output weights with the reduced axes kept (size 1)
        wk = w if keepdims or axis is None else np.expand_dims(w, axis)
        if fname == "sum":
            ref = np.broadcast_to(wk, x.shape)
        elif fname == "mean":
            n = x.size // np.sum(x, axis=axis).size
            ref = np.broadcast_to(wk, x.shape) / n
        elif fname in ("max", "min"):
            ext = f_np(x, axis=axis, keepdims=True)
            ref = np.where(x == ext, wk, 0.0)  # random data: no ties
        else:
            p = np.prod(x, axis=axis, keepdims=True)
            ref = wk * p / x
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12, err_msg=fname)


def test_methods_on_tracers():
    x = RNG.normal(size=(2, 3))

    def f(x):
        assert x.shape == (2, 3) and x.ndim == 2
        y = x.T.reshape(6).reshape((2, 3)).sum(axis=0)
        return y.sum() + x.sum() * 2.0 + x.mean()

    g = ft.grad(f)(x)
    np.testing.assert_allclose(g, np.full((2, 3), 3.0 + 1 / 6))

    def h(x):
        return fnp.sum(x.T * np.arange(2.0))

    np.testing.assert_allclose(ft.grad(h)(x), np.array([[0.0] * 3, [1.0] * 3]))


def test_shape_functions_gradients():
    x = RNG.normal(size=(2, 1, 3))
    w = RNG.normal(size=(3, 2))

    def f(x):
        y = fnp.squeeze(x, axis=1)  # (2, 3)
        y = fnp.transpose(y)  # (3, 2)
        y = fnp.reshape(y, (6,))
        y = fnp.expand_dims(y, 0)  # (1, 6)
        return fnp.sum(fnp.reshape(y, (3, 2)) * w)

    g = ft.grad(f)(x)
    np.testing.assert_allclose(g, w.T.reshape(2, 1, 3))
    assert fnp.transpose(x, (2, 0, 1)).shape == (3, 2, 1)


def test_products_gradients():
    A, B = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    v = RNG.normal(size=4)
    gA, gB = ft.grad(lambda A, B: fnp.sum(A @ B), argnums=(0, 1))(A, B)
    np.testing.assert_allclose(gA, np.ones((3, 2)) @ B.T)
    np.testing.assert_allclose(gB, A.T @ np.ones((3, 2)))
    gA2 = ft.grad(lambda A: fnp.sum(fnp.matmul(A, v) ** 2))(A)
    np.testing.assert_allclose(gA2, 2 * np.outer(A @ v, v))
    gv = ft.grad(lambda v: fnp.dot(v, v))(v)
    np.testing.assert_allclose(gv, 2 * v)
    gA3 = ft.grad(lambda A: fnp.sum(fnp.dot(A, B)))(A)
    np.testing.assert_allclose(gA3, np.ones((3, 2)) @ B.T)
    T = RNG.normal(size=(2, 3, 4))
    gT = ft.grad(lambda T: fnp.sum(fnp.tensordot(T, A, axes=([1, 2], [0, 1]))))(T)
    np.testing.assert_allclose(gT, np.broadcast_to(A, (2, 3, 4)))
    out = fnp.tensordot(T, A.T, axes=1)
    np.testing.assert_allclose(out, np.tensordot(T, A.T, axes=1))
    # batched matmul values
    C, D = RNG.normal(size=(5, 2, 3)), RNG.normal(size=(3, 4))
    np.testing.assert_allclose(fnp.matmul(C, D), C @ D, rtol=1e-12)


@pytest.mark.parametrize(
    "idx",
    [
        1,
        -1,
        (0, 2),
        slice(1, None),
        slice(None, None, -1),
        slice(3, 0, -2),
        (slice(None), None, 1),
        (Ellipsis, 0),
        (None, Ellipsis, slice(None, None, -2)),
        (-1, slice(None, 2)),
    ],
)
def test_indexing_values_and_gradients(idx):
    x = RNG.normal(size=(3, 4))
    out = ft.jvp(lambda x: x[idx], (x,), (np.ones_like(x),))[0]
    np.testing.assert_allclose(out, x[idx])
    w = RNG.normal(size=np.shape(x[idx]))
    g = ft.grad(lambda x: fnp.sum(x[idx] * w))(x)
    ref = np.zeros_like(x)
    ref[idx] += w  # basic indexing: no repeated elements, so this is the scatter
    np.testing.assert_allclose(g, ref)


def test_concatenate_stack_where():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(1, 3))
    w = RNG.normal(size=(3, 3))
    ga, gb = ft.grad(lambda a, b: fnp.sum(fnp.concatenate([a, b]) * w), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, w[:2])
    np.testing.assert_allclose(gb, w[2:])
    c = RNG.normal(size=(2, 3))
    ws = RNG.normal(size=(2, 2, 3))
    ga, gc = ft.grad(lambda a, c: fnp.sum(fnp.stack([a, c], axis=1) * ws), argnums=(0, 1))(a, c)
    np.testing.assert_allclose(ga, ws[:, 0])
    np.testing.assert_allclose(gc, ws[:, 1])
    x = np.array([-1.0, 2.0, -3.0, 4.0])
    g = ft.grad(lambda x: fnp.sum(fnp.where(x > 0, x**2, -x)))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 2 * x, -1.0))


def test_plain_numpy_ufuncs_on_tracers():
    def f(x):
        return np.sum(np.sin(x) * np.exp(x))

    x = np.array([0.1, 0.7])
    g = ft.grad(f)(x)
    assert_plain(g)
    np.testing.assert_allclose(g, np.cos(x) * np.exp(x) + np.sin(x) * np.exp(x))
    np.testing.assert_allclose(ft.grad(lambda x: np.sin(x))(0.3), np.cos(0.3))
    _, t = ft.jvp(lambda x: np.tanh(x) + np.multiply(x, x), (0.5,), (1.0,))
    np.testing.assert_allclose(t, 1 - np.tanh(0.5) ** 2 + 1.0)


def test_outputs_never_tracers_across_transforms():
    x = np.array([1.0, 2.0])
    f = lambda x: fnp.sin(x) * 2.0  # noqa: E731
    assert_all_plain(ft.jvp(f, (x,), (x,)))
    out, vjp_fn = ft.vjp(f, x)
    assert_all_plain((out, vjp_fn(x)))
    assert_all_plain(ft.jacfwd(f)(x))
    assert_all_plain(ft.vmap(f)(np.ones((3, 2))))
    assert_plain(ft.grad(lambda x: fnp.sum(f(x)))(x))
    assert_all_plain(ft.linearize(f, x)[1](x))


def test_plain_numpy_functions_on_tracers():
    # __array_function__: np.sum / np.dot / np.transpose on traced values are traced too
    x = RNG.normal(size=(2, 3))
    g = ft.grad(lambda x: np.sum(np.dot(np.transpose(x), x)))(x)
    ref = 2 * np.outer(x.sum(axis=1), np.ones(3))  # d/dX sum(X^T X) = 2 X 1 1^T
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    np.testing.assert_allclose(
        ft.grad(lambda v: np.ones((2, 3)) @ v @ np.ones(2))(np.ones(3)), np.full(3, 2.0)
    )


def test_zero_derivatives_are_arrays_of_the_right_dtype():
    g = ft.grad(lambda x: 1.0)(2.0)
    assert_plain(g)
    np.testing.assert_allclose(g, 0.0)
    g = ft.grad(lambda x: fnp.sum(np.ones(3)))(np.ones(3, np.float32))
    assert g.dtype == np.float32 and g.shape == (3,)
    np.testing.assert_array_equal(g, 0.0)
    gx, gy = ft.grad(lambda x, y: x * 2.0, argnums=(0, 1))(1.0, np.ones(2))
    np.testing.assert_allclose(gx, 2.0)
    assert_plain(gy)
    np.testing.assert_array_equal(gy, np.zeros(2))
    for jac in (ft.jacfwd, ft.jacrev, ft.jacobian):
        J = jac(lambda x: np.ones(2))(np.ones(3))
        assert_plain(J)
        np.testing.assert_array_equal(J, np.zeros((2, 3)))
    _, t = ft.jvp(lambda x: np.ones(2), (1.0,), (1.0,))
    assert_plain(t)
    np.testing.assert_array_equal(t, np.zeros(2))


def test_hessian_has_aux():
    H, aux = ft.hessian(lambda x: (fnp.sum(x**3), x * 2.0), has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(H, np.diag([6.0, 12.0]))
    np.testing.assert_allclose(aux, [2.0, 4.0])
    assert_plain(aux)


def test_make_jaxpr_pytree_inputs_and_matmul():
    text = str(ft.make_jaxpr(lambda d: d["a"] @ d["b"])({"a": np.ones((2, 3)), "b": np.ones(3)}))
    assert "f64[2,3]" in text and "f64[3]" in text and "f64[2]" in text, text


def test_jacfwd_of_complex_inputs_needs_holomorphic():
    z = np.array([1 + 2j, 3 - 1j])
    with pytest.raises(ft.NonDifferentiableInputError, match="holomorphic=True"):
        ft.jacfwd(lambda z: fnp.abs(z) ** 2)(z)
    np.testing.assert_allclose(ft.jacfwd(lambda z: z**2, holomorphic=True)(z), np.diag(2 * z))
    np.testing.assert_allclose(ft.jacrev(lambda z: z**2)(z), np.diag(2 * z))
    # jacobian picks reverse mode for complex inputs: the convention of grad
    np.testing.assert_allclose(ft.jacobian(lambda z: fnp.abs(z) ** 2)(z), np.diag(2 * np.conj(z)))


def test_updating_a_primal_output_in_place_leaves_the_pullback_alone():
    # exp's residual is its output: the returned output must be the user's own copy
    x = np.array([0.5, 1.0])
    y, pullback = ft.vjp(fnp.exp, x)
    want = pullback(np.ones(2))[0].copy()
    y *= 100.0
    np.testing.assert_array_equal(pullback(np.ones(2))[0], want)
    y, f_jvp = ft.linearize(lambda x: fnp.exp(x).reshape(2, 1), x)
    want = f_jvp(np.ones(2)).copy()
    y *= 100.0
    np.testing.assert_array_equal(f_jvp(np.ones(2)), want)


def test_a_basis_of_one_vector_is_not_batched(monkeypatch):
    # jacrev of a scalar output and jacfwd of a scalar input need one pass: no vmap (size 1)
    def no_vmap(*args, **kwargs):
        raise AssertionError("vmap over a basis of one vector")

    monkeypatch.setattr(api_jacobians, "vmap_flat", no_vmap)
    x = np.array([0.3, -1.2, 2.0])
    scalar_out = lambda x: fnp.sum(fnp.sin(x) * x)  # noqa: E731
    np.testing.assert_allclose(ft.jacrev(scalar_out)(x), ft.grad(scalar_out)(x), rtol=1e-15)
    curve = lambda s: {"a": fnp.sin(s * x), "b": s**2}  # noqa: E731
    jac = ft.jacfwd(curve)(0.5)
    np.testing.assert_allclose(jac["a"], x * np.cos(0.5 * x), rtol=1e-15)
    assert jac["b"].shape == () and jac["b"] == 1.0
    row = ft.jacrev(lambda m: fnp.reshape(fnp.sum(m**2), (1,)))(np.ones((2, 2)))
    assert row.shape == (1, 2, 2)
    np.testing.assert_array_equal(row, 2 * np.ones((1, 2, 2)))


@pytest.mark.parametrize("transform", ["vjp", "linearize", "vjp of jit"])
def test_pullbacks_do_not_see_later_updates_of_the_inputs(transform):
    # the residuals of sin(x) * x include x: updating x in place must not change the pullback
    def f(x):
        return fnp.sin(x) * x

    x = np.array([1.0, 2.0])
    want = np.cos(x) * x + np.sin(x)
    if transform == "linearize":
        _, apply = ft.linearize(f, x)
    else:
        _, apply = ft.vjp(ft.jit(f) if transform == "vjp of jit" else f, x)
    x[:] = 0.0
    got = apply(np.ones(2))
    np.testing.assert_allclose(got[0] if transform != "linearize" else got, want)


def test_make_jaxpr_traces_keyword_arguments_as_inputs():
    closed = ft.make_jaxpr(lambda x, y: x * y)(1.0, y=np.ones(2))
    assert [str(a) for a in closed.in_avals] == ["f64[]", "f64[2]"]
    assert closed.consts == []
    np.testing.assert_array_equal(closed(3.0, np.arange(2.0))[0], [0.0, 3.0])


def test_make_jaxpr_static_arguments_as_in_jit():
    def f(x, n=2):
        return x * n

    with pytest.raises(ValueError, match=r"static_argnums \[1\] name no parameter"):
        ft.make_jaxpr(lambda x: x, static_argnums=1)
    # by position or by name, passed positionally or by keyword: a fixed value, not an input
    for closed in (
        ft.make_jaxpr(f, static_argnums=1)(np.ones(2), n=3),
        ft.make_jaxpr(f, static_argnames="n")(np.ones(2), 3),
        ft.make_jaxpr(f, static_argnums=-1)(np.ones(2), 3),
    ):
        assert [str(a) for a in closed.in_avals] == ["f64[2]"]
        np.testing.assert_array_equal(closed(np.ones(2))[0], [3.0, 3.0])


@pytest.mark.parametrize("transform", ["vjp", "linearize"])
def test_pullbacks_keep_no_copy_of_inputs_they_do_not_need(transform):
    # only residuals that are (views of) inputs are copied: sum keeps none
    import gc
    import weakref

    x = np.ones(1000)
    if transform == "vjp":
        _, apply = ft.vjp(fnp.sum, x)
    else:
        _, apply = ft.linearize(fnp.sum, x)
    ref = weakref.ref(x)
    del x
    gc.collect()
    assert ref() is None  # the returned function does not keep the input alive
    assert np.asarray(apply(1.0) if transform == "vjp" else apply(np.ones(1000))).sum() > 0


@pytest.mark.parametrize("transform", ["vjp", "linearize", "grad", "jvp"])
def test_aux_outputs_are_owned_by_the_caller(transform):
    # aux = w itself, also a residual of w * w: updating it changes neither w nor the pullback
    w = np.array([1.0, 2.0, 3.0])

    def f(w):
        return fnp.sum(w * w), w

    if transform == "vjp":
        _, apply, aux = ft.vjp(f, w, has_aux=True)
    elif transform == "linearize":
        _, apply, aux = ft.linearize(f, w, has_aux=True)
    elif transform == "grad":
        _, aux = ft.grad(f, has_aux=True)(w)
    else:
        _, _, aux = ft.jvp(f, (w,), (np.ones(3),), has_aux=True)
    assert not np.shares_memory(aux, w)
    aux *= 0.0
    np.testing.assert_array_equal(w, [1.0, 2.0, 3.0])
    if transform == "vjp":
        np.testing.assert_array_equal(apply(1.0)[0], [2.0, 4.0, 6.0])
    elif transform == "linearize":
        assert apply(np.ones(3)) == 12.0


def test_matrix_arguments_enter_as_plain_arrays():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])

    def f(a):
        return fnp.sum(a * a)

    plain = np.asarray(m)
    assert ft.grad(f)(m).tolist() == (2 * plain).tolist()
    assert ft.jit(f)(m) == ft.vjp(f, m)[0] == f(plain) == 30.0
    assert type(ft.vmap(lambda a: a * a)(m)) is np.ndarray


def test_jacrev_takes_holomorphic_as_jax_does():
    z = np.array([1.0 + 2.0j, -0.5 + 0.1j])
    want = np.diag(3 * z**2)
    np.testing.assert_allclose(ft.jacrev(lambda z: z**3, holomorphic=True)(z), want)
    np.testing.assert_allclose(ft.jacfwd(lambda z: z**3, holomorphic=True)(z), want)


def test_hessian_of_a_holomorphic_function():
    z = np.array([1.0 + 2.0j, 0.5 - 1.0j])
    np.testing.assert_allclose(
        ft.hessian(lambda z: fnp.sum(z**3), holomorphic=True)(z), np.diag(6 * z), rtol=1e-14
    )
