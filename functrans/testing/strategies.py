"""Hypothesis strategies for testing numerical functions and their transformations.

Arrays with bounded elements that keep away from given points (kinks, poles), pytrees of them,
well-conditioned and SPD matrices, tangents and cotangents matching a value's structure, in_axes
that fit given arguments, and batches for vmap. Every strategy shrinks towards small, simple
values. This module needs hypothesis (a test dependency); nothing else in functrans does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "functrans.testing.strategies needs hypothesis: pip install hypothesis. (The checks and "
        "properties in functrans.testing work without it.)"
    ) from err

from functrans import tree_util
from functrans.testing._batches import _stack
from functrans.testing._flat import _as_leaf, _is_float

__all__ = [
    "arrays",
    "batched",
    "cotangents_like",
    "in_axes_for",
    "pytrees_of_arrays",
    "shapes",
    "spd_matrices",
    "tangents_like",
    "well_conditioned_matrices",
]

ShapeLike = int | tuple[int, ...] | st.SearchStrategy


def _strategy(x: Any) -> st.SearchStrategy:
    return x if isinstance(x, st.SearchStrategy) else st.just(x)


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, small by default (sizes multiply fast: 4^3 = 64 elements).

    Example:
      >>> from hypothesis import given, settings
      >>> @settings(max_examples=5)
      ... @given(shapes(min_dims=1, max_dims=2))
      ... def test_shapes(shape):
      ...     assert 1 <= len(shape) <= 2 and all(1 <= n <= 4 for n in shape)
      >>> test_shapes()
    """
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


# ---------------------------------------------------------------------------------------------
# Arrays


def _inward(bound: float, dtype: np.dtype, up: bool) -> float:
    """`bound` rounded into the interval in `dtype`'s precision (hypothesis needs exact bounds)."""
    b = np.asarray(bound, dtype)
    if up and float(b) < bound:
        b = np.nextafter(b, np.asarray(np.inf, dtype))
    if not up and float(b) > bound:
        b = np.nextafter(b, np.asarray(-np.inf, dtype))
    return float(b)


def _allowed_intervals(lo: float, hi: float, avoid: Sequence[float], gap: float) -> list:
    """[lo, hi] minus the open balls of radius `gap` around the avoided points."""
    intervals = [(lo, hi)]
    for p in sorted(float(a) for a in avoid):
        cut = []
        for a, b in intervals:
            if b <= p - gap or a >= p + gap:
                cut.append((a, b))
                continue
            if a <= p - gap:
                cut.append((a, p - gap))
            if b >= p + gap:
                cut.append((p + gap, b))
        intervals = cut
    return intervals


def _real_elements(dtype, lo, hi, avoid, min_distance) -> st.SearchStrategy:
    real = np.finfo(dtype).dtype if np.issubdtype(dtype, np.complexfloating) else dtype
    width = 8 * real.itemsize
    pieces = []
    for a, b in _allowed_intervals(lo, hi, avoid, min_distance):
        a, b = _inward(a, real, up=True), _inward(b, real, up=False)
        if a <= b:
            pieces.append(st.floats(a, b, width=width, allow_subnormal=False))
    if not pieces:
        raise ValueError(
            f"arrays: no value in [{lo}, {hi}] is at least {min_distance} from every point of "
            f"avoid={list(avoid)}; widen the bounds or lower min_distance"
        )
    return st.one_of(pieces)


def arrays(
    shape: ShapeLike | None = None,
    dtype: Any = np.float64,
    *,
    min_value: float = -2.0,
    max_value: float = 2.0,
    avoid: Sequence[float] = (),
    min_distance: float = 0.1,
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of a given (or drawn) shape and dtype, with bounded elements kept off given points.

    Every element lies in [min_value, max_value] and at least `min_distance` from each point of
    `avoid` (say 0 for abs or sqrt, the integers for floor): derivatives checked there are the
    smooth ones. For complex dtypes, real and imaginary parts are bounded and the real part keeps
    off the avoided points; integer dtypes take the integers in the bounds; bool any booleans.

    Args:
      shape: an int, a tuple, a strategy of shapes, or None for `shapes()`.
      dtype: a NumPy dtype or a strategy of dtypes.
      min_value, max_value: bounds of the elements.
      avoid: scalar points every element keeps away from.
      min_distance: how far away.

    Returns:
      A strategy of NumPy arrays.

    Raises:
      ValueError: no value satisfies the bounds and `avoid`.

    Example:
      >>> from hypothesis import given, settings
      >>> from functrans.testing import check_grads
      >>> @settings(max_examples=5)
      ... @given(arrays((3, 4), np.float32, min_value=0.0, avoid=[1.0]))
      ... def test_log1p(x):
      ...     check_grads(fnp.log1p, (x,))
      >>> test_log1p()
    """
    if not _allowed_intervals(min_value, max_value, avoid, min_distance):
        raise ValueError(
            f"arrays: no value in [{min_value}, {max_value}] is at least {min_distance} from "
            f"every point of avoid={list(avoid)}; widen the bounds or lower min_distance"
        )
    shape_st = shapes() if shape is None else _strategy(shape)
    shape_st = shape_st.map(lambda s: (s,) if isinstance(s, (int, np.integer)) else tuple(s))
    return st.tuples(shape_st, _strategy(dtype).map(np.dtype)).flatmap(
        lambda sd: _arrays(sd[0], sd[1], min_value, max_value, avoid, min_distance)
    )


def _arrays(shape, dtype, lo, hi, avoid, gap) -> st.SearchStrategy[np.ndarray]:
    if dtype == np.bool_:
        return hnp.arrays(dtype, shape, elements=st.booleans())
    if np.issubdtype(dtype, np.integer):
        allowed = _allowed_intervals(lo, hi, avoid, gap)
        ints = [st.integers(int(np.ceil(a)), int(np.floor(b))) for a, b in allowed if a <= b]
        return hnp.arrays(dtype, shape, elements=st.one_of(ints))
    real = _real_elements(dtype, lo, hi, avoid, gap)
    if np.issubdtype(dtype, np.complexfloating):
        imag = _real_elements(dtype, lo, hi, (), 0.0)
        return st.tuples(
            hnp.arrays(np.finfo(dtype).dtype, shape, elements=real),
            hnp.arrays(np.finfo(dtype).dtype, shape, elements=imag),
        ).map(lambda ri: (ri[0] + 1j * ri[1]).astype(dtype))
    return hnp.arrays(dtype, shape, elements=real)


def pytrees_of_arrays(
    leaves: st.SearchStrategy | None = None,
    *,
    max_depth: int = 2,
    max_children: int = 3,
) -> st.SearchStrategy[Any]:
    """Nested dicts, tuples and lists (each non-empty) with array leaves.

    Args:
      leaves: the strategy of leaves; default `arrays()` (float64, drawn shapes).
      max_depth: how deep containers nest (0: a single leaf).
      max_children: the most children of one container.

    Example:
      >>> from hypothesis import given, settings
      >>> @settings(max_examples=5)
      ... @given(pytrees_of_arrays(arrays(shape=(2,))))   # e.g. {'a': (array, [array])}
      ... def test_leaves(tree):
      ...     assert all(leaf.shape == (2,) for leaf in tree_util.tree_leaves(tree))
      >>> test_leaves()
    """
    leaves = arrays() if leaves is None else leaves
    keys = st.sampled_from(["a", "b", "c", "w", "bias"])

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=1, max_size=max_children),
            st.lists(children, min_size=1, max_size=max_children).map(tuple),
            st.dictionaries(keys, children, min_size=1, max_size=max_children),
        )

    tree = leaves
    for _ in range(max_depth):
        tree = st.one_of(leaves, extend(tree))
    return tree


# ---------------------------------------------------------------------------------------------
# Matrices


def _orthogonal(n: int) -> st.SearchStrategy[np.ndarray]:
    # Q of a QR factorisation is orthogonal for any square matrix, singular ones included.
    return hnp.arrays(np.float64, (n, n), elements=st.floats(-1, 1, width=64)).map(
        lambda a: np.linalg.qr(a + np.eye(n) * 1e-3)[0]
    )


def _spectrum(n: int, cond_max: float) -> st.SearchStrategy[np.ndarray]:
    # singular values in [1, 0.99 cond_max]: the 1% margin absorbs rounding to float32
    top = 1.0 + 0.99 * (cond_max - 1.0)
    return hnp.arrays(np.float64, (n,), elements=st.floats(1.0, top, width=64))


def well_conditioned_matrices(
    n: int | st.SearchStrategy[int], cond_max: float = 10.0, dtype: Any = np.float64
) -> st.SearchStrategy[np.ndarray]:
    """Square matrices U diag(s) V^T with 2-norm condition number at most `cond_max`.

    Singular values lie in [1, cond_max] (so the norm is at most cond_max and the inverse's at
    most 1; up to rounding to `dtype`); U and V are orthogonal. Safe inputs for solve, inv, det
    and their derivatives.

    Example:
      >>> from hypothesis import given, settings
      >>> from functrans.testing import check_grads
      >>> @settings(max_examples=5)
      ... @given(well_conditioned_matrices(3, cond_max=100.0))
      ... def test_inv(a):
      ...     check_grads(fnp.linalg.inv, (a,))
      >>> test_inv()
    """
    if cond_max < 1:
        raise ValueError(f"well_conditioned_matrices: cond_max must be >= 1, got {cond_max}")
    return _strategy(n).flatmap(
        lambda k: st.tuples(_orthogonal(k), _spectrum(k, cond_max), _orthogonal(k)).map(
            lambda usv: ((usv[0] * usv[1]) @ usv[2].T).astype(dtype)
        )
    )


def spd_matrices(
    n: int | st.SearchStrategy[int], cond_max: float = 100.0, dtype: Any = np.float64
) -> st.SearchStrategy[np.ndarray]:
    """Symmetric positive definite matrices Q diag(lambda) Q^T, eigenvalues in [1, cond_max].

    Exactly symmetric (as stored) and safely positive definite: Cholesky succeeds in float32 too.

    Example:
      >>> from hypothesis import given, settings
      >>> from functrans.testing import check_grads
      >>> @settings(max_examples=5)
      ... @given(spd_matrices(4))
      ... def test_cholesky(a):
      ...     check_grads(fnp.linalg.cholesky, (a,))
      >>> test_cholesky()
    """
    if cond_max < 1:
        raise ValueError(f"spd_matrices: cond_max must be >= 1, got {cond_max}")

    def build(ql):
        q, lam = ql
        a = ((q * lam) @ q.T).astype(dtype)
        return (a + a.T) / np.asarray(2, dtype)

    return _strategy(n).flatmap(
        lambda k: st.tuples(_orthogonal(k), _spectrum(k, cond_max)).map(build)
    )


# ---------------------------------------------------------------------------------------------
# Tangents, in_axes and batches for a given value


def _like(value: Any, min_value: float, max_value: float) -> st.SearchStrategy[Any]:
    pairs, tree = tree_util.tree_flatten(value)
    leaves = []
    for x in pairs:
        x = np.asarray(_as_leaf(x))
        if _is_float(x):
            leaves.append(arrays(x.shape, x.dtype, min_value=min_value, max_value=max_value))
        else:
            leaves.append(st.just(np.zeros(x.shape, x.dtype)))
    return st.tuples(*leaves).map(lambda ls: tree_util.tree_unflatten(tree, list(ls)))


def tangents_like(
    value: Any, *, min_value: float = -1.0, max_value: float = 1.0
) -> st.SearchStrategy[Any]:
    """Tangents for `value` (a pytree of arrays, e.g. a tuple of arguments): the same structure,
    shapes and dtypes; integer and boolean leaves get zeros (they are not differentiated).

    Example:
      >>> from hypothesis import given, settings, strategies as st
      >>> from functrans.testing import assert_jvp_matches_fd
      >>> f = lambda x, w: fnp.tanh(x @ w)
      >>> args = (np.ones((2, 3)), np.full((3, 2), 0.5))
      >>> @settings(max_examples=5)
      ... @given(st.data())
      ... def test(data):
      ...     t = data.draw(tangents_like(args))
      ...     assert_jvp_matches_fd(f, args, t)
      >>> test()
    """
    return _like(value, min_value, max_value)


def cotangents_like(
    value: Any, *, min_value: float = -1.0, max_value: float = 1.0
) -> st.SearchStrategy[Any]:
    """Cotangents for an output `value`: the same structure, shapes and dtypes (zeros at integer
    and boolean leaves). Pass them to `vjp`'s pullback or `assert_vjp_matches_jvp`.

    Example:
      >>> from hypothesis import given, settings, strategies as st
      >>> from functrans.testing import assert_vjp_matches_jvp
      >>> f = lambda x, w: fnp.tanh(x @ w)
      >>> args = (np.ones((2, 3)), np.full((3, 2), 0.5))
      >>> @settings(max_examples=5)
      ... @given(st.data())
      ... def test(data):
      ...     t = data.draw(tangents_like(args))
      ...     u = data.draw(cotangents_like(f(*args)))
      ...     assert_vjp_matches_jvp(f, args, cotangents=u, tangents=t)
      >>> test()
    """
    return _like(value, min_value, max_value)


def in_axes_for(
    args: tuple,
    *,
    batch_size: int | None = None,
    allow_none: bool = True,
    allow_negative: bool = True,
) -> st.SearchStrategy[Any]:
    """vmap in_axes that fit the positional arguments `args`: a tuple with one entry per
    argument, each an int, None or a pytree prefix of that argument, at least one leaf mapped.

    With `batch_size=None`, `args` are one example's arguments and an axis says where a batch
    axis is to be inserted (for a leaf of rank r, any of -(r+1)..r): build the batch with
    `batched(args, in_axes)`. With `batch_size=n`, `args` are already batched and each mapped
    leaf gets an axis of length n.

    Example:
      >>> from hypothesis import given, settings, strategies as st
      >>> from functrans.testing import assert_vmap_matches_loop
      >>> f = lambda x, w: fnp.tanh(x @ w)
      >>> args = (np.ones((2, 3)), np.full((3, 2), 0.5))
      >>> @settings(max_examples=5)
      ... @given(st.data())
      ... def test(data):
      ...     in_axes = data.draw(in_axes_for(args))
      ...     batch = data.draw(batched(args, in_axes))
      ...     assert_vmap_matches_loop(f, batch, in_axes)
      >>> test()
    """
    args = tuple(args)

    def choices(sub: Any) -> st.SearchStrategy:
        leaves = [np.shape(_as_leaf(x)) for x in tree_util.tree_leaves(sub)]
        if batch_size is None:
            r = min((len(s) for s in leaves), default=0)
            ints = list(range(-(r + 1), r + 1))
        else:
            common = None
            for s in leaves:
                ok = {a for a in range(-len(s), len(s)) if s[a] == batch_size}
                common = ok if common is None else common & ok
            ints = sorted(common or set())
        if not allow_negative:
            ints = [a for a in ints if a >= 0]
        options = []
        if leaves and ints:
            options.append(st.sampled_from(sorted(ints, key=abs)))
        if allow_none or not leaves:
            options.append(st.none())
        node = tree_util.tree_flatten(sub)[1]
        children = node.children()
        if not tree_util.treedef_is_leaf(node) and children and sub is not None:
            options.append(container(sub))
        return st.one_of(options) if options else st.none()

    def container(sub: Any) -> st.SearchStrategy:
        if isinstance(sub, dict):
            keys = list(sub)
            return st.tuples(*[choices(sub[k]) for k in keys]).map(
                lambda vs: type(sub)(zip(keys, vs, strict=True))
            )
        if isinstance(sub, tuple) and hasattr(sub, "_fields"):
            return st.tuples(*[choices(c) for c in sub]).map(lambda vs: type(sub)(*vs))
        if isinstance(sub, (tuple, list)):
            return st.tuples(*[choices(c) for c in sub]).map(type(sub))
        return st.none()

    def mapped(in_axes) -> bool:
        return any(a is not None for a in tree_util.broadcast_prefix(in_axes, args))

    return st.tuples(*[choices(a) for a in args]).filter(mapped)


def batched(
    args: tuple,
    in_axes: Any = 0,
    size: int = 3,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
) -> st.SearchStrategy[tuple]:
    """A batch of `size` examples for vmap, stacked along `in_axes`: `args` is the first example,
    the others are drawn with the same shapes and dtypes. Unmapped (None) leaves stay `args`'.

    New float elements lie in [min_value, max_value], by default the range of that leaf's own
    values in `args` (so a positive leaf stays positive); integer and boolean leaves are copied.

    Example:
      >>> from hypothesis import given, settings, strategies as st
      >>> x, w = np.ones((2, 3)), np.full((3, 2), 0.5)
      >>> @settings(max_examples=5)
      ... @given(batched((x, w), in_axes=(0, None), size=4))
      ... def test(batch):
      ...     xs, ws = batch
      ...     assert xs.shape == (4, 2, 3) and ws is w   # x stacked on axis 0, w unmapped
      >>> test()
    """
    args = tuple(args)
    leaves, tree = tree_util.tree_flatten(args)

    def other(x):
        x = np.asarray(_as_leaf(x))
        if not _is_float(x) or x.size == 0:
            return st.just(x)
        real = np.real(x)
        lo = float(np.min(real)) if min_value is None else min_value
        hi = float(np.max(real)) if max_value is None else max_value
        if lo == hi:
            return st.just(x)
        return arrays(x.shape, x.dtype, min_value=lo, max_value=hi)

    example = st.tuples(*[other(x) for x in leaves]).map(
        lambda ls: tree_util.tree_unflatten(tree, list(ls))
    )
    return st.lists(example, min_size=size - 1, max_size=size - 1).map(
        lambda more: _stack([args] + more, in_axes)
    )
