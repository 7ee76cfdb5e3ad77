"""Regression tests from an adversarial review of the eager cache (functrans/eager.py). Each
case once made the cached path differ from the uncached one (`eager_cache` off), run the user's
side effects more than once, or keep memory alive; the comment in each test describes that
failure as it was found. Each test calls a transformed function often enough to reach the
compiled program (COMPILE_AT sightings) and compares with the reference path."""

from __future__ import annotations

import contextlib
import gc
import io
import warnings
import weakref

import numpy as np
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401 - fresh_cache: autouse
from eager_helpers import bits as _bits
from eager_helpers import compiled as _compiled
from eager_helpers import warm as _warm

import functrans as ft
import functrans.numpy as fnp
from functrans import eager

# ---------------------------------------------------------------------------------------------
# Values: the compiled program is checked bit for bit once, on the compiling call's values only


def test_nan_sign_after_compile_matches_uncached():
    # Scalar float64 programs run on Python floats; with two NaN operands Python's `a * b`
    # returns the other NaN than NumPy's multiply on the 0-d arrays the eager path uses, so the
    # sign bit of the NaN result differs (the compile check ran at 0.3, where no NaN appears).
    def fun(x):
        return (-x) * x

    g = ft.value_and_grad(fun)
    _warm(g, 0.3)
    assert _compiled(fun) == 1
    got = g(np.nan)
    with uncached():
        want = g(np.nan)
    assert _bits(got) == _bits(want)


def test_aux_that_is_the_input_keeps_the_uncached_memory_order():
    # The uncached grad copies an aux leaf that shares memory with an input with .copy()
    # (C order); the compiled program (jit's _finish) copies with order="K". The signature
    # ignores the memory order, so a program compiled on C-ordered inputs is reused for
    # Fortran-ordered ones and returns an F-ordered aux.
    def fun(x):
        return fnp.sum(x * x), x

    g = ft.grad(fun, has_aux=True)
    a = np.arange(12.0).reshape(3, 4)
    _warm(g, a)
    assert _compiled(fun) == 1
    f_order = np.asfortranarray(a)
    got = g(f_order)
    with uncached():
        want = g(f_order)
    assert _bits(got) == _bits(want)


# ---------------------------------------------------------------------------------------------
# Floating-point errors and warnings


def test_compiled_scalar_program_raises_the_overflow_warning_as_uncached():
    # Python-float arithmetic overflows to inf silently where NumPy warns: the eager cache runs
    # jit's NumPy program (never its Python-float variant), so the warning is there.
    def fun(x):
        return x * x * 1e300

    g = ft.grad(fun)
    _warm(g, 1.0)
    assert _compiled(fun) == 1
    outcomes = []
    for use_cache in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            try:
                if use_cache:
                    outcomes.append(("ok", g(1e10)))
                else:
                    with uncached():
                        outcomes.append(("ok", g(1e10)))
            except RuntimeWarning as err:
                # the same warning; on a 0-d value NumPy words it "in multiply" where on a
                # NumPy scalar it says "in scalar multiply" (docs/sharp_edges.md)
                outcomes.append(("raised", str(err).replace("scalar ", "")))
    assert outcomes[0] == outcomes[1]


def test_floating_point_callback_runs_once_on_the_compiling_call():
    # On the third sighting the transformation runs eagerly and then once more compiled (the
    # bit-for-bit check): np.errstate(..., "call") callbacks and RuntimeWarnings fire twice.
    seen = []
    old = np.seterrcall(lambda kind, flag: seen.append(kind))
    try:
        g = ft.grad(lambda x: fnp.sum(fnp.exp(x)))
        x = np.array([1.0, 1000.0])  # exp overflows
        counts = []
        for _ in range(CALLS):
            seen.clear()
            with np.errstate(over="call"):
                g(x)
            counts.append(len(seen))
        seen.clear()
        with uncached(), np.errstate(over="call"):
            g(x)
        assert counts == [len(seen)] * CALLS
    finally:
        np.seterrcall(old)


# ---------------------------------------------------------------------------------------------
# Side effects of staged effects (debug.print)


def _printed(call):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        call()
    return buf.getvalue()


def test_debug_print_prints_once_on_the_compiling_call():
    # The debug_print primitive is compiled like any other: on the compiling call the program
    # runs eagerly and again compiled, so the line is printed twice.
    def fun(x):
        ft.debug.print("x = {}", x)
        return fnp.sum(x * x)

    g = ft.grad(fun)
    for k in range(CALLS):
        x = np.ones(2) * k
        got = _printed(lambda x=x: g(x))
        with uncached():
            want = _printed(lambda x=x: g(x))
        assert got == want, f"call {k}"


def test_debug_print_is_ordered_with_the_functions_own_output():
    # f's Python runs under the recording (print() happens then) and debug.print happens when
    # the recorded program is replayed afterwards: the output order changes on every call.
    def fun(x):
        ft.debug.print("debug {}", x)
        print("python")
        return x * x

    g = ft.grad(fun)
    got = _printed(lambda: g(1.0))
    with uncached():
        want = _printed(lambda: g(1.0))
    assert got == want


# ---------------------------------------------------------------------------------------------
# The recording is observable from the user's function


def test_an_exception_of_the_recording_caught_by_the_function_changes_nothing():
    # float() of a value with a zero derivative works eagerly; the recording raises its
    # internal _Unreproducible there, which `except Exception` in the user's code swallows, so
    # the recording takes the other branch and the wrong program is run (from the first call).
    def fun(x):
        try:
            s = float(fnp.floor(x))
        except Exception:  # noqa: BLE001 - user code
            s = -1.0
        return x * s

    g = ft.grad(fun)
    for x in [2.5, 3.5, 4.5, 5.5]:
        got = g(x)
        with uncached():
            want = g(x)
        assert got == want, x


def test_branch_on_a_custom_jvp_output_follows_the_rule_primal():
    # Eagerly under grad, custom_jvp's output is the primal its rule returns; the recording
    # computes values with the primitive's impl (the undifferentiated function), so a Python
    # branch on that value can go the other way.
    @ft.custom_jvp
    def h(x):
        return fnp.sin(x)

    @h.defjvp
    def h_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return fnp.sin(x) + 1.0, fnp.cos(x) * t

    def fun(x):
        y = h(x)
        return y * 2.0 if y > 1.0 else y * 3.0

    g = ft.grad(fun)
    got = g(0.5)
    with uncached():
        want = g(0.5)
    assert got == want


# ---------------------------------------------------------------------------------------------
# Memory


def test_a_compiled_program_does_not_keep_the_function_alive():
    # _ENTRIES is weak in the function, but its value holds the _Compiled program, whose
    # staged closure holds `chain`, whose .fun is the function (the key): once a program is
    # compiled, the function, its closure (here a dataset) and, for a bound method, the
    # instance are never freed.
    def make_loss(data):
        def loss(w):
            return fnp.sum(fnp.dot(data, w) ** 2)

        return loss

    data = np.ones((100, 3))
    loss = make_loss(data)
    g = ft.grad(loss)
    _warm(g, np.ones(3))
    assert _compiled(loss) == 1
    refs = weakref.ref(loss), weakref.ref(data)
    del loss, data, g
    gc.collect()
    assert [r() is None for r in refs] == [True, True]


def test_a_compiled_method_does_not_keep_its_instance_alive():
    class Model:
        def __init__(self):
            self.w = np.ones(50)

        def loss(self, x):
            return fnp.sum(self.w * x)

    m = Model()
    g = ft.grad(m.loss)
    _warm(g, np.ones(50))
    ref = weakref.ref(m)
    del m, g
    gc.collect()
    assert ref() is None


def test_programs_with_function_params_do_not_retain_arrays_of_past_calls():
    # checkpoint (like custom_jvp) binds a fresh Python function per call; the program key
    # keeps it (_Opaque, by identity) in entry.programs, a new key on every call, up to
    # MAX_PROGRAMS of them, and they stay after recording stops: every array those functions
    # close over stays alive.
    refs = []

    def fun(x):
        big = np.full(1000, 2.0)
        refs.append(weakref.ref(big))
        return fnp.sum(ft.checkpoint(lambda v: fnp.sin(v) * big)(x))

    g = ft.grad(fun)
    for _ in range(eager.MAX_PROGRAMS + 4):
        g(np.ones(1000))
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


# ---------------------------------------------------------------------------------------------
# Performance


def test_occasional_new_programs_do_not_turn_off_a_compiled_hot_program():
    # MAX_PROGRAMS counts distinct programs ever seen, not a rate: a hot, compiled program
    # stops being used for good once 16 rare programs (a logging step, a schedule of Python
    # hyperparameters) have been seen over the function's lifetime.
    def fun(x, step):
        y = fnp.sin(x) * 2.0
        if step % 100 == 0:  # a rarely taken branch: one new program per occurrence
            y = y + float(step)
        return fnp.sum(y)

    g = ft.grad(fun)
    x = np.ones(3)
    for step in range(1, 1 + 100 * (eager.MAX_PROGRAMS + 1)):
        g(x, step)
    (entry,) = eager._ENTRIES[eager._scope(fun)].values()
    assert entry.ok
    assert _compiled(fun) >= 1
