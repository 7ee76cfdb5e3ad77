"""Review 5 of the eager cache (functrans/eager.py): results after a program is compiled, where
a matrix product meets an infinity.

The compiled program is checked against the eager result bit for bit once, on the compiling
call. Where a later call's product meets an inf or a NaN, the compiled program can put NaN in
other entries than the eager path: it turns products with jacfwd's and jacrev's identity basis
into scalings (passes._scaled_dot: no 0 * inf), and BLAS kernels skip zeros differently from
one call to another. That is a documented limit (docs/sharp_edges.md); these tests check what
does hold: finite inputs give the same bits, and entries finite in both results are equal."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from eager_helpers import CALLS, bits, fresh_cache, uncached  # noqa: F401

import functrans as ft
import functrans.numpy as fnp

pytestmark = pytest.mark.filterwarnings("ignore")


def _values(x):
    """bits() with every NaN made one NaN (NaN sign and payload are a documented difference)."""
    leaves, tree = ft.tree_util.tree_flatten(x)
    out = []
    for v in leaves:
        a = np.array(v)
        if a.dtype.kind == "f":
            a[np.isnan(a)] = np.nan
        out.append((np.asarray(v).dtype, np.shape(v), a.tobytes()))
    return tree, out


def _same_where_finite(got, want) -> bool:
    lg, tg = ft.tree_util.tree_flatten(got)
    lw, tw = ft.tree_util.tree_flatten(want)
    if tg != tw:
        return False
    for a, b in zip(lg, lw):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        both = np.isfinite(a) & np.isfinite(b)
        if not np.array_equal(a[both], b[both]):
            return False
    return True


def _check(got, want, finite_inputs: bool) -> bool:
    return _values(got) == _values(want) if finite_inputs else _same_where_finite(got, want)


def test_jacrev_of_a_product_with_an_infinite_matrix_after_compiling():  # documented limit
    # the compiled Jacobian program has dot(identity basis, A) rewritten as a scaling of A
    # (passes._scaled_dot), which gives A's entries where the eager dense product gives
    # 0 * inf = nan; the compiling call's A was finite, so the check passed
    a = np.arange(9.0).reshape(3, 3) + 1.0
    a_inf = a.copy()
    a_inf[0, 1] = np.inf
    x = np.ones(3)
    for k in range(CALLS + 2):
        m = a if k < CALLS - 1 else a_inf  # finite until the program runs compiled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = ft.jacrev(lambda x, m: fnp.dot(m, x))(x, m)
            with uncached():
                want = ft.jacrev(lambda x, m: fnp.dot(m, x))(x, m)
        assert _check(got, want, finite_inputs=k < CALLS - 1), (k + 1, got, want)


def test_jacfwd_of_a_product_that_overflows_after_compiling():
    # the same rewrite in forward mode: the tangent basis diag(exp(x)) times outer(x, x) is a
    # scaling once compiled (inf on the diagonal) where eagerly 0 * inf makes it nan
    def f(x):
        return fnp.dot(fnp.exp(x), fnp.outer(x, x))

    for k in range(CALLS + 2):
        x = np.ones(3) if k < CALLS - 1 else np.array([1.0, 800.0, 2.0])  # exp(800) = inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = ft.jacfwd(f)(x)
            with uncached():
                want = ft.jacfwd(f)(x)
        assert _check(got, want, finite_inputs=k < CALLS - 1), (k + 1, got, want)


def test_vmap_of_a_product_with_an_infinite_closed_over_matrix_after_compiling():
    # eagerly the batched dot of zeros with [[1, 0], [inf, 1]] gives nan in one row only; the
    # compiled program's product gives nan in both (the compiling call's matrix was finite)
    eye = np.eye(2)
    m_inf = eye.copy()
    m_inf[1, 0] = np.inf
    x0 = np.array([[1.0, 2.0], [3.0, 4.0]])
    x1 = np.array([[-0.8, -1.3], [1.4, 710.0]])

    def f(x, c):
        return fnp.sum(fnp.cos(fnp.dot(x * 0.0, c)))

    for k in range(CALLS + 2):
        x, c = (x0, eye) if k < CALLS - 1 else (x1, m_inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = ft.vmap(lambda x, c=c: f(x, c))(x)
            with uncached():
                want = ft.vmap(lambda x, c=c: f(x, c))(x)
        assert _check(got, want, finite_inputs=k < CALLS - 1), (k + 1, got, want)
