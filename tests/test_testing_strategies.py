"""functrans.testing.strategies draw what they promise: shapes, dtypes, bounds, distance from
avoided points, SPD and condition-number bounds, matching tangents, and in_axes vmap accepts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import assert_vmap_matches_loop
from functrans.testing import strategies as fts

FLOATS = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", FLOATS + [np.complex128, np.int32, np.bool_])
@given(shape=fts.shapes(), data=st.data())
def test_arrays_have_the_shape_dtype_and_bounds(dtype, shape, data):
    x = data.draw(fts.arrays(shape, dtype, min_value=-0.5, max_value=3.0))
    assert x.shape == shape and x.dtype == dtype
    if dtype is not np.bool_:
        real_parts = [np.real(x), np.imag(x)] if dtype is np.complex128 else [x]
        for part in real_parts:
            assert np.all((part >= -0.5) & (part <= 3.0))


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_arrays_keep_away_from_avoided_points(dtype, data):
    avoid = data.draw(st.lists(st.floats(-2, 2), min_size=1, max_size=3))
    x = data.draw(fts.arrays((4, 3), dtype, avoid=avoid, min_distance=0.25))
    distance = np.min(np.abs(x.astype(np.float64)[..., None] - np.asarray(avoid)), axis=-1)
    assert np.all(distance >= 0.25)
    assert np.all(np.abs(x) <= 2.0)


@given(
    fts.arrays(st.integers(0, 5), np.int64, min_value=-3, max_value=3, avoid=[0], min_distance=1)
)
def test_integer_arrays_respect_avoid_and_int_shapes(x):
    assert x.ndim == 1 and np.all(x != 0) and np.all(np.abs(x) <= 3)


def test_impossible_avoid_is_an_error():
    with pytest.raises(ValueError, match="no value in"):
        fts.arrays((2,), min_value=0.0, max_value=1.0, avoid=[0.5], min_distance=1.0)


@given(fts.shapes(min_dims=1, max_dims=2, max_side=3))
def test_shapes_are_bounded(shape):
    assert 1 <= len(shape) <= 2 and all(1 <= n <= 3 for n in shape)


@given(fts.pytrees_of_arrays(fts.arrays((2,), np.float32), max_depth=2))
def test_pytrees_nest_containers_with_array_leaves(tree):
    leaves = ft.tree_util.tree_leaves(tree)
    assert leaves and all(isinstance(x, np.ndarray) and x.shape == (2,) for x in leaves)
    assert all(x.dtype == np.float32 for x in leaves)

    def depth(t):
        if isinstance(t, dict):
            return 1 + max(depth(v) for v in t.values())
        if isinstance(t, (tuple, list)):
            return 1 + max(depth(v) for v in t)
        return 0

    assert depth(tree) <= 2


@pytest.mark.parametrize("dtype", FLOATS)
@given(n=st.integers(1, 5), cond_max=st.sampled_from([1.0, 10.0, 1e3]), data=st.data())
def test_well_conditioned_matrices_meet_the_bound(dtype, n, cond_max, data):
    a = data.draw(fts.well_conditioned_matrices(n, cond_max, dtype))
    assert a.shape == (n, n) and a.dtype == dtype
    s = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    # exact up to rounding to dtype (cond_max = 1 leaves no room for a margin)
    assert s[0] / s[-1] <= cond_max * (1 + 50 * np.finfo(dtype).eps)
    assert s[-1] >= 1 - 1e-5 and s[0] <= cond_max * (1 + 1e-5)


@pytest.mark.parametrize("dtype", FLOATS)
@given(n=st.integers(1, 5), data=st.data())
def test_spd_matrices_are_spd(dtype, n, data):
    a = data.draw(fts.spd_matrices(n, cond_max=50.0, dtype=dtype))
    assert a.shape == (n, n) and a.dtype == dtype
    np.testing.assert_array_equal(a, a.T)
    eig = np.linalg.eigvalsh(a.astype(np.float64))
    assert np.all(eig > 0.99) and eig[-1] / eig[0] <= 50.0 * 1.01
    np.linalg.cholesky(a)  # raises if not positive definite


def _mixed_args():
    return st.tuples(
        fts.arrays(fts.shapes(0, 2), np.float32),
        fts.pytrees_of_arrays(fts.arrays(fts.shapes(1, 2), np.float64), max_depth=1),
        fts.arrays((2,), np.int32, min_value=0, max_value=5),
    )


@given(args=_mixed_args(), data=st.data())
def test_tangents_and_cotangents_match_the_value(args, data):
    for like in (fts.tangents_like, fts.cotangents_like):
        t = data.draw(like(args))
        assert ft.tree_util.tree_structure(t) == ft.tree_util.tree_structure(args)
        for x, tx in zip(ft.tree_util.tree_leaves(args), ft.tree_util.tree_leaves(t), strict=True):
            assert tx.shape == x.shape and tx.dtype == x.dtype
            if x.dtype.kind not in "fc":
                assert np.all(tx == 0)
            else:
                assert np.all(np.abs(tx) <= 1.0)
    # the tangents are accepted by jvp as they are
    floats = (args[0], args[1])
    t = data.draw(fts.tangents_like(floats))
    ft.jvp(
        lambda a, b: fnp.sum(a) + sum(fnp.sum(v) for v in ft.tree_util.tree_leaves(b)), floats, t
    )


def _summed(x, tree, n):
    total = fnp.sum(x) * 2.0
    for leaf in ft.tree_util.tree_leaves(tree):
        total = total + fnp.sum(fnp.sin(leaf))
    return total + fnp.sum(n)


@given(args=_mixed_args(), data=st.data())
def test_in_axes_for_examples_run_under_vmap(args, data):
    in_axes = data.draw(fts.in_axes_for(args))
    assert isinstance(in_axes, tuple) and len(in_axes) == len(args)
    flat = ft.tree_util.broadcast_prefix(in_axes, args)
    assert any(a is not None for a in flat)
    batch = data.draw(fts.batched(args, in_axes, size=3))
    for x, b, a in zip(ft.tree_util.tree_leaves(args), ft.tree_util.tree_leaves(batch), flat):
        if a is None:
            np.testing.assert_array_equal(b, x)
        else:
            assert b.shape[a] == 3 and b.ndim == np.ndim(x) + 1
            np.testing.assert_array_equal(np.take(b, 0, axis=a), x)  # args is the first example
    out = ft.vmap(_summed, in_axes=in_axes)(*batch)
    assert np.shape(out) == (3,)
    assert_vmap_matches_loop(_summed, batch, in_axes)


@given(data=st.data())
def test_in_axes_for_batched_args_use_axes_of_the_batch_size(data):
    args = (np.ones((4, 3)), {"w": np.ones((3, 2)), "b": np.ones(5)}, np.ones(3))
    in_axes = data.draw(fts.in_axes_for(args, batch_size=3))
    flat = ft.tree_util.broadcast_prefix(in_axes, args)
    for x, a in zip(ft.tree_util.tree_leaves(args), flat, strict=True):
        assert a is None or x.shape[a] == 3
    assert ft.vmap(_summed, in_axes=in_axes)(*args).shape == (3,)


def test_in_axes_cover_none_negative_and_nested_prefixes():
    args = (np.ones((2, 3)), {"a": np.ones(2), "b": (np.ones(()), np.ones((2, 2)))})
    seen = set()

    @given(fts.in_axes_for(args))
    def collect(in_axes):
        seen.add(repr(in_axes))

    collect()
    flat_seen = " ".join(seen)
    assert "None" in flat_seen and "-" in flat_seen and "{" in flat_seen
    with_positive = set()

    @given(fts.in_axes_for(args, allow_none=False, allow_negative=False))
    def collect_positive(in_axes):
        with_positive.add(repr(in_axes))
        assert "None" not in repr(in_axes) and "-" not in repr(in_axes)

    collect_positive()
