"""custom_jvp and custom_vjp through every transformation, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans.core import current_trace, eval_trace
from functrans.errors import NonLinearError, ShapeDtypeMismatchError, TreeStructureError


@ft.custom_jvp
def log1pexp(x):
    return fnp.log1p(fnp.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1 - 1 / (1 + fnp.exp(x)))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# custom_jvp


def test_custom_jvp_rule_is_used_in_every_mode():
    # the naive derivative of log1p(exp(x)) is nan at 1000 (inf / inf); the rule gives 1
    for g in (ft.grad(log1pexp), ft.jit(ft.grad(log1pexp))):
        assert g(1000.0) == 1.0
        np.testing.assert_allclose(g(0.3), sigmoid(0.3))
    _, t = ft.jvp(log1pexp, (1000.0,), (2.0,))
    assert t == 2.0
    x = np.array([-3.0, 0.0, 1000.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(log1pexp))(x), sigmoid(x))
    np.testing.assert_allclose(ft.jacfwd(ft.vmap(log1pexp))(x), np.diag(sigmoid(x)))
    np.testing.assert_allclose(ft.jacrev(ft.vmap(log1pexp))(x), np.diag(sigmoid(x)))
    np.testing.assert_allclose(ft.grad(lambda x: fnp.sum(ft.vmap(log1pexp)(x)))(x), sigmoid(x))


def test_custom_jvp_higher_order_through_a_rule_written_with_fnp():
    s = sigmoid(0.7)
    np.testing.assert_allclose(ft.grad(ft.grad(log1pexp))(0.7), s * (1 - s))
    np.testing.assert_allclose(ft.hessian(log1pexp)(0.7), s * (1 - s))
    np.testing.assert_allclose(ft.jacfwd(ft.jacrev(log1pexp))(0.7), s * (1 - s))


def test_custom_jvp_stages_as_one_equation_and_evaluates_the_function():
    text = str(ft.make_jaxpr(log1pexp)(1.0))
    assert "custom_jvp_call[fun=log1pexp jvp=log1pexp_jvp]" in text
    np.testing.assert_allclose(log1pexp(0.5), np.log1p(np.exp(0.5)))
    np.testing.assert_allclose(ft.jit(log1pexp)(0.5), np.log1p(np.exp(0.5)))
    np.testing.assert_allclose(ft.vmap(log1pexp)(np.array([0.5, 1.0])), np.log1p(np.exp([0.5, 1])))


def test_custom_jvp_pytrees_and_nondiff_argnums():
    @ft.custom_jvp
    def apply(fn, p):
        return {"y": fn(p["a"]) * p["b"]}

    apply.nondiff_argnums = (0,)

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        (p,), (t,) = primals, tangents
        # deliberately scaled by 10 so the test can tell the rule was used
        return apply(fn, p), {"y": 10 * (t["a"] * p["b"] + fn(p["a"]) * t["b"])}

    g = ft.grad(lambda p: apply(fnp.sin, p)["y"])({"a": 1.0, "b": 2.0})
    np.testing.assert_allclose(g["a"], 20.0)
    np.testing.assert_allclose(g["b"], 10 * np.sin(1.0))


def test_defjvps_sums_per_argument_rules():
    @ft.custom_jvp
    def f(x, y):
        return fnp.sin(x) * y

    f.defjvps(lambda tx, out, x, y: fnp.cos(x) * y * tx, lambda ty, out, x, y: fnp.sin(x) * ty)
    gx, gy = ft.grad(f, argnums=(0, 1))(0.4, 3.0)
    np.testing.assert_allclose([gx, gy], [np.cos(0.4) * 3.0, np.sin(0.4)])
    _, t = ft.jvp(f, (0.4, 3.0), (1.0, 1.0))
    np.testing.assert_allclose(t, np.cos(0.4) * 3.0 + np.sin(0.4))


def test_nonlinear_jvp_rule_works_forward_but_not_in_reverse():
    @ft.custom_jvp
    def f(x):
        return x * x

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), t * t  # not linear in t

    assert ft.jvp(f, (3.0,), (2.0,))[1] == 4.0
    with pytest.raises(NonLinearError, match="not linear"):
        ft.grad(f)(3.0)
    assert current_trace() is eval_trace


def test_custom_jvp_errors():
    @ft.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(TypeError, match="defjvp"):
        no_rule(1.0)

    @ft.custom_jvp
    def bad(x):
        return x * 2

    @bad.defjvp
    def bad_jvp(primals, tangents):
        return bad(primals[0]), fnp.stack([tangents[0], tangents[0]])

    with pytest.raises(ShapeDtypeMismatchError, match="tangent output"):
        ft.jvp(bad, (1.0,), (1.0,))

    @ft.custom_jvp
    def takes_fn(n, x):
        return x * n

    takes_fn.nondiff_argnums = (0,)
    takes_fn.defjvp(lambda n, p, t: (takes_fn(n, p[0]), t[0] * n))
    with pytest.raises(TypeError, match="nondiff_argnums.*close"):
        takes_fn(np.ones(2), 1.0)
    assert ft.grad(lambda x: takes_fn(3, x))(1.0) == 3.0


# ---------------------------------------------------------------------------------------------
# custom_vjp


@ft.custom_vjp
def clip_gradient(x):
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1.0, 1.0),))


def test_custom_vjp_bwd_is_used_in_reverse_mode():
    assert ft.grad(lambda x: 3.0 * clip_gradient(x))(2.0) == 1.0
    assert ft.jit(ft.grad(lambda x: 3.0 * clip_gradient(x)))(2.0) == 1.0
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(lambda x: 3.0 * clip_gradient(x)))(x), [1.0, 1.0])
    np.testing.assert_allclose(ft.jacrev(lambda x: 3.0 * clip_gradient(x))(x), np.eye(2))
    # forward mode differentiates the function itself
    assert ft.jvp(lambda x: 3.0 * clip_gradient(x), (2.0,), (1.0,))[1] == 3.0
    np.testing.assert_allclose(ft.jacfwd(lambda x: 3.0 * clip_gradient(x))(x), 3 * np.eye(2))


@ft.custom_vjp
def sin_times(x, y):
    return fnp.sin(x) * y


def _sin_times_fwd(x, y):
    return sin_times(x, y), (fnp.cos(x), fnp.sin(x), y)


def _sin_times_bwd(res, g):
    cos_x, sin_x, y = res
    return (cos_x * y * g, sin_x * g)


sin_times.defvjp(_sin_times_fwd, _sin_times_bwd)


def test_custom_vjp_hessian_and_jacfwd_work_through_it():
    x, y = 0.7, 1.3
    np.testing.assert_allclose(ft.grad(sin_times, argnums=(0, 1))(x, y), (np.cos(x) * y, np.sin(x)))
    h = ft.hessian(sin_times, argnums=(0, 1))(x, y)
    expected = [[-np.sin(x) * y, np.cos(x)], [np.cos(x), 0.0]]
    np.testing.assert_allclose(np.array(h, dtype=float), expected, atol=1e-12)
    np.testing.assert_allclose(ft.jacrev(ft.jacrev(sin_times))(x, y), -np.sin(x) * y)
    np.testing.assert_allclose(ft.jacfwd(ft.jacfwd(sin_times))(x, y), -np.sin(x) * y)
    np.testing.assert_allclose(ft.jacfwd(sin_times)(x, y), np.cos(x) * y)


def test_custom_vjp_under_vmap_both_ways():
    xs, ys = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(ft.vmap(ft.grad(sin_times))(xs, ys), np.cos(xs) * ys)
    total = ft.grad(lambda x: fnp.sum(ft.vmap(sin_times, in_axes=(0, None))(x, 2.0)))(xs)
    np.testing.assert_allclose(total, 2 * np.cos(xs))
    np.testing.assert_allclose(ft.vmap(sin_times)(xs, ys), np.sin(xs) * ys)


def test_function_with_both_rules_uses_each_in_its_mode():
    @ft.custom_vjp
    def f(x):
        return x**2

    # deliberately different rules: forward says 100 x t, reverse says 1000 x g
    f.defvjp(lambda x: (f(x), x), lambda x, g: (1000.0 * x * g,))
    f.defjvp(lambda primals, tangents: (f(primals[0]), 100.0 * primals[0] * tangents[0]))
    assert ft.jvp(f, (2.0,), (1.0,))[1] == 200.0
    assert ft.grad(f)(2.0) == 2000.0
    assert ft.jacfwd(f)(2.0) == 200.0


def test_custom_vjp_none_cotangent_and_errors():
    @ft.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (f(x, y), y), lambda y, g: (y * g, None))
    assert ft.grad(f, argnums=(0, 1))(2.0, 3.0) == (3.0, 0.0)

    @ft.custom_vjp
    def wrong_count(x, y):
        return x * y

    wrong_count.defvjp(lambda x, y: (x * y, None), lambda res, g: (g,))
    with pytest.raises(TypeError, match="one cotangent per"):
        ft.grad(wrong_count)(2.0, 3.0)

    @ft.custom_vjp
    def wrong_tree(x):
        return x["a"]

    wrong_tree.defvjp(lambda x: (x["a"], None), lambda res, g: ((g,),))
    with pytest.raises(TreeStructureError, match="bwd's cotangent"):
        ft.grad(wrong_tree)({"a": 1.0})

    @ft.custom_vjp
    def no_rule(x):
        return x

    with pytest.raises(TypeError, match="defvjp"):
        no_rule(1.0)
    assert current_trace() is eval_trace


def test_printed_program_names_the_custom_vjp_rules():
    @ft.custom_vjp
    def f(x):
        return fnp.sin(x)

    def f_fwd(x):
        return f(x), x

    def f_bwd(x, g):
        return (g * fnp.cos(x),)

    f.defvjp(f_fwd, f_bwd)
    printed = str(ft.make_jaxpr(f)(1.0))
    assert "rules=(fwd=f_fwd, bwd=f_bwd)" in printed and " object at 0x" not in printed
