"""Linear-algebra primitives: factorizations, solves and eigendecompositions, with their rules.

Every primitive works on stacks of matrices `(..., m, n)` natively (NumPy's convention), so a
batch rule only moves the batch axis to the front. JVPs are the standard forward-mode rules,
written with primitives so they differentiate again; reverse mode comes from linearize +
transpose, and only the solves (linear in their right-hand side) have transpose rules.
cholesky and eigh read only the lower triangle of their operand, as NumPy does, so their tangent
is the symmetric matrix made from the tangent's lower triangle.
"""

from __future__ import annotations

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of, is_undefined
from functrans.primitives import elementwise as ew
from functrans.primitives.dot import dot_general
from functrans.primitives.structural import (
    bdim_to,
    broadcast_in_dim,
    concatenate,
    full_like,
    reduce_sum,
    slice_,
    transpose,
)

try:  # optional: a true (batched) triangular solve; NumPy's LU-based solve is the fallback
    from scipy.linalg import solve_triangular as _scipy_solve_triangular
except ImportError:  # pragma: no cover - scipy is optional
    _scipy_solve_triangular = None

# ---------------------------------------------------------------------------------------------
# Matrix helpers written with primitives (operands are stacks (..., m, n) of one batch shape)


def mT(x):
    """Swap the last two axes (the matrix transpose of every matrix in a stack)."""
    nd = aval_of(x).ndim
    return transpose(x, permutation=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def matmul(x, y):
    """x @ y for stacks of one batch shape (no broadcasting: the primitives' exact shapes)."""
    nd = aval_of(x).ndim
    batch = tuple(range(nd - 2))
    return dot_general(x, y, dimension_numbers=(((nd - 1,), (nd - 2,)), (batch, batch)))


def _constant(x, matrix: np.ndarray, dtype=None):
    """A constant (m, n) matrix broadcast over x's batch axes, in x's dtype (or `dtype`)."""
    aval = aval_of(x)
    nd = aval.ndim
    shape = aval.shape[:-2] + matrix.shape
    matrix = np.asarray(matrix, aval.dtype if dtype is None else dtype)
    return broadcast_in_dim(matrix, shape=shape, broadcast_dimensions=(nd - 2, nd - 1))


def tril(x, k: int = 0):
    m, n = aval_of(x).shape[-2:]
    return ew.mul(x, _constant(x, np.tri(m, n, k)))


def triu(x, k: int = 0):
    m, n = aval_of(x).shape[-2:]
    return ew.mul(x, _constant(x, 1.0 - np.tri(m, n, k - 1)))


def diag_part(x):
    """The diagonal of every (square) matrix in a stack: (..., n, n) -> (..., n)."""
    n = aval_of(x).shape[-1]
    return reduce_sum(ew.mul(x, _constant(x, np.eye(n))), axes=(aval_of(x).ndim - 1,))


def diag_embed(v):
    """Diagonal matrices from a stack of vectors: (..., n) -> (..., n, n)."""
    aval = aval_of(v)
    n, nd = aval.shape[-1], aval.ndim
    rows = broadcast_in_dim(
        v, shape=aval.shape + (n,), broadcast_dimensions=tuple(range(nd - 1)) + (nd,)
    )
    return ew.mul(rows, _constant(rows, np.eye(n)))


def _cols(x, start: int, stop: int):
    """Columns start:stop of every matrix in a stack."""
    shape = aval_of(x).shape
    return slice_(
        x,
        start_indices=(0,) * (len(shape) - 1) + (start,),
        limit_indices=shape[:-1] + (stop,),
    )


def _sym_from_lower(t):
    """The symmetric matrix whose lower triangle is t's (what cholesky and eigh read)."""
    return ew.add(tril(t), mT(tril(t, -1)))


def _off_diagonal_inverse(d):
    """F[i, j] = 1 / d[i, j] off the diagonal and 0 on it, finite on the diagonal to any order."""
    n = aval_of(d).shape[-1]
    on_diag = _constant(d, np.eye(n), dtype=bool)
    one = _constant(d, np.ones((n, n)))
    zero = _constant(d, np.zeros((n, n)))
    return ew.select_n(on_diag, ew.div(one, ew.select_n(on_diag, d, one)), zero)


def _pairwise_diff(v):
    """D[..., i, j] = v[..., j] - v[..., i]."""
    aval = aval_of(v)
    n, nd = aval.shape[-1], aval.ndim
    lead = tuple(range(nd - 1))
    shape = aval.shape + (n,)
    vj = broadcast_in_dim(v, shape=shape, broadcast_dimensions=lead + (nd,))
    vi = broadcast_in_dim(v, shape=shape, broadcast_dimensions=lead + (nd - 1,))
    return ew.sub(vj, vi)


def _batch_to_front(vals, dims):
    """Every operand with its batch axis first (unbatched operands are broadcast)."""
    size = next(aval_of(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    return [bdim_to(v, d, 0, size) for v, d in zip(vals, dims)]


def _batch_leading(prim: Primitive):
    """Batch rule of a primitive that takes leading batch axes natively."""

    def batch(vals, dims, **params):
        out = prim.bind(*_batch_to_front(vals, dims), **params)
        return out, ([0] * len(out) if prim.multiple_results else 0)

    return batch


def _check_matrix(name: str, x: ShapedArray, *, square: bool = True, real: bool = True) -> None:
    ok_shape = x.ndim >= 2 and (not square or x.shape[-1] == x.shape[-2])
    ok_dtype = x.dtype.kind == "f" or (not real and x.dtype.kind == "c")
    if not ok_shape or not ok_dtype:
        what = "square matrices" if square else "matrices"
        kinds = "real floating-point" if real else "floating-point"
        raise TypeError(
            f"primitive '{name}' needs a stack of {what} (..., m, n) of a {kinds} dtype, got "
            f"{x.str_short()}; functrans.numpy.linalg converts and checks before calling it."
        )


def _check_rhs(name: str, a: ShapedArray, b: ShapedArray) -> None:
    if b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1] or b.dtype != a.dtype:
        raise TypeError(
            f"primitive '{name}' needs a right-hand side (..., n, k) with the batch shape, n and "
            f"dtype of {a.str_short()}, got {b.str_short()}"
        )


# ---------------------------------------------------------------------------------------------
# triangular_solve: X with op(A) X = B, op(A) = A or A^T, A triangular (only that triangle is
# read; with unit_diagonal its diagonal is taken as ones). Linear in B: the transpose of solving
# with op(A) is solving with op(A)^T.

triangular_solve_p = Primitive("triangular_solve")


def _triangular_part(a, *, lower, unit_diagonal):
    """The matrix the solve uses: a's triangle, with a unit diagonal if asked (NumPy arrays)."""
    a = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        a = a.copy()
        n = a.shape[-1]
        a[..., range(n), range(n)] = 1
    return a


def _triangular_solve_impl(a, b, *, lower, transpose_a, unit_diagonal):
    if _scipy_solve_triangular is not None and a.dtype.kind == "f":
        x = _scipy_solve_triangular(
            a, b, lower=lower, trans=int(transpose_a), unit_diagonal=unit_diagonal
        )
        return np.asarray(x, a.dtype)
    a = _triangular_part(np.asarray(a), lower=lower, unit_diagonal=unit_diagonal)
    return np.linalg.solve(np.swapaxes(a, -1, -2) if transpose_a else a, b)


def _triangular_solve_abstract_eval(a, b, **params):
    _check_matrix("triangular_solve", a, real=False)
    _check_rhs("triangular_solve", a, b)
    return b


def _triangular_solve_jvp(primals, tangents, *, lower, transpose_a, unit_diagonal):
    a, b = primals
    a_dot, b_dot = tangents
    params = dict(lower=lower, transpose_a=transpose_a, unit_diagonal=unit_diagonal)
    x = triangular_solve(a, b, **params)
    # d(op(A)^-1 B) = op(A)^-1 (dB - op(dA) X), dA restricted to the triangle that is read
    rhs = None if type(b_dot) is Zero else b_dot
    if type(a_dot) is not Zero:
        k = -1 if unit_diagonal else 0
        da = tril(a_dot, k) if lower else triu(a_dot, -k)
        term = matmul(mT(da) if transpose_a else da, x)
        rhs = ew.neg(term) if rhs is None else ew.sub(rhs, term)
    if rhs is None:
        return x, Zero(aval_of(x))
    return x, triangular_solve(a, rhs, **params)


def _triangular_solve_transpose(ct, a, b, *, lower, transpose_a, unit_diagonal):
    if is_undefined(a):
        raise_nonlinear("triangular_solve (in its matrix)")
    ct_b = triangular_solve(
        a, ct, lower=lower, transpose_a=not transpose_a, unit_diagonal=unit_diagonal
    )
    return [None, ct_b]


def raise_nonlinear(what: str):
    from functrans.interpreters.transpose import nonlinear_error

    raise nonlinear_error(what)


triangular_solve_p.impl = _triangular_solve_impl
triangular_solve_p.abstract_eval = _triangular_solve_abstract_eval
triangular_solve_p.jvp = _triangular_solve_jvp
triangular_solve_p.transpose = _triangular_solve_transpose
triangular_solve_p.batch = _batch_leading(triangular_solve_p)


def triangular_solve(a, b, *, lower: bool, transpose_a: bool = False, unit_diagonal: bool = False):
    return triangular_solve_p.bind(
        a, b, lower=bool(lower), transpose_a=bool(transpose_a), unit_diagonal=bool(unit_diagonal)
    )


# ---------------------------------------------------------------------------------------------
# solve: X with A X = B for general square A (LU with partial pivoting, via LAPACK).
# d(A^-1 B) = A^-1 (dB - dA X); linear in B, with transpose ct_B = A^-T ct.

solve_p = Primitive("solve")


def _solve_abstract_eval(a, b):
    _check_matrix("solve", a, real=False)
    _check_rhs("solve", a, b)
    return b


def _solve_jvp(primals, tangents):
    a, b = primals
    a_dot, b_dot = tangents
    x = solve(a, b)
    rhs = None if type(b_dot) is Zero else b_dot
    if type(a_dot) is not Zero:
        term = matmul(a_dot, x)
        rhs = ew.neg(term) if rhs is None else ew.sub(rhs, term)
    if rhs is None:
        return x, Zero(aval_of(x))
    return x, solve(a, rhs)


def _solve_transpose(ct, a, b):
    if is_undefined(a):
        raise_nonlinear("solve (in its matrix)")
    return [None, solve(mT(a), ct)]


solve_p.impl = lambda a, b: np.linalg.solve(a, b)
solve_p.abstract_eval = _solve_abstract_eval
solve_p.jvp = _solve_jvp
solve_p.transpose = _solve_transpose
solve_p.batch = _batch_leading(solve_p)


def solve(a, b):
    return solve_p.bind(a, b)


# ---------------------------------------------------------------------------------------------
# logabsdet: log|det A|, with d log|det A| = tr(A^-1 dA). det_sign: sign(det A), piecewise
# constant. Together they are slogdet; det = sign * exp(logabsdet).

logabsdet_p = Primitive("logabsdet")


def _logabsdet_abstract_eval(a):
    _check_matrix("logabsdet", a)
    return ShapedArray(a.shape[:-2], a.dtype)


def _logabsdet_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    return logabsdet(a), reduce_sum(diag_part(solve(a, a_dot)), axes=(aval_of(a).ndim - 2,))


logabsdet_p.impl = lambda a: np.linalg.slogdet(a)[1]
logabsdet_p.abstract_eval = _logabsdet_abstract_eval
logabsdet_p.jvp = _logabsdet_jvp
logabsdet_p.batch = _batch_leading(logabsdet_p)


def logabsdet(a):
    return logabsdet_p.bind(a)


det_sign_p = Primitive("det_sign")


def _det_sign_jvp(primals, tangents):
    out = det_sign(*primals)
    return out, Zero(aval_of(out))


det_sign_p.impl = lambda a: np.linalg.slogdet(a)[0]
det_sign_p.abstract_eval = _logabsdet_abstract_eval
det_sign_p.jvp = _det_sign_jvp
det_sign_p.batch = _batch_leading(det_sign_p)


def det_sign(a):
    return det_sign_p.bind(a)


# ---------------------------------------------------------------------------------------------
# cholesky: A = L L^T, L lower triangular (only A's lower triangle is read).
# dL = L Phi(L^-1 dA L^-T), Phi = the strictly lower triangle plus half the diagonal.

cholesky_p = Primitive("cholesky")


def _cholesky_abstract_eval(a):
    _check_matrix("cholesky", a)
    return a


def _cholesky_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    low = cholesky(a)
    s = _sym_from_lower(a_dot)
    y = triangular_solve(low, s, lower=True)  # L^-1 S
    x = triangular_solve(low, mT(y), lower=True)  # L^-1 S L^-T (S is symmetric)
    n = aval_of(a).shape[-1]
    phi = ew.mul(x, _constant(x, np.tri(n, n, -1) + 0.5 * np.eye(n)))
    return low, matmul(low, phi)


cholesky_p.impl = lambda a: np.linalg.cholesky(a)
cholesky_p.abstract_eval = _cholesky_abstract_eval
cholesky_p.jvp = _cholesky_jvp
cholesky_p.batch = _batch_leading(cholesky_p)


def cholesky(a):
    return cholesky_p.bind(a)


# ---------------------------------------------------------------------------------------------
# eigh: [w, V] with A = V diag(w) V^T, w ascending (only A's lower triangle is read).
# With P = V^T dA V: dw = diag(P), dV = V (F * P), F[i, j] = 1 / (w[j] - w[i]) off the diagonal.
# Undefined for repeated eigenvalues (F is infinite there).

eigh_p = Primitive("eigh", multiple_results=True)


def _eigh_abstract_eval(a):
    _check_matrix("eigh", a)
    return [ShapedArray(a.shape[:-1], a.dtype), a]


def _eigh_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    w, v = eigh(a)
    p = matmul(mT(v), matmul(_sym_from_lower(a_dot), v))
    f = _off_diagonal_inverse(_pairwise_diff(w))
    return [w, v], [diag_part(p), matmul(v, ew.mul(f, p))]


eigh_p.impl = lambda a: list(np.linalg.eigh(a, UPLO="L"))
eigh_p.abstract_eval = _eigh_abstract_eval
eigh_p.jvp = _eigh_jvp
eigh_p.batch = _batch_leading(eigh_p)


def eigh(a):
    return eigh_p.bind(a)


# ---------------------------------------------------------------------------------------------
# svd: [U, s, Vh] with A = U diag(s) Vh, s descending. With k = min(m, n), V = Vh^T,
# dP = U^T dA V, S = diag(s), F[i, j] = 1 / (s[j]^2 - s[i]^2) off the diagonal:
#   ds = diag(dP)
#   dU = U (F * (dP S + S dP^T)) + (I - U U^T) dA V S^-1
#   dV = V (F * (S dP + dP^T S)) + (I - V V^T) dA^T U S^-1
# Undefined for repeated or zero singular values, and for the extra columns of full_matrices.

svd_p = Primitive("svd", multiple_results=True)


def _svd_shapes(shape, full_matrices):
    *batch, m, n = shape
    k = min(m, n)
    u_cols, v_rows = (m, n) if full_matrices else (k, k)
    return tuple(batch) + (m, u_cols), tuple(batch) + (k,), tuple(batch) + (v_rows, n)


def _svd_abstract_eval(a, *, full_matrices):
    _check_matrix("svd", a, square=False)
    return [ShapedArray(s, a.dtype) for s in _svd_shapes(a.shape, full_matrices)]


def _svd_jvp(primals, tangents, *, full_matrices):
    (a,), (a_dot,) = primals, tangents
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            "svd: the derivative of the full (square) U or Vh of a non-square matrix is not "
            "defined (the extra columns are not unique); use full_matrices=False."
        )
    u, s, vh = svd(a, full_matrices=full_matrices)
    v = mT(vh)
    dp = matmul(mT(u), matmul(a_dot, v))
    ds = diag_part(dp)
    s_mat = diag_embed(s)
    s2 = ew.mul(s, s)
    f = _off_diagonal_inverse(_pairwise_diff(s2))
    du = matmul(u, ew.mul(f, ew.add(matmul(dp, s_mat), matmul(s_mat, mT(dp)))))
    dv = matmul(v, ew.mul(f, ew.add(matmul(s_mat, dp), matmul(mT(dp), s_mat))))
    inv_s = diag_embed(ew.div(full_like(s, 1), s))
    if m > n:  # U has a component outside span(U): (I - U U^T) dA V S^-1
        r = matmul(a_dot, matmul(v, inv_s))
        du = ew.add(du, ew.sub(r, matmul(u, matmul(mT(u), r))))
    if n > m:
        r = matmul(mT(a_dot), matmul(u, inv_s))
        dv = ew.add(dv, ew.sub(r, matmul(v, matmul(mT(v), r))))
    return [u, s, vh], [du, ds, mT(dv)]


svd_p.impl = lambda a, *, full_matrices: list(np.linalg.svd(a, full_matrices=full_matrices))
svd_p.abstract_eval = _svd_abstract_eval
svd_p.jvp = _svd_jvp
svd_p.batch = _batch_leading(svd_p)


def svd(a, *, full_matrices: bool = False):
    return svd_p.bind(a, full_matrices=bool(full_matrices))


# ---------------------------------------------------------------------------------------------
# qr: [Q, R] with A = Q R (Householder, LAPACK's signs). For m >= n (reduced), with
# C = Q^T dA R^-1 and Omega = tril(C, -1) - tril(C, -1)^T:
#   dQ = Q Omega + (I - Q Q^T) dA R^-1,   dR = (C - Omega) R.
# For m < n, A = [X Y] with X square: (Q, R_X) = qr(X) and R = [R_X, Q^T Y]. Undefined where R
# is singular, and for the extra columns of a complete Q of a tall matrix.

qr_p = Primitive("qr", multiple_results=True)


def _qr_shapes(shape, full_matrices):
    *batch, m, n = shape
    k = m if full_matrices else min(m, n)
    return tuple(batch) + (m, k), tuple(batch) + (k, n)


def _qr_abstract_eval(a, *, full_matrices):
    _check_matrix("qr", a, square=False)
    return [ShapedArray(s, a.dtype) for s in _qr_shapes(a.shape, full_matrices)]


def _qr_impl(a, *, full_matrices):
    return list(np.linalg.qr(a, mode="complete" if full_matrices else "reduced"))


def _qr_square_or_tall_jvp(q, r, a_dot):
    # dA R^-1 = (R^-T dA^T)^T
    da_rinv = mT(triangular_solve(r, mT(a_dot), lower=False, transpose_a=True))
    c = matmul(mT(q), da_rinv)
    low = tril(c, -1)
    omega = ew.sub(low, mT(low))
    dq = ew.add(matmul(q, omega), ew.sub(da_rinv, matmul(q, c)))
    dr = matmul(ew.sub(c, omega), r)
    return dq, dr


def _qr_jvp(primals, tangents, *, full_matrices):
    (a,), (a_dot,) = primals, tangents
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m > n:
        raise NotImplementedError(
            "qr: the derivative of the complete Q of a tall matrix is not defined (its extra "
            "columns are not unique); use mode='reduced'."
        )
    q, r = qr(a, full_matrices=full_matrices)
    if m >= n:
        return [q, r], list(_qr_square_or_tall_jvp(q, r, a_dot))
    r_x = _cols(r, 0, m)
    dq, dr_x = _qr_square_or_tall_jvp(q, r_x, _cols(a_dot, 0, m))
    y, dy = _cols(a, m, n), _cols(a_dot, m, n)
    dr_y = ew.add(matmul(mT(dq), y), matmul(mT(q), dy))
    return [q, r], [dq, concatenate([dr_x, dr_y], dimension=aval_of(a).ndim - 1)]


qr_p.impl = _qr_impl
qr_p.abstract_eval = _qr_abstract_eval
qr_p.jvp = _qr_jvp
qr_p.batch = _batch_leading(qr_p)


def qr(a, *, full_matrices: bool = False):
    return qr_p.bind(a, full_matrices=bool(full_matrices))


__all__ = [
    "cholesky",
    "det_sign",
    "diag_embed",
    "diag_part",
    "eigh",
    "logabsdet",
    "matmul",
    "mT",
    "qr",
    "solve",
    "svd",
    "triangular_solve",
    "tril",
    "triu",
]
