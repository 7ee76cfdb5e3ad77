"""The rule check: every case of tests/cases.py through every transformation.

For each primitive application: abstract_eval agrees with impl; the JVP agrees with central
differences; the VJP satisfies the dot-product identity; transpose rules are consistent with
the primitive as a linear map; vmap agrees with a Python loop for several in_axes; second-order
derivatives check out; and the staged program evaluates to the eager result.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASES, Case
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import functrans
from functrans.core import ShapedArray, Zero, aval_of
from functrans.ir import eval_jaxpr, typecheck
from functrans.testing import assert_vmap_matches_loop, check_grads, check_jvp, check_vjp

BATCH = 3


def _ids(case: Case) -> str:
    return case.id


def _is_float(x) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _has_float_operand(case: Case) -> bool:
    return any(_is_float(x) for x in case.operands())


def _random(rng, shape, dtype) -> np.ndarray:
    r = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        r = r + 1j * rng.standard_normal(shape)
    return np.asarray(r, dtype)


def _wide(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def _assert_same(got, want, what: str, exact: bool = False):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{what}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
    )
    if exact or not _is_float(want):
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        tol = 1e-5 if np.finfo(want.dtype).bits <= 32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=what)


# ---------------------------------------------------------------------------------------------
# 1. abstract_eval matches impl


def _outs(prim, x):
    return list(x) if prim.multiple_results else [x]


def _check_abstract_eval(case: Case, operands) -> None:
    prim = case.primitive
    outs = _outs(prim, prim.impl(*operands, **case.params))
    avals = _outs(prim, prim.abstract_eval(*[aval_of(x) for x in operands], **case.params))
    for aval, out in zip(avals, outs, strict=True):
        assert isinstance(aval, ShapedArray)
        assert aval == aval_of(out), f"{case.id}: abstract_eval gives {aval}, impl {aval_of(out)}"
        assert np.issubdtype(aval.dtype, np.inexact) == case.float_output


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_abstract_eval_matches_impl(case):
    _check_abstract_eval(case, case.operands())


# ---------------------------------------------------------------------------------------------
# 2. JVP against central differences (and zero JVPs of non-differentiable primitives)


def _check_zero_jvp_rule(case: Case, operands) -> None:
    """Call the JVP rule directly: the primal is impl's and the tangent is (symbolically) zero."""
    rng = np.random.default_rng(case.seed)
    tangents = [
        np.asarray(rng.standard_normal(np.shape(x)), np.asarray(x).dtype)
        if _is_float(x)
        else Zero(aval_of(x))
        for x in operands
    ]
    out, t_out = case.primitive.jvp(list(operands), tangents, **case.params)
    _assert_same(
        out, case.primitive.impl(*operands, **case.params), f"{case.id} jvp primal", exact=True
    )
    if type(t_out) is not Zero:
        assert np.all(np.asarray(t_out) == 0), f"{case.id}: nonzero tangent {t_out}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_jvp_matches_central_differences(case):
    operands = case.operands()
    if not case.differentiable:
        _check_zero_jvp_rule(case, operands)
    if not _has_float_operand(case):
        return
    if case.fd_check:
        check_jvp(case.fn(), operands, atol=case.atol, rtol=case.rtol, seed=case.seed)
    else:
        tangents = tuple(np.ones_like(x) for x in operands)
        _, t_out = functrans.jvp(case.fn(), operands, tangents)
        assert np.all(np.asarray(t_out) == 0)


# ---------------------------------------------------------------------------------------------
# 3. VJP by the dot-product identity


@pytest.mark.parametrize("case", [c for c in CASES if _has_float_operand(c)], ids=_ids)
def test_vjp_dot_product_identity(case):
    check_vjp(case.fn(), case.operands(), atol=case.atol, rtol=case.rtol, seed=case.seed)


# ---------------------------------------------------------------------------------------------
# 4. Transpose consistency for linear operands: <u, A v> = <A^T u, v>


def _linear_groups(case: Case) -> list[tuple[int, ...]]:
    """Operand groups to transpose: each linear operand alone, and all of them if jointly."""
    groups = [(i,) for i in case.linear]
    if case.jointly and len(case.linear) > 1:
        groups.append(tuple(case.linear))
    return groups


LINEAR = [(c, g) for c in CASES for g in _linear_groups(c)]


@pytest.mark.parametrize(
    "case,group", LINEAR, ids=[f"{c.id}-operands{''.join(map(str, g))}" for c, g in LINEAR]
)
def test_transpose_consistency(case, group):
    operands = list(case.operands())
    if case.jointly:  # the other linear operands are zero, so the map is linear, not affine
        for i in case.linear:
            operands[i] = np.zeros_like(operands[i])
    fn = case.fn()
    rng = np.random.default_rng(case.seed + 1)

    def linear_map(*vs):
        args = list(operands)
        for i, v in zip(group, vs, strict=True):
            args[i] = v
        return fn(*args)

    xs = [np.asarray(operands[i]) for i in group]
    vs = [_random(rng, x.shape, x.dtype) for x in xs]
    av = np.asarray(linear_map(*vs))
    u = _random(rng, av.shape, av.dtype)
    atus = [np.asarray(a) for a in functrans.linear_transpose(linear_map, *xs)(u)]
    for x, atu in zip(xs, atus, strict=True):
        assert atu.shape == x.shape and atu.dtype == x.dtype, (
            f"transpose gives {atu.dtype}{list(atu.shape)} for operand {x.dtype}{list(x.shape)}"
        )
    # for complex values, the real part of the bilinear pairing (as functrans.testing)
    lhs = np.real(np.sum(_wide(u) * _wide(av)))
    rhs = sum(np.real(np.sum(_wide(a) * _wide(v))) for a, v in zip(atus, vs))
    single = min(np.finfo(d).bits for d in [av.dtype] + [x.dtype for x in xs]) <= 32
    tol = (1e-4 if single else 1e-10) * max(1.0, float(np.sqrt(np.sum(np.abs(u * av) ** 2.0))))
    assert abs(lhs - rhs) <= tol, f"{case.id}: <u, A v> = {lhs} but <A^T u, v> = {rhs}"
    # and the map really is linear: A(2v - w) = 2 A v - A w
    ws = [_random(rng, x.shape, x.dtype) for x in xs]
    combined = np.asarray(linear_map(*[2 * v - w for v, w in zip(vs, ws)]))
    assert combined.dtype == av.dtype
    np.testing.assert_allclose(
        combined,
        2 * av - np.asarray(linear_map(*ws)),
        rtol=1e-5 if single else 1e-12,
        atol=1e-5 if single else 1e-12,
        err_msg=f"{case.id}: not linear in operands {group}",
    )


# ---------------------------------------------------------------------------------------------
# 5. vmap against a loop


def _patterns(case: Case) -> list[tuple[str, tuple, int]]:
    ndims = [np.ndim(x) for x in case.operands()]
    n = len(ndims)
    out = [
        ("all0", (0,) * n, 0),
        ("axis1", tuple(min(1, d) for d in ndims), 0),
        ("negative", (-1,) * n, -1),
    ]
    if n > 1:
        out.append(("none-first", (None,) + (0,) * (n - 1), 0))
        out.append(("none-last", (-1,) * (n - 1) + (None,), -1))
    return out


VMAP = [(c, p) for c in CASES for p in _patterns(c)]


def _check_vmap(case: Case, examples, in_axes, out_axes) -> None:
    # the same property users run on their own functions (functrans.testing), held here to the
    # rule check's stricter tolerance
    batched_args = [
        examples[0][i] if a is None else np.stack([ex[i] for ex in examples], axis=a)
        for i, a in enumerate(in_axes)
    ]
    tol = (
        1e-5
        if any(np.asarray(x).dtype in (np.float32, np.complex64) for x in examples[0])
        else 1e-12
    )
    assert_vmap_matches_loop(case.fn(), batched_args, tuple(in_axes), out_axes, atol=tol, rtol=tol)


@pytest.mark.parametrize("case,pattern", VMAP, ids=[f"{c.id}-{p[0]}" for c, p in VMAP])
def test_vmap_matches_loop(case, pattern):
    _, in_axes, out_axes = pattern
    examples = [case.operands(offset=b) for b in range(BATCH)]
    _check_vmap(case, examples, in_axes, out_axes)


def _float_positions(operands) -> list[int]:
    return [i for i, x in enumerate(operands) if _is_float(x)]


@pytest.mark.parametrize("case", [c for c in CASES if c.differentiable], ids=_ids)
def test_vmap_of_jvp_and_vjp_matches_loop(case):
    """The derivative programs (JVP rule, transpose rules) batch correctly too."""
    fn = case.fn()
    pos = _float_positions(case.operands())

    def with_floats(operands, floats):
        args = list(operands)
        for i, x in zip(pos, floats, strict=True):
            args[i] = x
        return args

    def f_jvp(operands, tangents):
        return functrans.jvp(
            lambda *fl: fn(*with_floats(operands, fl)), [operands[i] for i in pos], list(tangents)
        )[1]

    def f_vjp(operands, ct):
        return functrans.vjp(
            lambda *fl: fn(*with_floats(operands, fl)), *[operands[i] for i in pos]
        )[1](ct)

    rng = np.random.default_rng(case.seed + 2)
    examples = [case.operands(offset=b) for b in range(BATCH)]
    tangents = [
        [_random(rng, np.shape(ex[i]), np.asarray(ex[i]).dtype) for i in pos] for ex in examples
    ]
    out0 = fn(*examples[0])
    cts = [
        functrans.tree_util.tree_map(
            lambda o: _random(rng, aval_of(o).shape, aval_of(o).dtype), out0
        )
        for _ in examples
    ]
    for f, extra in ((f_jvp, tangents), (f_vjp, cts)):
        expected = [f(list(ex), e) for ex, e in zip(examples, extra)]
        stacked_ops = [np.stack([ex[i] for ex in examples]) for i in range(len(examples[0]))]
        stacked_extra = functrans.tree_util.tree_map(lambda *xs: np.stack(xs), *extra)
        got = functrans.vmap(f)(stacked_ops, stacked_extra)
        want = functrans.tree_util.tree_map(lambda *xs: np.stack(xs), *expected)
        for g, w in zip(
            functrans.tree_util.tree_leaves(got), functrans.tree_util.tree_leaves(want), strict=True
        ):
            _assert_same(g, w, f"{case.id}: vmap of {f.__name__}")


# ---------------------------------------------------------------------------------------------
# 6. Second order


@pytest.mark.parametrize("case", [c for c in CASES if c.differentiable], ids=_ids)
def test_check_grads_order2(case):
    check_grads(case.fn(), case.operands(), order=2, atol=case.atol, rtol=case.rtol, seed=case.seed)


# ---------------------------------------------------------------------------------------------
# 7. Staged equals eager


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_staged_equals_eager(case):
    operands = case.operands()
    fn = case.fn()
    closed = functrans.make_jaxpr(fn)(*operands)
    typecheck(closed.jaxpr)
    assert [e.prim.name for e in closed.eqns] == [case.prim]
    staged = eval_jaxpr(closed.jaxpr, closed.consts, *operands)
    eager = _outs(case.primitive, fn(*operands))
    for s, e in zip(staged, eager, strict=True):
        _assert_same(s, e, f"{case.id}: staged vs eager", exact=True)
    assert closed.out_avals == [aval_of(e) for e in eager]


# ---------------------------------------------------------------------------------------------
# Shape-generic checks with hypothesis: elementwise primitives and reductions

# one per primitive, params and dtype (the ids of elementwise cases end with the shape)
ELEMENTWISE = list(
    {
        c.id.rsplit("-", 1)[0] + str(c.params): c
        for c in CASES
        if c.sample is not None and "axes" not in c.params and "axis" not in c.params
    }.values()
)
REDUCTIONS = list(
    {c.prim: c for c in CASES if c.sample is not None and "axes" in c.params}.values()
)
ARG_REDUCTIONS = list(
    {c.prim: c for c in CASES if c.sample is not None and "axis" in c.params}.values()
)
_shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@pytest.mark.parametrize("case", ELEMENTWISE, ids=_ids)
@given(shape=_shapes, seed=st.integers(0, 2**16), batch_axis=st.integers(-4, 3))
def test_elementwise_rules_any_shape(case, shape, seed, batch_axis):
    operands = case.sample(np.random.default_rng(seed), shape)
    _check_abstract_eval(case, operands)
    if _has_float_operand(case) and case.fd_check:
        check_jvp(case.fn(), operands, seed=seed)
        check_vjp(case.fn(), operands, seed=seed)
    axis = batch_axis % (len(shape) + 1)
    examples = [case.sample(np.random.default_rng(seed + b), shape) for b in range(BATCH)]
    _check_vmap(case, examples, (axis,) * len(operands), 0)


@pytest.mark.parametrize("case", REDUCTIONS, ids=lambda c: c.prim)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_reduction_rules_any_shape_and_axes(case, data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    case = Case(case.prim, case.make, params={"axes": axes}, linear=case.linear, sample=case.sample)
    operands = case.sample(np.random.default_rng(seed), shape)
    _check_abstract_eval(case, operands)
    check_jvp(case.fn(), operands, seed=seed)
    check_vjp(case.fn(), operands, seed=seed)
    batch_axis = data.draw(st.integers(0, len(shape)))
    examples = [case.sample(np.random.default_rng(seed + b), shape) for b in range(BATCH)]
    _check_vmap(case, examples, (batch_axis,), 0)


@pytest.mark.parametrize("case", ARG_REDUCTIONS, ids=lambda c: c.prim)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_arg_reduction_rules_any_shape_and_axis(case, data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1))
    case = Case(
        case.prim,
        case.make,
        params={**case.params, "axis": axis},
        differentiable=False,
        float_output=False,
        sample=case.sample,
    )
    operands = case.sample(np.random.default_rng(seed), shape)
    _check_abstract_eval(case, operands)
    _check_zero_jvp_rule(case, operands)
    batch_axis = data.draw(st.integers(0, len(shape)))
    examples = [case.sample(np.random.default_rng(seed + b), shape) for b in range(BATCH)]
    _check_vmap(case, examples, (batch_axis,), 0)
