"""Second review of the eager cache's checking mode (e3893c9, 20b0336, 087e218).

No bug was found: these tests pin the invariants that were attacked, all of which hold now.
A checked recording (RecordingTrace with `checking` set) must end with the key, records,
constants and opaque flag of an ordinary recording of the same call; every result must equal
the uncached path bit for bit, and f must run once per call.

Attacked without finding a difference: re-convergence after an operation computed at once
followed by a later divergence; a divergence at the second constant of a three-operand
operation whose first constant matched; a divergence inside `finish` (outputs that are new
constants, literals, inputs); bool()/int()/indexing on recorded values before and after a
divergence; multiple-result primitives; custom_jvp/custom_vjp/checkpoint; lax.cond/scan/
while/switch; nested jvp/vmap/linearize/grad/jacfwd/hessian inside f; the signature fast path
with C-order, Fortran-order, strided and read-only arrays; Python and NumPy scalar arguments;
kwargs, pytrees, has_aux, argnums tuples, float32; one function under grad, vmap(grad) and
hessian alternately; and the whole test suite run with every checked recording compared to an
ordinary recording of the same call.
"""

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

pytestmark = pytest.mark.filterwarnings("ignore")

_MASK = np.array([True, False, True])
_A = np.full(3, 0.5)
_B = np.full(3, 0.25)


def _apply(op, y, x):
    if op == "sin":
        return fnp.sin(y)
    if op == "mul2":
        return y * 2.0
    if op == "at_once":  # x's value is at hand under grad: computed as recorded, keys nothing
        return fnp.where(x > 0.3, y, 2.0 * y)
    if op == "floor_x":  # a piecewise-constant op on a known value, then a new constant
        return y + fnp.floor(x * 3.0)
    if op == "where_a":  # three operands: a constant mask, y, constant A
        return fnp.where(_MASK, y, _A)
    if op == "where_b":  # the same mask, then constant B where the other program has A
        return fnp.where(_MASK, y, _B)
    if op == "new_const":
        return y * np.full(3, 1.5)
    if op == "bool":
        return y * 2.0 if bool(fnp.sum(y) > 0.0) else y + 1.0
    if op == "index":
        return y * y[int(fnp.argmax(y))]
    if op == "eigh":
        w, v = fnp.linalg.eigh(fnp.outer(y, y) + np.eye(3))
        return y * w + v[0]
    if op == "inner_grad":
        return ft.grad(lambda v: fnp.sum(fnp.sin(v) * v))(y)
    if op == "neg_dot":
        return -(fnp.dot(y, y) * y)
    raise ValueError(op)


_OPS = (
    "sin", "mul2", "at_once", "floor_x", "where_a", "where_b", "new_const", "bool", "index",
    "eigh", "inner_grad", "neg_dot",
)  # fmt: skip
_OUTS = ("sum", "new_const", "literal", "input", "same")


def _out(kind, y, x):
    s = fnp.sum(y)
    if kind == "sum":
        return s, None
    if kind == "new_const":
        return s, np.zeros(2)
    if kind == "literal":
        return s, 1.5
    if kind == "input":
        return s, x
    return s, s


def _shown(records):
    return [(r[0], r[1], tuple(r[2]), r[4], r[5], r[6]) for r in records]


def _both_ways(g, x):
    """A plain and a checked recording of the call g(x) as it is now (f has changed)."""
    chain = g._ft_chain
    tree, _, entry, _ = chain.last
    values = [None if k is None else x for k in entry.known]
    plain = eager._record(chain, tree, [x], entry.traced, entry.avals, values)
    checked = eager._record(chain, tree, [x], entry.traced, entry.avals, values, entry.expect)
    return entry, plain, checked


def _assert_same_recording(entry, plain, checked):
    assert (checked.compiled is not None) == (plain.key == entry.expect.key)
    if type(checked) is eager._Matched:
        assert checked.compiled is entry.expect
        return
    assert checked.key == plain.key
    assert _shown(checked.trace.records) == _shown(plain.trace.records)
    assert checked.trace.opaque == plain.trace.opaque
    assert [(c.shape, c.dtype) for c in checked.consts] == [
        (c.shape, c.dtype) for c in plain.consts
    ]


def _run(first, then, must_compile=True):
    """Compile program `first`, switch to `then`: compare the recordings, then the results.
    (A program whose compiled result is not bit-identical, a Python float aux, is never
    compiled: nothing is checked against it.)"""
    prog = {"v": first}
    runs = []

    def f(x):
        runs.append(None)
        ops, out = prog["v"]
        y = x
        for op in ops:
            y = _apply(op, y, x)
        return _out(out, y, x)

    g = ft.grad(f, has_aux=True)
    x = np.linspace(-0.9, 0.8, 3)
    for _ in range(CALLS):
        g(x)
    entry = g._ft_chain.last[2]
    if entry.expect is None and not must_compile:
        return
    assert entry.expect is not None
    prog["v"] = then
    _assert_same_recording(*_both_ways(g, x))
    for m in [then] * CALLS + [first, then, first]:
        prog["v"] = m
        with uncached():
            expected = g(x)
        del runs[:]
        assert _bits(g(x)) == _bits(expected), m
        assert len(runs) == 1, m


@pytest.mark.parametrize(
    "first, then",
    [
        # re-convergence after an op computed at once, then a divergence further on
        ((("sin", "mul2", "sin"), "sum"), (("sin", "at_once", "mul2", "neg_dot"), "sum")),
        ((("sin", "mul2", "sin"), "sum"), (("sin", "floor_x", "mul2", "sin"), "sum")),
        # the mask constant matches, the third operand's constant differs (shape alike)
        ((("sin", "where_a", "sin"), "sum"), (("sin", "where_b", "sin"), "sum")),
        # a divergence in finish: a new constant, a literal, an input as the aux
        ((("sin", "mul2"), "sum"), (("sin", "mul2"), "new_const")),
        ((("sin", "mul2"), "input"), (("sin", "mul2"), "literal")),
        # bool() and int() before and after a divergence, a nested grad, eigh
        ((("sin", "bool", "index"), "sum"), (("sin", "bool", "new_const", "index"), "same")),
        ((("inner_grad", "eigh"), "sum"), (("inner_grad", "at_once", "eigh", "sin"), "sum")),
    ],
)
def test_a_checked_recording_is_the_ordinary_one(first, then):
    _run(first, then)


@settings(deadline=None, max_examples=40, derandomize=True)
@given(
    st.lists(st.sampled_from(_OPS), max_size=4),
    st.sampled_from(_OUTS),
    st.lists(st.sampled_from(_OPS), max_size=4),
    st.sampled_from(_OUTS),
)
def test_random_pairs_of_programs_record_alike_both_ways(a, oa, b, ob):
    eager._ENTRIES.clear()
    _run((tuple(a), oa), (tuple(b), ob), must_compile=False)


def test_the_signature_fast_path_with_c_fortran_and_strided_arrays():
    """One signature (c_contiguous False) holds Fortran-order and strided arrays: the fast
    check in _call must find the entry of the last call's signature, and results must equal
    the uncached path's, layout included."""
    mode = {"v": 0}

    def f(x):
        y = fnp.sin(x)
        return fnp.sum(y * y * 2.0 if mode["v"] else y * y)

    g = ft.grad(f)
    c = np.arange(12.0).reshape(3, 4) / 10
    fo = np.asfortranarray(c)
    strided = (np.arange(24.0).reshape(3, 8) / 10)[:, ::2]
    for i, arg in enumerate([c] * CALLS + [fo] * CALLS + [strided, c, fo, strided, c] * 2):
        mode["v"] = i % 7 == 6
        with uncached():
            expected = g(arg)
        assert _bits(g(arg)) == _bits(expected), i
    assert _compiled(f) >= 2
