"""Products in functrans.numpy: dot, vdot, inner, outer, matmul (@), tensordot, einsum, kron and
cross, composed from one contraction primitive (dot_general) plus structural primitives.

einsum lowers any subscripts to primitives: size-1 axes that broadcast are dropped, a label
repeated within an operand becomes a strided slice of a flattened view (the diagonal), labels
needed nowhere else are summed, operands are contracted pairwise with dot_general in a greedy
order (smallest intermediate first), and the result is transposed to the requested order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from functrans import core
from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    asarray,
    broadcast_all,
    broadcast_to_shape,
    normalize_axis,
    numpy_scalar_result,
    promote,
)
from functrans.numpy._elementwise import multiply, negative, subtract
from functrans.numpy._shapes import moveaxis, ravel, reshape, stack
from functrans.primitives import dot_general, reduce_sum, slice_, transpose
from functrans.primitives import elementwise as ew
from functrans.primitives.dot import canonical_dims, dot_general_p

_current_trace_get = core._current_trace.get

_NO_DIMS = (((), ()), ((), ()))
_DOT_DIMS: dict = {}  # (rank of a, contracted axis of b) -> dot's canonical dimension numbers


def _operands(a, b):
    # the common case: two traced floating-point arrays of one dtype, nothing to promote
    if isinstance(a, Tracer) and isinstance(b, Tracer):
        da, db = a.aval.dtype, b.aval.dtype
        if da == db and da.kind in "fc":
            return a, b
    return promote(a, b)


# ---------------------------------------------------------------------------------------------
# dot, tensordot, matmul, inner, outer, vdot


def tensordot(a, b, axes=2):
    """Sum products over the given axes of a and b, as numpy.tensordot.

    Args:
        a, b: arrays.
        axes: an int N (the last N axes of a with the first N of b) or a pair of axis lists.

    Returns:
        The free axes of a followed by the free axes of b.

    Example:
        >>> fnp.tensordot(np.ones((2, 3, 4)), np.ones((3, 4, 5)), axes=2).shape
        (2, 5)
    """
    a, b = _operands(a, b)
    na, nb = aval_of(a).ndim, aval_of(b).ndim
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(na, nb):
            raise ValueError(f"tensordot: axes={axes} does not fit operands of rank {na}, {nb}")
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
    """numpy.dot: the last axis of a with the second-to-last of b (the only one if b is 1-D)."""
    if isinstance(a, Tracer) and isinstance(b, Tracer):  # (the hot path: nothing to promote)
        aa, ab = a.aval, b.aval
        if aa.dtype != ab.dtype or aa.dtype.kind not in "fc":
            a, b = promote(a, b)
            aa, ab = aval_of(a), aval_of(b)
    else:
        a, b = promote(a, b)
        aa, ab = aval_of(a), aval_of(b)
    sa, sb = aa.shape, ab.shape
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        return multiply(a, b)
    contract_b = 0 if nb == 1 else nb - 2
    if sa[-1] != sb[contract_b]:
        _check_contract(a, b, (na - 1,), (contract_b,), "dot")  # (raises)
    dims = _DOT_DIMS.get((na, contract_b))
    if dims is None:
        dims = _DOT_DIMS[na, contract_b] = canonical_dims((((na - 1,), (contract_b,)), ((), ())))
    # (dot_general's bind, its dimension numbers canonical already)
    out = _current_trace_get().process_primitive(dot_general_p, (a, b), {"dimension_numbers": dims})
    return out[()] if type(out) is np.ndarray and out.ndim == 0 else out  # (NumPy's scalar)


@numpy_scalar_result
def matmul(a, b):
    """numpy.matmul (the @ operator): matrix products broadcast over leading batch axes; a 1-D
    operand is a row (a) or column (b) vector whose unit axis is removed from the result."""
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


@numpy_scalar_result
def inner(a, b):
    """numpy.inner: sum over the last axes of a and b (a product if either is 0-d)."""
    a, b = _operands(a, b)
    na, nb = aval_of(a).ndim, aval_of(b).ndim
    if na == 0 or nb == 0:
        return dot(a, b)
    return tensordot(a, b, axes=((na - 1,), (nb - 1,)))


def outer(a, b):
    """numpy.outer: the outer product of the flattened inputs."""
    a, b = _operands(ravel(a), ravel(b))
    return dot_general(a, b, dimension_numbers=_NO_DIMS)


@numpy_scalar_result
def vdot(a, b):
    """numpy.vdot: sum(conj(a) * b) over the flattened inputs (a is conjugated if complex)."""
    a, b = _operands(ravel(a), ravel(b))
    if aval_of(a).dtype.kind == "c":
        a = ew.conj(a)
    _check_contract(a, b, (0,), (0,), "vdot")
    return dot_general(a, b, dimension_numbers=(((0,), (0,)), ((), ())))


# ---------------------------------------------------------------------------------------------
# kron and cross


def kron(a, b):
    """numpy.kron: the Kronecker product (block a[i, j] * b), ranks aligned by leading ones."""
    a, b = promote(asarray(a), asarray(b))
    sa, sb = aval_of(a).shape, aval_of(b).shape
    nd = max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    outer_ab = dot_general(reshape(a, sa), reshape(b, sb), dimension_numbers=_NO_DIMS)
    interleaved = tuple(i + k * nd for i in range(nd) for k in (0, 1))
    return reshape(
        transpose(outer_ab, permutation=interleaved), tuple(m * n for m, n in zip(sa, sb))
    )


def _component(x, i: int):
    """x[..., i]."""
    shape = aval_of(x).shape
    part = slice_(
        x, start_indices=(0,) * (len(shape) - 1) + (i,), limit_indices=shape[:-1] + (i + 1,)
    )
    return reshape(part, shape[:-1])


def _times(x, y):
    return None if x is None or y is None else multiply(x, y)


def _minus(p, q):
    if q is None:
        return p
    return negative(q) if p is None else subtract(p, q)


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """numpy.cross of 3-vectors (or 2-vectors, taken with a zero z) along the given axes.

    Two 2-vector operands give the z component only (a scalar per pair), as NumPy does.
    """
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promote(asarray(a), asarray(b))
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    na, nb = aval_of(a).shape[-1], aval_of(b).shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(
            "incompatible dimensions for cross product (dimension must be 2 or 3), got "
            f"vectors of length {na} and {nb}"
        )
    a0, a1, a2 = [_component(a, i) if i < na else None for i in range(3)]
    b0, b1, b2 = [_component(b, i) if i < nb else None for i in range(3)]
    z = _minus(_times(a0, b1), _times(a1, b0))
    if na == nb == 2:
        return z
    x = _minus(_times(a1, b2), _times(a2, b1))
    y = _minus(_times(a2, b0), _times(a0, b2))
    c = stack(broadcast_all(x, y, z), axis=-1)
    return moveaxis(c, -1, axisc)


# ---------------------------------------------------------------------------------------------
# einsum

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _sublist_to_subscripts(sublist) -> str:
    """The interleaved form's label list (ints in [0, 52) and Ellipsis) as a subscript string."""
    out = []
    for s in sublist:
        if s is Ellipsis:
            out.append("...")
        elif isinstance(s, (int, np.integer)) and 0 <= s < len(_LETTERS):
            out.append(_LETTERS[s])
        else:
            raise ValueError(f"einsum: subscript {s!r} is not an integer in [0, 52) or Ellipsis")
    return "".join(out)


def _interleaved(args) -> tuple[str, list]:
    args = list(args)
    out_sub = args.pop() if len(args) % 2 == 1 else None
    operands, terms = args[0::2], [_sublist_to_subscripts(s) for s in args[1::2]]
    subscripts = ",".join(terms) + (
        "" if out_sub is None else "->" + _sublist_to_subscripts(out_sub)
    )
    return subscripts, operands


def _parse_term(term: str, ndim: int, what: str) -> tuple[list[str], int]:
    """Labels of a term and the number of axes its ellipsis stands for (-1: no ellipsis)."""
    if term.count("...") > 1 or term.replace("...", "").count(".") > 0:
        raise ValueError(f"einsum: {what} '{term}' has a malformed ellipsis")
    head, dots, tail = term.partition("...")
    for c in head + tail:
        if c not in _LETTERS:
            raise ValueError(f"einsum: invalid subscript '{c}' in {what} '{term}'")
    n_ellipsis = ndim - len(head) - len(tail) if dots else -1
    if (not dots and len(head) != ndim) or (dots and n_ellipsis < 0):
        raise ValueError(
            f"einsum: {what} '{term}' has {len(head) + len(tail)} subscripts but the operand "
            f"has {ndim} dimensions"
        )
    return list(head) + [None] * max(n_ellipsis, 0) + list(tail), n_ellipsis


def _parse(subscripts: str, shapes) -> tuple[list[list], list]:
    """Per-operand label lists and the output labels. Letters are str labels; ellipsis axes get
    int labels 0..L-1, aligned from the right as in broadcasting."""
    subscripts = subscripts.replace(" ", "")
    if subscripts.count("->") > 1:
        raise ValueError("einsum: subscripts contain more than one '->'")
    lhs, arrow, rhs = subscripts.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands ('{subscripts}')"
        )
    parsed = [_parse_term(t, len(s), f"operand {k}") for k, (t, s) in enumerate(zip(terms, shapes))]
    n_ell = max([n for _, n in parsed] + [0])
    labels = []
    for term_labels, n in parsed:
        ints = iter(range(n_ell - max(n, 0), n_ell))
        labels.append([next(ints) if lab is None else lab for lab in term_labels])
    if not arrow:
        counts: dict = {}
        for lab in (lab for ls in labels for lab in ls):
            counts[lab] = counts.get(lab, 0) + 1
        singles = sorted(lab for lab, c in counts.items() if isinstance(lab, str) and c == 1)
        return labels, list(range(n_ell)) + singles
    head, _, tail = rhs.partition("...")
    for c in head + tail:
        if c not in _LETTERS:
            raise ValueError(f"einsum: invalid subscript '{c}' in the output '{rhs}'")
    if "..." in rhs:
        if rhs.count("...") > 1:
            raise ValueError(f"einsum: the output '{rhs}' has a malformed ellipsis")
        out_labels = list(head) + list(range(n_ell)) + list(tail)
    else:
        out_labels = list(rhs)
        if n_ell:
            raise ValueError(
                "einsum: output has more dimensions than subscripts given in einstein sum, but "
                "no '...' ellipsis provided to broadcast the extra dimensions."
            )
    all_labels = {lab for ls in labels for lab in ls}
    for lab in out_labels:
        if out_labels.count(lab) > 1:
            raise ValueError(f"einsum: output subscript '{lab}' appears more than once")
        if lab not in all_labels:
            raise ValueError(f"einsum: output subscript '{lab}' does not appear in the inputs")
    return labels, out_labels


def _label_sizes(labels, shapes) -> dict:
    sizes: dict = {}
    for k, (ls, shape) in enumerate(zip(labels, shapes)):
        own: dict = {}
        for lab, n in zip(ls, shape):
            if own.setdefault(lab, n) != n:
                raise ValueError(
                    f"einsum: dimensions in operand {k} for collapsing index '{lab}' don't match "
                    f"({own[lab]} != {n})"
                )
            if sizes.get(lab, 1) not in (1, n) and n != 1:
                raise ValueError(
                    f"einsum: operands could not be broadcast together: subscript '{lab}' has "
                    f"sizes {sizes[lab]} and {n}"
                )
            sizes[lab] = max(sizes.get(lab, 1), n)
    return sizes


def _drop_broadcast_axes(x, labels, sizes):
    """Remove size-1 axes whose label is larger elsewhere: the operand is constant along them."""
    shape = aval_of(x).shape
    keep = [i for i, (lab, n) in enumerate(zip(labels, shape)) if not (n == 1 != sizes[lab])]
    if len(keep) == len(labels):
        return x, labels
    return reshape(x, tuple(shape[i] for i in keep)), [labels[i] for i in keep]


def _take_diagonals(x, labels):
    """Merge the axes of each repeated label into one axis holding the diagonal."""
    while True:
        repeated = next((lab for lab in labels if labels.count(lab) > 1), None)
        if repeated is None:
            return x, labels
        axes = [i for i, lab in enumerate(labels) if lab == repeated]
        rest = [i for i in range(len(labels)) if i not in axes]
        shape = aval_of(x).shape
        n, k = shape[axes[0]], len(axes)
        x = transpose(x, permutation=tuple(rest + axes))
        x = reshape(x, tuple(shape[i] for i in rest) + (n**k,))
        # entry (j, j, ..., j) of the flattened k axes sits at j * (1 + n + ... + n^(k-1))
        stride = sum(n**i for i in range(k))
        x = slice_(
            x,
            start_indices=(0,) * (len(rest) + 1),
            limit_indices=tuple(shape[i] for i in rest) + (n**k,),
            strides=(1,) * len(rest) + (stride,),
        )
        labels = [labels[i] for i in rest] + [repeated]


def _sum_unneeded(x, labels, needed):
    axes = tuple(i for i, lab in enumerate(labels) if lab not in needed)
    if not axes:
        return x, labels
    return reduce_sum(x, axes=axes), [lab for lab in labels if lab in needed]


def _contract(x, xl, y, yl, keep):
    """dot_general of two labelled operands: shared labels in `keep` are batch axes, the other
    shared labels are summed; the result's labels are batch, then x's free, then y's free."""
    shared = [lab for lab in xl if lab in yl]
    batch = [lab for lab in shared if lab in keep]
    summed = [lab for lab in shared if lab not in keep]
    dims = (
        (tuple(xl.index(lab) for lab in summed), tuple(yl.index(lab) for lab in summed)),
        (tuple(xl.index(lab) for lab in batch), tuple(yl.index(lab) for lab in batch)),
    )
    out = dot_general(x, y, dimension_numbers=dims)
    labels = (
        batch + [lab for lab in xl if lab not in shared] + [lab for lab in yl if lab not in shared]
    )
    return out, labels


def _greedy_pair(ops, out_labels, sizes) -> tuple[int, int, list]:
    """The pair whose contraction has the smallest intermediate relative to its inputs."""
    best = None
    for i in range(len(ops)):
        for j in range(i + 1, len(ops)):
            others = set(out_labels).union(*(ops[k][1] for k in range(len(ops)) if k not in (i, j)))
            union = set(ops[i][1]) | set(ops[j][1])
            result = math.prod(sizes[lab] for lab in union if lab in others)
            inputs = math.prod(sizes[lab] for lab in ops[i][1]) + math.prod(
                sizes[lab] for lab in ops[j][1]
            )
            cost = result - inputs
            if best is None or cost < best[0]:
                best = (cost, i, j, others)
    return best[1], best[2], best[3]


@numpy_scalar_result
def einsum(*operands, out=None, optimize: Any = False, dtype=None, **kwargs):
    """numpy.einsum: Einstein summation over labelled axes.

    Supports any subscripts: repeated labels within an operand (diagonals and traces, 'ii->',
    'ii->i'), batch labels kept in the output, ellipsis broadcasting, implicit output (no '->':
    the labels seen once, sorted), any number of operands (contracted pairwise, greedily; the
    `optimize` argument is accepted and ignored) and the interleaved form einsum(x, [0, 1], ...).

    Args:
        operands: the subscripts string followed by the arrays, or the interleaved form.
        dtype: convert the operands to this dtype first.

    Returns:
        The summed products, as NumPy would.

    Raises:
        ValueError: malformed subscripts or operand shapes that do not fit them.

    Example:
        >>> fnp.einsum("bij,bjk->bik", A, B)        # batched matmul
        >>> grad(lambda A: fnp.einsum("ii", A))(A)  # the identity
    """
    if out is not None:
        raise TypeError("einsum: out= is not supported (functrans arrays are immutable)")
    if kwargs.pop("casting", "safe") not in ("no", "equiv", "safe", "same_kind", "unsafe"):
        raise ValueError("einsum: invalid casting")
    kwargs.pop("order", None)
    if kwargs:
        raise TypeError(f"einsum: unexpected keyword arguments {sorted(kwargs)}")
    del optimize  # the contraction order is always greedy
    if not operands:
        raise ValueError("einsum: no operands given")
    if isinstance(operands[0], str):
        subscripts, arrays = operands[0], list(operands[1:])
    else:
        subscripts, arrays = _interleaved(operands)
    arrays = [asarray(a) if dtype is None else asarray(a, dtype) for a in arrays]
    if not arrays:
        raise ValueError("einsum: no arrays given")
    arrays = promote(*arrays)
    shapes = [aval_of(a).shape for a in arrays]
    labels, out_labels = _parse(subscripts, shapes)
    sizes = _label_sizes(labels, shapes)

    ops = []
    for x, ls in zip(arrays, labels):
        x, ls = _drop_broadcast_axes(x, ls, sizes)
        ops.append(_take_diagonals(x, ls))
    for k in range(len(ops)):
        elsewhere = set(out_labels).union(*(ls for j, (_, ls) in enumerate(ops) if j != k))
        ops[k] = _sum_unneeded(*ops[k], elsewhere)
    while len(ops) > 1:
        i, j, keep = _greedy_pair(ops, out_labels, sizes)
        (x, xl), (y, yl) = ops[i], ops[j]
        ops = [op for k, op in enumerate(ops) if k not in (i, j)]
        ops.append(_contract(x, xl, y, yl, keep))
    x, ls = _sum_unneeded(*ops[0], set(out_labels))
    return transpose(x, permutation=tuple(ls.index(lab) for lab in out_labels))


__all__ = [
    "cross",
    "dot",
    "einsum",
    "inner",
    "kron",
    "matmul",
    "outer",
    "tensordot",
    "vdot",
]
