"""checkpoint (remat), its policies, checkpoint_name and saved_residuals."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans.errors import NonFiniteError

RNG = np.random.default_rng(0)
W = RNG.normal(size=(4, 4)) / 2
X = RNG.normal(size=4)


def mlp(x):
    return fnp.tanh(W @ fnp.tanh(W @ x))


def loss(f):
    return lambda x: fnp.sum(f(x) ** 2)


POLICIES = [
    None,
    "nothing",
    "everything",
    "dots",
    ft.checkpoint_policies.save_only_these_names("h"),
]


def named_mlp(x):
    return fnp.tanh(W @ ft.checkpoint_name(fnp.tanh(W @ x), "h"))


@pytest.mark.parametrize("policy", POLICIES, ids=["None", "nothing", "everything", "dots", "names"])
def test_checkpoint_changes_no_value_or_derivative(policy):
    f = ft.checkpoint(named_mlp, policy=policy)
    np.testing.assert_allclose(f(X), named_mlp(X))
    expected = ft.grad(loss(named_mlp))(X)
    np.testing.assert_allclose(ft.grad(loss(f))(X), expected, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.grad(loss(f)))(X), expected, rtol=1e-12)
    np.testing.assert_allclose(ft.jvp(f, (X,), (X,))[1], ft.jvp(named_mlp, (X,), (X,))[1])
    np.testing.assert_allclose(ft.jacrev(f)(X), ft.jacfwd(named_mlp)(X), rtol=1e-12)
    np.testing.assert_allclose(ft.hessian(loss(f))(X), ft.hessian(loss(named_mlp))(X), rtol=1e-10)
    xs = RNG.normal(size=(3, 4))
    np.testing.assert_allclose(
        ft.vmap(ft.grad(loss(f)))(xs), np.stack([expected_at(x) for x in xs]), rtol=1e-12
    )
    np.testing.assert_allclose(ft.vmap(f)(xs), np.stack([named_mlp(x) for x in xs]))


def expected_at(x):
    return ft.grad(loss(named_mlp))(x)


def _kinds(report):
    return sorted(r["primitive"] for r in report)


def test_saved_residuals_reports_what_each_policy_keeps():
    def total(f):  # linear outside f, so every residual comes from inside f
        return lambda x: fnp.sum(f(x))

    plain = ft.saved_residuals(total(named_mlp), X)
    assert all(set(r) == {"shape", "dtype", "bytes", "primitive"} for r in plain)
    assert len(plain) > 1

    nothing = ft.saved_residuals(total(ft.checkpoint(named_mlp)), X)
    assert _kinds(nothing) == ["input"]
    assert nothing[0]["shape"] == (4,) and nothing[0]["bytes"] == 32

    dots = ft.saved_residuals(total(ft.checkpoint(named_mlp, policy="dots")), X)
    assert _kinds(dots) == ["dot_general", "dot_general", "input"]

    names = ft.saved_residuals(
        total(ft.checkpoint(named_mlp, policy=ft.checkpoint_policies.save_only_these_names("h"))),
        X,
    )
    assert _kinds(names) == ["input", "name"]
    # the square outside the checkpoint keeps its own residual
    assert "mul" in _kinds(ft.saved_residuals(loss(ft.checkpoint(named_mlp)), X))


def test_checkpoint_recomputes_in_the_backward_pass_even_under_jit():
    calls = []

    def counted(x):
        calls.append(1)  # runs once per trace of the function body
        return fnp.sin(fnp.sin(x))

    f = ft.checkpoint(counted)
    g = ft.jit(ft.grad(lambda x: fnp.sum(f(x))))
    np.testing.assert_allclose(g(X), np.cos(np.sin(X)) * np.cos(X))
    src = g.lower(X).source
    # the backward pass recomputes sin(x) from the input behind the barrier
    assert "recompute_barrier" in src and src.count("np.sin(") >= 1


def test_remat_alias_and_unknown_policy():
    assert ft.remat is ft.checkpoint
    with pytest.raises(ValueError, match="unknown policy"):
        ft.checkpoint(mlp, policy="sometimes")


def test_checkpoint_with_pytrees():
    def f(p, x):
        return {"out": fnp.tanh(p["w"] @ x) * p["b"]}

    p = {"w": W, "b": 2.0}
    g = ft.grad(lambda p: fnp.sum(ft.checkpoint(f)(p, X)["out"]))(p)
    ref = ft.grad(lambda p: fnp.sum(f(p, X)["out"]))(p)
    np.testing.assert_allclose(g["w"], ref["w"])
    np.testing.assert_allclose(g["b"], ref["b"])


def log_at_1(x):
    return fnp.log(x - 1.0)  # NaN below 1: in the forward pass


def sqrt_via_pow(x):
    return fnp.power(x, 0.5) * 2.0  # inf only in the derivative at 0: in the recomputation


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(
    "f, x, where",
    [(log_at_1, [0.5, 2.0], "under linearize"), (sqrt_via_pow, [0.0, 2.0], "backward pass")],
    ids=["forward", "recomputation"],
)
def test_debug_nans_names_the_source_line_inside_a_checkpoint(f, x, where):
    # the checkpoint's forward pass and recomputation evaluate f's staged equations: the error
    # names the line in f that created the value, not the line that called grad
    line = f"test_checkpoint.py:{f.__code__.co_firstlineno + 1}"
    with ft.config.debug_nans(), pytest.raises(NonFiniteError) as info:
        ft.grad(lambda x: fnp.sum(ft.checkpoint(f)(x)))(np.array(x))
    assert line in str(info.value) and where in str(info.value)
    if where == "backward pass":  # an equation recomputed, not transposed
        assert "recomputing 'pow' for a checkpoint" in str(info.value)
        assert "transposing" not in str(info.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_debug_nans_under_jit_names_the_source_line_inside_a_checkpoint():
    # jit stages the checkpoint's forward pass and recomputation from its staged equations: the
    # re-staged equations keep the line they came from (value_and_grad: the NaN value is live)
    line = f"test_checkpoint.py:{log_at_1.__code__.co_firstlineno + 1}"
    g = ft.jit(ft.value_and_grad(lambda x: fnp.sum(ft.checkpoint(log_at_1)(x))))
    with ft.config.debug_nans(), pytest.raises(NonFiniteError) as info:
        g(np.array([0.5, 2.0]))
    assert line in str(info.value)
