"""functrans.numpy products against NumPy: dot, vdot, inner, outer, matmul/@, tensordot, einsum,
kron, cross. Values and dtypes match NumPy (broadcast batch axes, 1-D promotion, ellipsis,
repeated labels, implicit output); derivatives match central differences in both modes, to
second order; jacfwd == jacrev; vmap equals a loop; jit equals eager; complex operands work."""

from __future__ import annotations

import string
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import check_grads


def _rng(seed=0):
    return np.random.default_rng(seed)


def _arrays(rng, *shapes, dtype=np.float64):
    out = []
    for s in shapes:
        x = rng.standard_normal(s)
        if np.issubdtype(dtype, np.complexfloating):
            x = x + 1j * rng.standard_normal(s)
        out.append(np.asarray(x, dtype))
    return out


def _same(got, want, tol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# einsum: values


EINSUM_SPECS = [
    ("ii->", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iij->j", [(3, 3, 4)]),
    ("iji->j", [(3, 4, 3)]),
    ("iiii->i", [(2, 2, 2, 2)]),
    ("ijji->ij", [(2, 3, 3, 2)]),
    ("ii", [(4, 4)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("aB", [(2, 3)]),  # implicit output sorts by code point: B before a
    ("ij->ji", [(2, 3)]),
    ("i->", [(4,)]),
    ("ij->", [(2, 3)]),
    ("...", [(2, 3)]),
    ("i...->...", [(2, 3, 4)]),
    ("...i->...", [(2, 3, 4)]),
    ("i,i", [(3,), (3,)]),
    ("i,i->i", [(3,), (3,)]),
    ("i,j", [(3,), (4,)]),
    ("i,j->ji", [(3,), (4,)]),
    (",i->i", [(), (3,)]),
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,kj->ki", [(2, 3), (4, 3)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("bij,bjk->kbi", [(5, 2, 3), (5, 3, 4)]),
    ("ijk,ijk->", [(2, 3, 4), (2, 3, 4)]),
    ("ijk,ijk->j", [(2, 3, 4), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(1, 2, 3), (6, 3, 4)]),
    ("...i,...i->...", [(2, 1, 4), (3, 4)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),  # size-1 axes broadcast, as in NumPy
    ("i,i->i", [(1,), (3,)]),
    ("ii,ij->j", [(3, 3), (3, 5)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("abc,cd,bd->a", [(2, 3, 4), (4, 5), (3, 5)]),
    ("ij,jk,kl,lm->im", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("ea,fb,abcd,gc,hd->efgh", [(2, 3), (2, 2), (3, 2, 4, 3), (2, 4), (2, 3)]),
    ("bn,anm,bm->ba", [(4, 3), (2, 3, 5), (4, 5)]),
    ("i,i,i->", [(3,), (3,), (3,)]),
    ("ij, jk -> ik", [(2, 3), (3, 4)]),  # spaces are ignored
]


@pytest.mark.parametrize("spec,shapes", EINSUM_SPECS, ids=[s for s, _ in EINSUM_SPECS])
def test_einsum_matches_numpy(spec, shapes):
    ops = _arrays(_rng(len(spec)), *shapes)
    _same(fnp.einsum(spec, *ops), np.einsum(spec, *ops))


def test_einsum_dtypes_optimize_and_interleaved_form():
    rng = _rng(1)
    a, b = _arrays(rng, (2, 3), (3, 4))
    _same(fnp.einsum("ij,jk", a, b, optimize="greedy"), np.einsum("ij,jk", a, b))
    _same(fnp.einsum("ij,jk", a, b, optimize=True), a @ b)
    # interleaved: integers label axes, an optional last list is the output
    _same(fnp.einsum(a, [0, 1], b, [1, 2], [2, 0]), np.einsum(a, [0, 1], b, [1, 2], [2, 0]))
    _same(fnp.einsum(a, [Ellipsis, 1], [Ellipsis]), np.einsum(a, [Ellipsis, 1], [Ellipsis]))
    # dtype promotion as NumPy: int x float32 -> float64, float32 x float32 stays float32
    ints = np.arange(6).reshape(2, 3)
    _same(
        fnp.einsum("ij,jk", ints, b.astype(np.float32)),
        np.einsum("ij,jk", ints, b.astype(np.float32)),
        1e-5,
    )
    _same(fnp.einsum("ii", np.arange(9).reshape(3, 3)), np.einsum("ii", np.arange(9).reshape(3, 3)))
    z1, z2 = _arrays(rng, (2, 3), (3,), dtype=np.complex128)
    _same(fnp.einsum("ij,j->i", z1, z2), np.einsum("ij,j->i", z1, z2))
    _same(fnp.einsum("ij,j->i", a, z2), np.einsum("ij,j->i", a, z2))
    kw = {"dtype": np.float32, "casting": "unsafe"}
    _same(fnp.einsum("ij->i", ints, **kw), np.einsum("ij->i", ints, **kw))


@pytest.mark.parametrize(
    "spec,shapes,match",
    [
        ("ij,jk", [(2, 3), (4, 5)], "broadcast"),
        ("ii", [(2, 3)], "don't match"),
        ("ijk", [(2, 3)], "subscripts"),
        ("ij->ii", [(2, 2)], "more than once"),
        ("ij->k", [(2, 2)], "does not appear"),
        ("ij,jk", [(2, 3)], "operand"),
        ("...ij->ij", [(2, 3, 4)], "ellipsis"),
        ("i1->i", [(2, 3)], "invalid subscript"),
        ("i.j", [(2, 3)], "ellipsis"),
    ],
)
def test_einsum_errors(spec, shapes, match):
    ops = _arrays(_rng(), *shapes)
    with pytest.raises(ValueError, match=match):
        fnp.einsum(spec, *ops)


@st.composite
def _einsum_problem(draw):
    """Random subscripts over up to 3 operands: shared, batch, summed and repeated labels."""
    n_labels = draw(st.integers(1, 5))
    labels = string.ascii_letters[:n_labels]
    sizes = {lab: draw(st.integers(1, 3)) for lab in labels}
    n_ops = draw(st.integers(1, 3))
    terms = [
        "".join(draw(st.lists(st.sampled_from(labels), min_size=0, max_size=3)))
        for _ in range(n_ops)
    ]
    used = sorted(set("".join(terms)))
    out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
    explicit = draw(st.booleans())
    spec = ",".join(terms) + ("->" + out if explicit else "")
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    return spec, shapes


@given(problem=_einsum_problem(), seed=st.integers(0, 2**16))
def test_einsum_random_subscripts_match_numpy(problem, seed):
    spec, shapes = problem
    ops = _arrays(_rng(seed), *shapes)
    _same(fnp.einsum(spec, *ops), np.einsum(spec, *ops), 1e-10)


# ---------------------------------------------------------------------------------------------
# einsum: derivatives, vmap, jit

GRAD_SPECS = [
    ("ii->", [(3, 3)]),
    ("iij->j", [(2, 2, 3)]),
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk", [(2, 2, 3), (3, 2)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("abc,cd,bd->a", [(2, 3, 2), (2, 3), (3, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ii,i", [(3, 3), (3,)]),
]


@pytest.mark.parametrize("spec,shapes", GRAD_SPECS, ids=[s for s, _ in GRAD_SPECS])
def test_einsum_derivatives(spec, shapes):
    ops = _arrays(_rng(7), *shapes)
    f = lambda *xs: fnp.einsum(spec, *xs)  # noqa: E731
    check_grads(f, ops, order=2)
    flat = lambda *xs: fnp.sum(fnp.sin(f(*xs)))  # noqa: E731
    argnums = tuple(range(len(ops)))
    for jf, jr in zip(
        ft.jacfwd(f, argnums=argnums)(*ops), ft.jacrev(f, argnums=argnums)(*ops), strict=True
    ):
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
    g = ft.grad(flat)(*ops)
    np.testing.assert_allclose(ft.jit(ft.grad(flat))(*ops), g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec,shapes", GRAD_SPECS, ids=[s for s, _ in GRAD_SPECS])
def test_einsum_vmap_and_jit(spec, shapes):
    rng = _rng(8)
    batches = [_arrays(rng, *shapes) for _ in range(3)]
    f = lambda *xs: fnp.einsum(spec, *xs)  # noqa: E731
    want = np.stack([np.einsum(spec, *ops) for ops in batches])
    stacked = [np.stack(xs) for xs in zip(*batches, strict=True)]
    _same(ft.vmap(f)(*stacked), want)
    # batched along the last axis, and (with several operands) the first operand unbatched
    first = None if len(shapes) > 1 else -1
    in_axes = (first,) + (-1,) * (len(shapes) - 1)
    args = [batches[0][0] if first is None else np.stack([ops[0] for ops in batches], -1)]
    args += [np.stack(xs, axis=-1) for xs in list(zip(*batches))[1:]]
    want = np.stack(
        [np.einsum(spec, batches[0][0] if first is None else ops[0], *ops[1:]) for ops in batches]
    )
    _same(ft.vmap(f, in_axes=in_axes)(*args), want)
    _same(ft.jit(f)(*batches[0]), np.einsum(spec, *batches[0]))


def test_einsum_complex_derivatives_and_numpy_dispatch():
    rng = _rng(9)
    a, b = _arrays(rng, (2, 3), (3, 2), dtype=np.complex128)
    check_grads(lambda a, b: fnp.einsum("ij,jk->ik", a, b), (a, b), order=2)
    check_grads(
        lambda a: fnp.einsum("ii", a), (_arrays(rng, (3, 3), dtype=np.complex128)[0],), order=1
    )
    # plain NumPy code is traced through __array_function__
    x, y = _arrays(rng, (3, 3), (3,))
    g = ft.grad(lambda x: np.einsum("ij,j->", x, y))(x)
    np.testing.assert_allclose(g, np.broadcast_to(y, (3, 3)), rtol=1e-14)
    assert ft.grad(lambda x: np.einsum("ii", x))(x).tolist() == np.eye(3).tolist()


# ---------------------------------------------------------------------------------------------
# dot, matmul, @, inner, outer, vdot, tensordot

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3,)),
    ((5, 1, 2, 3), (4, 3, 2)),
    ((1, 2, 3), (6, 3, 4)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=str)
def test_matmul_and_at_operator_match_numpy(sa, sb):
    a, b = _arrays(_rng(), sa, sb)
    _same(fnp.matmul(a, b), np.matmul(a, b))
    assert ft.jit(lambda a, b: a @ b)(a, b).shape == np.matmul(a, b).shape
    _same(ft.vmap(lambda a: a @ b)(np.stack([a, 2 * a])), np.stack([a @ b, 2 * a @ b]))
    _same(
        ft.vmap(lambda b: fnp.matmul(a, b), in_axes=-1)(np.stack([b, -b], -1)),
        np.stack([a @ b, -(a @ b)]),
    )
    check_grads(lambda a, b: a @ b, (a, b), order=2)


def test_matmul_errors_as_numpy():
    with pytest.raises(ValueError, match="scalars"):
        fnp.matmul(np.ones(3), 2.0)
    with pytest.raises(ValueError, match="mismatch"):
        fnp.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError):
        fnp.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 4)))  # batch (2,) vs (3,)


@st.composite
def _matmul_shapes(draw):
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    ba = [draw(st.sampled_from([1, d])) for d in batch][draw(st.integers(0, len(batch))) :]
    bb = [draw(st.sampled_from([1, d])) for d in batch][draw(st.integers(0, len(batch))) :]
    # a 1-D operand is a single vector (NumPy promotes it to a matrix); stacks are matrices
    sa = (k,) if draw(st.booleans()) else tuple(ba) + (n, k)
    sb = (k,) if draw(st.booleans()) else tuple(bb) + (k, m)
    return sa, sb


@given(shapes=_matmul_shapes(), seed=st.integers(0, 2**16))
def test_matmul_any_batch_shapes(shapes, seed):
    sa, sb = shapes
    a, b = _arrays(_rng(seed), sa, sb)
    _same(fnp.matmul(a, b), np.matmul(a, b), 1e-12)
    _same(fnp.dot(a, b), np.dot(a, b), 1e-12)


DOT_SHAPES = [
    ((), (3,)),
    ((3,), ()),
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3, 4), (5, 4, 6)),
    ((2, 3), (3, 4)),
]


@pytest.mark.parametrize("sa,sb", DOT_SHAPES, ids=str)
def test_dot_inner_outer_match_numpy(sa, sb):
    a, b = _arrays(_rng(2), sa, sb)
    _same(fnp.dot(a, b), np.dot(a, b))
    _same(fnp.outer(a, b), np.outer(a, b))
    if not sa or not sb or sa[-1] == sb[-1]:
        _same(fnp.inner(a, b), np.inner(a, b))
    check_grads(fnp.dot, (a, b), order=2)
    check_grads(fnp.outer, (a, b), order=1)


def test_inner_tensordot_vdot_values_and_derivatives():
    rng = _rng(4)
    a, b = _arrays(rng, (2, 3, 4), (4, 3, 5))
    for axes in (0, 1, ([1, 2], [1, 0]), ((2,), (0,)), (-1, 0)):
        _same(fnp.tensordot(a, b, axes=axes), np.tensordot(a, b, axes=axes))
    _same(fnp.tensordot(a, np.ones((3, 4)), axes=2), np.tensordot(a, np.ones((3, 4)), axes=2))
    with pytest.raises(ValueError, match="not aligned"):
        fnp.tensordot(a, b, axes=([0], [0]))
    check_grads(lambda a, b: fnp.tensordot(a, b, axes=([1, 2], [1, 0])), (a, b), order=2)
    c, d = _arrays(rng, (3, 4), (5, 4))
    _same(fnp.inner(c, d), np.inner(c, d))
    x, y = _arrays(rng, (2, 3), (6,))
    _same(fnp.vdot(x, y), np.vdot(x, y))
    check_grads(fnp.vdot, (x, y), order=2)


def test_complex_products_match_numpy_and_differentiate():
    rng = _rng(5)
    a, b = _arrays(rng, (4, 2, 3), (3, 2), dtype=np.complex128)
    _same(fnp.matmul(a, b), np.matmul(a, b))
    _same(fnp.dot(a, b), np.dot(a, b))
    check_grads(fnp.matmul, (a, b), order=2)
    # vdot conjugates its first argument, as NumPy does
    x, y = _arrays(rng, (2, 3), (6,), dtype=np.complex128)
    _same(fnp.vdot(x, y), np.vdot(x, y))
    check_grads(fnp.vdot, (x, y), order=2)
    # mixed real and complex operands promote to complex
    r = _arrays(rng, (3, 2))[0]
    _same(fnp.matmul(a, r), np.matmul(a, r))
    # the transpose of a complex product is not conjugated: vjp(a -> a @ b)(u) = u @ b.T
    u = _arrays(rng, (4, 2, 2), dtype=np.complex128)[0]
    (ct,) = ft.vjp(lambda a: fnp.matmul(a, b), a)[1](u)
    _same(ct, u @ b.T)


# ---------------------------------------------------------------------------------------------
# kron and cross

KRON_SHAPES = [((2, 3), (4, 5)), ((2,), (3, 4)), ((3, 1, 2), (2, 2)), ((), (3,)), ((), ())]


@pytest.mark.parametrize("sa,sb", KRON_SHAPES, ids=str)
def test_kron_matches_numpy_and_differentiates(sa, sb):
    a, b = _arrays(_rng(6), sa, sb)
    _same(fnp.kron(a, b), np.kron(a, b))
    check_grads(fnp.kron, (a, b), order=2)
    _same(
        ft.vmap(lambda a: fnp.kron(a, b))(np.stack([a, 3 * a])),
        np.stack([np.kron(a, b), np.kron(3 * a, b)]),
    )


CROSS = [
    ((3,), (3,), {}),
    ((5, 3), (5, 3), {}),
    ((3,), (4, 3), {}),
    ((2,), (3,), {}),
    ((4, 3), (2,), {}),
    ((5, 2), (5, 2), {}),
    ((3, 5), (5, 3), {"axisa": 0}),
    ((3, 4), (3, 4), {"axis": 0}),
    ((4, 3), (3, 4), {"axisa": 1, "axisb": 0, "axisc": 0}),
    ((2, 3, 4), (3,), {"axisa": 1, "axisc": -2}),
]


@pytest.mark.parametrize("sa,sb,kw", CROSS, ids=[f"{a}x{b}{k}" for a, b, k in CROSS])
def test_cross_matches_numpy_and_differentiates(sa, sb, kw):
    a, b = _arrays(_rng(7), sa, sb)
    with warnings.catch_warnings():  # NumPy 2 deprecates 2-vectors in cross
        warnings.simplefilter("ignore", DeprecationWarning)
        want = np.cross(a, b, **kw)
    _same(fnp.cross(a, b, **kw), want)
    check_grads(lambda a, b: fnp.cross(a, b, **kw), (a, b), order=2)


def test_cross_rejects_other_lengths():
    with pytest.raises(ValueError, match="must be 2 or 3"):
        fnp.cross(np.ones(4), np.ones(3))


def test_products_through_numpy_functions():
    rng = _rng(8)
    a, b = _arrays(rng, (3, 3), (3, 3))

    def f(a):
        return np.sum(np.kron(a, b)) + np.sum(np.cross(a, b)) + np.vdot(a, b) + np.inner(a, b).sum()

    check_grads(f, (a,), order=1)
    np.testing.assert_allclose(ft.jacfwd(f)(a), ft.jacrev(f)(a), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_vector_products_are_numpys_kind_of_result_at_every_length(n):
    # the impl's fast path (np.dot) and its general path give what NumPy gives: a scalar from
    # dot, inner, vdot and matmul, a 0-d array from tensordot
    a, b = np.arange(1.0, n + 1), np.arange(2.0, n + 2)
    for got, want in [
        (fnp.dot(a, b), np.dot(a, b)),
        (fnp.inner(a, b), np.inner(a, b)),
        (fnp.vdot(a, b), np.vdot(a, b)),
        (fnp.matmul(a, b), np.matmul(a, b)),
        (fnp.tensordot(a, b, axes=1), np.tensordot(a, b, axes=1)),
    ]:
        assert type(got) is type(want) and np.shape(got) == ()
        np.testing.assert_array_equal(got, want)


def _products_with_a_basis(m):
    """Every way a batch of basis vectors meets an unbatched operand in a contraction."""
    rng = np.random.default_rng(3)
    n = m.shape[0]
    w = rng.normal(size=(4, n)).astype(m.dtype)
    t = rng.normal(size=(2, n, 3)).astype(m.dtype)
    return [
        ("W @ v", lambda v: fnp.dot(w, v), m, 0),
        ("v @ W.T", lambda v: fnp.dot(v, w.T), m, 0),
        ("T . v over its middle axis", lambda v: fnp.tensordot(t, v, axes=([1], [0])), m, 0),
        ("v . T over its middle axis", lambda v: fnp.tensordot(v, t, axes=([0], [1])), m, 0),
        ("W @ v, basis along axis 1", lambda v: fnp.dot(w, v), m, 1),
        ("W @ v as matmul: an (n, 1) view of the basis", lambda v: w @ v, m, 0),
        ("v @ W.T as matmul: a (1, n) view", lambda v: v @ w.T, m, 0),
    ]


@pytest.mark.parametrize(
    "m",
    [
        np.eye(5),  # the shortcut: the product is the other operand, scaled
        np.eye(5, dtype=np.float32),
        np.diag([2.0, -1.0, 0.5, 3.0, 0.0]),  # a scaled basis, one scale zero
        np.eye(5, dtype=np.int64) * 3,
        np.diag([1.0, 2.0, 3.0, 4.0, 5.0]).astype(np.complex128) * (1 + 2j),  # general path
        np.eye(5)[[1, 0, 2, 3, 4]],  # a permutation: the general path
        np.eye(5) + np.eye(5, k=3),  # a diagonal and one entry far from it: the general path
        np.zeros((5, 5)),  # no nonzero entry off the diagonal... nor on it: a diagonal of zeros
    ],
    ids=[
        "eye",
        "eye-f32",
        "diagonal",
        "eye-i64",
        "diagonal-c128",
        "permutation",
        "banded",
        "zeros",
    ],
)
def test_vmap_of_a_product_with_a_basis_matches_a_loop(m, monkeypatch, eager_cache_off):
    from functrans.primitives import dot

    seen = []
    scales = dot._basis_scales
    monkeypatch.setattr(dot, "_basis_scales", lambda *a: seen.append(scales(*a)) or seen[-1])
    for name, fn, basis, axis in _products_with_a_basis(m):
        got = ft.vmap(fn, in_axes=axis)(basis)
        want = np.stack([fn(np.take(basis, i, axis=axis)) for i in range(basis.shape[axis])])
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    # a real diagonal matrix takes the shortcut in every product, the other matrices never
    is_diagonal = np.array_equal(m, np.diag(np.diag(m))) and m.dtype.kind != "c"
    assert seen
    assert all(d is not None for d in seen) if is_diagonal else all(d is None for d in seen)


def test_jacobian_of_a_linear_map_is_a_fresh_copy_of_its_matrix():
    # jacfwd's basis meets W in W @ x: the batch rule returns W scaled by ones, a new array
    w = np.arange(12.0).reshape(3, 4)
    x = np.ones(4)
    for jac in [
        ft.jacfwd(lambda x: w @ x),
        ft.jacrev(lambda x: w @ x),
        ft.jacfwd(lambda x: fnp.dot(w, x)),
    ]:
        got = jac(x)
        np.testing.assert_array_equal(got, w)
        assert not np.shares_memory(got, w)
        got[...] = 0.0
        np.testing.assert_array_equal(w, np.arange(12.0).reshape(3, 4))  # W is untouched
