"""The eager cache's checking recorder (a RecordingTrace with `checking` set): once a program
of a function and signature has been compiled, later calls record `f` against it, item after
item, instead of keying the recording anew. Its invariant: a checked recording has exactly the
key an ordinary recording of the same call has, whether it matched the program to the end or
differed at some item (a constant, an operation, its operands, its params, its literals, its
outputs, an operation computed as it is recorded), so the compiled program runs if and only if
it is the program `f` ran. Results must equal the uncached eager path's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from eager_helpers import CALLS, fresh_cache, uncached  # noqa: F401 - fresh_cache: autouse
from eager_helpers import bits as _bits
from eager_helpers import compiled as _compiled
from hypothesis import given, settings
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans import eager

# the program `f` runs, chosen per call by the tests (a global, as a user's flag would be)
MODE = {"v": 0}
CONST = {"v": np.ones(3)}


def _variants(x):
    """One function whose program depends on MODE: each mode differs from mode 0 at one kind
    of key item."""
    m = MODE["v"]
    y = fnp.sin(x)
    if m == 1:  # another operation
        y = fnp.cos(x)
    if m == 2:  # another literal
        return fnp.sum(y * 3.0)
    if m == 3:  # a literal differing only in its sign bit
        return fnp.sum(y * -0.0 + y)
    if m == 4:  # the operands swapped
        return fnp.sum(x * y)
    if m == 5:  # another params value (an axis), same shapes
        return fnp.sum(fnp.sum(fnp.outer(y, x), axis=1) * y)
    if m == 6:  # another constant (shape)
        return fnp.sum(y * CONST["v"][:1])
    if m == 7:  # one operation more at the end
        return fnp.sum(y * 2.0) * 1.5
    if m == 8:  # a prefix of the program
        return fnp.sum(y)
    if m == 9:  # the same operations, another output
        fnp.sum(y * 2.0)
        return fnp.sum(y * 4.0)
    if m == 10:  # a comparison whose operands' values are at hand (computed as recorded)
        return fnp.sum(fnp.where(x > 0.5, y, 0.0) * 2.0)
    if m == 11:  # the same comparison on a value not at hand
        return fnp.sum(fnp.where(y > 0.5, y, 0.0) * 2.0)
    if m == 12:  # axis 0 where mode 5 has axis 1
        return fnp.sum(fnp.sum(fnp.outer(y, x), axis=0) * y)
    s = fnp.sum(y * 2.0)
    fnp.sum(y * 4.0)
    return s


def _reference(fun, *args):
    with uncached():
        return fun(*args)


@pytest.mark.parametrize(
    "first, then",
    [(0, m) for m in range(1, 13)] + [(5, 12), (12, 5), (10, 11), (11, 10), (2, 3), (3, 2)],
)
def test_a_program_that_differs_after_compiling_gives_its_own_result(first, then):
    """Compile mode `first`, then switch: every call equals the uncached path, the new program
    compiles in its turn, and switching back runs the first compiled program again."""
    g = ft.value_and_grad(_variants)
    x = np.linspace(0.1, 0.9, 3)
    try:
        MODE["v"] = first
        for _ in range(CALLS):
            g(x)
        assert _compiled(_variants) == 1
        for sequence in ([then] * CALLS, [first, then, first, then, then, first]):
            for m in sequence:
                MODE["v"] = m
                x = x + 0.01
                assert _bits(g(x)) == _bits(_reference(g, x)), m
        assert _compiled(_variants) == 2
    finally:
        MODE["v"] = 0


def test_grad_of_a_function_returning_a_tuple_checks_the_output_tree():
    def f(x):
        y = fnp.tanh(x)
        return (fnp.sum(y), y) if MODE["v"] else (fnp.sum(y), y * 1.0)

    g = ft.grad(f, has_aux=True)
    x = np.linspace(-1.0, 1.0, 4)
    try:
        for m in [0] * CALLS + [1, 0, 1, 1, 1, 1, 0]:
            MODE["v"] = m
            assert _bits(g(x)) == _bits(_reference(g, x))
    finally:
        MODE["v"] = 0


def test_a_constant_that_changes_values_keeps_the_program_and_reads_the_new_values():
    w = {"v": np.arange(3.0)}

    def f(x):
        return fnp.sum(fnp.sin(x) * w["v"])

    g = ft.grad(f)
    x = np.linspace(0.0, 1.0, 3)
    for _ in range(CALLS):
        g(x)
    for k in range(4):
        w["v"] = np.full(3, float(k))
        assert _bits(g(x)) == _bits(_reference(g, x))
    w["v"] = np.ones(3, np.float32)  # another dtype: another program
    assert _bits(g(x)) == _bits(_reference(g, x))
    assert _compiled(g) == 1


def test_two_constants_where_the_second_differs():
    a = np.ones(3)
    b = {"v": np.ones(3)}

    def f(x):
        return fnp.sum(fnp.sin(x) * a + b["v"] * x)

    g = ft.grad(f)
    x = np.linspace(0.0, 1.0, 3)
    for _ in range(CALLS):
        g(x)
    for v in (np.ones((1,)), np.ones(3), np.ones(3, np.float32), np.ones(3)):
        b["v"] = v
        assert _bits(g(x)) == _bits(_reference(g, x))


def test_bool_of_a_value_during_a_checked_recording():
    """bool() computes values from the recording's records while it is still checking."""

    def f(x):
        y = fnp.sin(x)
        s = fnp.sum(y)
        if MODE["v"] and bool(fnp.max(x) > 0.5):
            return s * 2.0
        return s * 3.0

    g = ft.grad(f)
    x = np.linspace(0.0, 1.0, 3)
    try:
        for m in [1] * CALLS + [0, 1, 0, 0, 1]:
            MODE["v"] = m
            assert _bits(g(x)) == _bits(_reference(g, x))
    finally:
        MODE["v"] = 0


def test_a_change_of_errstate_during_a_checked_recording_takes_the_ordinary_path():
    def f(x):
        y = fnp.log(x)
        if MODE["v"]:
            with np.errstate(divide="raise"):
                y = y * fnp.log(x)
        return fnp.sum(y)

    g = ft.grad(f)
    x = np.array([0.0, 1.0, 2.0])
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            for _ in range(CALLS):
                g(x)
            MODE["v"] = 1
            with pytest.raises(FloatingPointError):
                g(x)
            MODE["v"] = 0
            assert _bits(g(x)) == _bits(_reference(g, x))
    finally:
        MODE["v"] = 0


def test_vmap_of_grad_switching_between_two_compiled_programs():
    def loss(w, x, y):
        z = fnp.dot(x, w)
        if MODE["v"]:
            return fnp.log1p(fnp.exp(-y * z))
        return (z - y) ** 2

    pe = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))
    rng = np.random.default_rng(0)
    w, X, Y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    try:
        for m in [0] * CALLS + [1] * CALLS + [0, 1, 0, 1, 1, 0]:
            MODE["v"] = m
            assert _bits(pe(w, X, Y)) == _bits(_reference(pe, w, X, Y))
        assert _compiled(loss) == 2
    finally:
        MODE["v"] = 0


# ---------------------------------------------------------------------------------------------
# The invariant itself: a checked recording's key is the ordinary recording's key

_OPS = ("sin", "cos", "mul2", "mul3", "add_x", "x_add", "sum0", "const", "const32", "gt", "neg")


def _program(ops):
    def f(x):
        y = x
        for op in ops:
            if op == "sin":
                y = fnp.sin(y)
            elif op == "cos":
                y = fnp.cos(y)
            elif op == "mul2":
                y = y * 2.0
            elif op == "mul3":
                y = y * 3.0
            elif op == "add_x":
                y = y + x
            elif op == "x_add":
                y = x + y
            elif op == "sum0":
                y = fnp.sum(y, axis=0, keepdims=True) * y
            elif op == "const":
                y = y * np.full(3, 2.0)
            elif op == "const32":
                y = y * np.full(3, 2.0, np.float32)
            elif op == "gt":
                y = fnp.where(x > 0.0, y, -y)
            elif op == "neg":
                y = -y
        return fnp.sum(y)

    return f


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_OPS), min_size=0, max_size=6),
    st.lists(st.sampled_from(_OPS), min_size=0, max_size=6),
)
def test_a_checked_recording_has_the_ordinary_recordings_key(compiled_ops, called_ops):
    """Compile the program of `compiled_ops`, then record `called_ops` both ways."""
    eager._ENTRIES.clear()
    ops = {"v": compiled_ops}

    def f(x):
        return _program(ops["v"])(x)

    g = ft.grad(f)
    x = np.linspace(-1.0, 1.0, 3)
    for _ in range(CALLS):
        g(x)
    tree, _, entry, _ = g._ft_chain.last
    ops["v"] = called_ops
    leaves = [x]
    values = [x if c else None for c in entry.concrete]
    plain = eager._record(g._ft_chain, tree, leaves, entry.traced, entry.avals, values)
    if entry.expect is None:  # (a program that did not compile: nothing to check against)
        return
    checked = eager._record(
        g._ft_chain, tree, leaves, entry.traced, entry.avals, values, entry.expect
    )
    assert (checked.compiled is not None) == (plain.key == entry.expect.key)
    if type(checked) is eager._Matched:  # (the compiled program to the end: nothing else kept)
        assert checked.compiled is entry.expect
    else:
        assert checked.key == plain.key

        def shown(records):  # (literals are compared by their keys)
            return [(r[0], r[1], tuple(r[2]), r[4], r[5], r[6]) for r in records]

        assert shown(checked.trace.records) == shown(plain.trace.records)
    assert _bits(g(x)) == _bits(_reference(g, x))
