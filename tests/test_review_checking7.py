"""Review of the eager cache's checking recorder (eager._CheckingTrace, e3893c9 and 20b0336).

A checking recording changes its class (`trace.__class__ = RecordingTrace` at the first
difference, back to `_CheckingTrace` when `_mismatch` keyed nothing). Python looks a method up
when the attribute is read, not when it is called, so code that reads `trace.process_primitive`
and then binds other primitives before calling it, or calls it several times, runs the method of
the class the trace had when it was read:

  - functrans.numpy's `add`, `subtract` and `multiply` read
    `_current_trace_get().process_primitive` before they evaluate `promote_and_broadcast(x, y)`,
    which binds `convert_element_type` / `broadcast_in_dim` when the operands need it (a boolean
    mask times a float array);
  - a nested linearization (a `grad`, `jacrev` or `hessian` that `f` itself calls on its traced
    values) binds a rule's known part with a generated program that reads
    `bind = trace.process_primitive` once and calls it for each equation
    (interpreters/lincache/_compile.py).

If the trace diverges in between, `_CheckingTrace.process_primitive` runs on what is now a plain
RecordingTrace. Either it calls `self._mismatch`, which a RecordingTrace does not have
(AttributeError: the call goes down the ordinary path, f runs a second time, and the function
and signature are no longer cached; an `f` that catches the exception takes a branch it never
takes eagerly). Or the operation matches the plan item at the frozen `kpos`: the checking code
then counts it as checked and does not add it to `keys`. The recording's key then lacks an item
its records have. `_plan` pairs keys with records in order, so the plan compiled from that
recording gives the wrong output aval to every item after the missing one, and a later call
checked against it hands `f` a tracer with a wrong shape.

Every result must equal the uncached path bit for bit (`eager_helpers.uncached`).

Fixed the same session: checking is a flag of the one RecordingTrace class, read by
process_primitive on every call, so a method read before a divergence does what the trace's
state at the call says.
"""

from __future__ import annotations

import numpy as np
import pytest
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401 - fresh_cache: autouse
from eager_helpers import bits as _bits
from eager_helpers import compiled as _compiled

import functrans as ft
import functrans.numpy as fnp
from functrans import eager

pytestmark = pytest.mark.filterwarnings("ignore")

MODE = {"v": "A"}


def _reference(fun, *args):
    with uncached():
        return fun(*args)


def _key(rec):
    """A recording's program key (a _Matched recording is its compiled program's)."""
    key = getattr(rec, "key", None)
    return rec.compiled.key if key is None else key


# ---------------------------------------------------------------------------------------------
# 1. fnp.multiply / add / subtract: the method is read before promote_and_broadcast binds


_PROMOTING = {
    "multiply": lambda y, m: y * m,
    "add": lambda y, m: y + m,
    "subtract": lambda y, m: y - m,
}


@pytest.mark.parametrize("op", sorted(_PROMOTING))
def test_a_promoting_operation_after_compiling_runs_f_once_and_keeps_the_cache(op):
    """Program A is compiled. Program B has the same first two operations (sin, gt); its third
    is the convert_element_type that `y * m` binds inside promote_and_broadcast (the mask is
    boolean), where A has a reduce_sum. The convert diverges from the plan while the multiply's
    checking method is already bound: AttributeError ('RecordingTrace' object has no attribute
    '_mismatch'). The result is right (the ordinary path runs), but f runs twice in that call
    and `_stop` drops the function's compiled programs: B never compiles and A does not either
    any more."""
    runs = []

    def f(x):
        runs.append(None)
        y = fnp.sin(x)
        m = y > 0.5
        z = _PROMOTING[op](y, m) if MODE["v"] == "B" else y + fnp.sum(m)
        return fnp.sum(z * z)

    g = ft.grad(f)
    x = np.linspace(0.1, 0.9, 3)
    try:
        MODE["v"] = "A"
        for _ in range(CALLS):
            g(x)
        assert _compiled(f) == 1
        for m in ["B"] * CALLS + ["A", "B", "A"]:
            MODE["v"] = m
            expected = _reference(g, x)
            del runs[:]
            got = g(x)
            assert _bits(got) == _bits(expected), m
            assert len(runs) == 1, f"f ran {len(runs)} times in one call of program {m}"
        assert _compiled(f) == 2  # A, and B in its turn
    finally:
        MODE["v"] = "A"


def test_f_catching_an_exception_around_a_promoting_multiply_gets_the_eager_result():
    """Eagerly `y * m` never raises. Checked against program A, it raises the checking path's
    AttributeError inside f; f's own fallback catches it, the recording goes on with the
    fallback's program, and that program (y * 100) is what the call returns."""

    def f(x):
        y = fnp.sin(x)
        m = y > 0.5
        if MODE["v"] == "B":
            try:
                z = y * m
            except Exception:  # a fallback the eager path never takes
                z = y * 100.0
        else:
            z = y + fnp.sum(m)
        return fnp.sum(z * z)

    g = ft.grad(f)
    x = np.linspace(0.1, 0.9, 3)
    try:
        MODE["v"] = "A"
        for _ in range(CALLS):
            g(x)
        for m in ["B"] * CALLS + ["A", "B"]:
            MODE["v"] = m
            assert _bits(g(x)) == _bits(_reference(g, x)), m
    finally:
        MODE["v"] = "A"


# ---------------------------------------------------------------------------------------------
# 2. a nested linearization: the generated program binds with one method read once

_INNER = ft.grad(lambda z: fnp.sum(fnp.sin(z)))


def _nested(x):
    """A: y * cos(y). B: y * grad(sum sin)(y), whose known part binds sin(y) then cos(y) with
    one bound method: sin(y) differs from A's cos(y) and diverges, and cos(y), checked by the
    stale method, matches A's item and is left out of the key. D: sum(sin(y)) is checked
    against the plan compiled from B's recording, whose avals are shifted by one item."""
    m = MODE["v"]
    y = fnp.sin(x)
    if m == "A":
        return fnp.sum(y * fnp.cos(y))
    if m == "B":
        return fnp.sum(y * _INNER(y))
    s = fnp.sum(fnp.sin(y))
    return fnp.sin(s) if s.ndim == 0 else fnp.cos(s)  # s is a scalar: always sin


def test_a_checked_recording_with_a_grad_inside_f_has_the_ordinary_recordings_key():
    g = ft.grad(_nested)
    x = np.linspace(0.1, 0.9, 3)
    try:
        MODE["v"] = "A"
        for _ in range(CALLS):
            g(x)
        chain = g._ft_chain
        tree, entry = chain.last[0], chain.last[2]
        assert entry.expect is not None
        MODE["v"] = "B"
        values = [x]
        plain = eager._record(chain, tree, [x], entry.traced, entry.avals, values)
        checked = eager._record(chain, tree, [x], entry.traced, entry.avals, values, entry.expect)
        assert _key(checked) == _key(plain)
    finally:
        MODE["v"] = "A"


def test_a_grad_inside_f_gives_every_later_program_the_uncached_result():
    """After A compiles, three calls of B compile B's recording under a key that lacks cos(y),
    with a plan whose avals are shifted; D, checked against that plan, gets f64[3] as the aval
    of a scalar sum, so `s.ndim` is 1 and f takes the branch it never takes: cos(s), not
    sin(s), a wrong gradient with no error."""
    g = ft.grad(_nested)
    x = np.linspace(0.1, 0.9, 3)
    try:
        for m in ["A"] * CALLS + ["B"] * CALLS + ["D", "D", "A", "B", "D"]:
            MODE["v"] = m
            assert _bits(g(x)) == _bits(_reference(g, x)), m
    finally:
        MODE["v"] = "A"


_INSIDE = {
    "cos": lambda y: fnp.cos(y),
    "grad": lambda y: ft.grad(lambda z: fnp.sum(fnp.sin(z) * fnp.cos(z) ** 2))(y),
    "jacrev": lambda y: ft.jacrev(lambda z: fnp.sin(z) * z)(y) @ y,
    "hessian": lambda y: ft.hessian(lambda z: fnp.sum(fnp.sin(z) * fnp.cos(z) ** 2))(y) @ y,
    "value_and_grad": lambda y: ft.value_and_grad(lambda z: fnp.sum(fnp.sin(z) ** 2))(y)[1],
}


@pytest.mark.parametrize(
    "first, then",
    [("cos", "grad"), ("cos", "jacrev"), ("hessian", "grad"), ("cos", "value_and_grad")],
)
def test_a_transformation_inside_f_after_compiling_keeps_the_key_and_the_cache(first, then):
    """f calls a transformation on its traced values; program `first` is compiled, then f
    switches to `then`. Every call's checked recording must have the ordinary recording's key,
    f must run once per call, and `then` must compile in its turn."""
    runs = []

    def f(x):
        runs.append(None)
        y = fnp.sin(x)
        return fnp.sum(y * _INSIDE[MODE["v"]](y))

    g = ft.hessian(f)
    x = np.linspace(0.1, 0.9, 3)
    try:
        MODE["v"] = first
        for _ in range(CALLS):
            g(x)
        assert _compiled(f) == 1
        chain = g._ft_chain
        tree, entry = chain.last[0], chain.last[2]
        MODE["v"] = then
        values = [None if k is None else x for k in entry.known]
        plain = eager._record(chain, tree, [x], entry.traced, entry.avals, values)
        checked = eager._record(chain, tree, [x], entry.traced, entry.avals, values, entry.expect)
        assert _key(checked) == _key(plain)
        for m in [then] * CALLS + [first, then]:
            MODE["v"] = m
            expected = _reference(g, x)
            del runs[:]
            assert _bits(g(x)) == _bits(expected), m
            assert len(runs) == 1, f"f ran {len(runs)} times in one call of program {m}"
        assert _compiled(f) == 2
    finally:
        MODE["v"] = "A"
