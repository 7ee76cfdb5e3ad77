"""functrans.numpy.linalg: NumPy's linear algebra, differentiable in both modes and batchable.

Composed from the linear-algebra primitives (solve, triangular_solve, logabsdet, det_sign,
cholesky, eigh, svd, qr) and the rest of functrans.numpy; nothing here declares a derivative
rule. Stacks of matrices `(..., m, n)` follow NumPy's semantics, real or complex. Conventions
(norm at 0, degenerate eigen/singular values, what reads which triangle, the phase gauge of
complex eigen/singular vectors) are in docs/conventions.md.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import functrans.numpy as fnp
from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    asarray,
    broadcast_to_shape,
    normalize_axis,
    numpy_scalar_result,
    promote,
)
from functrans.primitives import linalg as la
from functrans.primitives.elementwise import stop_gradient


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


class LstsqResult(NamedTuple):
    x: Any
    residuals: Any
    rank: Any
    s: Any


# ---------------------------------------------------------------------------------------------
# Operand checks


def _inexact(*xs):
    """Operands as arrays of one floating-point dtype (integers become float64, as NumPy)."""
    return promote(*[asarray(x) for x in xs], to_inexact=True)


def _matrices(a, name: str, *, square: bool = True):
    (a,) = _inexact(a)
    shape = aval_of(a).shape
    if len(shape) < 2:
        raise np.linalg.LinAlgError(
            f"{name}: {len(shape)}-dimensional array given. Array must be at least two-dimensional"
        )
    if square and shape[-1] != shape[-2]:
        raise np.linalg.LinAlgError(f"{name}: last 2 dimensions of the array must be square")
    return a


def _eye_like(a):
    shape = aval_of(a).shape
    n = shape[-1]
    return broadcast_to_shape(np.eye(n, dtype=aval_of(a).dtype), shape[:-2] + (n, n))


# ---------------------------------------------------------------------------------------------
# Solves, inverses, determinants


def solve(a, b):
    """Solve a @ x = b (NumPy 2 semantics: b is (M,) or a stack (..., M, K)).

    Args:
      a: (..., M, M) coefficient matrices.
      b: (M,) vector or (..., M, K) right-hand sides; batch axes broadcast with a's.
    Returns:
      x with a @ x == b.
    Raises:
      numpy.linalg.LinAlgError: a is singular or not square.

    Example:
      >>> fnp.linalg.solve(np.eye(2) * 2, np.ones(2))
      array([0.5, 0.5])
    """
    a = _matrices(a, "solve")
    a, b = _inexact(a, b)
    a_shape, b_shape = aval_of(a).shape, aval_of(b).shape
    vector = len(b_shape) == 1
    if vector:
        b = fnp.reshape(b, b_shape + (1,))
        b_shape = aval_of(b).shape
    if b_shape[-2] != a_shape[-1]:
        raise ValueError(
            f"solve: b has {b_shape[-2]} rows but a is {a_shape[-2]}x{a_shape[-1]} "
            f"(shapes {a_shape} and {b_shape})"
        )
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    x = la.solve(
        broadcast_to_shape(a, batch + a_shape[-2:]), broadcast_to_shape(b, batch + b_shape[-2:])
    )
    return fnp.reshape(x, aval_of(x).shape[:-1]) if vector else x


def inv(a):
    """The inverse of each matrix in a stack (..., M, M).

    Example:
      >>> fnp.linalg.inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
      array([[0.5 , 0.  ],
             [0.  , 0.25]])
    """
    a = _matrices(a, "inv")
    return la.solve(a, _eye_like(a))


def slogdet(a) -> SlogdetResult:
    """(sign, log|det a|) of each matrix in a stack.

    log|det a| is real. A real sign is +-1 and has a zero derivative; a complex one is
    det / |det| on the unit circle, with d sign = i Im(tr(a^-1 da)) sign.

    Example:
      >>> fnp.linalg.slogdet(np.array([[0.0, 2.0], [1.0, 0.0]]))
      SlogdetResult(sign=-1.0, logabsdet=0.6931471805599453)
    """
    a = _matrices(a, "slogdet")
    return SlogdetResult(la.det_sign(a), la.logabsdet(a))


def det(a):
    """The determinant of each matrix in a stack (sign * exp(log|det|)).

    d det(A) = det(A) tr(A^-1 dA); at an exactly singular A the derivative raises LinAlgError.

    Example:
      >>> fnp.linalg.det(np.array([[1.0, 2.0], [3.0, 4.0]])).round(12)
      -2.0
    """
    sign, logdet = slogdet(a)
    return fnp.multiply(sign, fnp.exp(logdet))


def matrix_power(a, n: int):
    """a raised to the integer power n (repeated squaring; n < 0 inverts first).

    Example:
      >>> fnp.linalg.matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 3)
      array([[1., 3.],
             [0., 1.]])
    """
    if not isinstance(n, (int, np.integer)):
        raise TypeError("matrix_power: the exponent must be an integer")
    a = asarray(a)
    shape = aval_of(a).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise np.linalg.LinAlgError("matrix_power: last 2 dimensions of the array must be square")
    n = int(n)
    if n == 0:
        return broadcast_to_shape(np.eye(shape[-1], dtype=aval_of(a).dtype), shape)
    if n < 0:
        a, n = inv(a), -n
    result, power = None, a
    while True:
        if n & 1:
            result = power if result is None else la.matmul(result, power)
        n >>= 1
        if not n:
            return result
        power = la.matmul(power, power)


def multi_dot(arrays, *, out=None):
    """The product of a chain of matrices, multiplied in the cheapest order.

    The first array may be 1-D (a row vector) and the last 1-D (a column vector), as NumPy.

    Example:
      >>> fnp.linalg.multi_dot([np.ones(2), np.eye(2), np.ones((2, 3))])
      array([2., 2., 2.])
    """
    if out is not None:
        raise TypeError("multi_dot: out= is not supported (functrans arrays are immutable)")
    arrays = [asarray(x) for x in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays.")
    first_vec, last_vec = aval_of(arrays[0]).ndim == 1, aval_of(arrays[-1]).ndim == 1
    if first_vec:
        arrays[0] = fnp.reshape(arrays[0], (1, -1))
    if last_vec:
        arrays[-1] = fnp.reshape(arrays[-1], (-1, 1))
    for x in arrays:
        if aval_of(x).ndim != 2:
            raise ValueError(f"multi_dot: {aval_of(x).ndim}-dimensional array given; expected 2")
    dims = [aval_of(arrays[0]).shape[0]] + [aval_of(x).shape[1] for x in arrays]
    order = _chain_order(dims)

    def product(i, j):
        if i == j:
            return arrays[i]
        k = order[i][j]
        return fnp.matmul(product(i, k), product(k + 1, j))

    result = product(0, len(arrays) - 1)
    if first_vec and last_vec:
        return fnp.reshape(result, ())
    if first_vec or last_vec:
        return fnp.reshape(result, (-1,))
    return result


def _chain_order(dims: list[int]) -> list[list[int]]:
    """Split points of the cheapest parenthesisation (the textbook O(n^3) dynamic program)."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


# ---------------------------------------------------------------------------------------------
# Factorizations and decompositions


def cholesky(a, /, *, upper: bool = False):
    """The Cholesky factor L (a = L L^H) of each symmetric/Hermitian positive-definite matrix.

    Only the lower triangle of a is read (the upper one with upper=True, which returns L^H),
    and of a complex diagonal only the real part, so derivatives flow to that triangle only;
    symmetrize a yourself for a symmetric (Hermitian) gradient.

    Example:
      >>> fnp.linalg.cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
      array([[2., 0.],
             [1., 1.]])
    """
    a = _matrices(a, "cholesky")
    if upper:
        return la.mH(la.cholesky(la.mH(a)))
    return la.cholesky(a)


def eigh(a, UPLO: str = "L") -> EighResult:  # noqa: N803 - the NumPy name
    """Eigenvalues (real, ascending) and eigenvectors of each symmetric/Hermitian matrix.

    Only the triangle named by UPLO is read (and the real part of a complex diagonal).
    Derivatives are undefined (inf/NaN) where two eigenvalues coincide, as in every
    implementation of this rule. Complex eigenvectors are unique up to a phase each; their
    derivative takes the standard gauge (V^H dV has a zero diagonal), so only functions that
    do not depend on those phases have gauge-independent derivatives.

    Example:
      >>> fnp.linalg.eigh(np.diag([2.0, 1.0])).eigenvalues
      array([1., 2.])
    """
    a = _matrices(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    w, v = la.eigh(a, lower=UPLO == "L")
    return EighResult(w, v)


def eigvalsh(a, UPLO: str = "L"):  # noqa: N803 - the NumPy name
    """Eigenvalues (ascending) of each symmetric matrix in a stack.

    Example:
      >>> fnp.linalg.eigvalsh(np.diag([2.0, 1.0]))
      array([1., 2.])
    """
    return eigh(a, UPLO).eigenvalues


def svd(a, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False):
    """Singular value decomposition a = U diag(S) Vh of each matrix in a stack.

    `hermitian` is accepted for NumPy compatibility and ignored (the general algorithm gives the
    same singular values). Derivatives are undefined where singular values coincide or (for U
    and Vh of a non-square matrix) are zero; the extra columns of full_matrices=True for a
    non-square matrix are not unique and have no derivative (use full_matrices=False). For
    complex a each pair (U[:, j], Vh[j]) is unique up to a common phase; the derivative takes
    the gauge in which V^H dV has a zero diagonal (docs/conventions.md).

    Example:
      >>> fnp.linalg.svd(np.diag([1.0, 3.0]), compute_uv=False)
      array([3., 1.])
    """
    a = _matrices(a, "svd", square=False)
    if not compute_uv:
        return la.svd(a, full_matrices=False)[1]
    m, n = aval_of(a).shape[-2:]
    return SVDResult(*la.svd(a, full_matrices=bool(full_matrices) and m != n))


def qr(a, mode: str = "reduced"):
    """QR decomposition of each matrix in a stack (modes 'reduced', 'complete', 'r').

    Derivatives need R to be nonsingular (full rank); the complete Q of a tall matrix has no
    derivative (its extra columns are not unique).

    Example:
      >>> fnp.linalg.qr(np.array([[3.0], [4.0]]), mode="r")
      array([[-5.]])
    """
    a = _matrices(a, "qr", square=False)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"qr: mode {mode!r} is not supported; use 'reduced', 'complete' or 'r'")
    m, n = aval_of(a).shape[-2:]
    q, r = la.qr(a, full_matrices=mode == "complete" and m > n)
    return r if mode == "r" else QRResult(q, r)


# ---------------------------------------------------------------------------------------------
# Pseudo-inverse, least squares, rank


def _real_dtype(a) -> np.dtype:
    """The dtype of a's singular values (float64 for complex128)."""
    return np.finfo(aval_of(a).dtype).dtype


def _default_rtol(a):
    m, n = aval_of(a).shape[-2:]
    return max(m, n) * np.finfo(aval_of(a).dtype).eps


def _pinv_from_svd(u, s, vh, rcond):
    """V diag(1/s) U^H with singular values at or below rcond * max(s) dropped."""
    cutoff = fnp.multiply(fnp.max(s, axis=-1, keepdims=True), rcond)
    keep = fnp.greater(s, cutoff)
    s_inv = fnp.where(keep, fnp.divide(1.0, fnp.where(keep, s, 1.0)), 0.0)
    return la.matmul(fnp.multiply(la.mH(vh), fnp.expand_dims(s_inv, -2)), la.mH(u))


def pinv(a, rcond=None, hermitian: bool = False, *, rtol=None):
    """The Moore-Penrose pseudo-inverse of each matrix in a stack (via the SVD).

    Singular values at or below rcond * max(s) are treated as zero (default rcond:
    max(M, N) * eps, as NumPy 2). Derivatives are those of the SVD: undefined where singular
    values coincide.

    Example:
      >>> fnp.linalg.pinv(np.array([[2.0, 0.0], [0.0, 0.0]]))
      array([[0.5, 0. ],
             [0. , 0. ]])
    """
    a = _matrices(a, "pinv", square=False)
    if rcond is None:
        rcond = _default_rtol(a) if rtol is None else rtol
    rcond = np.asarray(rcond, _real_dtype(a))[..., None]
    u, s, vh = la.svd(a, full_matrices=False)
    return _pinv_from_svd(u, s, vh, rcond)


def lstsq(a, b, rcond=None) -> LstsqResult:
    """The least-squares solution x of a @ x = b, with residuals, rank and singular values.

    a is (M, N), b is (M,) or (M, K). The residuals (squared 2-norms of b - a x per column) have
    shape (K,) (or (1,) for a vector b) when M > N and a has full rank, else (0,) as NumPy. Under
    jit and vmap the rank is not known while tracing, so a full rank is assumed for that shape.

    Example:
      >>> fnp.linalg.lstsq(np.array([[1.0], [1.0]]), np.array([1.0, 3.0])).x
      array([2.])
    """
    a, b = _inexact(_matrices(a, "lstsq", square=False), b)
    if aval_of(a).ndim != 2 or aval_of(b).ndim not in (1, 2):
        raise np.linalg.LinAlgError("lstsq: a must be 2-D and b 1-D or 2-D")
    m, n = aval_of(a).shape
    if aval_of(b).shape[0] != m:
        raise np.linalg.LinAlgError("lstsq: incompatible dimensions")
    if rcond is None:
        rcond = np.finfo(aval_of(a).dtype).eps * max(m, n)
    u, s, vh = la.svd(a, full_matrices=False)
    x = fnp.matmul(_pinv_from_svd(u, s, vh, np.asarray(rcond, _real_dtype(a))), b)
    rank = _count_above(stop_gradient(s), rcond)
    full_rank = rank == n if not isinstance(rank, Tracer) else True
    if m > n and full_rank:
        r = fnp.subtract(b, fnp.matmul(a, x))
        residuals = fnp.sum(_abs_squared(r), axis=0)
        if aval_of(b).ndim == 1:
            residuals = fnp.reshape(residuals, (1,))
    else:
        residuals = np.zeros((0,), _real_dtype(a))
    rank = fnp.astype(rank, np.int32)  # (NumPy's lstsq gives an int32 rank)
    if type(rank) is np.ndarray and rank.ndim == 0:
        rank = rank[()]
    return LstsqResult(x, residuals, rank, s)


def _count_above(s, rtol):
    """Number of singular values above rtol * max(s), per matrix (an integer, no derivative)."""
    tol = fnp.multiply(fnp.max(s, axis=-1, keepdims=True), rtol)
    return fnp.sum(fnp.astype(fnp.greater(s, tol), np.int64), axis=-1)


def matrix_rank(A, tol=None, hermitian: bool = False, *, rtol=None):  # noqa: N803 - NumPy name
    """The rank of each matrix in a stack: singular values above tol (an integer, not
    differentiable; its derivative is zero).

    Example:
      >>> fnp.linalg.matrix_rank(np.array([[1.0, 2.0], [2.0, 4.0]]))
      1
    """
    A = stop_gradient(asarray(A))  # noqa: N806
    if aval_of(A).ndim < 2:
        return fnp.astype(fnp.any(fnp.not_equal(A, 0)), np.int64)
    A = _matrices(A, "matrix_rank", square=False)  # noqa: N806
    s = la.svd(A, full_matrices=False)[1]
    if tol is None:
        return _count_above(s, _default_rtol(A) if rtol is None else rtol)
    tol = fnp.expand_dims(asarray(tol, aval_of(s).dtype), -1)
    return fnp.sum(fnp.astype(fnp.greater(s, tol), np.int64), axis=-1)


# ---------------------------------------------------------------------------------------------
# Norms. Convention: the gradient of a norm at 0 is 0 (not NaN), by the double-where idiom.


def _sqrt_at_zero_is_zero(x):
    """sqrt(x) for x >= 0, with derivative 0 (not inf) where x == 0."""
    zero = fnp.equal(x, 0)
    return fnp.where(zero, 0.0, fnp.sqrt(fnp.where(zero, 1.0, x)))


def _abs_squared(x):
    if aval_of(x).dtype.kind == "c":
        a = fnp.abs(x)
        return fnp.multiply(a, a)
    return fnp.multiply(x, x)


def _vector_norm(x, ord, axis, keepdims):  # noqa: A002 - the NumPy name
    if ord is None or ord == 2:
        return _sqrt_at_zero_is_zero(fnp.sum(_abs_squared(x), axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return fnp.max(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return fnp.min(fnp.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        nonzero = fnp.astype(fnp.not_equal(stop_gradient(x), 0), aval_of(fnp.abs(x)).dtype)
        return fnp.sum(nonzero, axis=axis, keepdims=keepdims)
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axis, keepdims=keepdims)
    # |x|^p summed, then ^(1/p); both powers are guarded at 0 so the gradient there is 0
    ax = fnp.abs(x)
    at_zero = fnp.equal(ax, 0)
    powered = fnp.where(at_zero, 0.0, fnp.power(fnp.where(at_zero, 1.0, ax), float(ord)))
    total = fnp.sum(powered, axis=axis, keepdims=keepdims)
    zero = fnp.equal(total, 0)
    if ord < 0:  # a zero entry's |0|^p is inf, and the norm 0 (as NumPy's)
        zero = fnp.logical_or(zero, fnp.any(at_zero, axis=axis, keepdims=keepdims))
    return fnp.where(zero, 0.0, fnp.power(fnp.where(zero, 1.0, total), 1.0 / float(ord)))


def _singular_values_at_zero_safe(x, row, col):
    """Singular values of the matrices on axes (row, col), moved last, with a zero derivative
    at the zero matrix (where the SVD's derivative is undefined): a zero matrix is replaced by
    a fixed matrix of distinct singular values, and its result by zeros."""
    x = fnp.moveaxis(x, (row, col), (-2, -1))
    m, n = aval_of(x).shape[-2:]
    zero = fnp.all(fnp.equal(stop_gradient(x), 0), axis=(-2, -1), keepdims=True)
    safe = np.zeros((m, n), aval_of(x).dtype)
    k = min(m, n)
    safe[range(k), range(k)] = np.arange(k, 0, -1)
    s = la.svd(fnp.where(zero, safe, x), full_matrices=False)[1]
    return fnp.where(fnp.reshape(zero, aval_of(zero).shape[:-1]), 0.0, s)


def _matrix_norm(x, ord, row, col, keepdims):  # noqa: A002 - the NumPy name
    if ord in (2, -2, "nuc"):
        s = _singular_values_at_zero_safe(x, row, col)
        out = {2: fnp.max, -2: fnp.min, "nuc": fnp.sum}[ord](s, axis=-1)
    elif ord in (None, "fro", "f"):
        out = _sqrt_at_zero_is_zero(fnp.sum(_abs_squared(x), axis=(row, col)))
    elif ord in (1, -1):
        reduce = fnp.max if ord == 1 else fnp.min
        out = reduce(fnp.sum(fnp.abs(x), axis=row), axis=col - (col > row))
    elif ord in (np.inf, -np.inf):
        reduce = fnp.max if ord == np.inf else fnp.min
        out = reduce(fnp.sum(fnp.abs(x), axis=col), axis=row - (row > col))
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        shape = list(aval_of(x).shape)
        shape[row] = shape[col] = 1
        out = fnp.reshape(out, tuple(shape))
    return out


@numpy_scalar_result
def norm(x, ord=None, axis=None, keepdims: bool = False):  # noqa: A002 - the NumPy name
    """Vector or matrix norm, as numpy.linalg.norm.

    Vector ords: None/2, inf, -inf, 0 (count of nonzeros, no derivative), 1, any other p.
    Matrix ords (2-D x or a 2-tuple axis): None/'fro', 'nuc', inf, -inf, 1, -1, 2, -2.
    The gradient at x = 0 is 0, not NaN (docs/conventions.md).

    Example:
      >>> ft.grad(fnp.linalg.norm)(np.zeros(3))
      array([0., 0., 0.])
    """
    (x,) = _inexact(x)
    nd = aval_of(x).ndim
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            out = _sqrt_at_zero_is_zero(fnp.sum(_abs_squared(x)))
            return fnp.reshape(out, (1,) * nd) if keepdims else out
        axis = tuple(range(nd))
    elif isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    else:
        axis = tuple(int(a) for a in axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, normalize_axis(axis[0], nd), keepdims)
    if len(axis) == 2:
        row, col = normalize_axis(axis[0], nd), normalize_axis(axis[1], nd)
        if row == col:
            raise ValueError("Duplicate axes given.")
        return _matrix_norm(x, ord, row, col, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


__all__ = [
    "cholesky",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "lstsq",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "LinAlgError",
]

LinAlgError = np.linalg.LinAlgError
