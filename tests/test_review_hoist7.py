"""Review of commit 3dd172b: loop-invariant code motion for reverse-mode scan residuals
(control_flow/scan.py _hoist_invariants, used by _scan_partial_eval and _split_scan_eqn).

Derivatives through the hoisted scans (jit(grad), grad(jit), checkpoint with policies, vmap,
jacfwd/jacrev under jit, nested scans, cond/switch inside scans and scans inside conds, custom
rules, linalg, reverse, tuple carries, xs=None) agreed with eager grad in every case tried, and
so did the shared cond residual slots. Each test below fails on a bug of the hoisting itself.
"""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans import lax
from functrans.errors import NonFiniteError

L = 3


# ---------------------------------------------------------------------------------------------
# 1. An effect inside a sub-program is hoisted out of the loop. _hoist_invariants keeps an
#    equation in the loop only if `eqn.prim.effectful`, which is set for debug_print alone: a
#    cond, scan (or while_loop) equation whose inputs are the body's consts is moved before the
#    loop with the debug.print in its branch / body, so it prints once instead of once per step.
#    jit(f) prints L times, and so did jit(grad(f)) before the commit.


def _print_in_cond(w, c0):
    def body(c, x):
        def branch(w):
            ft.debug.print("effect {}", fnp.sum(w))
            return fnp.exp(w)

        v = lax.cond(fnp.sum(w) > 0, branch, lambda w: w, w)  # (staged: a traced predicate)
        return fnp.sin(v @ c + x), fnp.sum(c)

    c, ys = lax.scan(body, c0, np.arange(float(L)))
    return fnp.sum(c) + fnp.sum(ys)


def _print_in_inner_scan(w, c0):
    def body(c, x):
        def inner(a, _):
            ft.debug.print("effect {}", fnp.sum(a))
            return a, None

        v = lax.scan(inner, fnp.exp(w), None, length=1)[0]
        return fnp.sin(v @ c + x), fnp.sum(c)

    c, ys = lax.scan(body, c0, np.arange(float(L)))
    return fnp.sum(c) + fnp.sum(ys)


def _count_prints(capsys, fn, *args):
    capsys.readouterr()
    fn(*args)
    return capsys.readouterr().out.count("effect ")


@pytest.mark.parametrize("f", [_print_in_cond, _print_in_inner_scan], ids=["cond", "inner_scan"])
@pytest.mark.parametrize("how", ["jit_grad", "grad_jit", "jit_vjp"])
def test_print_in_a_const_only_subprogram_runs_once_per_step(capsys, f, how):
    w, c0 = np.eye(2) * 0.5, np.ones(2)
    assert _count_prints(capsys, ft.jit(f), w, c0) == L  # (works)
    g = {
        "jit_grad": ft.jit(ft.grad(f, argnums=1)),
        "grad_jit": ft.grad(ft.jit(f), argnums=1),
        "jit_vjp": ft.jit(lambda w, c: ft.vjp(f, w, c)[1](1.0)),
    }[how]
    assert _count_prints(capsys, g, w, c0) == L


@pytest.mark.parametrize("f", [_print_in_cond, _print_in_inner_scan], ids=["cond", "inner_scan"])
def test_print_in_a_const_only_subprogram_runs_every_step_under_checkpoint(capsys, f):
    """(before the commit: L prints in the forward pass and L more in the recomputation)"""
    w, c0 = np.eye(2) * 0.5, np.ones(2)
    assert _count_prints(capsys, ft.grad(ft.checkpoint(f), argnums=1), w, c0) >= L


# ---------------------------------------------------------------------------------------------
# 2. debug_nans loses the source line of a hoisted operation. _forward_program (the trace rule)
#    forwards the hoisted equations without setting core.debug_eqn, so the restaged equation is
#    attributed to user_location() at partial-evaluation time: the lax.scan call line, not the
#    line of the log. _inline_program (split_program's rule: checkpoint) builds new Eqns without
#    copying `source`, so the report says "created at unknown (turn debug_nans on before
#    tracing...)" although it was on. Before the commit all of these named the log's line.


def _log_in_body(w, c0):
    def body(c, x):
        r = fnp.log(w - 2.0)  # NaN from finite inputs for w < 2 (loop-invariant: hoisted)
        return fnp.sin(r * c + x), fnp.sum(c)

    c, ys = lax.scan(body, c0, np.linspace(0.0, 1.0, L))
    return fnp.sum(c) + fnp.sum(ys)


_LOG_LINE = "test_review_hoist7.py:" + str(_log_in_body.__code__.co_firstlineno + 2)


@pytest.mark.parametrize("how", ["jit_grad", "grad_jit", "checkpoint", "jit_checkpoint"])
def test_debug_nans_names_the_line_of_a_hoisted_operation(how):
    g = {
        "jit_grad": ft.jit(ft.grad(_log_in_body, argnums=1)),
        "grad_jit": ft.grad(ft.jit(_log_in_body), argnums=1),
        "checkpoint": ft.grad(ft.checkpoint(_log_in_body), argnums=1),
        "jit_checkpoint": ft.jit(ft.grad(ft.checkpoint(_log_in_body), argnums=1)),
    }[how]
    w, c0 = np.array([1.0, 3.0]), np.ones(2)
    with ft.config.debug_nans(), np.errstate(invalid="ignore"):
        with pytest.raises(NonFiniteError, match="primitive 'log'") as info:
            g(w, c0)
    assert _LOG_LINE in str(info.value), str(info.value)


# ---------------------------------------------------------------------------------------------
# 3. Memory: a residual that depends only on the loop's consts is still stacked per step when
#    its work reads a constant of the body program (a NumPy array a JVP rule created: sort's
#    index offsets, eigh's masks). _hoist_invariants counts the body's constvars as varying
#    (only the known consts and the outputs of equations on them are invariant), so sort's
#    int64 gather indices of a const W, or eigh's 1/(l_j - l_i) matrix, are kept L times while
#    sort(W) / the eigenvectors next to them are kept once. JAX's scan partial evaluation treats
#    the known body's consts as known and hoists these. docs/advanced.md: "Residuals that depend
#    only on values the loop does not change ... are computed once before the loop and kept
#    once, not once per step".

LM = 20
_XL = np.linspace(-1.0, 1.0, LM)
_W4 = np.random.RandomState(0).randn(4, 4) * 0.4


def _sort_rnn(w, c0):
    def body(c, x):
        return fnp.tanh(fnp.sort(w, axis=1) @ c + x), fnp.sum(c)

    c, ys = lax.scan(body, c0, _XL)
    return fnp.sum(c) + fnp.sum(ys)


def _eigh_rnn(w, c0):
    def body(c, x):
        return fnp.tanh(fnp.linalg.eigh(w + w.T)[1] @ c * x), fnp.sum(c)

    c, ys = lax.scan(body, c0, _XL)
    return fnp.sum(c) + fnp.sum(ys)


@pytest.mark.parametrize("f", [_sort_rnn, _eigh_rnn], ids=["sort", "eigh"])
@pytest.mark.parametrize("checkpointed", [False, True], ids=["plain", "checkpoint_everything"])
def test_invariant_residual_reading_a_body_constant_is_not_stacked(f, checkpointed):
    fn = ft.checkpoint(f, policy="everything") if checkpointed else f
    res = ft.saved_residuals(fn, _W4, np.linspace(-0.5, 0.5, 4))
    stacked = [(r["shape"], r["primitive"]) for r in res if r["shape"] == (LM, 4, 4)]
    assert not stacked, [(r["shape"], r["primitive"]) for r in res]


# ---------------------------------------------------------------------------------------------
# Found while fixing the above: jit's passes looked at a primitive's own effect flag only, so a
# scan or cond whose body prints, with its outputs unused, was removed as dead code (eagerly it
# prints). ir.has_effects looks into the programs an equation holds.


@pytest.mark.parametrize("construct", ["scan", "cond"])
def test_jit_keeps_an_unused_loop_or_branch_that_prints(construct, capsys):
    def f(x, p):
        if construct == "scan":

            def body(c, xi):
                ft.debug.print("step {}", xi)
                return c, xi

            lax.scan(body, x, np.arange(3.0))
        else:
            lax.cond(p > 0, lambda x: (ft.debug.print("yes {}", x), x)[1], lambda x: x, x)
        return x * 2.0

    f(1.0, 1.0)
    eager = capsys.readouterr().out
    assert eager
    ft.jit(f)(1.0, 1.0)
    assert capsys.readouterr().out == eager
