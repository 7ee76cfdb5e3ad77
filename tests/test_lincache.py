"""Compiled per-primitive linearizations (functrans/interpreters/lincache/).

Reverse mode at the top level linearizes each primitive with a rule derived once per signature
from its JVP rule and compiled. These tests force compilation on the first sighting and check,
for every case of the rule check, that the compiled path gives what the general path gives; and
that the `lin` equations it stages behave under every transformation a pullback can meet.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASES, Case

import functrans as ft
import functrans.numpy as fnp
from functrans.core import Zero, aval_of
from functrans.interpreters import lincache
from functrans.interpreters.partial_eval import linearize_flat


def _random_like(rng, x):
    x = np.asarray(x)
    r = rng.standard_normal(x.shape)
    if np.iscomplexobj(x):
        r = r + 1j * rng.standard_normal(x.shape)
    return np.asarray(r, x.dtype)


def _float(x) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _linearize(case: Case, mode: str):
    prim = case.primitive
    fn = case.fn()
    ops = case.operands()
    with lincache.compiling(mode):
        outs, lin, _ = linearize_flat(
            lambda *xs: (list(fn(*xs)) if prim.multiple_results else [fn(*xs)], None),
            list(ops),
            compiled=True,
        )
        names = {e.prim.name for e in lin.jaxpr.eqns}
        rng = np.random.default_rng(case.seed)
        cts = [
            _random_like(rng, np.zeros(a.shape, a.dtype)) if a.dtype.kind in "fc" else Zero(a)
            for a in lin.out_avals
        ]
        cts_in = lin.transpose(cts)
        tangents = [_random_like(rng, x) if _float(x) else Zero(aval_of(x)) for x in ops]
        t_outs = lin(tangents)
    return outs, cts_in, t_outs, names


def _same(got, want, what):
    if type(want) is Zero:
        assert type(got) is Zero or not np.any(got), what
        return
    got = np.zeros(want.shape, want.dtype) if type(got) is Zero else got
    np.testing.assert_array_equal(got, want, err_msg=what)  # bit for bit


DIFFERENTIABLE = [c for c in CASES if c.differentiable and any(_float(x) for x in c.operands())]


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=lambda c: c.id)
def test_compiled_rule_matches_the_general_path(case):
    outs, cts_in, t_outs, names = _linearize(case, "now")
    want_outs, want_cts, want_t, _ = _linearize(case, "never")
    for got, want in zip(outs, want_outs, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"{case.id}: primal output")
    for i, (got, want) in enumerate(zip(cts_in, want_cts, strict=True)):
        _same(got, want, f"{case.id}: cotangent of operand {i}")
    for i, (got, want) in enumerate(zip(t_outs, want_t, strict=True)):
        _same(got, want, f"{case.id}: tangent of output {i}")
    compilable = lincache.params_key(case.primitive, case.params) is not None
    if compilable and any(type(t) is not Zero for t in want_t):
        assert names & {"lin", "lin1"}, f"{case.id}: the compiled rule was not used ({names})"


@pytest.fixture
def compile_now():
    with lincache.compiling("now"):
        yield


def f(x, w):
    return fnp.sum(fnp.tanh(fnp.dot(w, x)) ** 2) + fnp.sum(fnp.sin(x) * x)


def _args():
    rng = np.random.default_rng(0)
    return rng.standard_normal(4), rng.standard_normal((3, 4))


def test_grad_repeated_calls_agree_and_use_compiled_rules():
    x, w = _args()
    with lincache.compiling("never"):
        want = ft.grad(f, argnums=(0, 1))(x, w)
    with lincache.compiling("now"):
        _, lin, _ = linearize_flat(lambda x, w: ([f(x, w)], None), [x, w], compiled=True)
        assert all(e.prim.name in ("lin", "lin1") for e in lin.jaxpr.eqns)
        for _ in range(3):
            got = ft.grad(f, argnums=(0, 1))(x, w)
            for g, wnt in zip(got, want, strict=True):
                np.testing.assert_allclose(g, wnt, rtol=1e-13)


def test_second_sighting_compiles_by_default():
    x = np.linspace(0.1, 1.0, 7)
    lincache._rules.clear()
    g = ft.grad(lambda x: fnp.sum(fnp.sin(x) * fnp.cos(x)))
    first = g(x)
    assert not any(isinstance(r, lincache.LinRule) for r in lincache._rules.values())
    second = g(x)
    assert any(isinstance(r, lincache.LinRule) for r in lincache._rules.values())
    np.testing.assert_array_equal(first, second)


def test_pullback_under_vmap_jvp_and_jit(compile_now):
    x, w = _args()
    g = lambda x: fnp.tanh(fnp.dot(w, x)) * fnp.sin(x[:3])  # noqa: E731
    y, pullback = ft.vjp(g, x)
    eye = np.eye(3)
    jac_rows = ft.vmap(lambda c: pullback(c)[0])(eye)
    np.testing.assert_allclose(jac_rows, ft.jacfwd(g)(x), rtol=1e-12)
    jitted = ft.jit(lambda c: pullback(c)[0])
    np.testing.assert_allclose(jitted(eye[1]), jac_rows[1], rtol=1e-12)
    # the pullback is linear: its JVP along dc is the pullback of dc
    dc = np.array([0.5, -1.0, 2.0])
    out, t = ft.jvp(lambda c: pullback(c)[0], (eye[0],), (dc,))
    np.testing.assert_allclose(t, pullback(dc)[0], rtol=1e-12)
    np.testing.assert_allclose(out, jac_rows[0], rtol=1e-12)


def test_compiled_linear_program_under_vmap_and_jvp(compile_now):
    x, w = _args()
    fn = lambda x: ([fnp.tanh(fnp.dot(w, x)) * 2.0], None)  # noqa: E731
    _, lin, _ = linearize_flat(fn, [x], compiled=True)
    with lincache.compiling("never"):
        _, want, _ = linearize_flat(fn, [x], compiled=True)
    ts = np.random.default_rng(1).standard_normal((5, 4))
    got = ft.vmap(lambda t: lin([t])[0])(ts)
    np.testing.assert_allclose(got, np.stack([want([t])[0] for t in ts]), rtol=1e-12)
    _, tt = ft.jvp(lambda t: lin([t])[0], (ts[0],), (ts[1],))
    np.testing.assert_allclose(tt, want([ts[1]])[0], rtol=1e-12)


def test_higher_order_derivatives_through_compiled_outer_level(compile_now):
    x = np.array([0.3, -0.7])
    h = ft.hessian(lambda x: fnp.sum(fnp.sin(x) ** 3))(x)
    np.testing.assert_allclose(
        h, np.diag(6 * np.sin(x) * np.cos(x) ** 2 - 3 * np.sin(x) ** 3), rtol=1e-12
    )
    d3 = ft.grad(ft.grad(ft.grad(lambda x: fnp.sin(x) * x)))(0.4)
    np.testing.assert_allclose(d3, -3 * np.sin(0.4) - 0.4 * np.cos(0.4), rtol=1e-12)


def test_symbolic_zero_cotangents_stay_symbolic(compile_now):
    # eigh at a repeated eigenvalue: only the eigenvalues are used, so the eigenvector
    # cotangent is zero and must not meet the 1/(w_i - w_j) factor (inf * 0 = nan)
    a = np.diag([1.0, 1.0, 2.0])
    with np.errstate(all="ignore"):
        for _ in range(2):
            g = ft.grad(lambda x: fnp.sum(fnp.linalg.eigh(x).eigenvalues ** 2))(a)
            np.testing.assert_allclose(g, np.diag([2.0, 2.0, 4.0]))


def test_params_that_are_not_plain_values_take_the_general_path():
    from functrans.primitives import ALL_PRIMITIVES

    prim = ALL_PRIMITIVES["reduce_sum"]
    assert lincache.params_key(prim, {"axes": (0,)}) is not None
    assert lincache.params_key(prim, {"axes": [0]}) is None
    assert lincache.params_key(prim, {"f": lambda x: x}) is None
    # 1, 1.0 and True are equal keys in a dict; the rule cache tells them apart
    assert lincache.params_key(prim, {"y": 1}) != lincache.params_key(prim, {"y": 1.0})


def test_cache_is_bounded(compile_now, monkeypatch):
    monkeypatch.setattr(lincache._derive, "_MAX_RULES", 3)
    for n in range(1, 8):
        ft.grad(lambda x: fnp.sum(fnp.sin(x)))(np.ones(n))
        assert len(lincache._rules) <= 3


def test_error_inside_compiled_linearization_leaves_no_state(compile_now):
    def bad(x):
        fnp.sin(x)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        ft.grad(bad)(1.0)
    from functrans.core import current_trace, eval_trace

    assert current_trace() is eval_trace
    assert ft.grad(fnp.sin)(0.0) == 1.0


def test_compile_exact_runs_a_program_as_eager_evaluation_does():
    from functrans.interpreters.staging import trace_to_jaxpr
    from functrans.ir import eval_jaxpr

    def fn(x, y):
        unused = fnp.exp(x)  # noqa: F841 - dead: dropped by the compiler
        q, r = fnp.linalg.qr(fnp.reshape(x, (2, 2)))  # a primitive with several results
        return [fnp.sum(q * r) + y**3, 2.0 * fnp.ones(()), y]  # a literal-valued output

    x, y = np.array([1.0, 2.0, 3.0, 5.0]), np.float64(0.7)
    jaxpr, consts = trace_to_jaxpr(fn, [aval_of(x), aval_of(y)])
    compiled = lincache.compile_exact(jaxpr, consts)
    from functrans.primitives import elementwise as ew

    assert ew.exp_p.impl not in compiled.__globals__.values()  # the dead exp was dropped
    got = compiled(x, y)
    want = eval_jaxpr(jaxpr, consts, x, y)
    assert len(got) == len(want) == 3
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)  # bit for bit
        assert np.asarray(g).dtype == np.asarray(w).dtype


def test_params_key_tells_signed_zeros_apart_and_matches_nan(compile_now):
    x = np.ones(3)
    pad = lambda v: lambda x: fnp.sum(fnp.pad(x, 1, constant_values=v) * 2.0)  # noqa: E731
    for v in (0.0, -0.0):
        out, _ = ft.vjp(lambda x, v=v: fnp.pad(x, 1, constant_values=v), x)
        assert np.signbit(out[0]) == np.signbit(v)
        ft.grad(pad(v))(x)
    from functrans.primitives import ALL_PRIMITIVES

    prim = ALL_PRIMITIVES["reduce_sum"]
    assert lincache.params_key(prim, {"v": 0.0}) != lincache.params_key(prim, {"v": -0.0})
    assert lincache.params_key(prim, {"v": np.nan}) == lincache.params_key(prim, {"v": np.nan})
    assert lincache.params_key(prim, {"v": (1, 2)}) != lincache.params_key(prim, {"v": (1.0, 2)})


def test_rules_with_large_constants_are_not_cached(compile_now):
    a = np.random.default_rng(0).standard_normal((120, 120))
    a = a + a.T
    g = ft.grad(lambda x: fnp.sum(fnp.linalg.eigh(x).eigenvalues ** 2))
    np.testing.assert_allclose(g(a), g(a))
    held = sum(
        np.asarray(c).nbytes
        for r in lincache._rules.values()
        if isinstance(r, lincache.LinRule)
        for t in r._transposes.values()
        for c in t.consts
    )
    assert held <= lincache.MAX_CONST_BYTES * len(lincache._rules)
    assert not any(
        isinstance(r, lincache.LinRule) and r.name == "eigh" for r in lincache._rules.values()
    )


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_ndarray_subclasses_keep_numpy_semantics_in_arithmetic():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    out, t = ft.jvp(lambda x: x * x, (m,), (m,))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(m) * np.asarray(m))


ALIASED = {
    "a @ a": lambda a: fnp.sum((a @ a) * a) + fnp.sum(fnp.sin(a)),
    "x ** x": lambda a: fnp.sum(fnp.abs(a) ** fnp.abs(a)) + fnp.sum(a * a * a),
    "arctan2(x, x)": lambda a: fnp.sum(fnp.arctan2(a, a + 2.0) * fnp.cos(a)),
    "svd of a tall matrix": lambda a: fnp.sum(fnp.linalg.svd(a[:, :3], full_matrices=False)[1]),
    "x + c forwarded": lambda a: fnp.sum(fnp.sin(a + 1.0) * fnp.cos(a) * (a + 1.0)),
}


@pytest.mark.parametrize("name", ALIASED)
def test_gradients_do_not_change_once_rules_are_compiled(name):
    # every contribution to a cotangent is added in the general path's order, so the first call
    # (general path) and the later ones (compiled rules) agree bit for bit
    a = np.random.default_rng(1).standard_normal((5, 5))
    f = ALIASED[name]
    with lincache.compiling("never"):
        want = ft.grad(f)(a)
    with lincache.compiling("now"):
        for _ in range(2):
            np.testing.assert_array_equal(ft.grad(f)(a), want)
            _, pullback = ft.vjp(f, a)
            np.testing.assert_array_equal(pullback(1.0)[0], want)


def _scalar(case: Case):
    """A real scalar function of the case's operands, made from all its float outputs."""
    prim, fn = case.primitive, case.fn()

    def scalar(*xs):
        outs = fn(*xs)
        total = 0.0
        for o in outs if prim.multiple_results else [outs]:
            if np.issubdtype(o.dtype, np.inexact):
                total = total + fnp.sum(fnp.real(o) * fnp.cos(fnp.real(o)))
        return total

    return scalar


def _per_example_grad(case: Case):
    """vmap over three examples of the gradient of a real scalar made from the case."""
    examples = [case.operands(i) for i in range(3)]
    floats = tuple(i for i, x in enumerate(examples[0]) if _float(x))
    scalar = _scalar(case)
    batched = [np.stack([ex[k] for ex in examples]) for k in range(len(examples[0]))]
    return ft.vmap(ft.grad(scalar, argnums=floats)), batched


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=lambda c: c.id)
def test_compiled_rule_under_vmap_matches_the_general_path(case):
    # grad inside an eager vmap: the known part runs batched, and so does the transpose
    g, batched = _per_example_grad(case)
    _assert_compiled_matches_general(g, batched, case)


def _assert_compiled_matches_general(g, args, case: Case):
    """g(*args) (a tuple of gradients) bit for bit the same with the compiled rules, on the
    call that compiles them and on the one after, as with the general path only."""
    with lincache.compiling("never"):
        want = g(*args)
    with lincache.compiling("now"):
        for _ in range(2):
            got = g(*args)
            for i, (a, b) in enumerate(zip(got, want, strict=True)):
                np.testing.assert_array_equal(a, b, err_msg=f"{case.id}: operand {i}")


def test_a_custom_cotangent_of_another_dtype_under_vmap(compile_now):
    # a custom bwd may return float64 for a float32 input; the general path lets it through,
    # and so must the batched compiled transposes (they bind instead)
    @ft.custom_vjp
    def scale(x):
        return x * 2.0

    scale.defvjp(lambda x: (x * 2.0, None), lambda r, g: (np.full(4, 2.0),))
    f = ft.vmap(ft.grad(lambda x: fnp.sum(scale(fnp.sin(x)))))
    xs = np.ones((3, 4), np.float32)
    with lincache.compiling("never"):
        want = f(xs)
    for _ in range(2):
        np.testing.assert_array_equal(f(xs), want)
        assert f(xs).dtype == want.dtype


def _held_bytes() -> int:
    def arrays(fn):
        return sum(v.nbytes for v in fn.__globals__.values() if isinstance(v, np.ndarray))

    total = 0
    for r in lincache._rules.values():
        if isinstance(r, lincache.BatchedRule):
            total = max(total, arrays(r.known_fn))
            r = r.base
        if isinstance(r, lincache.LinRule):
            for t in r._transposes.values():
                for entry in t.batched.values():
                    if entry is not None:
                        total = max(total, arrays(entry[0]))
    return total


def test_batched_programs_with_batch_sized_constants_are_not_cached(compile_now):
    # gather's batch rule makes offsets as long as the batch: such programs are not kept
    f = ft.vmap(ft.grad(lambda x: fnp.sum(fnp.sort(x) * fnp.arange(4.0))))
    x = np.random.default_rng(0).normal(size=(20_000, 4))
    want = f(x)
    np.testing.assert_array_equal(f(x), want)
    assert _held_bytes() <= lincache.MAX_CONST_BYTES


def _second_order(case: Case):
    """The gradient of <grad(scalar)(operands), v>: an inner grad linearizing on the tracers of
    the outer one (nested compiled rules at the inner level)."""
    ops = case.operands()
    floats = tuple(i for i, x in enumerate(ops) if _float(x))
    rng = np.random.default_rng(case.seed)
    vs = [_random_like(rng, ops[i]) for i in floats]
    scalar = _scalar(case)

    def directional(*xs):
        gs = ft.grad(scalar, argnums=floats)(*xs)
        return sum(fnp.sum(fnp.real(g * v)) for g, v in zip(gs, vs, strict=True))

    return ft.grad(directional, argnums=floats), ops


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=lambda c: c.id)
def test_nested_compiled_rule_matches_the_general_path(case):
    # the inner grad runs each rule's known part by binding it on the outer grad's trace, and
    # transposes by binding there too: the same operations, in the same order, bit for bit
    g, ops = _second_order(case)
    with np.errstate(all="ignore"):
        _assert_compiled_matches_general(g, ops, case)


def test_inner_linearizations_stage_lin_equations(compile_now):
    # under an outer transformation (here jvp and jit) a reverse-mode linearization is made of
    # compiled rules, and the staged program jit sees is the one the general path stages
    x = np.array([0.3, -0.7, 1.1])
    fn = lambda x: ([fnp.sum(fnp.tanh(x) * fnp.sin(x))], None)  # noqa: E731
    names = []

    def inner(x):
        _, lin, _ = linearize_flat(fn, [x], compiled=True)
        names.extend(e.prim.name for e in lin.jaxpr.eqns)
        return lin.transpose([1.0])[0]

    _, t = ft.jvp(inner, (x,), (np.ones(3),))
    assert names and set(names) <= {"lin", "lin1"}, names
    np.testing.assert_allclose(t, ft.hessian(lambda x: fn(x)[0][0])(x).sum(1), rtol=1e-12)
    g = ft.grad(lambda x: fn(x)[0][0])
    compiled = str(ft.make_jaxpr(g)(x))
    with lincache.compiling("never"):
        assert str(ft.make_jaxpr(g)(x)) == compiled


def test_scalar_lin_equations_read_like_any_other(compile_now):
    # in scalar code the eager linearization stages its lightest equations, whose operands are
    # spelled out only when read: by a pullback under vmap, jit or make_jaxpr
    def f(x, y):
        return fnp.tanh(fnp.sin(x) * fnp.cos(y)) + x * 0.5

    x, y = np.float64(0.3), np.float64(-1.1)
    with lincache.compiling("never"):
        want_out, want_pull = ft.vjp(f, x, y)
        want = want_pull(1.0)
    for _ in range(2):
        out, pullback = ft.vjp(f, x, y)
        assert out == want_out and pullback(1.0) == want
    _, lin, _ = linearize_flat(lambda x, y: ([f(x, y)], None), [x, y], compiled=True)
    scalar_eqns = [e for e in lin.jaxpr.eqns if type(e) is lincache.ScalarLinEqn]
    assert scalar_eqns and "lin1" in str(lin.jaxpr)
    for e in scalar_eqns:
        assert [a.val for a in e.inputs[: len(e.res)]] == list(e.res)
        assert e.inputs[len(e.res) :] == e.tangents
    cts = np.array([1.0, -2.0, 0.5])
    rows = ft.vmap(pullback)(cts)
    for c, gx, gy in zip(cts, *rows, strict=True):
        np.testing.assert_allclose((gx, gy), want_pull(c), rtol=1e-15)
    np.testing.assert_allclose(ft.jit(pullback)(1.0), want, rtol=1e-15)
    assert str(ft.make_jaxpr(pullback)(1.0)) == str(ft.make_jaxpr(want_pull)(1.0))


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=lambda c: c.id)
def test_staged_gradient_is_the_general_paths_program(case):
    # make_jaxpr(grad(f)) linearizes on staging tracers (nested compiled rules): the program it
    # prints is the general path's, equation for equation and constant for constant
    ops = case.operands()
    floats = tuple(i for i, x in enumerate(ops) if _float(x))
    g = ft.grad(_scalar(case), argnums=floats)
    with np.errstate(all="ignore"):
        with lincache.compiling("never"):
            want = str(ft.make_jaxpr(g)(*ops))
        with lincache.compiling("now"):
            for _ in range(2):
                assert str(ft.make_jaxpr(g)(*ops)) == want


def test_errors_inside_an_inner_grad_name_forward_mode():
    # the compiled inner linearization is, to the user, the JVP interpreter
    def inner(b):
        np.asarray(b)  # a traced value converted to NumPy
        return fnp.sum(b)

    with pytest.raises(ft.errors.TracerArrayConversionError) as info:
        ft.grad(lambda a: fnp.sum(ft.grad(inner)(a)))(np.ones(3))
    assert "JVPTrace" in str(info.value) and "Nested" not in str(info.value)
