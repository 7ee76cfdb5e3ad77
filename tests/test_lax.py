"""Structured control flow (functrans.lax) through grad, jvp, vmap and their compositions."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans import lax
from functrans.errors import MissingRuleError


def piecewise(x):
    return lax.cond(x > 0, lambda x: x**2, lambda x: -3.0 * x, x)


def test_cond_follows_the_branch_taken_in_every_mode():
    assert piecewise(2.0) == 4.0 and piecewise(-2.0) == 6.0
    assert ft.grad(piecewise)(2.0) == 4.0 and ft.grad(piecewise)(-2.0) == -3.0
    assert ft.jvp(piecewise, (2.0,), (1.0,))[1] == 4.0
    xs = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(ft.vmap(piecewise)(xs), [3.0, 0.25, 4.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(piecewise))(xs), [-3.0, 1.0, 4.0])
    np.testing.assert_allclose(ft.jacfwd(ft.vmap(piecewise))(xs), np.diag([-3.0, 1.0, 4.0]))
    np.testing.assert_allclose(ft.jit(ft.vmap(piecewise))(xs), [3.0, 0.25, 4.0])


def test_cond_with_pytree_operands_and_static_predicates_under_jit():
    def f(p, flag):
        return lax.cond(flag, lambda p: {"a": p["a"] * 2}, lambda p: {"a": p["a"] + 1}, p)

    assert f({"a": 1.0}, True)["a"] == 2.0
    assert ft.jit(f, static_argnums=1)({"a": 1.0}, False)["a"] == 2.0


def test_switch_clamps_and_selects_under_vmap():
    branches = [lambda x: x, lambda x: 2 * x, lambda x: 3 * x]
    assert lax.switch(1, branches, 3.0) == 6.0
    assert lax.switch(7, branches, 1.0) == 3.0 and lax.switch(-2, branches, 1.0) == 1.0
    out = ft.vmap(lambda i, x: lax.switch(i, branches, x))(np.array([0, 1, 2, 9]), np.ones(4))
    np.testing.assert_allclose(out, [1, 2, 3, 3])
    g = ft.vmap(ft.grad(lambda x, i: lax.switch(i, branches, x) ** 2))(np.ones(3), np.arange(3))
    np.testing.assert_allclose(g, [2, 8, 18])


def sqrt_newton(a):
    # the number of iterations depends on a
    return lax.while_loop(lambda v: fnp.abs(v * v - a) > 1e-12 * a, lambda v: 0.5 * (v + a / v), a)


def test_reverse_mode_through_a_while_loop_with_a_value_dependent_trip_count():
    for a in (2.0, 9.0, 1e4):
        np.testing.assert_allclose(sqrt_newton(a), np.sqrt(a))
        np.testing.assert_allclose(ft.grad(sqrt_newton)(a), 0.5 / np.sqrt(a), rtol=1e-8)
        np.testing.assert_allclose(ft.jvp(sqrt_newton, (a,), (1.0,))[1], 0.5 / np.sqrt(a))
    np.testing.assert_allclose(ft.hessian(sqrt_newton)(4.0), -0.25 * 4.0**-1.5, rtol=1e-6)


def test_while_loop_under_vmap_runs_until_every_lane_is_done():
    a = np.array([2.0, 9.0, 1e4])
    np.testing.assert_allclose(ft.vmap(sqrt_newton)(a), np.sqrt(a))
    np.testing.assert_allclose(ft.vmap(ft.grad(sqrt_newton))(a), 0.5 / np.sqrt(a), rtol=1e-8)
    loop = np.stack([ft.grad(sqrt_newton)(x) for x in a])
    np.testing.assert_allclose(ft.vmap(ft.grad(sqrt_newton))(a), loop)
    # lanes that finish early keep their value
    counts = ft.vmap(
        lambda n: lax.while_loop(lambda s: s[0] < n, lambda s: (s[0] + 1, s[1] * 2.0), (0, 1.0))[1]
    )(np.array([0, 1, 3]))
    np.testing.assert_allclose(counts, [1.0, 2.0, 8.0])


def test_fori_loop_static_and_value_dependent_bounds():
    assert lax.fori_loop(0, 3, lambda i, v: v + i, 0.0) == 3.0
    power = lambda x, n: lax.fori_loop(0, n, lambda i, v: v * x, 1.0)  # noqa: E731
    assert ft.grad(power)(2.0, 3) == 12.0
    out = ft.vmap(power, in_axes=(None, 0))(2.0, np.array([1, 2, 3]))
    np.testing.assert_allclose(out, [2.0, 4.0, 8.0])
    np.testing.assert_allclose(
        ft.vmap(ft.grad(power), in_axes=(None, 0))(2.0, np.arange(4)), [0.0, 1.0, 4.0, 12.0]
    )


def test_scan_matches_the_unrolled_loop_and_its_gradient():
    xs = np.arange(1.0, 5.0)

    def cumprod(xs):
        return lax.scan(lambda c, x: (c * x, c * x), 1.0, xs)

    carry, ys = cumprod(xs)
    assert carry == 24.0
    np.testing.assert_allclose(ys, np.cumprod(xs))
    np.testing.assert_allclose(ft.grad(lambda x: cumprod(x)[0])(xs), 24.0 / xs)
    np.testing.assert_allclose(
        ft.jacrev(lambda x: cumprod(x)[1])(xs), ft.jacfwd(lambda x: fnp.cumprod(x))(xs)
    )
    _, rev = lax.scan(lambda c, x: (c + x, c + x), 0.0, xs, reverse=True)
    np.testing.assert_allclose(rev, np.cumsum(xs[::-1])[::-1])
    carry, none = lax.scan(lambda c, _: (c + 1.0, None), 0.0, None, length=3)
    assert carry == 3.0 and none is None
    with pytest.raises(ValueError, match="disagree"):
        lax.scan(lambda c, x: (c, x), 0.0, xs, length=2)
    batched = ft.vmap(lambda x: cumprod(x)[0])(np.stack([xs, 2 * xs]))
    np.testing.assert_allclose(batched, [24.0, 384.0])


def test_map_sequential_and_batched():
    xs = np.arange(5.0)
    np.testing.assert_allclose(lax.map(lambda x: x**2, xs), xs**2)
    np.testing.assert_allclose(lax.map(lambda x: x**2, xs, batch_size=2), xs**2)
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(lax.map(fnp.sin, x)))(xs), np.cos(xs))


def test_cond_needs_a_scalar_predicate():
    with pytest.raises(TypeError, match="scalar boolean"):
        lax.cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)


# ---------------------------------------------------------------------------------------------
# Staged control flow: a traced predicate inside jit / make_jaxpr


def staged_piecewise(x):
    return lax.cond(fnp.sum(x) > 0, lambda x: fnp.sin(x) * 2.0, lambda x: x**3, x)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_with_a_traced_predicate_in_every_transformation(sign):
    x = sign * np.array([0.5, 1.0])
    loss = lambda x: fnp.sum(staged_piecewise(x))  # noqa: E731
    eager = staged_piecewise(x)
    np.testing.assert_allclose(ft.jit(staged_piecewise)(x), eager)
    np.testing.assert_allclose(ft.jit(ft.grad(loss))(x), ft.grad(loss)(x))
    np.testing.assert_allclose(ft.grad(ft.jit(loss))(x), ft.grad(loss)(x))
    np.testing.assert_allclose(
        ft.jit(ft.jacfwd(staged_piecewise))(x), ft.jacfwd(staged_piecewise)(x)
    )
    np.testing.assert_allclose(
        ft.jit(ft.jacrev(staged_piecewise))(x), ft.jacrev(staged_piecewise)(x)
    )
    np.testing.assert_allclose(ft.hessian(ft.jit(loss))(x), ft.hessian(loss)(x), atol=1e-12)
    both = np.stack([x, -x])
    np.testing.assert_allclose(
        ft.jit(ft.vmap(staged_piecewise))(both), ft.vmap(staged_piecewise)(both)
    )
    np.testing.assert_allclose(
        ft.vmap(ft.jit(staged_piecewise))(both), ft.vmap(staged_piecewise)(both)
    )
    np.testing.assert_allclose(ft.jit(ft.vmap(ft.grad(loss)))(both), ft.vmap(ft.grad(loss))(both))


def test_staged_cond_is_one_equation_and_captures_closures_as_operands():
    w = np.array([[1.0, 2.0], [3.0, 4.0]])

    def f(x):
        return lax.cond(x[0] > 0, lambda x: w @ x, lambda x: -x, x)

    text = str(ft.make_jaxpr(f)(np.ones(2)))
    assert text.count("cond[") == 1
    np.testing.assert_allclose(ft.jit(ft.jacrev(f))(np.ones(2)), w)
    np.testing.assert_allclose(ft.jit(ft.jacrev(f))(-np.ones(2)), -np.eye(2))


def test_staged_switch_clamps_its_index():
    g = lambda i, x: lax.switch(i, [lambda x: x, lambda x: 2 * x, lambda x: x * x], x)  # noqa: E731
    jg = ft.jit(g)
    assert jg(0, 3.0) == 3.0 and jg(1, 3.0) == 6.0 and jg(2, 3.0) == 9.0 and jg(9, 3.0) == 9.0
    assert ft.jit(ft.grad(g, argnums=1))(2, 3.0) == 6.0
    assert ft.jit(ft.grad(g, argnums=1))(-4, 3.0) == 1.0


def test_staged_branches_must_agree():
    with pytest.raises(TypeError, match="same structure, shapes and dtypes"):
        ft.jit(lambda x: lax.cond(x > 0, lambda x: x, lambda x: fnp.stack([x, x]), x))(1.0)


def test_while_loop_with_a_traced_predicate_under_jit():
    a = np.array([4.0, 9.0, 1e4])
    assert "while_loop[" in str(ft.make_jaxpr(sqrt_newton)(2.0))
    np.testing.assert_allclose(ft.jit(sqrt_newton)(2.0), np.sqrt(2.0))
    # reverse mode through a staged loop whose trip count is only known when it runs
    for x in a:
        np.testing.assert_allclose(ft.jit(ft.grad(sqrt_newton))(x), 0.5 / np.sqrt(x), rtol=1e-8)
        np.testing.assert_allclose(ft.grad(ft.jit(sqrt_newton))(x), 0.5 / np.sqrt(x), rtol=1e-8)
        np.testing.assert_allclose(
            ft.jvp(ft.jit(sqrt_newton), (x,), (1.0,))[1], 0.5 / np.sqrt(x), rtol=1e-8
        )
    np.testing.assert_allclose(ft.jit(ft.vmap(sqrt_newton))(a), np.sqrt(a))
    np.testing.assert_allclose(ft.vmap(ft.jit(sqrt_newton))(a), np.sqrt(a))
    np.testing.assert_allclose(
        ft.jit(ft.jacfwd(ft.vmap(sqrt_newton)))(a), np.diag(0.5 / np.sqrt(a)), rtol=1e-8
    )


def test_fori_loop_with_traced_bounds_under_jit():
    def power(x, n):
        return lax.fori_loop(0, n, lambda i, v: v * x, 1.0)

    assert ft.jit(power)(2.0, 5) == 32.0
    assert ft.jit(ft.grad(power))(2.0, 5) == 80.0
    assert ft.jit(power)(2.0, 0) == 1.0


def test_scan_is_one_staged_equation_under_jit_in_every_transformation():
    xs = np.arange(1.0, 5.0)

    def cumprod(xs):
        return lax.scan(lambda c, x: (c * x, c * x), 1.0, xs)

    text = str(ft.make_jaxpr(cumprod)(np.ones(1000)))
    assert text.count("scan[") == 1 and len(text.splitlines()) < 20
    total = lambda x: cumprod(x)[0]  # noqa: E731
    traj = lambda x: cumprod(x)[1]  # noqa: E731
    np.testing.assert_allclose(ft.jit(total)(xs), 24.0)
    np.testing.assert_allclose(ft.jit(ft.grad(total))(xs), 24.0 / xs)
    np.testing.assert_allclose(ft.grad(ft.jit(total))(xs), 24.0 / xs)
    np.testing.assert_allclose(ft.jit(ft.jacrev(traj))(xs), ft.jacfwd(traj)(xs))
    np.testing.assert_allclose(ft.jit(ft.jacfwd(traj))(xs), ft.jacfwd(traj)(xs))
    np.testing.assert_allclose(ft.hessian(ft.jit(total))(xs), ft.hessian(total)(xs))
    both = np.stack([xs, 2 * xs])
    np.testing.assert_allclose(ft.jit(ft.vmap(total))(both), [24.0, 384.0])
    np.testing.assert_allclose(ft.vmap(ft.jit(total))(both), [24.0, 384.0])
    np.testing.assert_allclose(ft.jit(ft.vmap(ft.grad(total)))(both), ft.vmap(ft.grad(total))(both))
    _, rev = ft.jit(lambda x: lax.scan(lambda c, x: (c + x, c + x), 0.0, x, reverse=True))(xs)
    np.testing.assert_allclose(rev, np.cumsum(xs[::-1])[::-1])


def test_staged_scan_of_a_recurrent_network_matches_eager_gradients():
    w = np.array([[0.5, 0.1], [0.2, 0.3]])
    xs = np.random.default_rng(0).normal(size=(6, 2))

    def loss(h0, xs):
        h, hs = lax.scan(lambda h, x: (fnp.tanh(w @ h + x), h), h0, xs)
        return fnp.sum(h) + fnp.sum(hs**2)

    for argnums in (0, 1):
        np.testing.assert_allclose(
            ft.jit(ft.grad(loss, argnums=argnums))(np.ones(2), xs),
            ft.grad(loss, argnums=argnums)(np.ones(2), xs),
            rtol=1e-12,
        )


def test_vmap_of_reverse_mode_through_a_staged_while_loop():
    a = np.array([4.0, 9.0, 1e4])
    expected = 0.5 / np.sqrt(a)
    # lanes finish after different numbers of iterations; each lane's derivative is its own
    np.testing.assert_allclose(ft.jit(ft.vmap(ft.grad(sqrt_newton)))(a), expected, rtol=1e-8)
    np.testing.assert_allclose(ft.vmap(ft.jit(ft.grad(sqrt_newton)))(a), expected, rtol=1e-8)
    np.testing.assert_allclose(ft.vmap(ft.grad(ft.jit(sqrt_newton)))(a), expected, rtol=1e-8)
    np.testing.assert_allclose(
        ft.jit(ft.jacrev(ft.vmap(sqrt_newton)))(a), np.diag(expected), rtol=1e-8
    )

    def power(x, n):
        return lax.fori_loop(0, n, lambda i, v: v * x, 1.0)

    np.testing.assert_allclose(
        ft.jit(ft.vmap(ft.grad(power), in_axes=(None, 0)))(2.0, np.array([3, 2, 0])),
        [12.0, 4.0, 0.0],
    )


# The rule checks (JVP vs finite differences, VJP by the dot-product identity, second order,
# vmap vs a loop) applied to the staged control-flow primitives, through jit.

STAGED = {
    "cond": lambda x: lax.cond(fnp.sum(x) > 0, lambda v: fnp.sin(v) * v, lambda v: v**3, x),
    "switch": lambda x: lax.switch(
        fnp.astype(fnp.sum(x) > 0, np.int64), [lambda v: fnp.exp(v), lambda v: fnp.tanh(v)], x
    ),
    "while": lambda x: lax.while_loop(
        lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.sin(c[1]) + x), (0, x)
    )[1],
    "scan": lambda x: lax.scan(lambda c, xi: (c * xi + fnp.sin(c), c), x, fnp.stack([x, 2 * x]))[1],
}


@pytest.mark.parametrize("name", sorted(STAGED))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_rule_checks_on_staged_control_flow(name, sign):
    from functrans.testing import assert_vmap_matches_loop, check_grads

    f = ft.jit(STAGED[name])
    x = sign * np.array([0.3, 0.7])
    check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    batch = np.stack([x, 1.1 * x, 0.9 * x])
    assert_vmap_matches_loop(f, (batch,))
    assert_vmap_matches_loop(STAGED[name], (batch,))


def test_fori_loop_with_static_bounds_runs_as_python_inside_jit():
    # i is a Python int, as eagerly: a float32 carry stays float32 and jit equals eager exactly
    def f(x):
        return lax.fori_loop(0, 5, lambda i, v: v * 0.5 + i, x)

    x = np.array([0.3, -1.2], np.float32)
    assert ft.jit(f)(x).dtype == np.float32
    np.testing.assert_array_equal(ft.jit(f)(x), f(x))
    h = ft.hessian(lambda x: fnp.sum(fnp.sin(f(x))))
    np.testing.assert_array_equal(ft.jit(h)(x.astype(np.float64)), h(x.astype(np.float64)))


def test_second_derivative_through_a_staged_while_loop():
    # reverse mode through a staged loop records a run-time tape, which cannot be differentiated
    # again: the error says what to use instead, and forward-over-forward works under jit
    def newton_sqrt(a):
        return lax.while_loop(lambda v: fnp.abs(v * v - a) > 1e-12, lambda v: 0.5 * (v + a / v), a)

    want = -0.25 * 2.0**-1.5  # d2/da2 sqrt(a) at 2
    np.testing.assert_allclose(ft.hessian(newton_sqrt)(2.0), want, rtol=1e-9)
    np.testing.assert_allclose(ft.jit(ft.jacfwd(ft.jacfwd(newton_sqrt)))(2.0), want, rtol=1e-9)
    for second in (ft.jit(ft.hessian(newton_sqrt)), ft.grad(ft.jit(ft.grad(newton_sqrt)))):
        with pytest.raises(MissingRuleError, match=r"jacfwd\(jacfwd\(f\)\)"):
            second(2.0)
