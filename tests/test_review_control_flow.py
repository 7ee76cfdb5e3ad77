"""Review: control flow (functrans.lax) and checkpoint under transformations.

Each test failed on a bug found by an adversarial review (session 6). The expected values come
from the same computation without the construct at issue (unrolled, or not checkpointed, or
eager instead of jit), from the math, and from what JAX does on the same program (JAX is not
needed to run these tests). The last two (control flow inside checkpoint, and nested under
jit(grad)) were fixed by letting the program-level partial evaluation
(control_flow/programs.py split_program) split a cond or scan equation with its own rule.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans import lax

XS = np.array([0.5, -0.7, 1.1])


# ---------------------------------------------------------------------------------------------
# 1. checkpoint of a function that contains lax.scan / lax.cond cannot be differentiated:
#    _Split (checkpoint.py) splits the staged JVP with split_program, equation by equation, so
#    a scan/cond equation that reads both primals and tangents makes its primal outputs
#    "unknown" and `split_program` trips its assertion. jax.checkpoint of a scan or cond
#    differentiates in both modes.


def _scan_fn(c0, xs):
    c, ys = lax.scan(lambda c, x: (fnp.sin(c * x) + c, c * c), c0, xs)
    return c + fnp.sum(ys)


def _cond_fn(c0, xs):
    return lax.cond(c0 > 0, lambda c: fnp.sin(c) * c, lambda c: c**3, c0) * xs[0]


@pytest.mark.parametrize("fn", [_scan_fn, _cond_fn], ids=["scan", "cond"])
@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_checkpoint_of_control_flow_is_differentiable(fn, mode):
    ck = ft.checkpoint(fn)
    if mode == "grad":
        got = ft.grad(ck)(0.4, XS)
        want = ft.grad(fn)(0.4, XS)
    else:
        got = ft.jvp(lambda c: ck(c, XS), (0.4,), (1.0,))
        want = ft.jvp(lambda c: fn(c, XS), (0.4,), (1.0,))
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 2. checkpoint of a function that closes over a traced value: checkpoint_call_p only receives
#    the explicit arguments, so a captured tracer leaks into the staged program (jit:
#    LeakedTracerError), and eagerly with the cache off, reverse mode recurses forever
#    (RecursionError) although the cached path returns the right value. JAX closure-converts.


def _closure_fn(w):
    return ft.checkpoint(lambda x: fnp.sin(w * x))(2.0)


def _scan_closure_fn(c0):
    def body(c, x):
        return ft.checkpoint(lambda x: fnp.sin(c * x))(x), c

    c, ys = lax.scan(body, c0, XS)
    return c + fnp.sum(ys)


def _scan_no_checkpoint(c0):
    c, ys = lax.scan(lambda c, x: (fnp.sin(c * x), c), c0, XS)
    return c + fnp.sum(ys)


def test_checkpoint_closure_under_jit():
    np.testing.assert_allclose(ft.jit(_closure_fn)(0.3), math.sin(0.6), rtol=1e-14)


def test_checkpoint_closure_under_jit_grad():
    np.testing.assert_allclose(ft.jit(ft.grad(_closure_fn))(0.3), 2 * math.cos(0.6), rtol=1e-14)


def test_checkpoint_closure_in_scan_body_under_jit():
    np.testing.assert_allclose(
        ft.jit(ft.grad(_scan_closure_fn))(0.4), ft.grad(_scan_no_checkpoint)(0.4), rtol=1e-12
    )


def test_checkpoint_closure_grad_with_eager_cache_off(eager_cache_off):  # (conftest)
    np.testing.assert_allclose(ft.grad(_closure_fn)(0.3), 2 * math.cos(0.6), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# 3. Reverse mode inside jit through nested control flow (cond or switch inside scan, scan
#    inside cond, scan inside scan) fails with NonLinearError / LeakedTracerError: the partial
#    evaluation of the outer construct (split_program in control_flow/programs.py, used by
#    _scan_partial_eval / _cond_partial_eval) puts the whole inner equation, primal part
#    included, into the "linear" program. Eager grad and jit(jacfwd) give the right value;
#    JAX's jit(grad) works on all of these.


def _cond_in_scan(c0):
    return lax.scan(
        lambda c, x: (lax.cond(x > 0, lambda c: fnp.sin(c), lambda c: c * c, c), None), c0, XS
    )[0]


def _switch_in_scan(c0):
    branches = [lambda c: c * c, lambda c: fnp.sin(c), lambda c: fnp.exp(c)]
    return lax.scan(
        lambda c, x: (lax.switch((fnp.abs(x) * 2).astype(int), branches, c), None), c0, XS
    )[0]


def _scan_in_cond(x):
    return lax.cond(
        x > 0,
        lambda x: lax.scan(lambda a, _: (a * a, None), x, None, length=2)[0],
        lambda x: x,
        x,
    )


def _scan_in_scan(c0):
    def outer(c, x):
        inner = lax.scan(lambda a, b: (fnp.sin(a) * b * x, None), c, np.array([1.0, 0.5]))[0]
        return inner, None

    return lax.scan(outer, c0, XS)[0]


@pytest.mark.parametrize(
    "fn",
    [_cond_in_scan, _switch_in_scan, _scan_in_cond, _scan_in_scan],
    ids=["cond_in_scan", "switch_in_scan", "scan_in_cond", "scan_in_scan"],
)
def test_jit_grad_through_nested_control_flow(fn):
    want = ft.grad(fn)(0.6)
    np.testing.assert_allclose(ft.jacfwd(fn)(0.6), want, rtol=1e-12)  # the reference agrees
    np.testing.assert_allclose(ft.jit(ft.grad(fn))(0.6), want, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 4. jit(cond) with a non-boolean predicate picks the wrong branch: _staged passes the
#    predicate as the index of [false_fun, true_fun] through ops.as_int, so -1 is clamped to 0
#    and 0.5 truncated to 0 (false) while eager cond, vmap(cond) and JAX (pred != 0) take the
#    true branch.


@pytest.mark.parametrize("pred", [-1, 0.5], ids=["negative_int", "fraction"])
def test_jit_cond_nonboolean_predicate_matches_eager(pred):
    def f(p):
        return lax.cond(p, lambda: 1.0, lambda: 2.0)

    assert f(pred) == 1.0
    assert ft.vmap(f)(np.array([pred]))[0] == 1.0
    assert ft.jit(f)(pred) == 1.0


# ---------------------------------------------------------------------------------------------
# 5. vmap of cond/switch with a batched predicate and branches whose outputs differ in dtype
#    or shape: lax._select (ops.where) silently casts the false branch to the true branch's
#    dtype (an int branch truncates -1.5 to -1) or broadcasts it, eagerly and under
#    jit(vmap). The staged cond (jit, vmap(jit)) raises TypeError for the same program, as JAX
#    does on every path.


def _mixed_dtype(x):
    return lax.cond(x > 0, lambda x: 1, lambda x: x * 0.5, x)


def _mixed_shape(x):
    return lax.cond(x > 0, lambda x: fnp.ones(3) * x, lambda x: x, x)


@pytest.mark.parametrize("fn", [_mixed_dtype, _mixed_shape], ids=["dtype", "shape"])
def test_vmap_cond_branches_must_agree(fn):
    xs = np.array([1.0, -3.0])
    with pytest.raises(TypeError):
        ft.vmap(ft.jit(fn))(xs)  # the staged cond refuses
    with pytest.raises(TypeError):
        ft.vmap(fn)(xs)  # returns array([ 1, -1]) for dtype: -1.5 truncated
    with pytest.raises(TypeError):
        ft.jit(ft.vmap(fn))(xs)  # the same select


# ---------------------------------------------------------------------------------------------
# 6. A zero-length scan (and lax.map over zero rows) returns ys = None eagerly instead of
#    stacked empty arrays: lax.scan's Python loop never calls f, so it does not know the
#    ys' structure. jit returns array([]) for the same program, JAX returns an empty (0, ...)
#    array too, and code like `c + fnp.sum(ys)` (or its hessian) crashes eagerly.


def test_zero_length_scan_eager_matches_jit():
    def f(c0, xs):
        return lax.scan(lambda c, x: (c * x, fnp.sin(c) * x), c0, xs)

    xs = np.zeros((0,))
    c_jit, ys_jit = ft.jit(f)(1.0, xs)
    c, ys = f(1.0, xs)
    assert c == c_jit == 1.0
    assert ys is not None
    assert np.shape(ys) == np.shape(ys_jit) == (0,)
    assert np.asarray(ys).dtype == np.float64
    # xs=None with length=0, and lax.map over zero rows
    _, ys0 = lax.scan(lambda c, _: (c, c), 1.0, None, length=0)
    assert np.shape(ys0) == (0,)
    assert np.shape(lax.map(lambda r: r * 2, np.zeros((0, 2)))) == (0, 2)


# ---------------------------------------------------------------------------------------------
# 7. A Python scalar initial carry is fixed to float64 / int64 when the loop is staged
#    (ops.as_array in lax._staged_scan), while eagerly it is weak (NumPy 2's rule, as
#    documented) and the body's dtype wins: jit(scan) returns float64 where eager and JAX
#    return float32, and an int init with a float body runs eagerly and in JAX but raises
#    TypeError under jit.


def test_jit_scan_python_scalar_init_dtype_matches_eager():
    xs = np.arange(3, dtype=np.float32)

    def f(xs):
        return lax.scan(lambda c, x: (c + x, c * x), 0.0, xs)

    eager, jitted = f(xs), ft.jit(f)(xs)
    assert [np.asarray(a).dtype for a in eager] == [np.float32, np.float32]
    assert [np.asarray(a).dtype for a in jitted] == [np.float32, np.float32]


def test_jit_scan_python_int_init_with_float_body_runs_as_eagerly():
    def f(xs):
        return lax.scan(lambda c, x: (c + x, None), 0, xs)[0]

    assert f(np.ones(3)) == 3.0
    assert ft.jit(f)(np.ones(3)) == 3.0


# ---------------------------------------------------------------------------------------------
# 8. fori_loop with traced bounds: the index `i` is always int64 (the Python-int lower bound
#    becomes an int64 carry) instead of the bounds' dtype, so an int32 carry updated with i
#    raises TypeError under jit and silently becomes int64 under vmap, while the eager loop
#    (static bounds) keeps int32, and JAX keeps int32 on every path.


def _count(n):
    return lax.fori_loop(0, n, lambda i, v: v + i, np.int32(0))


def test_fori_loop_traced_bounds_index_dtype():
    assert np.asarray(_count(3)).dtype == np.int32  # eager, static bounds
    out = ft.jit(_count)(np.int32(3))
    assert out == 3 and np.asarray(out).dtype == np.int32
    batched = ft.vmap(_count)(np.array([3, 4], np.int32))
    np.testing.assert_array_equal(batched, [3, 6])
    assert batched.dtype == np.int32


# ---------------------------------------------------------------------------------------------
# 9. A checkpointed function cannot be called with keyword arguments: `checkpointed(*args)`
#    (checkpoint.py) takes positional arguments only, so f(x, scale=2.0) raises TypeError from
#    the wrapped function ("unexpected keyword argument"), eagerly and under grad. jax.checkpoint
#    passes keyword arguments through (they are traced like positional ones).


def test_checkpoint_accepts_keyword_arguments():
    def layer(x, scale=1.0):
        return fnp.sin(x) * scale

    ck = ft.checkpoint(layer)
    np.testing.assert_allclose(ck(0.5, scale=2.0), 2 * math.sin(0.5), rtol=1e-15)
    np.testing.assert_allclose(
        ft.grad(lambda x: ck(x, scale=2.0))(0.5), 2 * math.cos(0.5), rtol=1e-15
    )
