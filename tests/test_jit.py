"""jit: staged, simplified and generated programs compute what the eager function computes.

Covers equality with eager (arrays, scalars, pytrees, dtypes, aliasing), the per-signature cache
and static arguments, every order of composition with the other transforms, errors (control flow
on traced values, exceptions inside the function), the Python-float path for scalar programs,
the generated source run on its own, and the simplification passes on random programs.
"""

from __future__ import annotations

import ast
import functools
import os
from collections import namedtuple

import numpy as np
import pytest
from cases import CASES
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans import core
from functrans.errors import ConcretizationError
from functrans.ir import eval_jaxpr

RNG = np.random.default_rng(1234)


def _rand(*shape, dtype=np.float64):
    return np.asarray(RNG.standard_normal(shape), dtype)


def _assert_tree_equal(got, want, rtol=1e-12, atol=1e-12):
    got_leaves, got_tree = ft.tree_util.tree_flatten(got)
    want_leaves, want_tree = ft.tree_util.tree_flatten(want)
    assert got_tree == want_tree, f"structure {got_tree} != {want_tree}"
    for g, w in zip(got_leaves, want_leaves, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (
            f"got {g.dtype}{list(g.shape)}, expected {w.dtype}{list(w.shape)}"
        )
        if np.issubdtype(w.dtype, np.inexact):
            tol = 1e-5 if np.finfo(w.dtype).bits <= 32 else rtol
            np.testing.assert_allclose(g, w, rtol=tol, atol=max(atol, tol))
        else:
            np.testing.assert_array_equal(g, w)


# ---------------------------------------------------------------------------------------------
# jit equals eager

Point = namedtuple("Point", ["x", "y"])


def _mlp(params, x):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    return fnp.sum((h @ params["w2"]) ** 2)


EAGER_CASES = {
    "scalar": (lambda x: fnp.sin(x) * fnp.exp(-x) + x**2, (0.7,)),
    "numpy-scalar": (lambda x: fnp.tanh(x) / (1.0 + x * x), (np.float64(-1.3),)),
    "vector": (lambda x: fnp.sum(fnp.sin(x) ** 2) + fnp.max(x), (_rand(5),)),
    "matrix": (lambda a, b: fnp.tanh(a @ b).T, (_rand(3, 4), _rand(4, 2))),
    "broadcasting": (lambda x, y: x * y + 1.0, (_rand(3, 1), _rand(4))),
    "reshape-transpose": (lambda x: fnp.reshape(x.T, (2, 6)).sum(axis=0), (_rand(3, 4),)),
    "dict-in": (lambda p: p["a"] * fnp.cos(p["b"]), ({"a": _rand(3), "b": _rand(3)},)),
    "pytree-in-out": (
        lambda p, x: {"loss": _mlp(p, x), "h": [x * 2.0, (x, None)]},
        ({"w1": _rand(3, 4), "b1": _rand(4), "w2": _rand(4, 2)}, _rand(5, 3)),
    ),
    "namedtuple": (lambda p: Point(p.y, p.x * p.y), (Point(_rand(2), _rand(2)),)),
    "multiple-outputs": (lambda x: (fnp.sin(x), fnp.cos(x), fnp.sum(x)), (_rand(4),)),
    "int-intermediate": (
        lambda x: x * fnp.sum((x > 0).astype(np.int64)) + fnp.argmax(x),
        (_rand(6),),
    ),
    "bool-intermediate-where": (
        lambda x: fnp.where(fnp.logical_and(x > -0.5, x < 0.5), x**2, fnp.abs(x)),
        (_rand(7),),
    ),
    "int-input": (lambda n, x: x * n + (n * n), (np.arange(4), _rand(4))),
    "bool-output": (lambda x: (x > 0, x * 2), (_rand(3),)),
    "indexing": (lambda x: x[1:, 0] * x[0, 1:], (_rand(3, 3),)),
    "constant-output": (lambda x: (x + 1.0, fnp.ones(3) * 2.0), (_rand(3),)),
    "closure": (lambda x: x @ _CLOSED + 1.0, (_rand(2, 3),)),
    "float32": (lambda x: fnp.exp(x) * 2.0 + fnp.sum(x), (_rand(4, dtype=np.float32),)),
    "float32-mixed-with-python-scalar": (lambda x: x * 0.5 - 1, (_rand(3, dtype=np.float32),)),
    "complex": (lambda z: z * fnp.exp(z) + 1.0, (_rand(3) + 1j * _rand(3),)),
    "empty": (lambda x: x * 2.0 + 1.0, (np.zeros((0, 3)),)),
}
_CLOSED = _rand(3, 3)


@pytest.mark.parametrize("name", list(EAGER_CASES))
def test_jit_equals_eager(name):
    f, args = EAGER_CASES[name]
    want = f(*args)
    jitted = ft.jit(f)
    _assert_tree_equal(jitted(*args), want)
    _assert_tree_equal(jitted(*args), want)  # the cached program, second call
    assert jitted.trace_count == 1


def test_float32_stays_float32():
    f = ft.jit(lambda x: fnp.tanh(x) * 3.0 + fnp.sum(x**2))
    x = _rand(5, dtype=np.float32)
    out = f(x)
    assert out.dtype == np.float32
    g = ft.jit(ft.grad(lambda x: fnp.sum(fnp.sin(x) * 2.0)))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2.0 * np.cos(x), rtol=1e-6)


def test_scalar_results_are_numpy_scalars_like_eager():
    f = lambda x: fnp.sin(x) + 1.0  # noqa: E731
    eager, jitted = f(0.3), ft.jit(f)(0.3)
    assert type(jitted) is type(eager) and jitted == eager


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x,
        lambda x: (x, x),
        lambda x: x.reshape(x.shape),
        lambda x: fnp.reshape(x, (6,)),
        lambda x: x.T,
        lambda x: x * 1.0 + 0.0,
        lambda x: {"same": x, "sum": fnp.sum(x)},
        lambda x: x[0],
    ],
    ids=["identity", "pair", "noop-reshape", "reshape", "transpose", "mul1-add0", "dict", "row"],
)
def test_results_do_not_alias_inputs(f):
    x = _rand(2, 3)
    keep = x.copy()
    out = ft.jit(f)(x)
    for leaf in ft.tree_util.tree_leaves(out):
        if isinstance(leaf, np.ndarray):
            assert not np.shares_memory(leaf, x)
            leaf[...] = 99.0  # updating a result in place never changes the input
    np.testing.assert_array_equal(x, keep)


def test_pair_of_the_same_input_are_independent_results():
    x = _rand(3)
    a, b = ft.jit(lambda x: (x, x))(x)
    a[0] = 42.0
    assert b[0] == x[0]


def test_results_do_not_alias_constants_or_cache():
    # an output that is a constant (folded at compile time) must not be shared between calls
    f = ft.jit(lambda x: (x, fnp.ones(3) * 2.0))
    _, c = f(np.ones(3))
    c[0] = 99.0
    _, c2 = f(np.ones(3))
    np.testing.assert_array_equal(c2, [2.0, 2.0, 2.0])


def test_inputs_are_not_mutated():
    x = _rand(4)
    keep = x.copy()
    f = ft.jit(ft.grad(lambda x: fnp.sum(fnp.exp(x) * x)))
    f(x)
    f(x)
    np.testing.assert_array_equal(x, keep)


# ---------------------------------------------------------------------------------------------
# jit equals eager on the rule-check suite: every primitive, staged and simplified alone


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_jit_equals_eager_every_primitive(case):
    operands = case.operands()
    fn = case.fn()
    _assert_tree_equal(ft.jit(fn)(*operands), fn(*operands))


# ---------------------------------------------------------------------------------------------
# The cache


def test_no_retrace_for_the_same_signature():
    f = ft.jit(lambda x, y: x * y + 1.0)
    for _ in range(3):
        f(_rand(3), _rand(3))
    assert f.trace_count == 1 and f.cache_size == 1
    f(np.zeros(3), np.ones(3))  # new values, same shapes and dtypes
    assert f.trace_count == 1


def test_retrace_for_new_shape_dtype_and_structure():
    f = ft.jit(lambda p: ft.tree_util.tree_map(lambda v: v * 2.0, p))
    f(_rand(3))
    f(_rand(4))  # new shape
    assert f.trace_count == 2
    f(_rand(4, dtype=np.float32))  # new dtype
    assert f.trace_count == 3
    f((_rand(4),))  # new structure: a tuple around it
    f({"a": _rand(4)})
    f({"b": _rand(4)})  # dict keys are part of the structure
    assert f.trace_count == 6 and f.cache_size == 6
    f({"a": _rand(4)})  # all cached now
    f(_rand(3))
    assert f.trace_count == 6


def test_retrace_for_new_static_value_only():
    def f(x, n):
        return x**n

    jitted = ft.jit(f, static_argnums=1)
    x = _rand(3)
    np.testing.assert_allclose(jitted(x, 2), x**2)
    np.testing.assert_allclose(jitted(x, 3), x**3)
    jitted(x, 2)
    jitted(x, 3)
    assert jitted.trace_count == 2 and jitted.cache_size == 2


def test_static_argnums_negative_index():
    def f(x, mode):
        return fnp.sin(x) if mode == "sin" else fnp.cos(x)

    jitted = ft.jit(f, static_argnums=-1)
    x = _rand(3)
    np.testing.assert_allclose(jitted(x, "sin"), np.sin(x))
    np.testing.assert_allclose(jitted(x, "cos"), np.cos(x))
    assert jitted.trace_count == 2


def test_negative_static_argnum_counts_in_the_signature_whatever_is_passed():
    # -1 is the last positional parameter, also when it is given by keyword or left to its default
    def f(x, n=2):
        return x * n

    jitted = ft.jit(f, static_argnums=-1)
    x = np.ones(2)
    np.testing.assert_array_equal(jitted(x, 3), 3 * x)
    np.testing.assert_array_equal(jitted(x, n=4), 4 * x)
    np.testing.assert_array_equal(jitted(x), 2 * x)
    np.testing.assert_array_equal(ft.make_jaxpr(f, static_argnums=-1)(x, 3)(x)[0], 3 * x)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(static_argnums=2),
            ValueError,
            r"static_argnums \[2\] name no parameter of f\(x, n\)",
        ),
        (dict(static_argnums=-3), ValueError, "positions run from -2 to 1"),
        (dict(static_argnames="m"), ValueError, r"static_argnames \['m'\] name no parameter"),
        (dict(static_argnums="n"), TypeError, "static_argnums takes ints"),
    ],
)
def test_static_arguments_that_name_no_parameter_are_an_error(kwargs, error, match):
    def f(x, n):
        return x * n

    with pytest.raises(error, match=match):
        ft.jit(f, **kwargs)


def test_static_arguments_beyond_the_signature_of_varargs_functions():
    jitted = ft.jit(
        lambda *a, **k: a[0] * len(a[2]) * len(k["s"]), static_argnums=2, static_argnames="s"
    )
    assert jitted(np.ones(2), 1.0, "abc", s="xy").tolist() == [6.0, 6.0]


def test_jit_decorates_methods():
    class Model:
        def __init__(self, k):
            self.k = k

        @functools.partial(ft.jit, static_argnums=0)
        def scale(self, x):
            return x * self.k

    a, b = Model(2.0), Model(3.0)
    np.testing.assert_array_equal(a.scale(np.ones(2)), [2.0, 2.0])
    np.testing.assert_array_equal(b.scale(np.ones(2)), [3.0, 3.0])  # self is part of the key
    assert Model.scale.trace_count == 2
    assert Model.__dict__["scale"] is Model.scale  # unbound access is the jitted function


def test_closed_over_0d_array_is_captured_by_value():
    # every signature's program, and make_jaxpr's printout, keep the value at trace time
    s = np.array(2.0)
    jitted = ft.jit(lambda x: x * s)
    assert jitted(1.0) == 2.0 and jitted(np.ones(2)).tolist() == [2.0, 2.0]
    printed = ft.make_jaxpr(lambda x: x * s)(1.0)
    s[()] = 100.0
    assert jitted(1.0) == 2.0 and jitted(np.ones(2)).tolist() == [2.0, 2.0]
    assert "2.0" in str(printed) and "100" not in str(printed)


@pytest.mark.parametrize(
    "leaf, match",
    [
        (np.str_("a"), "dtype <U1"),
        (np.array([1, "a"], dtype=object), "dtype object"),
        (2**70, "does not fit a 64-bit integer"),
    ],
)
def test_non_numeric_leaves_are_a_type_error(leaf, match):
    with pytest.raises(TypeError, match=match):
        ft.jit(lambda x: x)(leaf)
    with pytest.raises(TypeError, match=match):
        ft.grad(lambda x: x)(leaf)


def test_static_argnum_passed_by_keyword():
    def f(x, n):
        return fnp.sum(x) * n if n > 1 else x

    jitted = ft.jit(f, static_argnums=1)
    x = _rand(3)
    np.testing.assert_allclose(jitted(x, n=3), np.sum(x) * 3)
    np.testing.assert_allclose(jitted(x, n=3), np.sum(x) * 3)
    np.testing.assert_allclose(jitted(x, 1), x)
    assert jitted.trace_count == 2


def test_static_argnames():
    def f(x, *, axis, scale=1.0):
        return fnp.sum(x, axis=axis) * scale

    jitted = ft.jit(f, static_argnames=("axis",))
    x = _rand(2, 3)
    np.testing.assert_allclose(jitted(x, axis=0), x.sum(0))
    np.testing.assert_allclose(jitted(x, axis=1), x.sum(1))
    np.testing.assert_allclose(jitted(x, axis=1, scale=2.0), 2.0 * x.sum(1))  # scale is dynamic
    np.testing.assert_allclose(jitted(x, axis=1, scale=3.0), 3.0 * x.sum(1))
    assert jitted.trace_count == 3


def test_static_argname_passed_positionally():
    def f(x, flag):
        return x + 1.0 if flag else x - 1.0

    jitted = ft.jit(f, static_argnames="flag")
    x = _rand(2)
    np.testing.assert_allclose(jitted(x, True), x + 1.0)
    np.testing.assert_allclose(jitted(x, flag=False), x - 1.0)


def test_unhashable_static_argument_raises_type_error():
    jitted = ft.jit(lambda x, shape: fnp.reshape(x, tuple(shape)), static_argnums=1)
    with pytest.raises(TypeError, match="static argument 1 must be hashable, got a list"):
        jitted(_rand(6), [2, 3])
    np.testing.assert_allclose(jitted(np.arange(6.0), (2, 3)), np.arange(6.0).reshape(2, 3))


def test_static_values_are_keyed_by_type_and_bits():
    jitted = ft.jit(lambda x, t: x * t[0], static_argnums=1)
    x = np.array([1.0])
    assert (
        jitted(x, (1,)).dtype == np.float64 and jitted(x.astype(np.int64), (1,)).dtype == np.int64
    )
    assert jitted(x.astype(np.int64), (1.0,)).dtype == np.float64  # (1,) and (1.0,) differ
    assert np.signbit(jitted(x, (-0.0,))[0]) and not np.signbit(jitted(x, (0.0,))[0])
    count = jitted.trace_count
    jitted(x, (float("nan"),))
    jitted(x, (float("nan"),))  # NaN is one key, not a new trace per call
    assert jitted.trace_count == count + 1


def test_static_numpy_scalars_and_namedtuples_are_keyed_by_type_and_bits():
    Pair = namedtuple("Pair", "a b")
    x = np.array([1.0, 2.0])
    div = ft.jit(lambda x, s: x / s, static_argnums=1)
    with np.errstate(divide="ignore"):
        assert div(x, np.float64(0.0)).tolist() == [np.inf, np.inf]
        assert div(x, np.float64(-0.0)).tolist() == [-np.inf, -np.inf]
    scale = ft.jit(lambda x, s: x * s[0], static_argnums=1)
    xi = np.array([1, 2])
    assert scale(xi, Pair(1, len)).dtype == np.int64
    assert scale(xi, Pair(1.0, len)).dtype == np.float64
    count = div.trace_count
    for _ in range(3):
        div(x, np.float64("nan"))
    assert div.trace_count == count + 1


def test_bound_jitted_method_looks_like_a_bound_method():
    import inspect

    class Model:
        @functools.partial(ft.jit, static_argnums=(0, 2))
        def power(self, x, n):
            """x to the n."""
            return x**n

    m = Model()
    assert str(inspect.signature(m.power)) == "(x, n)"
    assert m.power == m.power and hash(m.power) == hash(m.power)
    assert m.power.__doc__ == "x to the n."
    apply = ft.jit(lambda f, x: f(x, 2), static_argnums=0)
    for _ in range(3):
        apply(m.power, np.ones(2))
    assert apply.trace_count == 1


def test_static_specs_accept_none_and_numpy_integers():
    def f(x, n=2):
        return x * n

    np.testing.assert_array_equal(ft.jit(f, static_argnums=None, static_argnames=None)(1.0), 2.0)
    assert ft.jit(f, static_argnums=np.int64(1))(np.ones(1), 3).tolist() == [3.0]


def test_bound_jitted_method_lowers_with_its_instance():
    class Model:
        k = 3.0

        @functools.partial(ft.jit, static_argnums=0)
        def scale(self, x):
            return x * self.k

    m = Model()
    assert m.scale.lower(np.ones(2)).jaxpr.eqns  # the instance is the static first argument
    assert m.scale.trace_count == 1 and m.scale.cache_size == 1


def test_equal_static_values_of_different_types_trace_their_own_programs():
    # 1, 1.0 and True are equal dictionary keys, but n * x has a different dtype for each
    jitted = ft.jit(lambda x, n: fnp.asarray(n) * x, static_argnums=1)
    x = np.arange(3, dtype=np.int32)
    for n in (1, 1.0, True):
        assert jitted(x, n).dtype == (np.asarray(n) * x).dtype
    assert jitted.trace_count == 3


def test_non_array_dynamic_argument_names_static_argnums():
    with pytest.raises(TypeError, match="static"):
        ft.jit(lambda x, s: x)(_rand(2), "text")


def test_clear_cache_retraces():
    f = ft.jit(lambda x: x + 1.0)
    f(1.0)
    f.clear_cache()
    assert f.cache_size == 0
    f(1.0)
    assert f.trace_count == 2


# ---------------------------------------------------------------------------------------------
# Every transform order


def _f(x):
    return fnp.sum(fnp.tanh(x) * fnp.sin(2.0 * x)) + fnp.sum(x**3) / 3.0


def _vec(x):
    return fnp.sin(x) * fnp.sum(x**2) + fnp.exp(x[::-1] * 0.5)


X = _rand(4)
XB = _rand(3, 4)


def _compare(got, want):
    _assert_tree_equal(got, want, rtol=1e-10, atol=1e-12)


def test_jit_of_grad():
    f = ft.jit(ft.grad(_f))
    _compare(f(X), ft.grad(_f)(X))
    f(X + 1.0)
    assert f.trace_count == 1


def test_grad_of_jit_replays_the_cached_program():
    jf = ft.jit(_f)
    _compare(ft.grad(jf)(X), ft.grad(_f)(X))
    _compare(ft.grad(jf)(X * 2.0), ft.grad(_f)(X * 2.0))
    _compare(jf(X), _f(X))
    assert jf.trace_count == 1  # grad ran the same cached program through bind


def test_vmap_of_jit_and_jit_of_vmap():
    _compare(ft.vmap(ft.jit(_vec))(XB), ft.vmap(_vec)(XB))
    _compare(ft.jit(ft.vmap(_vec))(XB), ft.vmap(_vec)(XB))
    _compare(ft.vmap(ft.jit(_vec), in_axes=1)(XB.T), ft.vmap(_vec)(XB))


def test_jit_of_vmap_of_grad():
    want = np.stack([ft.grad(_f)(row) for row in XB])
    _compare(ft.jit(ft.vmap(ft.grad(_f)))(XB), want)
    _compare(ft.vmap(ft.jit(ft.grad(_f)))(XB), want)
    _compare(ft.vmap(ft.grad(ft.jit(_f)))(XB), want)


def test_jvp_of_jit():
    t = _rand(4)
    _compare(ft.jvp(ft.jit(_vec), (X,), (t,)), ft.jvp(_vec, (X,), (t,)))


def test_vjp_of_jit():
    ct = _rand(4)
    _, pull_jit = ft.vjp(ft.jit(_vec), X)
    _, pull = ft.vjp(_vec, X)
    _compare(pull_jit(ct), pull(ct))


def test_jacobians_of_jit():
    want = ft.jacfwd(_vec)(X)
    _compare(ft.jacfwd(ft.jit(_vec))(X), want)
    _compare(ft.jacrev(ft.jit(_vec))(X), want)
    _compare(ft.jit(ft.jacfwd(_vec))(X), want)
    _compare(ft.jit(ft.jacrev(_vec))(X), want)


def test_hessian_of_jit():
    want = ft.hessian(_f)(X)
    np.testing.assert_allclose(want, want.T, atol=1e-12)
    _compare(ft.hessian(ft.jit(_f))(X), want)
    _compare(ft.jit(ft.hessian(_f))(X), want)
    # analytic: d2/dx2 of x^3/3 is 2x on the diagonal, tanh(x) sin(2x) elementwise too
    assert np.allclose(want, np.diag(np.diag(want)))


def test_grad_of_grad_of_jit():
    f = lambda x: fnp.sin(x) * x**2  # noqa: E731
    want = -np.sin(0.4) * 0.16 + 4 * 0.4 * np.cos(0.4) + 2 * np.sin(0.4)
    np.testing.assert_allclose(ft.grad(ft.grad(ft.jit(f)))(0.4), want, rtol=1e-12)
    np.testing.assert_allclose(ft.jit(ft.grad(ft.grad(f)))(0.4), want, rtol=1e-12)


def test_nested_jit():
    inner = ft.jit(lambda x: fnp.sin(x) * 2.0)
    outer = ft.jit(lambda x: inner(x) + inner(x * 2.0))
    want = 2.0 * np.sin(X) + 2.0 * np.sin(2.0 * X)
    _compare(outer(X), want)
    _compare(ft.jit(ft.jit(_f))(X), _f(X))
    _compare(
        ft.grad(outer_sum := ft.jit(lambda x: fnp.sum(outer(x))))(X),
        2.0 * np.cos(X) + 4.0 * np.cos(2.0 * X),
    )
    assert outer_sum.trace_count == 1


def test_jit_with_static_under_grad():
    f = ft.jit(lambda x, n: fnp.sum(x**n), static_argnums=1)
    _compare(ft.grad(f)(X, 3), 3.0 * X**2)
    _compare(ft.grad(f)(X, 2), 2.0 * X)


# ---------------------------------------------------------------------------------------------
# Errors


def _branchy(x):
    if x > 0:  # the line the error must name
        return x
    return -x


def test_control_flow_on_traced_value_names_the_line_and_where():
    line = _branchy.__code__.co_firstlineno + 1
    with pytest.raises(ConcretizationError) as info:
        ft.jit(_branchy)(1.0)
    message = str(info.value)
    assert f"{os.path.basename(__file__)}:{line}" in message
    assert "where" in message
    assert core.current_trace() is core.eval_trace


def test_control_flow_inside_jit_of_grad_names_the_line():
    def f(x):
        y = x * 2.0
        while fnp.sum(y) > 10.0:  # traced under jit: an error, not an infinite loop
            y = y / 2.0
        return fnp.sum(y)

    line = f.__code__.co_firstlineno + 2
    with pytest.raises(ConcretizationError, match=f"{os.path.basename(__file__)}:{line}"):
        ft.jit(ft.grad(f))(X)
    assert core.current_trace() is core.eval_trace
    # the same code runs eagerly under grad (known primal values) and with a static argument
    ft.grad(f)(X)


def test_control_flow_fixed_by_static_argument():
    f = ft.jit(lambda x, positive: x if positive else -x, static_argnums=1)
    np.testing.assert_allclose(f(X, False), -X)


def test_error_inside_jit_propagates_and_leaves_no_state():
    def f(x):
        y = fnp.sin(x)
        raise RuntimeError("user failure")
        return y

    jitted = ft.jit(f)
    with pytest.raises(RuntimeError, match="user failure"):
        jitted(X)
    assert core.current_trace() is core.eval_trace
    assert jitted.cache_size == 0
    with pytest.raises(RuntimeError):
        ft.grad(lambda x: fnp.sum(jitted(x)))(X)
    assert core.current_trace() is core.eval_trace
    # nothing left behind: eager and jitted transforms still work
    _compare(ft.jit(_f)(X), _f(X))
    _compare(ft.grad(_f)(X), ft.jit(ft.grad(_f))(X))


def test_shape_error_inside_jit_propagates():
    with pytest.raises((ValueError, TypeError)):
        ft.jit(lambda x, y: x @ y)(_rand(2, 3), _rand(2, 3))
    assert core.current_trace() is core.eval_trace


# ---------------------------------------------------------------------------------------------
# The Python-float path for scalar programs keeps NumPy's semantics


SCALAR_PROGRAMS = {
    "div": (lambda x, y: x / y, lambda x, y: x / y),
    "log": (lambda x, y: fnp.log(x) + y, lambda x, y: np.log(x) + y),
    "exp": (lambda x, y: fnp.exp(x) * y, lambda x, y: np.exp(x) * y),
    "sqrt": (lambda x, y: fnp.sqrt(x) - y, lambda x, y: np.sqrt(x) - y),
    "log1p-expm1": (
        lambda x, y: fnp.log1p(x) + fnp.expm1(y),
        lambda x, y: np.log1p(x) + np.expm1(y),
    ),
    "trig": (
        lambda x, y: fnp.tan(x) * fnp.cos(y) + fnp.sin(x),
        lambda x, y: np.tan(x) * np.cos(y) + np.sin(x),
    ),
    "tanh-abs": (lambda x, y: fnp.tanh(x) * fnp.abs(y), lambda x, y: np.tanh(x) * np.abs(y)),
    "square-cube": (lambda x, y: x**2 + y**3, lambda x, y: x**2 + y**3),
    "where": (
        lambda x, y: fnp.where(x > y, x - y, y / x),
        lambda x, y: np.where(x > y, x - y, y / x),
    ),
    "max": (
        lambda x, y: fnp.maximum(x, y) * fnp.minimum(x, y),
        lambda x, y: np.maximum(x, y) * np.minimum(x, y),
    ),
    "chain": (
        lambda x, y: fnp.exp(fnp.log(x) * y) - x**y,
        lambda x, y: np.exp(np.log(x) * y) - x**y,
    ),
}
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1000.0, -1000.0, 1e308, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("name", list(SCALAR_PROGRAMS))
def test_scalar_program_matches_numpy_at_special_values(name):
    f, ref = SCALAR_PROGRAMS[name]
    jitted = ft.jit(f)
    lowered = jitted.lower(1.0, 2.0)
    assert lowered.compiled.scalar_fn is not None, "a program of f64 scalars gets a float path"
    for x in SPECIAL:
        for y in SPECIAL:
            with np.errstate(all="ignore"):
                want = ref(np.float64(x), np.float64(y))
                got = jitted(x, y)
            assert isinstance(got, np.float64), type(got)
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=0, err_msg=f"{name}({x}, {y})")


@pytest.mark.parametrize(
    "f, x, want",
    [
        (lambda x: 1.0 / x, 0.0, np.inf),
        (lambda x: -1.0 / x, 0.0, -np.inf),
        (lambda x: x / x, 0.0, np.nan),
        (lambda x: fnp.log(x), 0.0, -np.inf),
        (lambda x: fnp.log(x), -1.0, np.nan),
        (lambda x: fnp.exp(x), 1000.0, np.inf),
        (lambda x: fnp.exp(x) * 0.0, 1000.0, np.nan),
        (lambda x: x * 1e308 * 10.0, 1.0, np.inf),
    ],
    ids=["1/0", "-1/0", "0/0", "log0", "log-1", "exp1000", "inf*0", "overflow-mul"],
)
def test_scalar_path_special_values_are_numpy_not_exceptions(f, x, want):
    with np.errstate(all="ignore"):
        got = ft.jit(f)(x)
    np.testing.assert_equal(got, want)


def test_scalar_path_under_grad_matches_numpy():
    f = lambda x: fnp.log(x) * x + fnp.exp(x) / x  # noqa: E731
    g = ft.jit(ft.grad(f))
    with np.errstate(all="ignore"):
        for x in [0.0, -1.0, 1000.0, np.inf]:
            # the chain rule at 0 gives log(0) + 0 * (1/0) = nan, as NumPy does eagerly
            np.testing.assert_equal(g(x), ft.grad(f)(x), err_msg=f"x={x}")
    np.testing.assert_allclose(g(2.0), np.log(2.0) + 1.0 + np.exp(2.0) / 4.0, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# The generated source runs on its own


SOURCE_CASES = {
    "array": (lambda x, y: fnp.tanh(x @ y) * 2.0 + fnp.sum(y), (_rand(2, 3), _rand(3, 3))),
    "grad": (ft.grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)), (_rand(3, 2), _rand(4, 3))),
    "with-const": (lambda x: x * _CLOSED[0] + fnp.ones(3), (_rand(3),)),
    "scalar": (lambda x: fnp.sin(x) * fnp.exp(x) + fnp.maximum(x, 0.5), (0.3,)),
    "scalar-grad": (ft.grad(lambda x: fnp.sin(x) ** 3 / x), (0.7,)),
    "multiple-outputs": (lambda x: (x * 2.0, fnp.sum(x), x > 0), (_rand(3),)),
}


def _leaves(args):
    return [np.asarray(a) for a in ft.tree_util.tree_leaves(args)]


@pytest.mark.parametrize("name", list(SOURCE_CASES))
def test_generated_source_runs_on_its_own(name):
    f, args = SOURCE_CASES[name]
    jitted = ft.jit(f)
    lowered = jitted.lower(*args)
    source = lowered.source
    ast.parse(source)  # valid Python
    assert "def program(" in source
    want = ft.tree_util.tree_leaves(f(*args))
    namespace = lowered.namespace
    assert "program" not in namespace and "program_scalars" not in namespace
    exec(compile(source, "<test>", "exec"), namespace)  # noqa: S102
    got = namespace["program"](*_leaves(args))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    if "def program_scalars(" in source:  # the Python-float version: one output comes bare
        got = namespace["program_scalars"](*_leaves(args))
        got = [got] if len(want) == 1 else got
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12)


def test_lowered_exposes_traced_and_simplified_programs():
    f = lambda x: fnp.sin(x) * 1.0 + fnp.sin(x)  # noqa: E731
    lowered = ft.jit(f).lower(X)
    assert len(lowered.jaxpr.eqns) < len(lowered.traced.jaxpr.eqns)
    text = lowered.as_text()
    assert "sin" in text and text == str(lowered)
    (got,) = eval_jaxpr(lowered.jaxpr, lowered.consts, X)
    np.testing.assert_allclose(got, 2.0 * np.sin(X))


def test_generated_code_frees_dead_arrays():
    f = lambda x: fnp.sum(fnp.exp(fnp.sin(fnp.tanh(x))))  # noqa: E731
    source = ft.jit(f).lower(_rand(10)).compiled.source
    assert "del " in source


# ---------------------------------------------------------------------------------------------
# Each simplification fires on the pattern it targets


def _prims(f, *args):
    return [e.prim.name for e in ft.jit(f).lower(*args).jaxpr.eqns]


def test_cse_merges_repeated_subexpressions():
    assert _prims(lambda x: fnp.sin(x) + fnp.sin(x), X) == ["sin", "add"]


def test_dce_removes_unused_work():
    def f(x):
        fnp.exp(x) * 3.0  # dead
        return fnp.cos(x)

    assert _prims(f, X) == ["cos"]


def test_identities_are_forwarded():
    assert _prims(lambda x: (x * 1.0 - 0.0) * fnp.ones_like(x)[0], X) == []
    assert _prims(lambda x: x + 0.0, X) == ["add"]  # -0.0 + 0.0 is +0.0: kept
    assert _prims(lambda x: fnp.sin(fnp.reshape(x, (4,)).T), X) == ["sin"]
    assert _prims(lambda x: fnp.sin(fnp.transpose(fnp.transpose(x.reshape(2, 2)))), X) in (
        ["reshape", "sin"],
        ["reshape", "transpose", "transpose", "sin"],
    )
    assert _prims(lambda x: fnp.broadcast_to(x, (4,)).astype(np.float64) - 0.0, X) == []


def test_identity_with_materialised_constant_is_forwarded():
    assert _prims(lambda x: x - fnp.zeros(4), X) == []
    assert _prims(lambda x: x * fnp.ones(4), X) == []
    # in two dimensions the eager product is a new C-ordered array: kept (see passes.py)
    assert _prims(lambda x: x.reshape(2, 2) * fnp.ones((2, 2)), X) == ["reshape", "mul"]


def test_constants_are_folded():
    c = np.linspace(0.0, 1.0, 4)
    lowered = ft.jit(lambda x: x * fnp.exp(fnp.sin(fnp.asarray(c)) * 2.0)).lower(X)
    assert [e.prim.name for e in lowered.jaxpr.eqns] == ["mul"]
    np.testing.assert_allclose(lowered.consts[0], np.exp(np.sin(c) * 2.0))


def test_grad_program_is_simplified():
    lowered = ft.jit(ft.grad(lambda x: fnp.sum(fnp.sin(x) * fnp.sin(x)))).lower(X)
    assert len(lowered.jaxpr.eqns) < len(lowered.traced.jaxpr.eqns)
    assert [e.prim.name for e in lowered.jaxpr.eqns].count("sin") == 1


# ---------------------------------------------------------------------------------------------
# Simplification preserves results on random straight-line programs
#
# A program is a list of steps over a growing pool of (2, 3) float64 values; each step reads
# earlier values by index (so values may go unused: dead code), steps may repeat (common
# subexpressions), and the constants 0 and 1 appear as Python scalars, broadcast arrays and
# zeros/ones arrays (identities and folding).

SHAPE = (2, 3)


def _step(kind: str, a, b):
    if kind == "add":
        return a + b
    if kind == "mul":
        return a * b
    if kind == "sub":
        return a - b
    if kind == "sin":
        return fnp.sin(a)
    if kind == "exp":
        return fnp.exp(fnp.tanh(a))  # bounded, so chains stay finite
    if kind == "tanh":
        return fnp.tanh(a)
    if kind == "add0":
        return a + 0.0
    if kind == "0add":
        return 0.0 + a
    if kind == "mul1":
        return a * 1.0
    if kind == "1mul":
        return fnp.ones(SHAPE) * a
    if kind == "mul0":
        return a * fnp.zeros(SHAPE)
    if kind == "bcast1":
        return a * fnp.broadcast_to(1.0, SHAPE)
    if kind == "reshape":
        return fnp.reshape(fnp.reshape(a, (6,)), SHAPE)
    if kind == "reshape-noop":
        return fnp.reshape(a, SHAPE)
    if kind == "transpose":
        return fnp.transpose(fnp.transpose(a) * 0.5)
    if kind == "transpose-noop":
        return fnp.transpose(a, (0, 1))
    if kind == "sum":
        return fnp.broadcast_to(fnp.reshape(fnp.sum(a, axis=1), (2, 1)), SHAPE)
    if kind == "sum0":
        return fnp.broadcast_to(fnp.sum(a, axis=0), SHAPE) * 0.25
    if kind == "broadcast":
        return fnp.broadcast_to(a, SHAPE)
    if kind == "dot":
        return fnp.dot(a, fnp.tanh(fnp.dot(fnp.transpose(b), b)))
    if kind == "const":
        return fnp.sin(fnp.ones(SHAPE)) + a  # the sin of a constant folds
    raise AssertionError(kind)


KINDS = [
    "add",
    "mul",
    "sub",
    "sin",
    "exp",
    "tanh",
    "add0",
    "0add",
    "mul1",
    "1mul",
    "mul0",
    "bcast1",
    "reshape",
    "reshape-noop",
    "transpose",
    "transpose-noop",
    "sum",
    "sum0",
    "broadcast",
    "dot",
    "const",
]


@st.composite
def programs(draw):
    n_steps = draw(st.integers(1, 12))
    steps = []
    for i in range(n_steps):
        pool = 2 + i
        if steps and draw(st.booleans()) and draw(st.booleans()):
            steps.append(draw(st.sampled_from(steps)))  # a repeated subexpression
            continue
        kind = draw(st.sampled_from(KINDS))
        steps.append((kind, draw(st.integers(0, pool - 1)), draw(st.integers(0, pool - 1))))
    n_out = 2 + n_steps
    outs = draw(st.lists(st.integers(0, n_out - 1), min_size=1, max_size=3))
    return steps, outs


def _build(steps, outs):
    def f(x, y):
        pool = [x, y]
        for kind, i, j in steps:
            pool.append(_step(kind, pool[i], pool[j]))
        return tuple(pool[k] for k in outs)

    return f


_floats = st.floats(-2.0, 2.0, allow_nan=False)
_arrays = st.lists(_floats, min_size=6, max_size=6).map(lambda v: np.reshape(v, SHAPE))


@given(programs(), _arrays, _arrays)
def test_simplify_preserves_random_programs(program, x, y):
    steps, outs = program
    f = _build(steps, outs)
    want = f(x, y)
    jitted = ft.jit(f)
    _assert_tree_equal(jitted(x, y), want, rtol=1e-12, atol=1e-12)
    lowered = jitted.lower(x, y)
    assert len(lowered.jaxpr.eqns) <= len(lowered.traced.jaxpr.eqns)
    simplified = eval_jaxpr(lowered.jaxpr, lowered.consts, x, y)
    original = eval_jaxpr(lowered.traced.jaxpr, lowered.traced.consts, x, y)
    _assert_tree_equal(tuple(simplified), tuple(original), rtol=1e-12, atol=1e-12)
    _assert_tree_equal(tuple(simplified), want, rtol=1e-12, atol=1e-12)


@given(programs(), _arrays, _arrays)
def test_simplify_preserves_gradients_of_random_programs(program, x, y):
    steps, outs = program
    f = _build(steps, outs)

    def loss(x, y):
        return sum(fnp.sum(o * o) for o in f(x, y))

    want = ft.grad(loss, argnums=(0, 1))(x, y)
    jitted = ft.jit(ft.grad(loss, argnums=(0, 1)))
    _assert_tree_equal(jitted(x, y), want, rtol=1e-10, atol=1e-10)
    _assert_tree_equal(ft.grad(ft.jit(loss), argnums=(0, 1))(x, y), want, rtol=1e-10, atol=1e-10)
    lowered = jitted.lower(x, y)
    assert len(lowered.jaxpr.eqns) <= len(lowered.traced.jaxpr.eqns)


def test_python_ints_beyond_int64_take_the_general_path():
    # the fast path keys scalars by type; a Python int's dtype depends on its value
    jitted = ft.jit(lambda n: fnp.add(n, 1))
    assert jitted(3) == 4
    got = jitted(2**63)
    assert got.dtype == np.uint64 and got == 2**63 + 1
    with pytest.raises(TypeError, match="does not fit a 64-bit integer"):
        jitted(-(2**63) - 1)
    assert jitted(5) == 6


def test_array_subclasses_run_as_plain_arrays():
    # np.matrix's * is a matrix product; the generated code uses Python operators
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    for fn in (fnp.multiply, lambda a, b: fnp.square(a) + b):
        np.testing.assert_array_equal(ft.jit(fn)(m, m), np.asarray(fn(m, m)))


def test_outputs_copied_from_views_keep_the_views_memory_order():
    # a result that is a view of an input is copied (never aliased), in the view's layout
    x = np.arange(12.0).reshape(3, 4)
    for f in (lambda x: x.T, lambda x: x):
        got, want = ft.jit(f)(x), f(x)
        assert not np.shares_memory(got, x)
        assert got.flags.c_contiguous == want.flags.c_contiguous
        assert got.flags.f_contiguous == want.flags.f_contiguous


def test_static_tuple_subclasses_with_their_own_equality_keep_it():
    class Scaled(tuple):
        def __new__(cls, items, scale):
            obj = super().__new__(cls, items)
            obj.scale = scale
            return obj

        def __eq__(self, other):
            return tuple.__eq__(self, other) and self.scale == getattr(other, "scale", None)

        def __hash__(self):
            return hash((tuple(self), self.scale))

    jitted = ft.jit(lambda x, s: x * s.scale, static_argnums=1)
    x = np.ones(2)
    assert jitted(x, Scaled((1,), 2.0)).tolist() == [2.0, 2.0]
    assert jitted(x, Scaled((1,), 3.0)).tolist() == [3.0, 3.0]


def test_bound_jitted_methods_signature_copy():
    import copy
    import inspect

    class C:
        @functools.partial(ft.jit, static_argnums=0)
        def star(*args):
            return args[1]

        @functools.partial(ft.jit, static_argnums=0)
        def plain(self, x):
            return x

    c = C()
    assert str(inspect.signature(c.star)) == "(*args)"
    assert str(inspect.signature(c.plain)) == "(x)"
    assert copy.copy(c.plain) == c.plain and copy.deepcopy(c.plain)(np.ones(1)).tolist() == [1.0]
