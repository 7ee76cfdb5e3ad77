"""Third adversarial review of the eager cache (functrans/eager.py), after the second review's
changes: values computed during the recording, arrays made read-only while f runs, error state
and warning filters checked per operation, programs kept per code object. Each test is a case
where the cached path differs from the uncached reference path (`eager_cache` off), leaves the
user's arrays changed, or runs the user's function twice outside the documented fallbacks. The
comment in each test describes the failure as it was found."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401 - fresh_cache: autouse
from eager_helpers import bits as _bits

import functrans as ft
import functrans.numpy as fnp
from functrans import eager, lax


def _warnings_of(call):
    """A call's result bits and the sorted messages of the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _bits(call())
    return result, sorted(str(w.message) for w in caught)


# ---------------------------------------------------------------------------------------------
# Arrays made read-only while f runs: left read-only after the call


def test_an_array_f_returns_as_it_is_is_writeable_after_the_call():
    # RecordingTrace._atom makes every array the recording holds read-only and _record restores
    # them in its `finally`; but f's outputs are turned into atoms afterwards (_Recording ->
    # trace.finish -> _atom), so an array f returns without having used it in an operation (a
    # closed-over table returned as aux, an undifferentiated argument returned as aux, an
    # out_axes=None output) is made read-only after the restore and stays read-only for good.
    table = np.arange(3.0)
    data = np.arange(4.0)
    mapped = np.arange(2.0)

    def fun(x, d):
        return fnp.sum(x * 2.0), (table, d)

    def batched(x):
        return x * 2.0, mapped

    ft.grad(fun, has_aux=True)(np.ones(3), data)
    ft.vmap(batched, out_axes=(0, None))(np.ones((2, 3)))
    assert table.flags.writeable
    assert data.flags.writeable
    assert mapped.flags.writeable


def test_a_view_taken_inside_f_of_a_used_array_is_writeable_after_the_call():
    # A view made inside f of an array the recording already holds (`W[:2]`, `W.T`) is born
    # read-only (NumPy views inherit the flag), and _unguard only restores the arrays it made
    # read-only itself: the view stays read-only after f returns. f keeping such a view (a cache
    # of a slice) or returning it as aux hands the user a read-only array where the uncached
    # path hands a writeable one. Fixed for views the recording meets (used by an operation or
    # returned); a view f only stores away stays read-only (documented in docs/sharp_edges.md).
    w = np.arange(4.0)
    kept = {}

    def fun(x):
        y = fnp.sum(x * w)
        kept["view"] = w[:2]
        return y, w[1:3]

    g = ft.grad(fun, has_aux=True)
    got = []
    want = []
    for _ in range(2):
        aux = g(np.ones(4))[1]
        got.append(aux.flags.writeable)
        assert not kept["view"].flags.writeable  # the documented limit
        with uncached():
            aux = g(np.ones(4))[1]
            want.append(aux.flags.writeable)
    assert got == want
    assert w.flags.writeable


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.lib.stride_tricks.as_strided(np.arange(6.0), (4,), (8,)),
        lambda: np.lib.stride_tricks.sliding_window_view(np.arange(6.0), 3, writeable=True),
    ],
    ids=["as_strided", "sliding_window_view"],
)
def test_a_strided_view_f_uses_is_writeable_after_the_call(make):
    # A view whose base is not an ndarray (as_strided's DummyArray, so also a writeable
    # sliding_window_view) can be made read-only but NumPy refuses to make it writeable again
    # ("cannot set WRITEABLE flag to True of this array"): _unguard gives up silently and the
    # user's array is read-only for good after one cached call.
    s = make()
    assert s.flags.writeable

    def fun(x):
        return fnp.sum(x * s)

    ft.grad(fun)(np.ones(s.shape))
    assert s.flags.writeable


def test_an_array_from_broadcast_arrays_warns_as_uncached():
    # np.broadcast_arrays returns arrays that warn when their WRITEABLE flag is read
    # ("future versions will not create a writeable array from broadcast_array"): the guard in
    # _atom reads `x.flags.writeable` of every array f uses, so the cached path emits a
    # FutureWarning the uncached path never does (an error under -W error).
    a, _ = np.broadcast_arrays(np.ones((3, 1)), np.ones((1, 3)))

    def fun(x):
        return fnp.sum(x * a)

    g = ft.grad(fun)
    x = np.ones((3, 3))
    got = _warnings_of(lambda: g(x))
    with uncached():
        want = _warnings_of(lambda: g(x))
    assert got == want


# ---------------------------------------------------------------------------------------------
# Values computed during the recording


@pytest.mark.parametrize(
    "body",
    [
        lambda x, t: fnp.sum(x * t[fnp.argsort(x)]),  # a NumPy table indexed by an argsort
        lambda x, t: fnp.sum(x * t[(x * 3.0).astype(np.int64)]),  # ... by a computed index
        lambda x, t: fnp.sum(x) * t[np.asarray(fnp.argmax(x))],  # np.asarray of an argmax
    ],
    ids=["argsort_index", "astype_int_index", "asarray_argmax"],
)
def test_integer_results_that_are_concrete_eagerly_do_not_run_f_twice(body):
    # Eagerly, forward mode returns a plain array for any result whose tangent is a symbolic
    # zero: integer results (argsort, argmax, astype(int)) as well as the ZERO_DERIVATIVE
    # primitives. The recording computes only the latter (process_primitive checks
    # `prim in ZERO_DERIVATIVE`), so an integer result is a RecordingTracer: indexing a NumPy
    # array with it or np.asarray raises, the first call runs f a second time, and the function
    # is never cached.
    runs = []
    table = np.arange(4.0) * 1.5

    def fun(x):
        runs.append(1)
        return body(x, table)

    g = ft.grad(fun)
    x = np.array([0.1, 0.7, 0.9, 0.3])
    per_call = []
    for _ in range(CALLS):
        runs.clear()
        got = g(x)
        per_call.append(len(runs))
        with uncached():
            assert _bits(got) == _bits(g(x))
    assert per_call == [1] * CALLS


def test_a_comparison_of_a_computed_value_does_not_repeat_its_warnings():
    # `y > c` with y = log(x) is computed during the recording (a ZERO_DERIVATIVE primitive on
    # known values): RecordingTrace.known recomputes log(x) with run_impl, and the eager
    # transformation of the recorded program computes it again. Every warning of the forward
    # computation up to the comparison is raised twice per call ("divide by zero encountered in
    # log" twice); uncached, once.
    def fun(x):
        y = fnp.log(x)
        return fnp.sum(fnp.where(y > -1.0, y * x, x))

    g = ft.grad(fun)
    z = np.array([0.0, 1.0, 2.0])
    for k in range(CALLS):
        got = _warnings_of(lambda: g(z))
        with uncached():
            want = _warnings_of(lambda: g(z))
        if k < eager.COMPILE_AT:
            assert got == want
        else:  # a compiled program computes a repeated product once: the same warnings, once
            assert got[0] == want[0] and sorted(set(got[1])) == sorted(set(want[1]))


# ---------------------------------------------------------------------------------------------
# Warning filters changed inside f


def test_warning_filters_reordered_inside_f_are_detected():
    # The per-operation check compares `warnings.filters` by identity and length only.
    # warnings.filterwarnings/simplefilter with a filter that is already in the list moves it to
    # the front: same list, same length. f silencing RuntimeWarning around a computation and
    # re-enabling it afterwards (without catch_warnings) is not detected once both filters exist
    # (from the second time f runs): the program then runs after f, under the re-enabled filter,
    # and the cached path warns "divide by zero encountered in log" where the uncached path is
    # silent.
    def fun(x):
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        y = fnp.log(x)
        warnings.filterwarnings("always", category=RuntimeWarning)
        return fnp.sum(y * 2.0)

    g = ft.grad(fun)
    z = np.array([0.0, 1.0])
    with warnings.catch_warnings():
        fun(np.ones(2))  # the loss evaluated once: both filters are now in the list
        got, want = [], []
        for _ in range(CALLS):
            with warnings.catch_warnings(record=True) as caught:
                g(z)
            got.append(sorted(str(w.message) for w in caught))
            with uncached(), warnings.catch_warnings(record=True) as caught:
                g(z)
            want.append(sorted(str(w.message) for w in caught))
    assert got == want


# ---------------------------------------------------------------------------------------------
# Control flow on batched predicates


@pytest.mark.parametrize(
    ("body", "xs"),
    [
        (lambda x: lax.cond(x > 0.0, lambda v: v * 2.0, lambda v: -v, x), [1.0, -2.0, 3.0]),
        (lambda x: lax.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x), [1.0, 2.0, 3.0]),
    ],
    ids=["cond", "while_loop"],
)
def test_lax_control_flow_on_a_batched_predicate_runs_f_once(body, xs):
    # lax.cond / while_loop under vmap with a batched predicate are supported eagerly: _concrete
    # catches the BatchingError of BatchTracer.to_concrete and selects between the branches (or
    # masks the finished lanes). RecordingTracer.to_concrete raises _Unreproducible instead, which
    # lax does not catch: the first call runs f a second time (not among the documented
    # fallbacks: it is no error either way) and the function is never recorded again.
    runs = []

    def fun(x):
        runs.append(1)
        return body(x)

    g = ft.vmap(fun)
    xs = np.array(xs)
    per_call = []
    for _ in range(CALLS):
        runs.clear()
        got = g(xs)
        per_call.append(len(runs))
        with uncached():
            assert _bits(got) == _bits(g(xs))
    if body.__code__.co_names and "while_loop" in body.__code__.co_names:
        # lax.while_loop reduces the batched predicate over its lanes by looking inside the
        # BatchTracer, which a recording does not have: the first call falls back (f runs
        # twice, documented in docs/sharp_edges.md) and the later ones take the ordinary path
        assert per_call == [2] + [1] * (CALLS - 1)
    else:
        assert per_call == [1] * CALLS


# ---------------------------------------------------------------------------------------------
# Programs kept per code object


def test_functions_decorated_by_one_wrapper_keep_their_programs_apart():
    # docs/sharp_edges.md: "Programs are kept per function *definition*". _scope keys the cache
    # by the code of the function the transformation receives: for functions decorated with a
    # functools.wraps wrapper that is the wrapper's code, shared by every function it decorates.
    # Their programs then share one entry per signature, with its caps: 17 distinct definitions
    # used in turn evict each other's counts (MAX_PROGRAMS = 16) before any reaches the third
    # sighting, the shared streak reaches STREAK_LIMIT and the entry stops: no decorated
    # function (present or future, of that signature) is ever compiled again. The same
    # definitions undecorated are each compiled.
    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    defs = []
    for k in range(eager.MAX_PROGRAMS + 1):
        namespace = {"fnp": fnp}
        body = "    x = fnp.sin(x)\n" * (k + 1)
        exec(f"def loss_{k}(x):\n{body}    return fnp.sum(x)\n", namespace)  # noqa: S102
        defs.append(logged(namespace[f"loss_{k}"]))
    grads = [ft.grad(f) for f in defs]
    x = np.ones(3)
    for _ in range(eager.COMPILE_AT + 3):
        for g in grads:
            g(x)
    compiled = sum(
        type(p) is eager._Compiled
        for f in defs
        for e in eager._ENTRIES.get(eager._scope(f), {}).values()
        for p in e.programs.values()
    )
    assert compiled == len(defs)
