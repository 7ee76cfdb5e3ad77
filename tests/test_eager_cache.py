"""The eager cache (functrans/eager.py): repeated eager calls of a transformed function record
the user's function and run a compiled transformation of a program seen before. Every call must
give what the uncached eager path gives, bit for bit, with the user's function run exactly once
per call, whatever it does between calls (branches, globals, closed-over arrays, errors)."""

from __future__ import annotations

import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans import eager
from functrans.errors import BatchingError, ConcretizationError, LeakedTracerError
from functrans.primitives import dot_general

CALLS = eager.COMPILE_AT + 2  # first sighting, eager sightings, the compile, compiled calls


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test counts its own programs (the cache is kept per code object, and the lambdas
    of a parametrized test share theirs)."""
    eager._ENTRIES.clear()


@pytest.fixture
def uncached():
    """Run a block with the cache off (the reference path)."""

    class Off:
        def __enter__(self):
            ft.config.update("eager_cache", False)

        def __exit__(self, *exc):
            ft.config.update("eager_cache", True)

    return Off()


def _bits(x):
    leaves, tree = ft.tree_util.tree_flatten(x)
    return tree, [
        (type(v), np.asarray(v).dtype, np.shape(v), np.asarray(v).tobytes(), _layout(v))
        for v in leaves
    ]


def _layout(v):
    if type(v) is np.ndarray:
        return v.flags.c_contiguous, v.flags.f_contiguous
    return None


def _programs(fun):
    return [
        p
        for table in [eager._ENTRIES.get(eager._scope(fun), {})]
        for e in table.values()
        for p in e.programs.values()
    ]


def _compiled(fun) -> int:
    return sum(type(p) is eager._Compiled for p in _programs(fun))


def _check_calls(transformed, fun, args_per_call, uncached):
    """Each call's result equals the uncached path's, bit for bit."""
    for args in args_per_call:
        got = transformed(*args)
        with uncached:
            want = transformed(*args)
        assert _bits(got) == _bits(want)


# ---------------------------------------------------------------------------------------------
# The cached path reproduces the eager one


def f_scalar(x):
    y = x
    for _ in range(3):
        y = fnp.tanh(fnp.sin(y) * fnp.cos(y)) + y * 0.5
    return y


def f_vector(x):
    return fnp.sum(fnp.exp(-x * x) * fnp.arange(x.shape[0])) + fnp.dot(x, x) ** 1.5


def loss(w, x, y):
    return fnp.log1p(fnp.exp(-y * fnp.dot(x, w)))


TRANSFORMS = {
    "grad": lambda f: ft.grad(f),
    "value_and_grad": lambda f: ft.value_and_grad(f),
    "grad3": lambda f: ft.grad(ft.grad(ft.grad(f))),
    "jacfwd": lambda f: ft.jacfwd(f),
    "jacrev": lambda f: ft.jacrev(f),
    "jacobian": lambda f: ft.jacobian(f),
    "hessian": lambda f: ft.hessian(f),
    "jacfwd_jacrev": lambda f: ft.jacfwd(ft.jacrev(f)),
    "vmap": lambda f: ft.vmap(f),
    "vmap_grad": lambda f: ft.vmap(ft.grad(f)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_call_equals_the_uncached_path(name, uncached):
    fun = (lambda x: f_scalar(x)) if name in ("grad3",) else (lambda x: f_vector(x))
    if name.startswith("vmap"):
        fun = lambda x: f_scalar(x)  # noqa: E731 - a fresh function per test
        inputs = [np.linspace(-1, 1, 5) * (k + 1) for k in range(CALLS)]
    elif name == "grad3":
        inputs = [0.1 * (k + 1) for k in range(CALLS)]
    else:
        inputs = [np.linspace(0.1, 0.9, 4) * (k + 1) for k in range(CALLS)]
    transformed = TRANSFORMS[name](fun)
    _check_calls(transformed, fun, [(x,) for x in inputs], uncached)
    assert _compiled(fun) == 1  # one program, compiled once


def test_per_example_gradients(uncached):
    rng = np.random.default_rng(0)
    per_example = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))
    calls = []
    for _ in range(CALLS):
        w, x, y = rng.normal(size=3), rng.normal(size=(6, 3)), np.sign(rng.normal(size=6))
        calls.append((w, x, y))
    _check_calls(per_example, loss, calls, uncached)
    assert _compiled(loss) == 1


@given(
    shape=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    scale=st.floats(0.1, 2.0),
    argnums=st.sampled_from([0, 1, (0, 1)]),
)
def test_grad_of_pytrees_and_argnums(shape, scale, argnums):
    def fun(p, z):
        return fnp.sum(fnp.sin(p["a"]) * z[0] + p["b"] ** 2) * scale

    g = ft.grad(fun, argnums=argnums)
    for k in range(CALLS):
        p = {"a": np.full(shape, 0.3 * k), "b": np.full(shape, 1.0 + k)}
        z = (np.full(shape, 2.0 - k),)
        got = g(p, z)
        ft.config.update("eager_cache", False)
        try:
            want = g(p, z)
        finally:
            ft.config.update("eager_cache", True)
        assert _bits(got) == _bits(want)


def test_a_fresh_transformed_function_per_call_shares_the_cache():
    # the common loop `ft.grad(f)(x)`: the cache is keyed by f and the transformations
    def fun(x):
        return fnp.sum(fnp.sin(x))

    for k in range(CALLS):
        ft.grad(fun)(np.arange(3.0) + k)
    assert _compiled(fun) == 1


def test_keyword_python_scalar_and_static_like_arguments(uncached):
    def fun(x, n, *, scale):
        y = x
        for _ in range(n):  # a Python int the function loops on
            y = fnp.sin(y) * scale
        return y

    g = ft.grad(fun)
    calls = [(0.5, 2), (0.7, 2), (0.9, 3), (1.1, 2), (0.2, 3), (0.4, 3)]
    for x, n in calls:
        got = g(x, n, scale=1.5)
        with uncached:
            want = g(x, n, scale=1.5)
        assert _bits(got) == _bits(want)
    assert _compiled(fun) == 2  # n = 2 and n = 3 each reached their third sighting


def test_bound_methods(uncached):
    class Model:
        def __init__(self, w):
            self.w = w

        def loss(self, x):
            return fnp.sum(fnp.tanh(self.w * x))

    for k in range(CALLS):
        m = Model(np.arange(3.0) + k)
        g = ft.grad(m.loss)
        x = np.ones(3) * 0.1 * k
        got = g(x)
        with uncached:
            want = g(x)
        assert _bits(got) == _bits(want)
    assert _compiled(Model.loss) == 1


# ---------------------------------------------------------------------------------------------
# The function runs once per call, and what it reads is read anew


def test_value_dependent_branches_record_one_program_each(uncached):
    def fun(x):
        if x > 0:  # bool() of a value being differentiated: allowed eagerly
            return fnp.sin(x) * x
        return fnp.cos(x)

    g = ft.grad(fun)
    xs = [0.5, -0.5, 0.7, -0.7, 0.9, -0.9, 1.1, -1.1]
    for x in xs:
        got = g(x)
        with uncached:
            want = g(x)
        assert got == want
    assert _compiled(fun) == 2


def test_globals_and_closed_over_arrays_are_read_on_every_call():
    state = {"scale": 2.0}
    weights = np.array([1.0, 2.0, 3.0])

    def fun(x):
        return fnp.sum(weights * fnp.sin(x)) * state["scale"]

    def reference(x):
        return np.cos(x) * weights * state["scale"]

    g = ft.grad(fun)
    x = np.array([0.1, 0.2, 0.3])
    for k in range(CALLS + 2):
        state["scale"] = 2.0 + k  # a new literal: a new program
        weights[:] = k  # updated in place: the same program, new constants
        np.testing.assert_allclose(g(x), reference(x), rtol=1e-15)
    for k in range(CALLS):  # one scale, so one program, compiled
        weights[:] = 5.0 + k
        np.testing.assert_allclose(g(x), reference(x), rtol=1e-15)
    assert _compiled(fun) == 1


def test_side_effects_run_once_per_call():
    calls = []

    def fun(x):
        calls.append(1)
        return fnp.sum(x**2)

    g = ft.hessian(fun)
    for k in range(CALLS):
        g(np.ones(3) * k)
        assert len(calls) == k + 1


def test_random_numbers_drawn_inside_are_fresh_each_call(uncached):
    rng = np.random.default_rng(0)

    def fun(x):
        noise = rng.normal(size=3)  # a new constant every call
        return fnp.sum(fnp.sin(x) * noise)

    g = ft.grad(fun)
    x = np.ones(3)
    results = [g(x) for _ in range(CALLS)]
    rng2 = np.random.default_rng(0)
    for r in results:
        np.testing.assert_array_equal(r, np.cos(x) * rng2.normal(size=3))


def test_results_are_fresh_arrays():
    g = ft.grad(lambda x: fnp.sum(x * 3.0))
    x = np.ones(3)
    outs = [g(x) for _ in range(CALLS)]
    outs[-1][:] = 0.0  # updating one result changes no later result
    np.testing.assert_array_equal(g(x), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(x, [1.0, 1.0, 1.0])


def test_custom_vjp_rules_run_on_every_call():
    state = {"k": 1.0}

    @ft.custom_vjp
    def scaled(x):
        return x * 1.0

    def fwd(x):
        return scaled(x), None

    def bwd(_, g):
        return (g * state["k"],)  # a global the rule reads when it runs

    scaled.defvjp(fwd, bwd)

    def fun(x):
        return fnp.sum(scaled(x))

    g = ft.grad(fun)
    for k in range(CALLS + 1):
        state["k"] = float(k)
        np.testing.assert_array_equal(g(np.ones(2)), [float(k), float(k)])
    assert _compiled(fun) == 0  # a Python rule: never compiled


# ---------------------------------------------------------------------------------------------
# Errors: as the uncached path gives them, on every call, with nothing left behind


def test_float_of_a_differentiated_value_is_an_error_on_every_call():
    g = ft.grad(lambda x: fnp.sin(x) * float(x))
    for _ in range(CALLS):
        with pytest.raises(ConcretizationError, match="float"):
            g(0.5)


def test_float_of_a_stopped_value_works(uncached):
    def fun(x):
        return fnp.sin(x) * float(ft.stop_gradient(x))

    g = ft.grad(fun)
    for x in [0.5, 0.6, 0.7, 0.8, 0.9]:
        got = g(x)
        with uncached:
            assert got == g(x)


def test_truth_of_a_batched_value_is_an_error_on_every_call():
    f = ft.vmap(lambda x: x if x > 0 else -x)
    for _ in range(CALLS):
        with pytest.raises(BatchingError):
            f(np.array([1.0, -1.0]))


def test_an_error_inside_leaves_no_state(uncached):
    def fun(x):
        if x > 10:
            raise ValueError("too big")
        return fnp.sin(x)

    g = ft.grad(fun)
    for x in [1.0, 20.0, 2.0, 30.0, 3.0, 4.0, 40.0, 5.0]:
        if x > 10:
            with pytest.raises(ValueError, match="too big"):
                g(x)
        else:
            got = g(x)
            with uncached:
                assert got == g(x)
    assert ft.core.current_trace() is ft.core.eval_trace


def test_errstate_raise_is_honoured_by_compiled_programs():
    g = ft.grad(lambda x: fnp.exp(x))
    for _ in range(CALLS):
        g(1.0)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        g(1000.0)


def test_leaked_tracer_is_reported():
    stash = []

    def fun(x):
        stash.append(x)
        return fnp.sin(x)

    g = ft.grad(fun)
    for k in range(CALLS):
        g(0.1 * k)
    with pytest.raises(LeakedTracerError, match="JVPTrace"):
        stash[-1] + 1.0


@pytest.mark.parametrize("python_float", [False, True])
def test_aux_outputs(python_float, uncached):
    def fun(x):
        aux = {"x": x, "y": fnp.sin(x)}
        if python_float:
            aux["n"] = 3.0
        return fnp.sum(x**2), aux

    g = ft.grad(fun, has_aux=True)
    for k in range(CALLS):
        x = np.ones(2) * k
        got = g(x)
        with uncached:
            want = g(x)
        assert _bits(got) == _bits(want)
        assert not np.shares_memory(got[1]["x"], x)
    # jit returns a NumPy scalar for the Python float: the compiled result differs in type, so
    # that program keeps running eagerly
    assert _compiled(fun) == (0 if python_float else 1)


def test_non_array_aux_is_an_error_on_every_call():
    g = ft.grad(lambda x: (fnp.sum(x**2), {"note": "ok"}), has_aux=True)
    for _ in range(CALLS):
        with pytest.raises(TypeError, match="type str is not an array"):
            g(np.ones(2))


# ---------------------------------------------------------------------------------------------
# Switching it off


def test_the_config_flag_turns_it_off():
    def fun(x):
        return fnp.sum(fnp.sin(x))

    ft.config.update("eager_cache", False)
    try:
        for _ in range(CALLS):
            ft.grad(fun)(np.ones(2))
        assert eager._scope(fun) not in eager._ENTRIES
    finally:
        ft.config.update("eager_cache", True)
    assert ft.config.read("eager_cache") is True


def test_under_jit_and_inside_other_transformations_nothing_is_cached():
    def fun(x):
        return fnp.sum(fnp.sin(x))

    jg = ft.jit(ft.grad(fun))
    for _ in range(CALLS):
        jg(np.ones(2))
        ft.jvp(ft.grad(fun), (np.ones(2),), (np.ones(2),))
    assert eager._scope(fun) not in eager._ENTRIES


def test_a_function_with_a_new_program_each_call_stops_being_recorded(uncached):
    def fun(x, k):
        y = x
        for _ in range(k):  # a different program for every k
            y = fnp.sin(y)
        return y

    g = ft.grad(fun)
    for k in range(1, eager.STREAK_LIMIT + 4):
        got = g(0.5, k)
        with uncached:
            assert got == g(0.5, k)
    (entry,) = eager._ENTRIES[eager._scope(fun)].values()
    assert not entry.ok


def test_is_a_plain_function_wrapper():
    def fun(x):
        """Doc."""
        return x

    g = ft.grad(fun)
    assert isinstance(g, types.FunctionType)
    assert g.__name__ == "fun" and g.__doc__ == "Doc."


def test_memory_on_every_path_is_the_activations():
    # the eager replay drops each value after its last use, as the function's own locals are
    # dropped: a replay that kept them all would hold the chain's activations twice
    import tracemalloc

    layers, n = 40, 20000

    def chain(x):
        for _ in range(layers):
            x = fnp.sin(x)
        return fnp.sum(x)

    g = ft.grad(chain)
    x = np.linspace(0.0, 1.0, n)
    activations = layers * x.nbytes
    for _ in range(CALLS):
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            g(x)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert peak < 1.15 * activations


def test_contractions_that_differ_only_in_axes_are_different_programs(uncached):
    # dot_general's dimension numbers are canonical tuples whose keys are remembered by
    # identity: a program contracting other axes must not find the first one's key
    a = np.arange(1.0, 7.0).reshape(2, 3)
    b = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])

    def contract(x, axes):
        return fnp.sum(fnp.tensordot(x, b, axes=axes) ** 2)

    def make(axes):  # one code object for both: the programs share a cache scope
        return ft.grad(lambda x: contract(x, axes))

    g0, g1 = make(([0], [0])), make(([1], [1]))
    with uncached:
        want0, want1 = g0(a), g1(a)
    assert not np.array_equal(want0, want1)
    for _ in range(CALLS):
        np.testing.assert_array_equal(g0(a), want0)
        np.testing.assert_array_equal(g1(a), want1)
    assert _compiled(g0) == 2  # two programs, one scope


def test_dimension_numbers_may_be_lists_or_numpy_integers():
    x = np.arange(6.0).reshape(2, 3)
    y = np.arange(12.0).reshape(3, 4)
    for dims in (
        (([1], [0]), ([], [])),
        (((np.int64(1),), (np.int64(0),)), ((), ())),
        (((1,), (0,)), ((), ())),
    ):
        got = dot_general(x, y, dimension_numbers=dims)
        np.testing.assert_array_equal(got, x @ y)
