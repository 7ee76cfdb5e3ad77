"""Second adversarial review of the eager cache (functrans/eager.py). Each test is a case where
the cached path (a transformed function called eagerly, often enough to reach the compiled
program) differs from the uncached reference path (`eager_cache` off), runs the user's function
more than once per call outside the documented fallbacks, or keeps the user's objects alive.
The comment in each test describes the failure as it was found."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401 - fresh_cache: autouse
from eager_helpers import bits as _bits
from eager_helpers import compiled as _compiled
from eager_helpers import warm as _warm

import functrans as ft
import functrans.numpy as fnp
from functrans import eager
from functrans.errors import BatchingError


def _same_up_to_nan_signs(got, want) -> bool:
    """Equal trees, types, dtypes and shapes; equal values with NaN at the same places (which
    NaN, its sign and payload, may differ: docs/sharp_edges.md)."""
    lg, tg = ft.tree_util.tree_flatten(got)
    lw, tw = ft.tree_util.tree_flatten(want)
    return tg == tw and all(
        type(a) is type(b)
        and np.asarray(a).dtype == np.asarray(b).dtype
        and np.shape(a) == np.shape(b)
        and np.array_equal(a, b, equal_nan=True)
        for a, b in zip(lg, lw)
    )


def _outcome(call):
    """A call's result bits, or its exception type; with the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", _bits(call()))
        except Exception as err:  # noqa: BLE001 - compared between the two paths
            result = ("raised", type(err).__name__)
    return result, sorted(str(w.message) for w in caught)


# ---------------------------------------------------------------------------------------------
# Stale programs: the key does not capture everything the program depends on


def test_nan_sign_of_a_python_float_output_is_in_the_program_key():
    # A Python float that reaches the recording as it is (here an output of f) is keyed by
    # float.hex(), which spells every NaN "nan": NaN and -NaN give the same program key, and the
    # compiled program returns the NaN of the call that compiled it.
    state = {"fill": float("nan")}

    def fun(x):
        return x * 2.0, state["fill"]

    g = ft.vmap(fun)
    x = np.arange(3.0)
    _warm(g, x)
    assert _compiled(fun) == 1
    state["fill"] = -float("nan")
    got = g(x)
    with uncached():
        want = g(x)
    assert _bits(got) == _bits(want)


# ---------------------------------------------------------------------------------------------
# The recording is replayed after f returns: what f does to NumPy state in between is lost


def test_a_temporary_updated_in_place_after_use_inside_f():
    # The recording keeps f's NumPy arrays by reference and computes nothing until f has
    # returned: an array f uses and then updates in place (a reused buffer) is replayed with its
    # final contents for every use. Eagerly, each operation sees the contents at that moment.
    # Wrong from the very first call (value 30.0 instead of 18.0; vmap 10.0 instead of 6.0).
    def fun(x):
        t = np.ones(3)
        y = fnp.sum(x * t)
        t[:] = 5.0  # the buffer is reused after its first use
        return y + fnp.sum(x * t)

    def batched(x):
        t = np.ones(3)
        y = x * t
        t[:] = 5.0
        return y + x * t

    vg = ft.value_and_grad(fun)
    vm = ft.vmap(batched)
    for _ in range(CALLS):
        got = vg(np.ones(3)), vm(np.ones((2, 3)))
        with uncached():
            want = vg(np.ones(3)), vm(np.ones((2, 3)))
        assert _bits(got) == _bits(want)


def test_state_updated_in_place_by_f_after_use():
    # A closed-over buffer that f reads and then updates (a running statistic, a step counter
    # held in an array): the replay reads the updated buffer, one step ahead of the eager path.
    def run(use_cache):
        state = np.zeros(3)

        def fun(x):
            y = fnp.sum(x * state)
            state[:] += 1.0
            return y

        g = ft.value_and_grad(fun)
        ft.config.update("eager_cache", use_cache)
        try:
            return [_bits(g(np.ones(3))) for _ in range(CALLS)]
        finally:
            ft.config.update("eager_cache", True)

    assert run(True) == run(False)


def test_errstate_raise_set_inside_f_is_honoured():
    # f asks NumPy to raise for the part of its computation inside `np.errstate`; the recording
    # computes nothing there, and the replay runs after f has left the block: the cached path
    # returns a result (with a warning) where the uncached path raises FloatingPointError.
    def fun(x):
        with np.errstate(divide="raise"):
            y = fnp.log(x)
        return fnp.sum(y)

    g = ft.value_and_grad(fun)
    z = np.array([0.0, 1.0])
    got = _outcome(lambda: g(z))
    with uncached():
        want = _outcome(lambda: g(z))
    assert want[0] == ("raised", "FloatingPointError")
    assert got == want


def test_warnings_silenced_inside_f_stay_silent():
    # The common `with np.errstate(divide="ignore"): y = fnp.log(x)` inside f: eagerly silent,
    # cached the replay warns ("divide by zero encountered in log", ...), on every call.
    def fun(x):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = fnp.log(x)
        return fnp.where(x > 0, y, 0.0)

    g = ft.vmap(fun)
    z = np.array([[0.0, 1.0], [2.0, 0.0]])
    for _ in range(CALLS):
        got = _outcome(lambda: g(z))
        with uncached():
            want = _outcome(lambda: g(z))
        assert got == want


def test_debug_nans_enabled_inside_f():
    # debug_nans switched on for a part of f: eagerly the NaN check runs there and raises; the
    # replay runs after f has switched it off again.
    def fun(x):
        with ft.config.debug_nans():
            y = fnp.log(x)
        return fnp.sum(y * x)

    g = ft.grad(fun)
    z = np.array([0.0, 1.0])
    got = _outcome(lambda: g(z))
    with uncached():
        want = _outcome(lambda: g(z))
    assert want[0] == ("raised", "NonFiniteError")
    assert got[0] == want[0]


# ---------------------------------------------------------------------------------------------
# Compiled programs: bits differ from the eager path on inputs other than the compiling call's


def test_nan_sign_of_in_place_add_on_size_one_arrays():
    # jit's generated code reuses buffers (`np.add(v2, a1, out=v2)`); for arrays of one element
    # NumPy's in-place add returns the second operand's NaN where `a + b` returns the first. The
    # compile check ran on finite values; a later call with NaNs of both signs differs in the
    # NaN's sign bit only, which is documented (docs/sharp_edges.md): the values are the same.
    def fun(x, y):
        return fnp.abs(x) + y

    g = ft.vmap(fun)
    _warm(g, np.array([1.0]), np.array([2.0]))
    assert _compiled(fun) == 1
    x, y = np.array([np.nan]), -np.array([np.nan])
    got = g(x, y)
    with uncached():
        want = g(x, y)
    assert _same_up_to_nan_signs(got, want)


def test_nan_sign_of_a_scalar_gradient():
    # The simplest scalar gradient, at NaN: the eager path computes `(1.0 * x) * -sin(x)` on
    # NumPy scalars (scalar math returns the second NaN); the compiled program (the `1.0 *`
    # simplified away) multiplies the 0-d array input (`_as_input`) by a NumPy scalar through
    # the ufunc, which returns the first NaN: the gradient's sign bit differs (documented).
    def fun(x):
        return x * fnp.cos(x)

    g = ft.grad(fun)
    _warm(g, 0.4)
    assert _compiled(fun) == 1
    got = g(np.nan)
    with uncached():
        want = g(np.nan)
    assert _same_up_to_nan_signs(got, want)


# ---------------------------------------------------------------------------------------------
# f runs twice in a call outside the documented fallbacks


@pytest.mark.parametrize(
    "body",
    [
        lambda x: fnp.sum(x[x > 0.5] ** 2),  # boolean mask of a compared value
        lambda x: fnp.sum(x * np.asarray(ft.stop_gradient(x))),  # NumPy on a stopped value
        lambda x: fnp.sum(fnp.take(x, fnp.nonzero(x > 0.5)[0]) ** 3),
    ],
    ids=["boolean_mask", "asarray_of_stopped_value", "nonzero"],
)
def test_values_that_are_concrete_eagerly_do_not_run_f_twice(body):
    # Under grad a comparison's result, a stop_gradient'ed value or a value computed from
    # constants only is a plain array eagerly, so `x[x > 0.5]`, `np.asarray(...)` and
    # `fnp.nonzero(...)` work. In the recording it is a RecordingTracer: indexing raises
    # IndexError, np.asarray TracerArrayConversionError, nonzero ConcretizationError, so the
    # first call runs f a second time (its side effects twice) and the function is never cached.
    # None of these is among the documented fallbacks (docs/sharp_edges.md).
    runs = []

    def fun(x):
        runs.append(1)
        return body(x)

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


def test_a_call_that_falls_back_with_an_error_is_not_recorded_again():
    # docs/sharp_edges.md: "What the recording cannot reproduce runs your function a second time
    # in that call ... the truth of a batched value under vmap (an error either way) ... After
    # such a call, that function and argument signature are not recorded again." When the
    # ordinary path raises, nothing is stored (_first_call) or stopped (_later_call), so every
    # such call runs f twice, for ever.
    runs = []

    def fun(x):
        runs.append(1)
        return x if x > 0 else -x

    g = ft.vmap(fun)
    per_call = []
    for _ in range(CALLS):
        runs.clear()
        with pytest.raises(BatchingError):
            g(np.array([1.0, -1.0]))
        per_call.append(len(runs))
    assert per_call[1:] == [1] * (CALLS - 1)


# ---------------------------------------------------------------------------------------------
# Pytrees with aux data


class _Box:
    def __init__(self, value, label):
        self.value, self.label = value, label


ft.tree_util.register_pytree_node(
    _Box, lambda b: ((b.value,), b.label), lambda label, children: _Box(*children, label)
)


def test_unhashable_aux_data_of_an_argument_is_not_an_error():
    # The cache key holds the arguments' treedef; hashing it raises TypeError for unhashable aux
    # data (a list), so the cached call fails where the uncached one succeeds.
    def fun(b):
        return fnp.sum(fnp.sin(b.value))

    g = ft.grad(fun)
    box = _Box(np.arange(3.0), ["a", "list"])
    with uncached():
        want = g(box)
    got = g(box)
    assert _bits(got.value) == _bits(want.value)


def test_aux_data_of_an_argument_is_not_kept_alive():
    # _ENTRIES[f] maps (transformations, treedef, signature) to an entry: the treedef holds the
    # aux data of the arguments' pytree nodes, so any object there (a config, a module, a
    # callable with its closure) lives as long as f does.
    class Config:
        def __init__(self):
            self.table = np.ones(100_000)

    def fun(b):
        return fnp.sum(fnp.sin(b.value))

    g = ft.grad(fun)
    config = Config()
    g(_Box(np.arange(3.0), config))
    ref = weakref.ref(config)
    del config
    gc.collect()
    assert ref() is None


def test_aux_data_of_the_gradient_is_the_calls_own():
    # Treedefs with equal aux data (1 == True) were the same key; the compiled program
    # unflattened its result with the treedef of the call that compiled it: the gradient's node
    # carried the label 1 where the uncached path gives the call's own True. Arguments with
    # custom pytree nodes are not recorded now.
    def fun(b):
        return fnp.sum(fnp.sin(b.value))

    g = ft.grad(fun)
    _warm(g, _Box(np.arange(3.0), 1))
    assert _compiled(fun) == 0
    got = g(_Box(np.arange(3.0), True))
    with uncached():
        want = g(_Box(np.arange(3.0), True))
    assert type(got.label) is type(want.label)


# ---------------------------------------------------------------------------------------------
# Aliasing and identity of results


def test_a_closed_over_array_returned_as_aux_is_what_the_uncached_path_returns():
    # Uncached, an aux (or out_axes=None output) that is an array f closed over is returned as
    # it is (the caller gets their own array back); the compiled program copies it (it is one of
    # its inputs). Documented (docs/sharp_edges.md): the values are the same, the identity is
    # not, from the compiled call on.
    table = np.arange(3.0)

    def fun(x):
        return fnp.sum(x * 2.0), table

    g = ft.grad(fun, has_aux=True)
    for k in range(CALLS):
        aux = g(np.ones(3))[1]
        with uncached():
            assert g(np.ones(3))[1] is table
        np.testing.assert_array_equal(aux, table)
        assert (aux is table) == (k < eager.COMPILE_AT)  # the compiled calls: a copy


def test_an_undifferentiated_argument_returned_as_aux_aliases_alike():
    # grad(f, has_aux=True)(x, data) with aux = data: the uncached path returns `data` itself
    # (api._owned_aux only copies what shares memory with the differentiated leaves), the
    # compiled program returns a copy. "Results never alias inputs" holds for one path only.
    def fun(x, data):
        return fnp.sum(x * 2.0), data

    g = ft.grad(fun, has_aux=True)
    x, data = np.ones(3), np.arange(6.0).reshape(2, 3)
    got, want = [], []
    for _ in range(CALLS):
        got.append(np.shares_memory(g(x, data)[1], data))
        with uncached():
            want.append(np.shares_memory(g(x, data)[1], data))
    assert got == want


def test_a_value_returned_twice_is_returned_alike():
    # f returns the same value twice: the uncached vmap returns one array twice (`r[0] is r[1]`),
    # the compiled program (jit's `repeated` copy) two independent arrays.
    def fun(x):
        y = x * 2.0
        return y, y

    g = ft.vmap(fun)
    got, want = [], []
    for _ in range(CALLS):
        r = g(np.arange(3.0))
        got.append(np.shares_memory(r[0], r[1]))
        with uncached():
            r = g(np.arange(3.0))
            want.append(np.shares_memory(r[0], r[1]))
    assert got == want
