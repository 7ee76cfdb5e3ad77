"""Adversarial review of session 6's last fixes (.at[] with traced repeated indices, bitwise
operators, checkpoint closure conversion, lax control flow, NumPy-scalar results, logaddexp2).

Each test fails on the code as reviewed and states the behaviour it expects (NumPy's, or JAX's
and functrans's own staged path); the reproducer is the test body.
"""

import numpy as np

import functrans as ft
from functrans import lax

# ---------------------------------------------------------------------------------------------
# 1. x.at[idx].set(-0.0) on a traced x stores +0.0: _combine (numpy/_indexing.py) builds the new
#    values with scatter_add into zeros, and 0.0 + (-0.0) is +0.0. NumPy's `out[idx] = v` (and
#    JAX's .at[].set) store -0.0. Also with the repeated traced indices of the new `_winners`
#    path, where the winning update is -0.0.


def test_at_set_negative_zero_with_traced_repeated_index():
    x = np.array([1.0, 2.0, 3.0])
    idx = np.array([0, 0, 2])
    v = np.array([5.0, -0.0, -0.0])
    want = x.copy()
    want[idx] = v  # [-0.0, 2.0, -0.0]
    got = ft.jit(lambda x, i, v: x.at[i].set(v))(x, idx, v)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got).tolist() == np.signbit(want).tolist()  # got [False, False, False]


def test_at_set_negative_zero_under_vmap():
    got = ft.vmap(lambda x: x.at[1].set(-0.0))(np.ones((2, 3)))
    assert np.signbit(got[:, 1]).all()  # NumPy: x[1] = -0.0 keeps the sign; got +0.0


# ---------------------------------------------------------------------------------------------
# 2. while_loop / fori_loop under vmap with a batched predicate: the new strict `_select`
#    (lax.py) compares the body's output with the *initial* carry, where a Python scalar has
#    been made a strong float64 / int64 array. The staged loops treat it as weak
#    (`_carry_arrays`), and so do eager Python and JAX, but the eager batched loop does not: a
#    legitimate program that ran before this change now raises TypeError under vmap only
#    (jit(vmap(...)) of the same function works).


def _count_to(n):
    return lax.fori_loop(0, n, lambda i, c: c + i, 0)  # i is int32 (the bound's dtype)


def test_vmap_fori_loop_batched_bound_with_python_int_carry():
    n = np.array([3, 4], np.int32)
    staged = ft.jit(ft.vmap(_count_to))(n)  # [3, 6] int32, as JAX
    got = ft.vmap(_count_to)(n)  # TypeError: (i32[], i32[]) vs (i32[], i64[])
    np.testing.assert_array_equal(got, [3, 6])
    assert got.dtype == staged.dtype


def _climb(x):
    return lax.while_loop(lambda v: v < x, lambda v: v + x + 1, 0.0)


def test_vmap_while_loop_batched_predicate_with_python_float_carry():
    x = np.array([1.0, -3.0], np.float32)
    assert [_climb(a) for a in x] == [2.0, 0.0]  # eagerly, per element
    staged = ft.jit(ft.vmap(_climb))(x)  # [2, 0] float32, as JAX
    got = ft.vmap(_climb)(x)  # TypeError: (f32[]) vs (f64[])
    np.testing.assert_array_equal(got, [2.0, 0.0])
    assert got.dtype == staged.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# 3. A staged scan / while / fori_loop with a Python-scalar carry now stages the body a first
#    time with the bare Python scalar (`_carry_arrays`'s trial, lax.py). A body that uses the
#    carry as an array (c.dtype, c.astype, c.clip, ...) raises AttributeError under jit, where it
#    worked before this change (the carry was an array), and works in JAX.


def test_jit_fori_loop_python_float_carry_body_reads_carry_dtype():
    f = ft.jit(lambda n: lax.fori_loop(0, n, lambda i, c: c + i.astype(c.dtype), 0.0))
    assert f(4) == 6.0  # AttributeError: 'float' object has no attribute 'dtype'


def test_jit_scan_python_float_carry_body_reads_carry_dtype():
    xs = np.array([1, 2, 3], np.int32)
    f = ft.jit(lambda xs: lax.scan(lambda c, x: (c + x.astype(c.dtype), None), 0.0, xs)[0])
    assert f(xs) == 6.0  # AttributeError: 'float' object has no attribute 'dtype'


# ---------------------------------------------------------------------------------------------
# 4. The eager scan stacks its ys as they come: with a Python-int carry that the body makes a
#    float (the weak carry of item 4 of the fixes), the first y is the int 0 and the others are
#    floats. Under grad the stack is of tracers of different dtypes and `concatenate` raises
#    TypeError; jit(grad(f)) gives 6.0 (as JAX). Without grad the ys are stacked by NumPy into
#    float64 even where the staged scan (and JAX) give float32.


def _weighted_sum(w, xs):
    return lax.scan(lambda c, x: (c + w * x, c), 0, xs)


def test_eager_grad_of_scan_with_python_int_carry_that_becomes_float():
    xs = np.array([1.0, 2.0, 3.0])
    staged = ft.jit(ft.grad(lambda w: _weighted_sum(w, xs)[0]))(0.5)
    assert staged == 6.0
    assert ft.grad(lambda w: _weighted_sum(w, xs)[0])(0.5) == 6.0  # TypeError (concatenate)


def test_eager_scan_ys_dtype_with_python_int_carry_matches_staged():
    xs = np.array([1.0, 2.0, 3.0], np.float32)
    eager_ys = _weighted_sum(np.float32(1.0), xs)[1]
    staged_ys = ft.jit(_weighted_sum)(np.float32(1.0), xs)[1]
    assert staged_ys.dtype == np.float32
    np.testing.assert_array_equal(eager_ys, staged_ys)
    assert eager_ys.dtype == staged_ys.dtype  # eager: float64
