"""Products in functrans.numpy: dot, matmul (@), tensordot, inner, outer, vdot — all one
primitive, dot_general, plus reshapes and transposes."""

from __future__ import annotations

import numpy as np

from functrans.core import aval_of
from functrans.numpy._base import broadcast_to_shape, normalize_axis, promote
from functrans.numpy._shapes import ravel, reshape
from functrans.primitives import dot_general


def _operands(a, b):
    return promote(a, b)


def tensordot(a, b, axes=2):
    a, b = _operands(a, b)
    na, nb = aval_of(a).ndim, aval_of(b).ndim
    if isinstance(axes, (int, np.integer)):
        axes = (tuple(range(na - axes, na)), tuple(range(axes)))
    ax_a, ax_b = axes
    ax_a = (ax_a,) if isinstance(ax_a, (int, np.integer)) else tuple(ax_a)
    ax_b = (ax_b,) if isinstance(ax_b, (int, np.integer)) else tuple(ax_b)
    ax_a = tuple(normalize_axis(i, na) for i in ax_a)
    ax_b = tuple(normalize_axis(i, nb) for i in ax_b)
    _check_contract(a, b, ax_a, ax_b, "tensordot")
    return dot_general(a, b, dimension_numbers=((ax_a, ax_b), ((), ())))


def _check_contract(a, b, ax_a, ax_b, name):
    sa, sb = aval_of(a).shape, aval_of(b).shape
    if len(ax_a) != len(ax_b) or any(sa[i] != sb[j] for i, j in zip(ax_a, ax_b)):
        raise ValueError(
            f"{name}: shapes {sa} and {sb} are not aligned along axes {ax_a} and {ax_b}"
        )


def dot(a, b):
    a, b = _operands(a, b)
    na, nb = aval_of(a).ndim, aval_of(b).ndim
    if na == 0 or nb == 0:
        from functrans.numpy._elementwise import multiply

        return multiply(a, b)
    contract_b = 0 if nb == 1 else nb - 2
    _check_contract(a, b, (na - 1,), (contract_b,), "dot")
    return dot_general(a, b, dimension_numbers=(((na - 1,), (contract_b,)), ((), ())))


def matmul(a, b):
    a, b = _operands(a, b)
    sa, sb = aval_of(a).shape, aval_of(b).shape
    if not sa or not sb:
        raise ValueError("matmul: operands must not be scalars (use * for scalar products)")
    a_vec, b_vec = len(sa) == 1, len(sb) == 1
    if a_vec:
        a = reshape(a, (1,) + sa)
    if b_vec:
        b = reshape(b, sb + (1,))
    sa, sb = aval_of(a).shape, aval_of(b).shape
    if sa[-1] != sb[-2]:
        raise ValueError(
            f"matmul: input operand 1 has a mismatch in its core dimension 0 (size {sb[-2]} is "
            f"different from {sa[-1]}), with shapes {aval_of(a).shape} and {aval_of(b).shape}"
        )
    if len(sb) == 2:
        # (..., n, k) @ (k, m): a plain contraction, no batch axes needed
        out = dot_general(a, b, dimension_numbers=(((len(sa) - 1,), (0,)), ((), ())))
    else:
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
        a = broadcast_to_shape(a, batch + sa[-2:])
        b = broadcast_to_shape(b, batch + sb[-2:])
        nbat = len(batch)
        bdims = tuple(range(nbat))
        out = dot_general(a, b, dimension_numbers=(((nbat + 1,), (nbat,)), (bdims, bdims)))
    shape = aval_of(out).shape
    if a_vec:
        out = reshape(out, shape[:-2] + shape[-1:])
        shape = aval_of(out).shape
    if b_vec:
        out = reshape(out, shape[:-1])
    return out


def inner(a, b):
    a, b = _operands(a, b)
    na, nb = aval_of(a).ndim, aval_of(b).ndim
    if na == 0 or nb == 0:
        return dot(a, b)
    return tensordot(a, b, axes=((na - 1,), (nb - 1,)))


def outer(a, b):
    a, b = _operands(ravel(a), ravel(b))
    return dot_general(
        reshape(a, (-1, 1)), reshape(b, (1, -1)), dimension_numbers=(((1,), (0,)), ((), ()))
    )


def vdot(a, b):
    return dot(ravel(a), ravel(b))


__all__ = [
    "dot",
    "inner",
    "matmul",
    "outer",
    "tensordot",
    "vdot",
]
