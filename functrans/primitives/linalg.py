"""Linear-algebra primitives: factorizations, solves and eigendecompositions, with their rules.

Every primitive works on stacks of matrices `(..., m, n)` natively (NumPy's convention), so a
batch rule only moves the batch axis to the front. JVPs are the standard forward-mode rules,
written with primitives so they differentiate again; reverse mode comes from linearize +
transpose, and only the solves (linear in their right-hand side) have transpose rules.
Complex matrices are supported throughout: the rules use conjugate transposes (mH) where the real
ones use transposes, and eigenvalues, singular values and log|det| are real. cholesky and eigh
read only the lower triangle of their operand (and the real part of its diagonal), as LAPACK
does, so their tangent is the Hermitian matrix made from the tangent's lower triangle.
Eigen/singular vectors of complex matrices are unique only up to a phase per vector; their JVPs
fix it by the standard gauge (the diagonal of V^H dV has no imaginary part), as JAX.
"""

from __future__ import annotations

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, aval_of, is_undefined
from functrans.errors import NotSupportedError, nonlinear_error
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


def _is_complex(x) -> bool:
    return aval_of(x).dtype.kind == "c"


def mH(x):
    """The conjugate transpose of every matrix in a stack (mT for real dtypes)."""
    return ew.conj(mT(x)) if _is_complex(x) else mT(x)


def _as_dtype_of(x, like):
    """x converted to like's dtype (a real matrix scaling a complex one, say)."""
    return ew.convert_element_type(x, new_dtype=aval_of(like).dtype)


def _imag_part_i(x):
    """i Im(x) = (x - conj(x)) / 2, kept in x's complex dtype."""
    return ew.mul(ew.sub(x, ew.conj(x)), full_like(x, 0.5))


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


def _hermitian_from_lower(t):
    """The Hermitian matrix made from t's lower triangle and the real part of its diagonal
    (what cholesky and eigh read): H = L + L^H with L = tril(t, -1) + diag(t) / 2."""
    n = aval_of(t).shape[-1]
    half = ew.mul(t, _constant(t, np.tri(n, n, -1) + 0.5 * np.eye(n)))
    return ew.add(half, mH(half))


def _trace(x):
    return reduce_sum(diag_part(x), axes=(aval_of(x).ndim - 2,))


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


def _check_matrix(name: str, x: ShapedArray, *, square: bool = True) -> None:
    ok_shape = x.ndim >= 2 and (not square or x.shape[-1] == x.shape[-2])
    if not ok_shape or x.dtype.kind not in "fc":
        what = "square matrices" if square else "matrices"
        raise TypeError(
            f"primitive '{name}' needs a stack of {what} (..., m, n) of a floating-point (real or "
            f"complex) dtype, got {x.str_short()}; functrans.numpy.linalg converts and checks "
            "before calling it."
        )


def _real_aval(shape, x: ShapedArray) -> ShapedArray:
    """An aval of the real dtype matching x's (float64 for complex128): eigenvalues, ..."""
    return ShapedArray(shape, np.finfo(x.dtype).dtype)


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
    _check_matrix("triangular_solve", a)
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
    _check_matrix("solve", a)
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
# logabsdet: log|det A| (real also for complex A), with d log|det A| = Re tr(A^-1 dA).
# det_sign: det A / |det A|. Real A: +-1, piecewise constant. Complex A: on the unit circle, with
# d sign = i Im tr(A^-1 dA) sign. Together they are slogdet; det = sign * exp(logabsdet).

logabsdet_p = Primitive("logabsdet")


def _logabsdet_abstract_eval(a):
    _check_matrix("logabsdet", a)
    return _real_aval(a.shape[:-2], a)


def _logabsdet_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    t = _trace(solve(a, a_dot))
    return logabsdet(a), ew.real(t) if _is_complex(t) else t


logabsdet_p.impl = lambda a: np.linalg.slogdet(a)[1]
logabsdet_p.abstract_eval = _logabsdet_abstract_eval
logabsdet_p.jvp = _logabsdet_jvp
logabsdet_p.batch = _batch_leading(logabsdet_p)


def logabsdet(a):
    return logabsdet_p.bind(a)


det_sign_p = Primitive("det_sign")


def _det_sign_abstract_eval(a):
    _check_matrix("det_sign", a)
    return ShapedArray(a.shape[:-2], a.dtype)


def _det_sign_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    out = det_sign(a)
    if not _is_complex(a):
        return out, Zero(aval_of(out))
    return out, ew.mul(_imag_part_i(_trace(solve(a, a_dot))), out)


det_sign_p.impl = lambda a: np.linalg.slogdet(a)[0]
det_sign_p.abstract_eval = _det_sign_abstract_eval
det_sign_p.jvp = _det_sign_jvp
det_sign_p.batch = _batch_leading(det_sign_p)


def det_sign(a):
    return det_sign_p.bind(a)


# ---------------------------------------------------------------------------------------------
# cholesky: A = L L^H, L lower triangular with a positive diagonal (only A's lower triangle is
# read). dL = L Phi(L^-1 dA L^-H), Phi = the strictly lower triangle plus half the diagonal.

cholesky_p = Primitive("cholesky")


def _cholesky_abstract_eval(a):
    _check_matrix("cholesky", a)
    return a


def _cholesky_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    low = cholesky(a)
    s = _hermitian_from_lower(a_dot)
    y = triangular_solve(low, s, lower=True)  # L^-1 S
    x = triangular_solve(low, mH(y), lower=True)  # L^-1 S L^-H (S is Hermitian)
    n = aval_of(a).shape[-1]
    phi = ew.mul(x, _constant(x, np.tri(n, n, -1) + 0.5 * np.eye(n)))
    if _is_complex(x):  # X is Hermitian: drop the rounding in Im(diag X), so L's stays real
        phi = ew.sub(phi, ew.mul(_imag_part_i(x), _constant(x, 0.5 * np.eye(n))))
    return low, matmul(low, phi)


cholesky_p.impl = lambda a: np.linalg.cholesky(a)
cholesky_p.abstract_eval = _cholesky_abstract_eval
cholesky_p.jvp = _cholesky_jvp
cholesky_p.batch = _batch_leading(cholesky_p)


def cholesky(a):
    return cholesky_p.bind(a)


# ---------------------------------------------------------------------------------------------
# eigh: [w, V] with A = V diag(w) V^H, w real and ascending (only A's lower triangle is read, or
# its upper one with lower=False; LAPACK's eigenvector signs/phases depend on which).
# With P = V^H dA V: dw = Re diag(P), dV = V (F * P), F[i, j] = 1 / (w[j] - w[i]) off the
# diagonal. F's zero diagonal is the gauge: V^H dV has a zero diagonal (for complex V the phase
# of each column is free; this is the standard choice). Undefined for repeated eigenvalues.

eigh_p = Primitive("eigh", multiple_results=True)


def _eigh_abstract_eval(a, *, lower):
    _check_matrix("eigh", a)
    return [_real_aval(a.shape[:-1], a), a]


def _eigh_jvp(primals, tangents, *, lower):
    (a,), (a_dot,) = primals, tangents
    w, v = eigh(a, lower=lower)
    # the Hermitian matrix read from the upper triangle is the one read from mH's lower one
    p = matmul(mH(v), matmul(_hermitian_from_lower(a_dot if lower else mH(a_dot)), v))
    f = _as_dtype_of(_off_diagonal_inverse(_pairwise_diff(w)), p)
    dw = ew.real(diag_part(p)) if _is_complex(p) else diag_part(p)
    return [w, v], [dw, matmul(v, ew.mul(f, p))]


eigh_p.impl = lambda a, *, lower: list(np.linalg.eigh(a, UPLO="L" if lower else "U"))
eigh_p.abstract_eval = _eigh_abstract_eval
eigh_p.jvp = _eigh_jvp
eigh_p.batch = _batch_leading(eigh_p)


def eigh(a, *, lower: bool = True):
    return eigh_p.bind(a, lower=bool(lower))


# ---------------------------------------------------------------------------------------------
# svd: [U, s, Vh] with A = U diag(s) Vh, s real and descending. With k = min(m, n), V = Vh^H,
# dP = U^H dA V, S = diag(s), F[i, j] = 1 / (s[j]^2 - s[i]^2) off the diagonal:
#   ds = Re diag(dP)
#   dU = U (F * (dP S + S dP^H) + i Im diag(dP) S^-1) + (I - U U^H) dA V S^-1
#   dV = V (F * (S dP + dP^H S)) + (I - V V^H) dA^H U S^-1
# The pair (u_j, v_j) is unique up to a common phase for complex A; the gauge is that V^H dV has
# a zero diagonal and U^H dU an imaginary one (i Im dP_jj / s_j, taken as 0 where s_j = 0; it
# vanishes for real A). Undefined for repeated or zero singular values (of a non-square A), and
# for the extra columns of full_matrices.

svd_p = Primitive("svd", multiple_results=True)


def _svd_shapes(shape, full_matrices):
    *batch, m, n = shape
    k = min(m, n)
    u_cols, v_rows = (m, n) if full_matrices else (k, k)
    return tuple(batch) + (m, u_cols), tuple(batch) + (k,), tuple(batch) + (v_rows, n)


def _svd_abstract_eval(a, *, full_matrices):
    _check_matrix("svd", a, square=False)
    u_shape, s_shape, vh_shape = _svd_shapes(a.shape, full_matrices)
    return [ShapedArray(u_shape, a.dtype), _real_aval(s_shape, a), ShapedArray(vh_shape, a.dtype)]


def _svd_jvp(primals, tangents, *, full_matrices):
    (a,), (a_dot,) = primals, tangents
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m != n:
        raise NotSupportedError(
            "svd: the derivative of the full (square) U or Vh of a non-square matrix is not "
            "defined (the extra columns are not unique); use full_matrices=False."
        )
    u, s, vh = svd(a, full_matrices=full_matrices)
    v = mH(vh)
    dp = matmul(mH(u), matmul(a_dot, v))
    ds = ew.real(diag_part(dp)) if _is_complex(dp) else diag_part(dp)
    s_mat = diag_embed(_as_dtype_of(s, dp))
    f = _as_dtype_of(_off_diagonal_inverse(_pairwise_diff(ew.mul(s, s))), dp)
    du_inner = ew.mul(f, ew.add(matmul(dp, s_mat), matmul(s_mat, mH(dp))))
    if _is_complex(dp):  # the phase of (u_j, v_j), all given to u_j: i Im(dP_jj) / s_j
        zero = ew.eq(s, full_like(s, 0))
        inv_s_or_0 = ew.select_n(
            zero, ew.div(full_like(s, 1), ew.select_n(zero, s, full_like(s, 1))), full_like(s, 0)
        )
        phase = ew.mul(_imag_part_i(diag_part(dp)), _as_dtype_of(inv_s_or_0, dp))
        du_inner = ew.add(du_inner, diag_embed(phase))
    du = matmul(u, du_inner)
    dv = matmul(v, ew.mul(f, ew.add(matmul(s_mat, dp), matmul(mH(dp), s_mat))))
    inv_s = diag_embed(_as_dtype_of(ew.div(full_like(s, 1), s), dp))
    if m > n:  # U has a component outside span(U): (I - U U^H) dA V S^-1
        r = matmul(a_dot, matmul(v, inv_s))
        du = ew.add(du, ew.sub(r, matmul(u, matmul(mH(u), r))))
    if n > m:
        r = matmul(mH(a_dot), matmul(u, inv_s))
        dv = ew.add(dv, ew.sub(r, matmul(v, matmul(mH(v), r))))
    return [u, s, vh], [du, ds, mH(dv)]


svd_p.impl = lambda a, *, full_matrices: list(np.linalg.svd(a, full_matrices=full_matrices))
svd_p.abstract_eval = _svd_abstract_eval
svd_p.jvp = _svd_jvp
svd_p.batch = _batch_leading(svd_p)


def svd(a, *, full_matrices: bool = False):
    return svd_p.bind(a, full_matrices=bool(full_matrices))


# ---------------------------------------------------------------------------------------------
# qr: [Q, R] with A = Q R (Householder, LAPACK's signs; R's diagonal is real also for complex
# A). For m >= n (reduced), with C = Q^H dA R^-1 and the anti-Hermitian
# Omega = tril(C, -1) - tril(C, -1)^H + i Im diag(C) (which keeps dR's diagonal real):
#   dQ = Q Omega + (I - Q Q^H) dA R^-1,   dR = (C - Omega) R.
# For m < n, A = [X Y] with X square: (Q, R_X) = qr(X) and R = [R_X, Q^H Y]. Undefined where R
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
    c = matmul(mH(q), da_rinv)
    low = tril(c, -1)
    omega = ew.sub(low, mH(low))
    if _is_complex(c):
        n = aval_of(c).shape[-1]
        omega = ew.add(omega, ew.mul(_imag_part_i(c), _constant(c, np.eye(n))))
    dq = ew.add(matmul(q, omega), ew.sub(da_rinv, matmul(q, c)))
    dr = matmul(ew.sub(c, omega), r)
    return dq, dr


def _qr_jvp(primals, tangents, *, full_matrices):
    (a,), (a_dot,) = primals, tangents
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m > n:
        raise NotSupportedError(
            "qr: the derivative of the complete Q of a tall matrix is not defined (its extra "
            "columns are not unique); use mode='reduced'."
        )
    q, r = qr(a, full_matrices=full_matrices)
    if m >= n:
        return [q, r], list(_qr_square_or_tall_jvp(q, r, a_dot))
    r_x = _cols(r, 0, m)
    dq, dr_x = _qr_square_or_tall_jvp(q, r_x, _cols(a_dot, 0, m))
    y, dy = _cols(a, m, n), _cols(a_dot, m, n)
    dr_y = ew.add(matmul(mH(dq), y), matmul(mH(q), dy))
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
    "mH",
    "mT",
    "qr",
    "solve",
    "svd",
    "triangular_solve",
    "tril",
    "triu",
]
