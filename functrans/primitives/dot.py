"""dot_general: the one contraction primitive (dot, matmul, tensordot, einsum build on it).

dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch)). The result's axes are
the batch axes, then lhs's free axes, then rhs's free axes, each in operand order. It is bilinear:
its JVP is two dot_generals and its transpose with respect to either operand is a dot_general of
the cotangent with the other operand, followed by an axis permutation.
"""

from __future__ import annotations

import math

import numpy as np

from functrans.core import Primitive, ShapedArray, Zero, _shaped, aval_of, is_undefined
from functrans.primitives import elementwise as ew
from functrans.primitives.base import require_linear
from functrans.primitives.structural import moveaxis, transpose

dot_general_p = Primitive("dot_general")


def _free(ndim, contract, batch):
    return tuple(i for i in range(ndim) if i not in contract and i not in batch)


def _simple_product(xdim: int, ydim: int, lc: tuple, rc: tuple, c: int) -> str | None:
    """How an unbatched dot_general of operands of ranks xdim, ydim contracting lc with rc
    (of size c) runs without the general path: "dot", one np.dot of (transposed) views (a
    matrix, matrix-vector or inner product, one axis contracted); "scale", a broadcast multiply
    (one scalar operand, nothing contracted); None, the general path. jit's code generator makes the
    same calls (codegen.py), so its results are the impl's bit for bit."""
    if len(lc) == 1 and xdim <= 2 and 1 <= ydim <= 2 and c > 1:
        return "dot"
    if not lc and (xdim == 0) != (ydim == 0):
        return "scale"
    return None


def _dot_general_impl(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x, y = np.asarray(x), np.asarray(y)
    if not lb:
        # Products of at most 2-D operands skip the general path's reshaping (most of an eager
        # dot's cost): one BLAS call on (transposed) views, or a broadcast multiply.
        fast = _simple_product(x.ndim, y.ndim, lc, rc, x.shape[lc[0]] if lc else 1)
        if fast == "dot":
            out = np.dot(x if lc[0] == x.ndim - 1 else x.T, y if rc[0] == 0 else y.T)
            return out if x.ndim + y.ndim > 2 else np.asarray(out)  # 0-d, as on every path
        if fast == "scale":
            return np.multiply(x, y)
    lf, rf = _free(x.ndim, lc, lb), _free(y.ndim, rc, rb)
    batch_shape = tuple(x.shape[i] for i in lb)
    lf_shape = tuple(x.shape[i] for i in lf)
    rf_shape = tuple(y.shape[i] for i in rf)
    c = math.prod([x.shape[i] for i in lc])
    nb = math.prod(batch_shape)
    m = math.prod(lf_shape)
    n = math.prod(rf_shape)
    out_shape = batch_shape + lf_shape + rf_shape
    # Bring each operand to (batch, free, contract) / (batch, contract, free).
    xt = x.transpose(lb + lf + lc).reshape((nb, m, c))
    yt = y.transpose(rb + rc + rf).reshape((nb, c, n))
    if c == 1:
        # an outer product per batch element: broadcasting beats a batched GEMM of 1-wide slices
        # (in two dimensions when one side is a vector: NumPy's 2-D loops are the faster ones)
        if m == 1:
            return np.multiply(xt.reshape((nb, 1)), yt.reshape((nb, n))).reshape(out_shape)
        if n == 1:
            return np.multiply(xt.reshape((nb, m)), yt.reshape((nb, 1))).reshape(out_shape)
        return np.multiply(xt, yt).reshape(out_shape)
    if lb and m == 1 and n == 1:
        # a dot product per batch element
        return np.einsum("bc,bc->b", xt[:, 0, :], yt[:, :, 0]).reshape(out_shape)
    if not lb:
        return np.matmul(xt[0], yt[0]).reshape(out_shape)
    return np.matmul(xt, yt).reshape(out_shape)


def _dot_general_abstract_eval(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if not lb and not rb and len(lc) == 1 and len(rc) == 1:  # the common case, kept cheap
        i, j = lc[0], rc[0]
        xs, ys = x.shape, y.shape
        if 0 <= i < len(xs) and 0 <= j < len(ys) and xs[i] == ys[j] and x.dtype == y.dtype:
            return _shaped(xs[:i] + xs[i + 1 :] + ys[:j] + ys[j + 1 :], x.dtype)
    ok = (
        len(lc) == len(rc)
        and len(lb) == len(rb)
        and all(0 <= i < x.ndim for i in lc + lb)
        and all(0 <= i < y.ndim for i in rc + rb)
        and all(x.shape[i] == y.shape[j] for i, j in zip(lc + lb, rc + rb))
        and len(set(lc + lb)) == len(lc + lb)
        and len(set(rc + rb)) == len(rc + rb)
    )
    if not ok or x.dtype != y.dtype:
        raise TypeError(
            f"primitive 'dot_general' cannot contract {x.str_short()} with {y.str_short()} "
            f"using dimension_numbers {dimension_numbers}"
        )
    lf, rf = _free(x.ndim, lc, lb), _free(y.ndim, rc, rb)
    shape = (
        tuple(x.shape[i] for i in lb)
        + tuple(x.shape[i] for i in lf)
        + tuple(y.shape[i] for i in rf)
    )
    return ShapedArray(shape, x.dtype)


def _dot_general_jvp(primals, tangents, *, dimension_numbers):
    x, y = primals
    tx, ty = tangents
    out = dot_general(x, y, dimension_numbers=dimension_numbers)
    t_out = None
    if type(tx) is not Zero:
        t_out = dot_general(tx, y, dimension_numbers=dimension_numbers)
    if type(ty) is not Zero:
        term = dot_general(x, ty, dimension_numbers=dimension_numbers)
        t_out = term if t_out is None else ew.add(t_out, term)
    return out, t_out


def _transpose_one(ct, other, x_ndim, other_ndim, dims_x, dims_other, x_is_lhs):
    """Cotangent of one operand ("x") given the other; dims_* = (contract, batch) of each."""
    (xc, xb), (oc, ob) = dims_x, dims_other
    xf, of = _free(x_ndim, xc, xb), _free(other_ndim, oc, ob)
    nb = len(xb)
    # ct's axes: batch, lhs free, rhs free. Contract ct's axes that belong to the other operand
    # with the other operand's free axes; what remains is (batch, x free, other's contract axes
    # in the other operand's order), and other's contract axis j pairs with x's xc[oc.index(j)].
    start = nb + (len(xf) if x_is_lhs else 0)
    ct_other_free = tuple(range(start, start + len(of)))
    res = dot_general(ct, other, dimension_numbers=((ct_other_free, of), (tuple(range(nb)), ob)))
    res_axes = list(xb) + list(xf) + [xc[oc.index(j)] for j in sorted(oc)]
    return transpose(res, permutation=tuple(np.argsort(res_axes)))


def _dot_general_transpose(ct, x, y, *, dimension_numbers):
    require_linear("dot_general", x, y)
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined(x):
        x_ndim, y_ndim = x.aval.ndim, aval_of(y).ndim
        return [_transpose_one(ct, y, x_ndim, y_ndim, (lc, lb), (rc, rb), True), None]
    x_ndim, y_ndim = aval_of(x).ndim, y.aval.ndim
    return [None, _transpose_one(ct, x, y_ndim, x_ndim, (rc, rb), (lc, lb), False)]


def _basis_scales(v, bdim: int, contract: tuple) -> np.ndarray | None:
    """d when the batch `v` (batch axis `bdim`) is the scaled basis d_i e_i: each example a
    vector along its one contracted axis (any other axis of size 1, as in matmul's (n, 1) view),
    the two axes of size n > 1 forming a diagonal matrix. That is jacfwd's and jacrev's standard
    basis, also after an elementwise scaling. Concrete real arrays only (complex products round
    differently from the dense one). Two off-diagonal entries are probed before the O(n^2) check."""
    if type(v) is not np.ndarray or v.dtype.kind not in "biuf" or len(contract) != 1:
        return None
    n = v.shape[bdim]
    c = contract[0] + (contract[0] >= bdim)  # the contracted axis among v's axes
    if n < 2 or v.shape[c] != n or v.size != n * n:
        return None
    m = v.reshape(n, n)  # (batch, contracted) or its transpose: a diagonal either way
    if m[0, 1] != 0 or m[1, 0] != 0:
        return None
    d = m.diagonal()
    return d if np.count_nonzero(m) == np.count_nonzero(d) else None


def _scale_axis(x, d: np.ndarray, axis: int) -> np.ndarray:
    """x * d along `axis`, a new array (never x itself: the result may reach the user)."""
    return np.multiply(x, d.reshape((-1,) + (1,) * (x.ndim - 1 - axis)))


def _dot_general_batch(vals, dims, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    x, y = vals
    dx, dy = dims
    if not lb and (dx is None) != (dy is None):
        # A batch of scaled basis vectors d_i e_i contracted with an unbatched operand: example
        # i is d_i times index i of the other operand's contracted axis, so the product is that
        # operand scaled along that axis, batched along it. jacfwd(W @ x) and the product with
        # W in jacrev(tanh(W @ x)) skip an n x n x ... product. The same values for finite
        # operands, up to the sign of a zero (the dense product adds zeros).
        # Real values only; inf * 0 terms of the dense product are not formed (as in jit's
        # diagonal rewrite, passes.py).
        if dy is not None and type(x) is np.ndarray:
            if (d := _basis_scales(y, dy, rc)) is not None:
                out = _scale_axis(x, d, lc[0])  # then y's unit axes, after x's free ones
                return out.reshape(out.shape + (1,) * (y.ndim - 2)), lc[0]
        if dx is not None and type(y) is np.ndarray:
            if (d := _basis_scales(x, dx, lc)) is not None:
                units = x.ndim - 2  # x's unit axes come first in the product
                out = _scale_axis(y, d, rc[0])
                return out.reshape((1,) * units + out.shape), units + rc[0]

    def shift(axes):
        return tuple(a + 1 for a in axes)

    if dx is not None and dy is not None:
        x, y = moveaxis(x, dx, 0), moveaxis(y, dy, 0)
        new = ((shift(lc), shift(rc)), ((0,) + shift(lb), (0,) + shift(rb)))
        return dot_general(x, y, dimension_numbers=new), 0
    if dx is not None:
        # the batch axis becomes lhs's first free axis, which lands right after the batch axes
        x = moveaxis(x, dx, 0)
        new = ((shift(lc), rc), (shift(lb), rb))
        return dot_general(x, y, dimension_numbers=new), len(lb)
    y = moveaxis(y, dy, 0)
    new = ((lc, shift(rc)), (lb, shift(rb)))
    n_lhs_free = aval_of(x).ndim - len(lc) - len(lb)
    return dot_general(x, y, dimension_numbers=new), len(lb) + n_lhs_free


dot_general_p.impl = _dot_general_impl
dot_general_p.abstract_eval = _dot_general_abstract_eval
dot_general_p.jvp = _dot_general_jvp
dot_general_p.transpose = _dot_general_transpose
dot_general_p.batch = _dot_general_batch


def dot_general(x, y, *, dimension_numbers):
    return dot_general_p.bind(x, y, dimension_numbers=canonical_dims(dimension_numbers))


def canonical_dims(dimension_numbers):
    """Dimension numbers as tuples of Python ints, one object per value (so that programs
    share it, and a recording keys it once): returned as they are if they are that object."""
    if id(dimension_numbers) in _CANONICAL_IDS:
        return dimension_numbers
    (lc, rc), (lb, rb) = dimension_numbers
    dims = (
        (tuple(int(i) for i in lc), tuple(int(i) for i in rc)),
        (tuple(int(i) for i in lb), tuple(int(i) for i in rb)),
    )
    canonical = _CANONICAL.get(dims)  # (a key of Python ints only: equal is the same)
    if canonical is None:
        if len(_CANONICAL) >= 4096:
            return dims
        canonical = _CANONICAL[dims] = dims
        _CANONICAL_IDS.add(id(dims))  # (kept alive by _CANONICAL: the id stays its own)
    return canonical


_CANONICAL: dict = {}
_CANONICAL_IDS: set[int] = set()
