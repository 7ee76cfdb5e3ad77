"""functrans.numpy shape manipulation, creation, sorting and searching against NumPy: values over
shapes and axes (hypothesis), derivatives in both modes, vmap against a loop, staged against
eager, and the errors for value-dependent shapes under tracing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import functrans as ft
import functrans.numpy as fnp
from functrans.errors import ConcretizationError, NotSupportedError
from functrans.testing import check_grads


def _same(got, want):
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"got {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


def _distinct(rng, shape):
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.5 - n * 0.25 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


_shapes = array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def _ax(nd):
    return st.integers(-nd, nd - 1)


# ---------------------------------------------------------------------------------------------
# Values against NumPy over random shapes and axes


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_axis_functions_match_numpy(data, seed):
    shape = data.draw(_shapes)
    nd = len(shape)
    x = np.random.default_rng(seed).standard_normal(shape)
    a, b = data.draw(_ax(nd)), data.draw(_ax(nd))
    _same(fnp.swapaxes(x, a, b), np.swapaxes(x, a, b))
    _same(fnp.moveaxis(x, a, b), np.moveaxis(x, a, b))
    start = data.draw(st.integers(-nd, nd))
    _same(fnp.rollaxis(x, a, start), np.rollaxis(x, a, start))
    e = data.draw(_ax(nd + 1))
    _same(fnp.expand_dims(x, e), np.expand_dims(x, e))
    perm = data.draw(st.permutations(range(nd)))
    _same(fnp.transpose(x, perm), np.transpose(x, perm))
    _same(fnp.transpose(x), np.transpose(x))
    _same(fnp.ravel(x), np.ravel(x))
    _same(fnp.reshape(x, (-1, shape[-1])), np.reshape(x, (-1, shape[-1])))
    _same(fnp.squeeze(x), np.squeeze(x))
    flip_axes = data.draw(st.one_of(st.none(), _ax(nd)))
    _same(fnp.flip(x, flip_axes), np.flip(x, flip_axes))
    _same(fnp.flipud(x), np.flipud(x))
    shift = data.draw(st.integers(-7, 7))
    _same(fnp.roll(x, shift), np.roll(x, shift))
    _same(fnp.roll(x, (shift, 1), (a, b)), np.roll(x, (shift, 1), (a, b)))
    _same(fnp.broadcast_to(x, (2,) + shape), np.broadcast_to(x, (2,) + shape))
    reps = tuple(data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4)))
    _same(fnp.tile(x, reps), np.tile(x, reps))
    r = data.draw(st.integers(0, 3))
    _same(fnp.repeat(x, r, axis=a), np.repeat(x, r, axis=a))
    counts = data.draw(st.lists(st.integers(0, 3), min_size=shape[a], max_size=shape[a]))
    _same(fnp.repeat(x, counts, axis=a), np.repeat(x, counts, axis=a))
    _same(fnp.repeat(x, r), np.repeat(x, r))
    idx = np.random.default_rng(seed).integers(-shape[a], shape[a], shape)
    _same(fnp.take_along_axis(x, idx, a), np.take_along_axis(x, idx, a))
    _same(fnp.sort(x, a), np.sort(x, a))
    _same(fnp.argsort(x, a), np.argsort(x, a, kind="stable"))
    _same(fnp.sort(x, None), np.sort(x, None))
    for fn in (fnp.atleast_1d, fnp.atleast_2d, fnp.atleast_3d):
        _same(fn(x), getattr(np, fn.__name__)(x))
    if nd >= 2:
        _same(fnp.fliplr(x), np.fliplr(x))
        k = data.draw(st.integers(-5, 5))
        if a % nd != b % nd:
            _same(fnp.rot90(x, k, (a, b)), np.rot90(x, k, (a, b)))
            offset = data.draw(st.integers(-4, 4))
            _same(fnp.diagonal(x, offset, a, b), np.diagonal(x, offset, a, b))
        k = data.draw(st.integers(-4, 4))
        _same(fnp.tril(x, k), np.tril(x, k))
        _same(fnp.triu(x, k), np.triu(x, k))


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_joining_and_splitting_match_numpy(data, seed):
    shape = data.draw(_shapes)
    nd = len(shape)
    rng = np.random.default_rng(seed)
    a = data.draw(_ax(nd))
    other = list(shape)
    other[a] = data.draw(st.integers(1, 3))
    x, y = rng.standard_normal(shape), rng.standard_normal(other).astype(np.float32)
    _same(fnp.concatenate([x, y], axis=a), np.concatenate([x, y], axis=a))
    _same(fnp.concatenate([x, y], axis=None), np.concatenate([x, y], axis=None))
    z = rng.standard_normal(shape)
    s_ax = data.draw(_ax(nd + 1))
    _same(fnp.stack([x, z], axis=s_ax), np.stack([x, z], axis=s_ax))
    for fn in ("hstack", "vstack", "dstack", "column_stack"):
        if fn == "column_stack" and nd > 2:
            continue
        _same(getattr(fnp, fn)([x, z]), getattr(np, fn)([x, z]))
    sections = data.draw(st.integers(1, 5))
    _same(fnp.array_split(x, sections, axis=a), np.array_split(x, sections, axis=a))
    points = sorted(data.draw(st.lists(st.integers(-5, 6), max_size=3)))
    _same(fnp.split(x, points, axis=a), np.split(x, points, axis=a))
    if shape[a] % sections == 0:
        _same(fnp.split(x, sections, axis=a), np.split(x, sections, axis=a))
    else:
        with pytest.raises(ValueError, match="equal division"):
            fnp.split(x, sections, axis=a)
    if shape[-1 if nd == 1 else 1] % 1 == 0:
        _same(fnp.hsplit(x, [1]), np.hsplit(x, [1]))
    if nd >= 2:
        _same(fnp.vsplit(x, [1]), np.vsplit(x, [1]))
    b1 = rng.standard_normal(shape[-1:])
    _same(fnp.broadcast_arrays(x, b1), np.broadcast_arrays(x, b1))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_pad_matches_numpy(mode, data, seed):
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = np.random.default_rng(seed).standard_normal(shape)
    width = data.draw(
        st.one_of(
            st.integers(0, 6),
            st.tuples(st.integers(0, 6), st.integers(0, 6)),
            st.lists(
                st.tuples(st.integers(0, 6), st.integers(0, 6)),
                min_size=len(shape),
                max_size=len(shape),
            ),
        )
    )
    _same(fnp.pad(x, width, mode=mode), np.pad(x, width, mode=mode))


def test_pad_constant_values():
    x = np.arange(6.0).reshape(2, 3)
    for cv in (2.5, (1, 2), ((1, 2), (3, 4))):
        _same(
            fnp.pad(x, ((1, 2), (2, 1)), constant_values=cv),
            np.pad(x, ((1, 2), (2, 1)), constant_values=cv),
        )
    # a traced constant is differentiable: d/dc sum(pad(x, 1, c)) = number of padded entries
    g = ft.grad(lambda c: fnp.sum(fnp.pad(x, 1, constant_values=c)), argnums=0)(0.5)
    assert g == 4 * 5 - 6


@given(data=st.data(), seed=st.integers(0, 2**16))
def test_diag_tri_where_select_searchsorted_match_numpy(data, seed):
    rng = np.random.default_rng(seed)
    n = data.draw(st.integers(1, 5))
    k = data.draw(st.integers(-3, 3))
    v = rng.standard_normal(n)
    m = rng.standard_normal((n, data.draw(st.integers(1, 5))))
    _same(fnp.diag(v, k), np.diag(v, k))
    _same(fnp.diag(m, k), np.diag(m, k))
    _same(fnp.diagflat(m, k), np.diagflat(m, k))
    _same(fnp.tril(v, k), np.tril(v, k))
    _same(fnp.where(m > 0, m, -1), np.where(m > 0, m, -1))
    _same(fnp.where(m > 0, 1, v[:1]), np.where(m > 0, 1, v[:1]))
    _same(fnp.where(m > 0), np.where(m > 0))
    _same(fnp.nonzero(m > 0), np.nonzero(m > 0))
    conds, choices = [m > 0.5, m < -0.5], [m, 2 * m]
    _same(fnp.select(conds, choices, 7.0), np.select(conds, choices, 7.0))
    a = np.sort(rng.choice(rng.standard_normal(3), n))  # sorted, with repeats
    q = np.concatenate([a, rng.standard_normal(4)])
    for side in ("left", "right"):
        _same(fnp.searchsorted(a, q, side), np.searchsorted(a, q, side))
    perm = rng.permutation(n)
    _same(fnp.searchsorted(a[perm], q, sorter=np.argsort(perm)), np.searchsorted(a, q))


def test_creation_matches_numpy():
    _same(fnp.zeros((2, 3)), np.zeros((2, 3)))
    _same(fnp.ones(3, np.int32), np.ones(3, np.int32))
    _same(fnp.full((2, 2), 7.5), np.full((2, 2), 7.5))
    assert fnp.empty((2, 3)).shape == (2, 3)
    _same(fnp.eye(3, 4, k=1), np.eye(3, 4, k=1))
    _same(fnp.identity(3), np.identity(3))
    _same(fnp.arange(1, 7, 2), np.arange(1, 7, 2))
    _same(fnp.linspace(0, 1, 7, endpoint=False), np.linspace(0, 1, 7, endpoint=False))
    _same(fnp.logspace(0, 2, 4, base=2.0), np.logspace(0, 2, 4, base=2.0))
    _same(fnp.tri(3, 4, -1), np.tri(3, 4, -1))
    x = np.arange(6.0).reshape(2, 3)
    for fn in ("zeros_like", "ones_like"):
        _same(getattr(fnp, fn)(x), getattr(np, fn)(x))
        _same(getattr(fnp, fn)(x, dtype=np.int32), getattr(np, fn)(x, dtype=np.int32))
    _same(fnp.full_like(x, 3, dtype=np.float32), np.full_like(x, 3, dtype=np.float32))
    assert fnp.empty_like(x).shape == x.shape
    for indexing in ("xy", "ij"):
        _same(
            fnp.meshgrid([1, 2, 3], [4, 5], indexing=indexing),
            np.meshgrid([1, 2, 3], [4, 5], indexing=indexing),
        )
    _same(fnp.array([[1, 2], [3, 4]], dtype=np.float32), np.array([[1, 2], [3, 4]], np.float32))
    _same(fnp.array(3.0, ndmin=2), np.array(3.0, ndmin=2))
    _same(fnp.asarray([1, 2.5]), np.asarray([1, 2.5]))


def test_creation_with_traced_values():
    def f(s):
        arr = fnp.array([[s, 1.0], [2.0, s * s]])
        grid = fnp.meshgrid(fnp.stack([s, 2 * s]), fnp.array([1.0, s, 3.0]), indexing="ij")
        line = fnp.linspace(s, 2 * s + 1.0, 5)
        logs = fnp.logspace(0.0, s, 3, base=2.0)
        return arr, grid, line, fnp.full((2,), s), fnp.full_like(np.zeros(3), s), logs

    s = 0.7
    arr, grid, line, full, full_like, logs = ft.jit(f)(s)
    _same(arr, np.array([[s, 1.0], [2.0, s * s]]))
    _same(grid, np.meshgrid([s, 2 * s], [1.0, s, 3.0], indexing="ij"))
    _same(line, np.linspace(s, 2 * s + 1.0, 5))
    _same(full, np.full(2, s))
    _same(full_like, np.full(3, s))
    np.testing.assert_allclose(logs, np.logspace(0.0, s, 3, base=2.0), rtol=1e-14)
    check_grads(f, (s,), order=2)
    # linspace with array end points, an axis and retstep
    lo, hi = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    got, step = ft.jit(lambda a, b: fnp.linspace(a, b, 4, retstep=True, axis=1))(lo, hi)
    want, want_step = np.linspace(lo, hi, 4, retstep=True, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    np.testing.assert_allclose(step, want_step, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# Derivatives, vmap and jit of every array-valued shape function (fixed, representative args)

X = (3, 4)
FUNCTIONS = {
    "reshape": lambda x: fnp.reshape(x, (2, -1)),
    "ravel": fnp.ravel,
    "transpose": fnp.transpose,
    "swapaxes": lambda x: fnp.swapaxes(x, 0, -1),
    "moveaxis": lambda x: fnp.moveaxis(x[None], 0, -1),
    "rollaxis": lambda x: fnp.rollaxis(x, 1),
    "expand_dims": lambda x: fnp.expand_dims(x, (0, -1)),
    "squeeze": lambda x: fnp.squeeze(x[:, :1]),
    "broadcast_to": lambda x: fnp.broadcast_to(x[:1], (2, 3, 4)),
    "broadcast_arrays": lambda x: fnp.broadcast_arrays(x, x[:, :1])[1],
    "atleast_3d": fnp.atleast_3d,
    "concatenate": lambda x: fnp.concatenate([x, 2 * x[:1]], axis=0),
    "stack": lambda x: fnp.stack([x, x * x], axis=-1),
    "hstack": lambda x: fnp.hstack([x, x]),
    "vstack": lambda x: fnp.vstack([x, x[0]]),
    "dstack": lambda x: fnp.dstack([x, x]),
    "column_stack": lambda x: fnp.column_stack([x[0], x[1]]),
    "split": lambda x: fnp.split(x, [1, 3], axis=1)[1],
    "array_split": lambda x: fnp.array_split(x, 3, axis=1)[0],
    "hsplit": lambda x: fnp.hsplit(x, 2)[1],
    "vsplit": lambda x: fnp.vsplit(x, [2])[0],
    "tile": lambda x: fnp.tile(x, (2, 1, 2)),
    "repeat": lambda x: fnp.repeat(x, 2, axis=0),
    "repeat-counts": lambda x: fnp.repeat(x, [0, 2, 1, 3], axis=1),
    "flip": fnp.flip,
    "fliplr": fnp.fliplr,
    "flipud": fnp.flipud,
    "rot90": lambda x: fnp.rot90(x, 3),
    "roll": lambda x: fnp.roll(x, (1, -5), (0, 1)),
    "pad-constant": lambda x: fnp.pad(x, ((1, 0), (2, 1)), constant_values=1.5),
    "pad-edge": lambda x: fnp.pad(x, 2, mode="edge"),
    "pad-reflect": lambda x: fnp.pad(x, ((2, 1), (3, 5)), mode="reflect"),
    "diag": lambda x: fnp.diag(x[0], -1),
    "diag-extract": lambda x: fnp.diag(x, 1),
    "diagflat": lambda x: fnp.diagflat(x[:2, :2]),
    "diagonal": lambda x: fnp.diagonal(x[None], 0, 2, 1),
    "tril": lambda x: fnp.tril(x, 1),
    "triu": lambda x: fnp.triu(x, -1),
    "take": lambda x: fnp.take(x, np.array([2, 0, 2]), axis=0),
    "take_along_axis": lambda x: fnp.take_along_axis(x, np.array([[0, 3], [1, 1], [2, -1]]), 1),
    "sort": lambda x: fnp.sort(x, axis=0),
    "where": lambda x: fnp.where(x > 0, x, x * x),
    "select": lambda x: fnp.select([x > 1, x < -1], [x, 3 * x], x * x),
}


def _arg(b=0):
    return _distinct(np.random.default_rng(b), X)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_shape_function_derivatives(name):
    check_grads(FUNCTIONS[name], (_arg(),), order=2, seed=2)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_shape_function_vmap_and_jit(name):
    fn = FUNCTIONS[name]
    xs = np.stack([_arg(b) for b in range(3)], axis=2)
    loop = np.stack([np.asarray(fn(xs[..., b])) for b in range(3)], axis=0)
    _same(ft.vmap(fn, in_axes=2)(xs), loop)
    _same(ft.jit(fn)(xs[..., 0]), fn(xs[..., 0]))


def test_sort_gradient_follows_the_permutation():
    x = np.array([3.0, 1.0, 2.0])
    jac = ft.jacrev(fnp.sort)(x)
    np.testing.assert_array_equal(jac, np.eye(3)[np.argsort(x)])
    np.testing.assert_array_equal(ft.jacfwd(fnp.sort)(x), jac)


def test_integer_results_under_transforms():
    x = _arg()
    a = np.sort(x[0])

    def f(x, v):
        return fnp.argsort(x, axis=1), fnp.searchsorted(x[0], v), fnp.searchsorted(a, v, "right")

    vs = np.stack([np.linspace(-2, 2, 5) + b for b in range(3)])
    xs = np.stack([fnp.sort(_arg(b), axis=1) for b in range(3)])
    got = ft.vmap(f)(xs, vs)
    for b in range(3):
        for g, w in zip(got, f(xs[b], vs[b])):
            _same(g[b], w)
    for g, w in zip(ft.jit(f)(xs[0], vs[0]), f(xs[0], vs[0])):
        _same(g, w)


# ---------------------------------------------------------------------------------------------
# Errors: value-dependent shapes cannot be traced


VALUE_DEPENDENT = {
    "unique": lambda x: fnp.unique(x),
    "where-1-arg": lambda x: fnp.where(x > 0),
    "nonzero": lambda x: fnp.nonzero(x),
    "argwhere": lambda x: fnp.argwhere(x),
    "repeat-traced-counts": lambda x: fnp.repeat(x, fnp.argsort(x)),
}


@pytest.mark.parametrize("name", list(VALUE_DEPENDENT))
@pytest.mark.parametrize("transform", [ft.jit, ft.vmap], ids=["jit", "vmap"])
def test_value_dependent_shapes_raise_under_tracing(name, transform):
    x = np.array([1.0, -2.0, 1.0])
    with pytest.raises(ConcretizationError, match="traced"):
        transform(VALUE_DEPENDENT[name])(x[None] if transform is ft.vmap else x)


def test_value_dependent_shapes_under_grad():
    # the differentiated value itself is traced: an error ...
    for name in ("unique", "nonzero", "argwhere"):
        with pytest.raises(ConcretizationError, match="traced"):
            ft.grad(lambda x, name=name: fnp.sum(VALUE_DEPENDENT[name](x)))(np.ones(3))
    # ... but values computed from it without a tangent (a comparison) are concrete under grad,
    # as Python control flow is: the mask's indices are known
    x = np.array([1.0, -2.0, 3.0])
    g = ft.grad(lambda x: fnp.sum(fnp.take(x, fnp.where(x > 0)[0]) ** 2))(x)
    np.testing.assert_array_equal(g, [2.0, 0.0, 6.0])


def test_traced_boolean_mask_indexing_raises_and_points_to_where():
    x = np.array([1.0, -2.0, 3.0])
    for transform in (ft.jit, ft.vmap):
        with pytest.raises(IndexError, match="where"):
            transform(lambda x: x[x > 0])(x if transform is ft.jit else x[None])


def test_value_dependent_functions_work_eagerly():
    x = np.array([3, 1, 3, 2])
    _same(fnp.unique(x, return_counts=True), np.unique(x, return_counts=True))
    _same(fnp.where(x > 1), np.where(x > 1))
    _same(fnp.argwhere(x > 1), np.argwhere(x > 1))
    _same(fnp.flatnonzero(x > 1), np.flatnonzero(x > 1))


def test_errors_match_numpy_kinds():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError):
        fnp.split(x, 4, axis=1)
    with pytest.raises(ValueError):
        fnp.concatenate([x, np.zeros(3)])
    with pytest.raises(np.exceptions.AxisError):
        fnp.flip(x, 2)
    with pytest.raises(ValueError):
        fnp.repeat(x, [1, 2], axis=1)
    with pytest.raises(NotSupportedError):
        fnp.pad(x, 1, mode="median")
    with pytest.raises(ValueError):
        fnp.quantile(x, 1.5)
