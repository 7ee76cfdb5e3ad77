"""functrans.numpy.linalg and functrans.scipy.linalg: NumPy/SciPy values (stacked inputs too),
derivatives in both modes against central differences, jacfwd == jacrev, vmap == loop, jit ==
eager, and the documented conventions (norm at 0, degenerate spectra, matrix_rank)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans.errors import NotSupportedError
from functrans.scipy import linalg as fsl
from functrans.testing import check_grads, check_vjp

RNG_SEED = 20240611


def _rng(offset=0):
    return np.random.default_rng(RNG_SEED + offset)


def general(rng, shape):
    """Well-conditioned square (or rectangular) matrices: a dominant diagonal."""
    a = rng.standard_normal(shape) * 0.4
    k = min(shape[-2:])
    a[..., range(k), range(k)] += 2.0
    return a


def spd(rng, shape):
    """SPD matrices with eigenvalues kept apart (distinct, well separated)."""
    n = shape[-1]
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    w = 1.0 + np.arange(n) + rng.uniform(-0.2, 0.2, shape[:-1])
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2)


def distinct_sv(rng, shape):
    m, n = shape[-2:]
    k = min(m, n)
    u, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))
    v, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))
    s = 1.0 + 0.8 * np.arange(k)[::-1] + rng.uniform(-0.2, 0.2, shape[:-2] + (k,))
    return (u[..., :k] * s[..., None, :]) @ np.swapaxes(v[..., :k], -1, -2)


def _leaves(x):
    return [
        np.asarray(v) for v in ft.tree_util.tree_leaves(tuple(x) if isinstance(x, tuple) else x)
    ]


def assert_tree_close(got, want, rtol=1e-10, atol=1e-10):
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# Values against NumPy / SciPy, single and stacked


def _value_cases():
    r = _rng(1)
    a, a3 = general(r, (4, 4)), general(r, (2, 3, 3, 3))
    s, s3 = spd(r, (4, 4)), spd(r, (3, 3, 3))
    m_tall, m_wide = r.standard_normal((2, 5, 3)), r.standard_normal((4, 6))
    b = r.standard_normal((2, 3, 3, 2))
    return [
        ("inv", fnp.linalg.inv, np.linalg.inv, (a3,)),
        ("solve", fnp.linalg.solve, np.linalg.solve, (a3, b)),
        ("solve-vector", fnp.linalg.solve, np.linalg.solve, (a, r.standard_normal(4))),
        ("solve-broadcast", fnp.linalg.solve, np.linalg.solve, (a3[0, 0], b)),
        ("det", fnp.linalg.det, np.linalg.det, (a3,)),
        ("slogdet", fnp.linalg.slogdet, np.linalg.slogdet, (a3 * np.array([1, -1, 1])[:, None],)),
        ("cholesky", fnp.linalg.cholesky, np.linalg.cholesky, (s3,)),
        (
            "cholesky-upper",
            lambda x: fnp.linalg.cholesky(x, upper=True),
            lambda x: np.linalg.cholesky(x, upper=True),
            (s3,),
        ),
        ("eigh", fnp.linalg.eigh, np.linalg.eigh, (s3,)),
        (
            "eigvalsh-U",
            lambda x: fnp.linalg.eigvalsh(x, "U"),
            lambda x: np.linalg.eigvalsh(x, "U"),
            (np.triu(s),),
        ),
        ("svd", fnp.linalg.svd, np.linalg.svd, (m_tall,)),
        (
            "svd-reduced",
            lambda x: fnp.linalg.svd(x, full_matrices=False),
            lambda x: np.linalg.svd(x, full_matrices=False),
            (m_wide,),
        ),
        (
            "svd-values",
            lambda x: fnp.linalg.svd(x, compute_uv=False),
            lambda x: np.linalg.svd(x, compute_uv=False),
            (m_tall,),
        ),
        ("qr", fnp.linalg.qr, np.linalg.qr, (m_tall,)),
        ("qr-wide", fnp.linalg.qr, np.linalg.qr, (m_wide,)),
        (
            "qr-complete",
            lambda x: fnp.linalg.qr(x, "complete"),
            lambda x: np.linalg.qr(x, "complete"),
            (m_tall,),
        ),
        ("qr-r", lambda x: fnp.linalg.qr(x, "r"), lambda x: np.linalg.qr(x, "r"), (m_tall,)),
        ("pinv", fnp.linalg.pinv, np.linalg.pinv, (m_tall,)),
        ("pinv-rank-deficient", fnp.linalg.pinv, np.linalg.pinv, (np.ones((3, 4)),)),
        (
            "matrix_power-5",
            lambda x: fnp.linalg.matrix_power(x, 5),
            lambda x: np.linalg.matrix_power(x, 5),
            (a3,),
        ),
        (
            "matrix_power-0",
            lambda x: fnp.linalg.matrix_power(x, 0),
            lambda x: np.linalg.matrix_power(x, 0),
            (a3,),
        ),
        (
            "matrix_power--2",
            lambda x: fnp.linalg.matrix_power(x, -2),
            lambda x: np.linalg.matrix_power(x, -2),
            (a,),
        ),
        (
            "multi_dot",
            lambda *xs: fnp.linalg.multi_dot(xs),
            lambda *xs: np.linalg.multi_dot(xs),
            (
                r.standard_normal(5),
                r.standard_normal((5, 2)),
                r.standard_normal((2, 7)),
                r.standard_normal((7, 3)),
            ),
        ),
        (
            "multi_dot-vectors",
            lambda *xs: fnp.linalg.multi_dot(xs),
            lambda *xs: np.linalg.multi_dot(xs),
            (r.standard_normal(3), r.standard_normal((3, 4)), r.standard_normal(4)),
        ),
        (
            "lstsq",
            fnp.linalg.lstsq,
            lambda a, b: np.linalg.lstsq(a, b)[:2] + np.linalg.lstsq(a, b)[3:],
            (r.standard_normal((6, 3)), r.standard_normal((6, 2))),
        ),
        (
            "solve_triangular",
            lambda a, b: fsl.solve_triangular(a, b, lower=True),
            lambda a, b: sla.solve_triangular(a, b, lower=True),
            (a, r.standard_normal((4, 3))),
        ),
        (
            "solve_triangular-T-unit",
            lambda a, b: fsl.solve_triangular(a, b, trans="T", unit_diagonal=True),
            lambda a, b: sla.solve_triangular(a, b, trans="T", unit_diagonal=True),
            (a, r.standard_normal(4)),
        ),
        (
            "expm",
            fsl.expm,
            sla.expm,
            (r.standard_normal((2, 4, 4)) * np.array([0.1, 8.0])[:, None, None],),
        ),
    ]


VALUES = _value_cases()


@pytest.mark.parametrize("name,f,ref,args", VALUES, ids=[c[0] for c in VALUES])
def test_values_match_numpy(name, f, ref, args):
    got = f(*args)
    if name == "lstsq":
        x, res, rank, s = got
        got = (x, res, s)
        assert rank == np.linalg.lstsq(*args)[2]
    if name.startswith("expm"):
        want = np.stack([sla.expm(m) for m in args[0]])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
        return
    assert_tree_close(got, ref(*args), rtol=1e-9, atol=1e-9)


def test_result_types_are_numpy_like():
    s = spd(_rng(2), (3, 3))
    assert type(fnp.linalg.slogdet(s)).__name__ == "SlogdetResult"
    assert fnp.linalg.eigh(s).eigenvalues.shape == (3,)
    assert fnp.linalg.svd(s).Vh.shape == (3, 3)
    assert fnp.linalg.qr(s).R.shape == (3, 3)
    assert fnp.linalg.inv(np.eye(2, dtype=np.float32)).dtype == np.float32
    assert fnp.linalg.det(np.array([[2, 0], [0, 3]])).dtype == np.float64  # ints promote


# ---------------------------------------------------------------------------------------------
# Derivatives: both modes, second order, against central differences


def _grad_cases():
    r = _rng(3)
    a, s, b = general(r, (3, 3)), spd(r, (3, 3)), r.standard_normal((3, 2))
    tall, wide = distinct_sv(r, (4, 3)), distinct_sv(r, (2, 3))
    batched = general(r, (2, 3, 3))
    return [
        ("inv", fnp.linalg.inv, (batched,)),
        ("solve", fnp.linalg.solve, (a, b)),
        ("det", fnp.linalg.det, (batched,)),
        ("slogdet", lambda x: fnp.linalg.slogdet(x).logabsdet, (a * np.array([[-1], [1], [1]]),)),
        ("cholesky", fnp.linalg.cholesky, (s,)),
        ("cholesky-upper", lambda x: fnp.linalg.cholesky(x, upper=True), (s,)),
        ("eigh", lambda x: tuple(fnp.linalg.eigh(x)), (s,)),
        ("eigvalsh-U", lambda x: fnp.linalg.eigvalsh(x, UPLO="U"), (s,)),
        ("svd-tall", lambda x: tuple(fnp.linalg.svd(x, full_matrices=False)), (tall,)),
        ("svd-wide", lambda x: tuple(fnp.linalg.svd(x, full_matrices=False)), (wide,)),
        ("svd-square-full", lambda x: tuple(fnp.linalg.svd(x)), (distinct_sv(r, (3, 3)),)),
        ("svdvals", lambda x: fnp.linalg.svd(x, compute_uv=False), (tall,)),
        ("qr-tall", lambda x: tuple(fnp.linalg.qr(x)), (general(r, (4, 3)),)),
        ("qr-wide", lambda x: tuple(fnp.linalg.qr(x)), (general(r, (2, 4)),)),
        ("pinv", fnp.linalg.pinv, (tall,)),
        ("matrix_power", lambda x: fnp.linalg.matrix_power(x, 3), (a,)),
        ("matrix_power-neg", lambda x: fnp.linalg.matrix_power(x, -2), (a,)),
        (
            "multi_dot",
            lambda x, y, z: fnp.linalg.multi_dot([x, y, z]),
            (r.standard_normal(3), r.standard_normal((3, 4)), r.standard_normal((4, 2))),
        ),
        (
            "lstsq",
            lambda x, y: fnp.linalg.lstsq(x, y)[:2],
            (general(r, (5, 3)), r.standard_normal(5)),
        ),
        ("norm-2", fnp.linalg.norm, (r.standard_normal(4),)),
        ("norm-3", lambda x: fnp.linalg.norm(x, 3), (r.standard_normal(4),)),
        (
            "norm-fro-axis",
            lambda x: fnp.linalg.norm(x, "fro", axis=(0, 2)),
            (r.standard_normal((2, 3, 2)),),
        ),
        ("norm-nuc", lambda x: fnp.linalg.norm(x, "nuc"), (tall,)),
        ("norm-2-matrix", lambda x: fnp.linalg.norm(x, 2), (tall,)),
        ("norm--2-matrix", lambda x: fnp.linalg.norm(x, -2), (tall,)),
        ("solve_triangular", lambda x, y: fsl.solve_triangular(x, y, lower=True), (a, b)),
        ("solve_triangular-T", lambda x, y: fsl.solve_triangular(x, y, trans=1), (a, b[:, 0])),
        ("expm", fsl.expm, (r.standard_normal((3, 3)),)),
        ("expm-scaled", fsl.expm, (r.standard_normal((3, 3)) * 6.0,)),
    ]


GRADS = _grad_cases()


@pytest.mark.parametrize("name,f,args", GRADS, ids=[c[0] for c in GRADS])
def test_derivatives_both_modes_order2(name, f, args):
    rtol = 1e-5 if name.startswith("expm") else None
    check_grads(f, args, order=2, modes=("fwd", "rev"), rtol=rtol, atol=rtol)


@pytest.mark.parametrize(
    "name,f,args", [c for c in GRADS if len(c[2]) == 1], ids=[c[0] for c in GRADS if len(c[2]) == 1]
)
def test_jacfwd_equals_jacrev(name, f, args):
    fwd = ft.jacfwd(f)(*args)
    rev = ft.jacrev(f)(*args)
    assert_tree_close(fwd, rev, rtol=1e-8, atol=1e-8)


def test_hessian_of_logdet():
    # d^2 log det A / dA_ij dA_kl = -(A^-1)_li (A^-1)_jk, in every mode combination
    a = general(_rng(4), (3, 3))
    ainv = np.linalg.inv(a)
    want = -np.einsum("li,jk->ijkl", ainv, ainv)

    def logdet(x):
        return fnp.linalg.slogdet(x).logabsdet

    for h in (ft.hessian(logdet), ft.jacrev(ft.jacrev(logdet)), ft.jacrev(ft.jacfwd(logdet))):
        np.testing.assert_allclose(h(a), want, rtol=1e-10, atol=1e-12)


def test_grad_of_det_and_logdet_closed_forms():
    a = general(_rng(5), (2, 3, 3))
    ainv_t = np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(
        ft.grad(lambda x: fnp.sum(fnp.linalg.det(x)))(a),
        np.linalg.det(a)[:, None, None] * ainv_t,
        rtol=1e-10,
    )
    s = spd(_rng(6), (3, 3))
    # logdet via Cholesky: 2 sum log diag L; the gradient flows to the lower triangle only
    g = ft.grad(lambda x: 2 * fnp.sum(fnp.log(fnp.diagonal(fnp.linalg.cholesky(x)))))(s)
    full = np.linalg.inv(s)
    np.testing.assert_allclose(g, np.tril(2 * full) - np.diag(np.diag(full)), rtol=1e-10)


def test_solve_transpose_is_solve_with_transposed_matrix():
    a, b = general(_rng(7), (3, 3)), _rng(8).standard_normal((3, 2))
    ct = _rng(9).standard_normal((3, 2))
    (got,) = ft.linear_transpose(lambda y: fnp.linalg.solve(a, y), b)(ct)
    np.testing.assert_allclose(got, np.linalg.solve(a.T, ct), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# vmap against a loop, jit against eager


def _batched_cases():
    r = _rng(10)
    return [
        ("inv", fnp.linalg.inv, (general(r, (3, 3, 3)),)),
        ("solve", fnp.linalg.solve, (general(r, (3, 3, 3)), r.standard_normal((3, 3)))),
        ("slogdet", lambda x: tuple(fnp.linalg.slogdet(x)), (general(r, (3, 2, 2)),)),
        ("cholesky", fnp.linalg.cholesky, (spd(r, (3, 3, 3)),)),
        ("eigh", lambda x: tuple(fnp.linalg.eigh(x)), (spd(r, (3, 3, 3)),)),
        ("svd", lambda x: tuple(fnp.linalg.svd(x)), (r.standard_normal((3, 4, 2)),)),
        ("qr", lambda x: tuple(fnp.linalg.qr(x)), (r.standard_normal((3, 4, 2)),)),
        ("pinv", fnp.linalg.pinv, (r.standard_normal((3, 2, 4)),)),
        ("norm-nuc", lambda x: fnp.linalg.norm(x, "nuc"), (r.standard_normal((3, 2, 4)),)),
        (
            "matrix_rank",
            fnp.linalg.matrix_rank,
            (np.stack([np.eye(3), np.ones((3, 3)), np.zeros((3, 3))]),),
        ),
        (
            "lstsq",
            lambda a, b: fnp.linalg.lstsq(a, b)[:2],
            (general(r, (3, 4, 2)), r.standard_normal((3, 4))),
        ),
        (
            "solve_triangular",
            lambda a, b: fsl.solve_triangular(a, b, lower=True),
            (general(r, (3, 3, 3)), r.standard_normal((3, 3))),
        ),
        # per-example norms needing 0, 3 and 7 squarings: the traced path of expm
        (
            "expm",
            fsl.expm,
            (r.standard_normal((3, 3, 3)) * np.array([0.1, 10.0, 200.0])[:, None, None],),
        ),
    ]


BATCHED = _batched_cases()


@pytest.mark.parametrize("name,f,args", BATCHED, ids=[c[0] for c in BATCHED])
def test_vmap_and_jit_match_loop(name, f, args):
    loop = [f(*[a[i] for a in args]) for i in range(args[0].shape[0])]
    want = ft.tree_util.tree_map(lambda *xs: np.stack(xs), *loop)
    rtol = 1e-9 if name == "expm" else 1e-11
    assert_tree_close(ft.vmap(f)(*args), want, rtol=rtol, atol=rtol)
    assert_tree_close(ft.jit(f)(*[a[0] for a in args]), loop[0], rtol=rtol, atol=rtol)


def test_vmap_of_grad_matches_loop():
    a = general(_rng(11), (3, 3, 3))

    def f(x):
        return fnp.linalg.slogdet(x).logabsdet + fnp.sum(fnp.linalg.eigvalsh(x @ x.T) ** 2)

    got = ft.vmap(ft.grad(f))(a)
    np.testing.assert_allclose(got, np.stack([ft.grad(f)(x) for x in a]), rtol=1e-10)


@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple),
    n=st.integers(1, 4),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_solve_inv_det_any_batch(batch, n, k, seed):
    r = np.random.default_rng(seed)
    a, b = general(r, batch + (n, n)), r.standard_normal(batch + (n, k))
    np.testing.assert_allclose(
        fnp.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(fnp.linalg.inv(a), np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fnp.linalg.det(a), np.linalg.det(a), rtol=1e-10)
    # the gradient of sum(det) is det * A^-T, through the stacked primitive
    g = ft.grad(lambda x: fnp.sum(fnp.linalg.det(x)))(a)
    want = np.linalg.det(a)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(g, want, rtol=1e-9, atol=1e-12)


@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
    ord_=st.sampled_from([None, 1, 2, np.inf, -np.inf, 0, 3]),
)
def test_vector_norm_any_shape(shape, seed, ord_):
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(
        fnp.linalg.norm(x, ord_, axis=1), np.linalg.norm(x, ord_, axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        fnp.linalg.norm(x, ord_, axis=0, keepdims=True),
        np.linalg.norm(x, ord_, axis=0, keepdims=True),
        rtol=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# Conventions


@pytest.mark.parametrize(
    "ord_,shape",
    [
        (None, (3,)),
        (2, (3,)),
        (1, (3,)),
        (np.inf, (3,)),
        (3, (3,)),
        (0.5, (3,)),
        (None, (2, 3)),
        ("fro", (2, 3)),
        ("nuc", (2, 3)),
        (2, (2, 3)),
        (-2, (3, 3)),
    ],
)
def test_gradient_of_norm_at_zero_is_zero(ord_, shape):
    x = np.zeros(shape)

    def f(v):
        return fnp.linalg.norm(v, ord_)

    assert f(x) == 0.0
    for jac in (ft.grad(f), ft.jacfwd(f), ft.jacrev(f)):
        np.testing.assert_array_equal(jac(x), np.zeros(shape))
    assert np.all(np.isfinite(ft.hessian(f)(x)))


def test_norm_away_from_zero_is_the_usual_gradient():
    x = np.array([3.0, -4.0])
    np.testing.assert_allclose(ft.grad(fnp.linalg.norm)(x), x / 5.0)
    x = np.array([0.0, -4.0])  # one zero entry: only the whole vector at 0 is special
    np.testing.assert_allclose(ft.grad(fnp.linalg.norm)(x), [0.0, -1.0])


def test_matrix_rank_is_not_differentiable():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert fnp.linalg.matrix_rank(a) == 1
    assert np.issubdtype(np.asarray(fnp.linalg.matrix_rank(a)).dtype, np.integer)
    np.testing.assert_array_equal(
        ft.grad(lambda x: fnp.linalg.matrix_rank(x) * fnp.sum(x))(a), np.ones((2, 2))
    )
    _, t = ft.jvp(fnp.linalg.matrix_rank, (a,), (np.ones((2, 2)),))
    assert np.all(np.asarray(t) == 0)
    assert fnp.linalg.matrix_rank(np.zeros(3)) == 0 and fnp.linalg.matrix_rank(np.ones(3)) == 1


def test_repeated_eigenvalues_keep_eigenvalue_derivatives_finite():
    # at a degenerate spectrum the eigenvalues are differentiable in reverse mode, but the
    # eigenvectors (and their derivative) are not: documented, not hidden
    a = np.diag([1.0, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = ft.grad(lambda x: fnp.sum(fnp.linalg.eigvalsh(x) ** 2))(a)
        np.testing.assert_allclose(g, np.diag([2.0, 2.0, 4.0]))
        _, dv = ft.jvp(lambda x: fnp.linalg.eigh(x).eigenvectors, (a,), (np.tril(np.ones((3, 3))),))
    assert not np.all(np.isfinite(dv))


def test_svd_full_matrices_of_non_square_has_no_derivative():
    x = _rng(12).standard_normal((3, 2))
    with pytest.raises(NotSupportedError, match="full_matrices=False"):
        ft.jacfwd(lambda m: fnp.linalg.svd(m).U)(x)


def test_lstsq_residual_shapes():
    a, b = general(_rng(13), (5, 2)), _rng(14).standard_normal(5)
    res = fnp.linalg.lstsq(a, b)
    assert res.residuals.shape == (1,)
    np.testing.assert_allclose(res.residuals, np.linalg.lstsq(a, b)[1])
    jitted = ft.jit(lambda a, b: fnp.linalg.lstsq(a, b)[1])(a, b)
    np.testing.assert_allclose(jitted, res.residuals)
    assert fnp.linalg.lstsq(np.ones((4, 2)), np.ones(4)).residuals.shape == (0,)  # rank 1


def test_expm_known_values_and_derivative():
    # exp of a rotation generator is a rotation; d/dt expm(tA) = A expm(tA)
    t = 0.7
    gen = np.array([[0.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(
        fsl.expm(gen * t), [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], atol=1e-14
    )
    d = ft.grad(lambda s: fnp.sum(fsl.expm(gen * s) * np.eye(2)))(t)
    np.testing.assert_allclose(d, -2 * np.sin(t), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Complex matrices: values, gauge-invariant derivatives against finite differences of the real
# and imaginary parts (grad = df/da - i df/db), the phase gauge of eigen/singular vectors, the
# dot-product identity, jacfwd == jacrev, vmap == loop


def cnormal(rng, shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def cgeneral(rng, shape):
    a = cnormal(rng, shape) * 0.4
    k = min(shape[-2:])
    a[..., range(k), range(k)] += 2.0
    return a


def hpd(rng, shape):
    """Hermitian positive-definite matrices with eigenvalues kept apart."""
    n = shape[-1]
    q, _ = np.linalg.qr(cnormal(rng, shape))
    w = 1.0 + np.arange(n) + rng.uniform(-0.2, 0.2, shape[:-1])
    return (q * w[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def cdistinct_sv(rng, shape):
    m, n = shape[-2:]
    k = min(m, n)
    u, _ = np.linalg.qr(cnormal(rng, shape[:-2] + (m, m)))
    v, _ = np.linalg.qr(cnormal(rng, shape[:-2] + (n, n)))
    s = 1.0 + 0.8 * np.arange(k)[::-1] + rng.uniform(-0.2, 0.2, shape[:-2] + (k,))
    return (u[..., :k] * s[..., None, :]) @ np.conj(np.swapaxes(v[..., :k], -1, -2))


def _h(x):
    return fnp.conj(fnp.swapaxes(x, -1, -2))


def _complex_value_cases():
    r = _rng(20)
    a, a3 = cgeneral(r, (4, 4)), cgeneral(r, (2, 3, 3))
    h, h3 = hpd(r, (4, 4)), hpd(r, (2, 3, 3))
    tall, wide = cnormal(r, (2, 5, 3)), cnormal(r, (3, 5))
    return [
        ("det", fnp.linalg.det, np.linalg.det, (a3,)),
        ("slogdet", fnp.linalg.slogdet, np.linalg.slogdet, (a3,)),
        ("cholesky", fnp.linalg.cholesky, np.linalg.cholesky, (h3,)),
        (
            "cholesky-upper",
            lambda x: fnp.linalg.cholesky(x, upper=True),
            lambda x: np.linalg.cholesky(x, upper=True),
            (h,),
        ),
        ("eigh", fnp.linalg.eigh, np.linalg.eigh, (h3,)),
        ("eigh-U", lambda x: fnp.linalg.eigh(x, "U"), lambda x: np.linalg.eigh(x, "U"), (h,)),
        ("eigvalsh", fnp.linalg.eigvalsh, np.linalg.eigvalsh, (h3,)),
        ("svd", fnp.linalg.svd, np.linalg.svd, (tall,)),
        (
            "svd-reduced",
            lambda x: fnp.linalg.svd(x, full_matrices=False),
            lambda x: np.linalg.svd(x, full_matrices=False),
            (wide,),
        ),
        (
            "svd-values",
            lambda x: fnp.linalg.svd(x, compute_uv=False),
            lambda x: np.linalg.svd(x, compute_uv=False),
            (tall,),
        ),
        ("qr", fnp.linalg.qr, np.linalg.qr, (tall,)),
        ("qr-wide", fnp.linalg.qr, np.linalg.qr, (wide,)),
        (
            "qr-complete",
            lambda x: fnp.linalg.qr(x, "complete"),
            lambda x: np.linalg.qr(x, "complete"),
            (tall,),
        ),
        ("pinv", fnp.linalg.pinv, np.linalg.pinv, (tall,)),
        ("pinv-rank-deficient", fnp.linalg.pinv, np.linalg.pinv, (np.ones((3, 4)) * (1 + 2j),)),
        ("matrix_rank", fnp.linalg.matrix_rank, np.linalg.matrix_rank, (tall,)),
        ("norm-nuc", lambda x: fnp.linalg.norm(x, "nuc"), lambda x: np.linalg.norm(x, "nuc"), (a,)),
        ("norm-2", lambda x: fnp.linalg.norm(x, 2), lambda x: np.linalg.norm(x, 2), (a,)),
        (
            "lstsq",
            lambda a, b: fnp.linalg.lstsq(a, b)[:2],
            lambda a, b: np.linalg.lstsq(a, b)[:2],
            (cnormal(r, (6, 3)), cnormal(r, (6, 2))),
        ),
        (
            "solve_triangular-C",
            lambda a, b: fsl.solve_triangular(a, b, trans="C", lower=True),
            lambda a, b: sla.solve_triangular(a, b, trans="C", lower=True),
            (a, cnormal(r, (4, 2))),
        ),
    ]


COMPLEX_VALUES = _complex_value_cases()


@pytest.mark.parametrize("name,f,ref,args", COMPLEX_VALUES, ids=[c[0] for c in COMPLEX_VALUES])
def test_complex_values_match_numpy(name, f, ref, args):
    got, want = _leaves(f(*args)), _leaves(ref(*args))
    for g, w in zip(got, want, strict=True):
        if np.issubdtype(w.dtype, np.inexact):  # real eigenvalues, singular values, log|det|
            assert g.dtype == w.dtype, (g.dtype, w.dtype)
    assert_tree_close(got, want, rtol=1e-9, atol=1e-9)


def test_real_eigh_upper_eigenvectors_match_numpy():
    s = spd(_rng(21), (2, 4, 4))
    assert_tree_close(fnp.linalg.eigh(np.triu(s), "U"), np.linalg.eigh(np.triu(s), "U"))


def _fd_complex_grad(f, z, eps=1e-6):
    """df/da - i df/db for real-valued f of complex z = a + ib, by central differences."""
    g = np.zeros(z.shape, complex)
    for idx in np.ndindex(z.shape):
        e = np.zeros(z.shape)
        e[idx] = eps
        da = (f(z + e) - f(z - e)) / (2 * eps)
        db = (f(z + 1j * e) - f(z - 1j * e)) / (2 * eps)
        g[idx] = da - 1j * db
    return g


def _gauge_invariant_cases():
    r = _rng(22)
    a, h = cgeneral(r, (3, 3)), hpd(r, (3, 3))
    tall, wide = cdistinct_sv(r, (4, 3)), cdistinct_sv(r, (2, 3))
    c3, c43, c23 = cnormal(r, (3, 3)), cnormal(r, (4, 3)), cnormal(r, (2, 3))

    def eig_projector(x):  # V_k V_k^H: independent of the eigenvectors' phases
        v = fnp.linalg.eigh(x).eigenvectors[:, :2]
        return v @ _h(v)

    def svd_rank2(x):  # U_k Vh_k: independent of the common phases of (u_j, v_j)
        u, _, vh = fnp.linalg.svd(x, full_matrices=False)
        return u[:, :2] @ vh[:2]

    def re_pairing(c):
        return lambda m: fnp.real(fnp.sum(m * c))

    return [
        ("eigvalsh-sum-squares", lambda x: fnp.sum(fnp.linalg.eigvalsh(x) ** 2), h),
        ("eigh-projector", lambda x: re_pairing(c3)(eig_projector(x)), h),
        ("abs-det", lambda x: fnp.abs(fnp.linalg.det(x)), a),
        ("logabsdet", lambda x: fnp.linalg.slogdet(x).logabsdet, a),
        ("det", lambda x: re_pairing(1 - 2j)(fnp.linalg.det(x)), a),
        ("det-sign", lambda x: re_pairing(2 + 1j)(fnp.linalg.slogdet(x).sign), a),
        ("cholesky", lambda x: re_pairing(c3)(fnp.linalg.cholesky(x)), h),
        ("cholesky-upper", lambda x: re_pairing(c3)(fnp.linalg.cholesky(x, upper=True)), h),
        ("norm-svd-values", lambda x: fnp.linalg.norm(fnp.linalg.svd(x, compute_uv=False)), tall),
        ("norm-nuc", lambda x: fnp.linalg.norm(x, "nuc"), wide),
        ("svd-rank2-tall", lambda x: re_pairing(c43)(svd_rank2(x)), tall),
        ("svd-rank2-wide", lambda x: re_pairing(c23)(svd_rank2(x)), wide),
        ("qr-r-frobenius", lambda x: fnp.sum(fnp.abs(fnp.linalg.qr(x, "r")) ** 2), tall),
        ("qr-q", lambda x: re_pairing(c43)(fnp.linalg.qr(x).Q), tall),
        ("qr-wide-r", lambda x: re_pairing(c23)(fnp.linalg.qr(x).R), cgeneral(r, (2, 3))),
        ("pinv", lambda x: re_pairing(c43.T)(fnp.linalg.pinv(x)), tall),
        (
            "lstsq",
            lambda x: re_pairing(c43[:3, :2])(fnp.linalg.lstsq(x, c43[:, :2])[0]),
            tall,
        ),
    ]


GAUGE_INVARIANT = _gauge_invariant_cases()


@pytest.mark.parametrize("name,f,z", GAUGE_INVARIANT, ids=[c[0] for c in GAUGE_INVARIANT])
def test_complex_gradients_match_finite_differences(name, f, z):
    want = _fd_complex_grad(lambda x: float(f(x)), z)
    got = ft.grad(f)(z)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    check_grads(f, (z,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,f,z", GAUGE_INVARIANT, ids=[c[0] for c in GAUGE_INVARIANT])
def test_complex_jacfwd_equals_jacrev(name, f, z):
    # over the real parameters (a, b) of z = a + ib both Jacobians are real, and jacrev of the
    # complex function combines them as df/da - i df/db
    def g(re, im):
        return f(re + 1j * im)

    fwd = ft.jacfwd(g, argnums=(0, 1))(z.real, z.imag)
    rev = ft.jacrev(g, argnums=(0, 1))(z.real, z.imag)
    assert_tree_close(fwd, rev, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ft.jacrev(f)(z), fwd[0] - 1j * fwd[1], rtol=1e-8, atol=1e-8)


def test_complex_closed_forms():
    a = cgeneral(_rng(23), (3, 3))
    # log|det A| has gradient A^-T (the plain transpose: df/da - i df/db)
    g = ft.grad(lambda x: fnp.linalg.slogdet(x).logabsdet)(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-10)
    # trace(A^H A) = sum |R|^2 through qr: gradient 2 conj(A)
    g = ft.grad(lambda x: fnp.sum(fnp.abs(fnp.linalg.qr(x, "r")) ** 2))(a)
    np.testing.assert_allclose(g, 2 * np.conj(a), rtol=1e-10)
    # the complex sign stays on the unit circle: Re(conj(sign) d sign) = 0
    da = cnormal(_rng(24), (3, 3))
    sign, dsign = ft.jvp(lambda x: fnp.linalg.slogdet(x).sign, (a,), (da,))
    assert abs(abs(sign) - 1) < 1e-12 and abs(np.real(np.conj(sign) * dsign)) < 1e-12
    # and it is the phase of d det: d det = det tr(A^-1 dA)
    _, ddet = ft.jvp(fnp.linalg.det, (a,), (da,))
    np.testing.assert_allclose(ddet, np.linalg.det(a) * np.trace(np.linalg.solve(a, da)))


def test_complex_cholesky_and_eigh_read_the_lower_triangle_and_real_diagonal():
    h = hpd(_rng(25), (3, 3))
    junk = cnormal(_rng(26), (3, 3))
    read = np.tril(h) + np.triu(junk, 1) + 1j * np.diag([0.3, -0.2, 0.5])
    assert_tree_close(fnp.linalg.cholesky(read), np.linalg.cholesky(h))
    assert_tree_close(fnp.linalg.eigh(read), np.linalg.eigh(h))
    c = cnormal(_rng(27), (3, 3))
    for f in (
        lambda x: fnp.real(fnp.sum(c * fnp.linalg.cholesky(x))),
        lambda x: fnp.sum(fnp.linalg.eigvalsh(x) * np.arange(1.0, 4.0)),
    ):
        g = ft.grad(f)(read)
        np.testing.assert_array_equal(np.triu(g, 1), 0)  # the unread triangle
        np.testing.assert_array_equal(np.imag(np.diag(g)), 0)  # Im of the diagonal: not read


def _fd_tangent(f, x, t, eps=1e-6):
    return [(p - m) / (2 * eps) for p, m in zip(f(x + eps * t), f(x - eps * t), strict=True)]


def _assert_phase_difference(d_got, d_fd, v, atol=1e-6):
    """d_got - d_fd = V diag(i theta): the two derivatives differ by a change of phases only."""
    k = v.shape[-1]
    diff = np.conj(v).T @ (d_got - d_fd)
    np.testing.assert_allclose(diff - np.diag(np.diag(diff)), np.zeros((k, k)), atol=atol)
    np.testing.assert_allclose(np.real(np.diag(diff)), 0, atol=atol)
    return np.imag(np.diag(diff))


def test_complex_eigh_jvp_standard_gauge():
    h, t = hpd(_rng(28), (4, 4)), cnormal(_rng(29), (4, 4))
    (w, v), (dw, dv) = ft.jvp(lambda x: tuple(fnp.linalg.eigh(x)), (h,), (t,))
    assert dw.dtype == np.float64
    # the gauge: V^H dV has a zero diagonal (real part: normalization; imaginary: the choice)
    np.testing.assert_allclose(np.diag(np.conj(v).T @ dv), 0, atol=1e-12)
    dw_fd, dv_fd = _fd_tangent(lambda x: np.linalg.eigh(x), h, t)
    np.testing.assert_allclose(dw, dw_fd, atol=1e-6)
    _assert_phase_difference(dv, dv_fd, v)  # NumPy's phases differ from the gauge; nothing else


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (3, 3)])
def test_complex_svd_jvp_gauge(shape):
    a, t = cdistinct_sv(_rng(30), shape), cnormal(_rng(31), shape)
    (u, s, vh), (du, ds, dvh) = ft.jvp(
        lambda x: tuple(fnp.linalg.svd(x, full_matrices=False)), (a,), (t,)
    )
    v, dv = np.conj(vh).T, np.conj(dvh).T
    assert ds.dtype == np.float64
    # the gauge: V^H dV has a zero diagonal; U^H dU an imaginary one
    np.testing.assert_allclose(np.diag(np.conj(v).T @ dv), 0, atol=1e-12)
    np.testing.assert_allclose(np.real(np.diag(np.conj(u).T @ du)), 0, atol=1e-12)
    du_fd, ds_fd, dvh_fd = _fd_tangent(lambda x: np.linalg.svd(x, full_matrices=False), a, t)
    np.testing.assert_allclose(ds, ds_fd, atol=1e-6)
    # U and V change phase together: the same theta for both
    theta_u = _assert_phase_difference(du, du_fd, u)
    theta_v = _assert_phase_difference(dv, np.conj(dvh_fd).T, v)
    np.testing.assert_allclose(theta_u, theta_v, atol=1e-6)


@pytest.mark.parametrize(
    "name,f,z",
    [
        ("eigh", lambda x: tuple(fnp.linalg.eigh(x)), hpd(_rng(32), (3, 3))),
        ("eigh-U", lambda x: tuple(fnp.linalg.eigh(x, "U")), hpd(_rng(33), (3, 3))),
        ("svd-tall", lambda x: tuple(fnp.linalg.svd(x, False)), cdistinct_sv(_rng(34), (4, 3))),
        ("svd-wide", lambda x: tuple(fnp.linalg.svd(x, False)), cdistinct_sv(_rng(35), (2, 3))),
    ],
)
def test_complex_eigenvector_vjp_is_the_transposed_jvp(name, f, z):
    # reverse mode is the transpose of the (gauge-fixed) forward mode under Re(sum(u * v))
    check_vjp(f, (z,))


def _complex_batched_cases():
    r = _rng(36)
    return [
        ("det", fnp.linalg.det, (cgeneral(r, (3, 3, 3)),)),
        ("slogdet", lambda x: tuple(fnp.linalg.slogdet(x)), (cgeneral(r, (3, 2, 2)),)),
        ("cholesky", fnp.linalg.cholesky, (hpd(r, (3, 3, 3)),)),
        ("eigh", lambda x: tuple(fnp.linalg.eigh(x)), (hpd(r, (3, 3, 3)),)),
        ("svd", lambda x: tuple(fnp.linalg.svd(x)), (cnormal(r, (3, 4, 2)),)),
        ("qr", lambda x: tuple(fnp.linalg.qr(x)), (cnormal(r, (3, 4, 2)),)),
        ("pinv", fnp.linalg.pinv, (cnormal(r, (3, 2, 4)),)),
        (
            "lstsq",
            lambda a, b: fnp.linalg.lstsq(a, b)[:2],
            (cgeneral(r, (3, 4, 2)), cnormal(r, (3, 4))),
        ),
        (
            "grad-eigvalsh",
            ft.grad(lambda x: fnp.sum(fnp.linalg.eigvalsh(x) ** 3)),
            (hpd(r, (3, 3, 3)),),
        ),
        (
            "grad-logabsdet",
            ft.grad(lambda x: fnp.linalg.slogdet(x).logabsdet),
            (cgeneral(r, (3, 3, 3)),),
        ),
    ]


COMPLEX_BATCHED = _complex_batched_cases()


@pytest.mark.parametrize("name,f,args", COMPLEX_BATCHED, ids=[c[0] for c in COMPLEX_BATCHED])
def test_complex_vmap_and_jit_match_loop(name, f, args):
    loop = [f(*[a[i] for a in args]) for i in range(args[0].shape[0])]
    want = ft.tree_util.tree_map(lambda *xs: np.stack(xs), *loop)
    assert_tree_close(ft.vmap(f)(*args), want, rtol=1e-11, atol=1e-11)
    assert_tree_close(ft.jit(f)(*[a[0] for a in args]), loop[0], rtol=1e-11, atol=1e-11)
