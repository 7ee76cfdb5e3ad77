"""functrans.scipy.linalg: solve_triangular and expm, differentiable and batchable.

solve_triangular binds the triangular_solve primitive (linear in b, so reverse mode is a solve
with the transposed matrix); expm is scaling and squaring around a Pade approximant, composed
from matmul and solve, so its derivatives come from theirs. Both accept stacks (..., n, n).
"""

from __future__ import annotations

import numpy as np

import functrans.numpy as fnp
from functrans.core import Tracer, aval_of
from functrans.numpy._base import asarray, broadcast_to_shape, promote
from functrans.primitives import linalg as la
from functrans.primitives.elementwise import stop_gradient


def solve_triangular(
    a,
    b,
    trans=0,
    lower: bool = False,
    unit_diagonal: bool = False,
    overwrite_b: bool = False,
    check_finite: bool = True,
):
    """Solve op(a) x = b for triangular a, as scipy.linalg.solve_triangular.

    Only the triangle named by `lower` is read (and not the diagonal, with unit_diagonal).

    Args:
      a: (..., M, M) triangular matrices.
      b: (..., M) or (..., M, K) right-hand sides (batch axes broadcast with a's; a 1-D b is a
        single vector).
      trans: 0 or 'N' (a x = b), 1 or 'T' (a^T x = b), 2 or 'C' (a^H x = b).
      lower: use the lower triangle of a (default: the upper one).
      unit_diagonal: take a's diagonal as ones.
      overwrite_b, check_finite: accepted for SciPy compatibility; inputs are never modified.
    Returns:
      x, shaped like b (after broadcasting).
    Raises:
      ValueError: unknown `trans` or mismatched shapes.

    Example:
      >>> ft.scipy.linalg.solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.ones(2),
      ...                                  lower=True)
      array([0.5, 0.5])
    """
    transpose_a = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}.get(trans)
    if transpose_a is None:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    a, b = promote(asarray(a), asarray(b), to_inexact=True)
    if trans in (2, "C"):  # a^H x = b is the transposed solve with conj(a)
        a = fnp.conj(a)
    a_shape, b_shape = aval_of(a).shape, aval_of(b).shape
    if len(a_shape) < 2 or a_shape[-1] != a_shape[-2]:
        raise ValueError(f"solve_triangular: expected square matrices, got shape {a_shape}")
    n = a_shape[-1]
    vector = len(b_shape) == 1 or (len(b_shape) == len(a_shape) - 1 and b_shape[-1] == n)
    if vector:
        b = fnp.expand_dims(b, -1)
        b_shape = aval_of(b).shape
    if b_shape[-2] != n:
        raise ValueError(f"solve_triangular: shapes {a_shape} and {b_shape} are incompatible")
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    x = la.triangular_solve(
        broadcast_to_shape(a, batch + a_shape[-2:]),
        broadcast_to_shape(b, batch + b_shape[-2:]),
        lower=lower,
        transpose_a=transpose_a,
        unit_diagonal=unit_diagonal,
    )
    return fnp.reshape(x, aval_of(x).shape[:-1]) if vector else x


# Pade(13) coefficients and the 1-norm bound below which it is accurate to double precision
# (Higham, "The scaling and squaring method for the matrix exponential revisited", 2005).
_PADE13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)
_THETA13 = 5.371920351148152
# Under jit and vmap the norm is not known while tracing: up to this many squarings are staged,
# each applied only where needed (enough for 1-norms up to ~5.6e6).
_MAX_SQUARINGS = 20


def _pade13(a):
    b = _PADE13
    eye = broadcast_to_shape(np.eye(aval_of(a).shape[-1], dtype=aval_of(a).dtype), aval_of(a).shape)
    a2 = la.matmul(a, a)
    a4 = la.matmul(a2, a2)
    a6 = la.matmul(a4, a2)

    def comb(c6, c4, c2, c0=None):
        out = fnp.add(fnp.add(fnp.multiply(a6, c6), fnp.multiply(a4, c4)), fnp.multiply(a2, c2))
        return out if c0 is None else fnp.add(out, fnp.multiply(eye, c0))

    u = la.matmul(a, fnp.add(la.matmul(a6, comb(b[13], b[11], b[9])), comb(b[7], b[5], b[3], b[1])))
    v = fnp.add(la.matmul(a6, comb(b[12], b[10], b[8])), comb(b[6], b[4], b[2], b[0]))
    return la.solve(fnp.subtract(v, u), fnp.add(v, u))


def expm(a):
    """The matrix exponential of each square matrix in a stack, as scipy.linalg.expm.

    Scaling and squaring with a degree-13 Pade approximant; differentiable to any order through
    the composition (matmul and solve).

    Example:
      >>> ft.scipy.linalg.expm(np.zeros((2, 2)))
      array([[1., 0.],
             [0., 1.]])
    """
    (a,) = promote(asarray(a), to_inexact=True)
    shape = aval_of(a).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"expm: expected a square matrix or a stack of them, got shape {shape}")
    # the number of squarings comes from the 1-norm; it carries no derivative
    norm1 = fnp.max(fnp.sum(fnp.abs(stop_gradient(a)), axis=-2), axis=-1)
    if not isinstance(norm1, Tracer):
        squarings = int(
            np.max(np.maximum(0, np.ceil(np.log2(np.maximum(norm1, 1e-300) / _THETA13))))
        )
        r = _pade13(fnp.multiply(a, 0.5**squarings))
        for _ in range(squarings):
            r = la.matmul(r, r)
        return r
    # traced norm (jit, vmap): per-matrix squarings, staged up to _MAX_SQUARINGS times
    ratio = fnp.divide(fnp.maximum(norm1, 1e-300), _THETA13)
    squarings = fnp.maximum(0.0, fnp.ceil(fnp.log2(ratio)))
    squarings = fnp.expand_dims(fnp.expand_dims(squarings, -1), -1)
    r = _pade13(fnp.multiply(a, fnp.power(0.5, squarings)))
    for i in range(_MAX_SQUARINGS):
        r = fnp.where(fnp.greater(squarings, i), la.matmul(r, r), r)
    return r


__all__ = ["expm", "solve_triangular"]
