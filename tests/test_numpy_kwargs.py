"""NumPy keyword arguments and tracer attributes of functrans.numpy: concatenate/stack with dtype
and casting, take with mode="wrap"/"clip", max/min/sum/prod with initial and where, astype with
copy, and x.mT / x.itemsize / x.nbytes. Values, dtypes, shapes and errors against NumPy on
concrete inputs (hypothesis), derivatives against central differences, vmap against a loop and
jit against eager."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import check_grads


def _same(got, want, exact=True, zero_sign=True):
    """got equals want: shape, dtype and values (exactly, and with the sign of zero unless told
    otherwise, or approximately if `exact` is False: sums in another order round differently)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"got {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    )
    if exact or want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want)
        if zero_sign and want.dtype.kind == "f":
            number = ~np.isnan(want)
            np.testing.assert_array_equal(np.signbit(got[number]), np.signbit(want[number]))
    else:
        tol = 1e-5 if want.dtype.itemsize <= 4 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _outcome(fn):
    """fn()'s value, or the class of the exception it raised."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - compared with NumPy's
        return type(e)


def _same_outcome(got_fn, want_fn, exact=True):
    got, want = _outcome(got_fn), _outcome(want_fn)
    if isinstance(want, type):
        assert got is want, f"NumPy raised {want.__name__}, functrans gave {got!r}"
    else:
        assert not isinstance(got, type), f"functrans raised {got.__name__}, NumPy gave {want!r}"
        _same(got, want, exact)


def _distinct(rng, shape):
    """Values 0.5 apart up to a jitter of 0.05: no ties, and (for an even count) none near an
    odd multiple of 0.25."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.5 - n * 0.25 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


def _loop(f, *xs):
    return np.stack([np.asarray(f(*args)) for args in zip(*xs, strict=True)])


_shapes = array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
CASTINGS = ["no", "equiv", "safe", "same_kind", "unsafe"]
DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.float32, np.float64, np.complex128]


def _values(rng, shape, dtype):
    return (rng.standard_normal(shape) * 4).astype(dtype)


# ---------------------------------------------------------------------------------------------
# concatenate and stack: dtype and casting


@settings(max_examples=50)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_concatenate_and_stack_dtype_casting_match_numpy(data, seed):
    rng = np.random.default_rng(seed)
    shape = data.draw(_shapes)
    in_dtypes = data.draw(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=3))
    arrays = [_values(rng, shape, d) for d in in_dtypes]
    dtype = data.draw(st.sampled_from([None, *DTYPES]))
    casting = data.draw(st.sampled_from(CASTINGS))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    _same_outcome(
        lambda: fnp.concatenate(arrays, axis, dtype=dtype, casting=casting),
        lambda: np.concatenate(arrays, axis, dtype=dtype, casting=casting),
    )
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    _same_outcome(
        lambda: fnp.stack(arrays, axis, dtype=dtype, casting=casting),
        lambda: np.stack(arrays, axis, dtype=dtype, casting=casting),
    )


def test_concatenate_casting_errors_are_numpys():
    x, i = np.arange(3.0), np.arange(2)
    with pytest.raises(TypeError, match="from dtype\\('float64'\\) to dtype\\('int64'\\)"):
        fnp.concatenate([x, i], dtype=np.int64)  # float to int is not 'same_kind'
    with pytest.raises(TypeError, match="according to the rule 'no'"):
        fnp.concatenate([x, i], casting="no")  # int64 would be cast to the common float64
    with pytest.raises(ValueError, match="casting must be one of"):
        fnp.stack([x, x], casting="sometimes")
    _same(fnp.concatenate([x, i], dtype=np.int64, casting="unsafe"), np.array([0, 1, 2, 0, 1]))
    # each input is cast straight to dtype: through float64 this int64 would round twice, to
    # 2**60 (just above a float32 midpoint, it rounds up once)
    big = np.array([2**60 + 2**36 + 1, 3])
    _same(
        fnp.concatenate([big, np.ones(1)], dtype=np.float32),
        np.concatenate([big, np.ones(1)], dtype=np.float32),
    )


def test_concatenate_dtype_under_grad_vmap_jit():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 2)).astype(np.float32)

    def f(x, y):
        return fnp.concatenate([x, y], axis=1, dtype=np.float64) * 2.0

    check_grads(f, (x, y.astype(np.float64)), order=2)
    check_grads(lambda x: fnp.stack([x, 3.0 * x], axis=-1, dtype=np.float64), (x,), order=2)
    _same(ft.jit(f)(x, y), f(x, y))
    xs, ys = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2)).astype(np.float32)
    _same(ft.vmap(f)(xs, ys), _loop(f, xs, ys))
    g = ft.jit(lambda x, y: fnp.stack([x, y], dtype=np.float32, casting="same_kind"))
    _same(g(x[:, :2], y), np.stack([x[:, :2], y], dtype=np.float32))
    # the casting rule is checked on avals, so a traced float into an int dtype still fails
    with pytest.raises(TypeError, match="same_kind"):
        ft.jit(lambda x: fnp.concatenate([x, x], dtype=np.int32))(x)


# ---------------------------------------------------------------------------------------------
# take: mode="raise" / "wrap" / "clip"


@settings(max_examples=50)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_take_modes_match_numpy(data, seed):
    rng = np.random.default_rng(seed)
    shape = data.draw(_shapes)
    a = rng.standard_normal(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = a.size if axis is None else shape[axis]
    idx_shape = data.draw(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    indices = rng.integers(-3 * n - 2, 3 * n + 3, idx_shape)
    mode = data.draw(st.sampled_from(["raise", "wrap", "clip"]))
    _same_outcome(
        lambda: fnp.take(a, indices, axis, mode=mode), lambda: np.take(a, indices, axis, mode=mode)
    )
    scalar = int(indices.reshape(-1)[0]) if indices.size else 0
    _same_outcome(
        lambda: fnp.take(a, scalar, axis, mode=mode), lambda: np.take(a, scalar, axis, mode=mode)
    )
    if mode != "raise":  # traced indices: staged, and batched over a stack of index arrays
        _same(
            ft.jit(lambda i: fnp.take(a, i, axis, mode=mode))(indices),
            np.take(a, indices, axis, mode=mode),
        )
        stacked = np.stack([indices, indices + n + 1, -indices])
        got = ft.vmap(lambda i: fnp.take(a, i, axis, mode=mode))(stacked)
        _same(got, _loop(lambda i: np.take(a, i, axis, mode=mode), stacked))


def test_take_index_conversion_and_errors_are_numpys():
    a = np.arange(5.0) * 1.5
    # booleans are the indices 0 and 1 (not a mask), Python sequences of numbers convert
    for indices in (np.array([True, False]), [1.7, 0], np.array([1, 2], np.uint8)):
        _same(fnp.take(a, indices), np.take(a, indices))
    assert type(fnp.take(a, 2, mode="clip")) is np.float64  # a NumPy scalar, as NumPy's
    _same(fnp.take(a, 2, mode="clip"), np.take(a, 2, mode="clip"))
    with pytest.raises(TypeError, match="according to the rule 'same_kind'"):
        fnp.take(a, np.array([1.0, 0.0]))  # a float array does not cast to intp
    with pytest.raises(ValueError, match="clipmode must be one of"):
        fnp.take(a, [1], mode="bounce")
    for mode in ("raise", "wrap", "clip"):
        with pytest.raises(IndexError, match="non-empty take from an empty"):
            fnp.take(np.zeros((2, 0)), [0], axis=1, mode=mode)
        _same(fnp.take(np.zeros((2, 0)), [], axis=1, mode=mode), np.zeros((2, 0)))
    with pytest.raises(IndexError, match="out of bounds"):
        fnp.take(a, [5])
    with pytest.raises(TypeError, match="same_kind"):
        ft.jit(lambda i: fnp.take(a, i, mode="wrap"))(np.array([0.5]))
    # traced: booleans are indices too, and a list may hold a traced index
    flags = np.array([True, False, True])
    _same(ft.jit(lambda i: fnp.take(a, i))(flags), np.take(a, flags))
    _same(ft.jit(lambda i: fnp.take(a, [i, -6], mode="wrap"))(np.int64(7)), a[[2, 4]])


@pytest.mark.parametrize("mode", ["wrap", "clip"])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_take_wrap_clip_derivatives(mode, axis):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    indices = np.array([[-9, -1, 0], [3, 4, 11]])  # out of range both ways, and repeated

    def f(a):
        return fnp.take(a, indices, axis, mode=mode) ** 2

    check_grads(f, (a,), order=2)
    # d/da sum(take(a, i)) counts how often each entry is taken
    counts = np.zeros(a.size if axis is None else a.shape[axis])
    np.add.at(counts, np.take(np.arange(counts.size), indices, mode=mode), 1.0)
    grad = ft.grad(lambda a: fnp.sum(fnp.take(a, indices, axis, mode=mode)))(a)
    if axis is None:
        want = counts.reshape(a.shape)
    else:
        want = np.broadcast_to(np.expand_dims(counts, 1 - axis % 2), a.shape)
    _same(grad, want)


@pytest.mark.parametrize("mode", ["wrap", "clip"])
def test_take_wrap_clip_vmap_and_jit_over_the_array(mode):
    rng = np.random.default_rng(2)
    a_s = rng.standard_normal((5, 3, 4))
    i_s = rng.integers(-10, 10, (5, 2))

    def f(a, i):
        return fnp.take(a, i, axis=1, mode=mode)

    _same(ft.vmap(f)(a_s, i_s), _loop(f, a_s, i_s))
    _same(ft.vmap(f, in_axes=(0, None))(a_s, i_s[0]), _loop(lambda a: f(a, i_s[0]), a_s))
    _same(ft.jit(f)(a_s[0], i_s[0]), f(a_s[0], i_s[0]))
    _same(ft.jit(f)(a_s[0], i_s[0]), np.take(a_s[0], i_s[0], axis=1, mode=mode))


# ---------------------------------------------------------------------------------------------
# max / min / amax / amin / sum / prod: initial and where

EXTREMA = ["max", "min", "amax", "amin"]


def _mask(data, rng, shape):
    """A where argument that broadcasts to shape: True, or a boolean array of shape or of a
    suffix of it with some sides 1, or a Python list."""
    kind = data.draw(st.sampled_from(["full", "broadcast", "list", "true"]))
    if kind == "true":
        return True
    if kind == "broadcast":
        k = data.draw(st.integers(0, len(shape)))
        sub = tuple(n if data.draw(st.booleans()) else 1 for n in shape[len(shape) - k :])
        return rng.random(sub) < 0.6
    mask = rng.random(shape) < 0.6
    return mask.tolist() if kind == "list" else mask


@pytest.mark.parametrize("name", EXTREMA + ["sum", "prod"])
@settings(max_examples=50)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_initial_and_where_match_numpy(name, data, seed):
    rng = np.random.default_rng(seed)
    shape = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4) | st.just(()))
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.int32, np.int8, np.bool_]))
    x = _values(rng, shape, dtype)
    if dtype == np.float64 and x.size and data.draw(st.booleans()):
        x.reshape(-1)[0] = np.nan
    nd = len(shape)
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-nd, nd - 1) if nd else st.none(),
            st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple)
            if nd
            else st.none(),
        )
    )
    initial = data.draw(
        st.one_of(st.floats(-3, 3, width=32), st.integers(-3, 3), st.just(300), st.none())
    )
    where = _mask(data, rng, shape)
    keepdims = data.draw(st.booleans())
    fn, np_fn = getattr(fnp, name), getattr(np, name)
    _same_outcome(
        lambda: fn(x, axis=axis, keepdims=keepdims, initial=initial, where=where),
        lambda: np_fn(x, axis=axis, keepdims=keepdims, initial=initial, where=where),
        exact=name not in ("sum", "prod"),
    )


def test_initial_and_where_errors_and_edge_cases_are_numpys():
    x = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, np.nan]])
    m = np.array([[True, False, True], [False, False, False]])
    for name in ("max", "min"):
        with pytest.raises(ValueError, match="to use a where mask one has to specify 'initial'"):
            getattr(fnp, name)(x, where=m)
        with pytest.raises(ValueError, match="zero-size array"):
            getattr(fnp, name)(np.zeros((0, 3)), axis=0)
        # where=True is no mask (but a True array is, as in NumPy)
        _same(getattr(fnp, name)(x[:, :2], where=True), getattr(np, name)(x[:, :2]))
        with pytest.raises(ValueError, match="specify 'initial'"):
            getattr(fnp, name)(x, where=np.ones(x.shape, bool))
        # an empty reduction is `initial`; masked NaN is ignored, unmasked NaN wins
        _same(
            getattr(fnp, name)(np.zeros((0, 3)), axis=0, initial=1.5),
            getattr(np, name)(np.zeros((0, 3)), axis=0, initial=1.5),
        )
        _same(getattr(fnp, name)(x, where=m, initial=0.0), getattr(np, name)(x, where=m, initial=0))
        _same(getattr(fnp, name)(x, initial=0.0), getattr(np, name)(x, initial=0.0))
    with pytest.raises(TypeError, match="to dtype\\('bool'\\) according to the rule 'safe'"):
        fnp.max(x, where=np.array([1, 0, 1]), initial=0.0)
    with pytest.raises(OverflowError, match="out of bounds for int8"):
        fnp.max(np.arange(3, dtype=np.int8), initial=300)
    _same(fnp.max(np.arange(3), initial=2.5), np.max(np.arange(3), initial=2.5))  # truncated
    _same(fnp.sum(np.arange(3, dtype=np.int8), initial=2.5), np.int64(5))
    _same(fnp.sum(np.arange(3.0), where=None), np.sum(np.arange(3.0), where=None))  # all False
    # NumPy's reduction starts from `initial` and the element wins exact ties, so the sign of 0
    _same(fnp.max(np.array([-0.0]), initial=0.0), np.max(np.array([-0.0]), initial=0.0))
    _same(fnp.min(np.array([0.0]), initial=-0.0), np.min(np.array([0.0]), initial=-0.0))


CASES = {
    # name: (function, keyword arguments, masked?, initial); x's values are 0.5 apart, and the
    # initials k/2 + 1/4 are never close to one
    "max": ("max", {}, False, -0.25),
    "max-axis1": ("max", {"axis": 1}, False, 0.25),
    "amin-where-axis0-keepdims": ("amin", {"axis": 0, "keepdims": True}, True, 0.75),
    "min-where": ("min", {}, True, 0.25),
    "amax-where-axes02": ("amax", {"axis": (0, 2)}, True, -1.25),
    "sum-where": ("sum", {"axis": -1}, True, 0.5),
    "prod-where": ("prod", {"axis": 0}, True, 2.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_initial_and_where_derivatives(case):
    name, kwargs, masked, initial = CASES[case]
    rng = np.random.default_rng(3)
    x = _distinct(rng, (3, 4, 2))
    if name == "prod":
        x = rng.uniform(0.5, 1.5, x.shape) * rng.choice([-1.0, 1.0], x.shape)
    mask = rng.random(x.shape) < 0.6 if masked else True

    def f(x):
        return getattr(fnp, name)(x, **kwargs, initial=initial, where=mask)

    want = getattr(np, name)(x, **kwargs, initial=initial, where=mask)
    _same(f(x), want, exact=name not in ("sum", "prod"))
    check_grads(f, (x,), order=2)
    if name not in ("sum", "prod"):
        # an extremum's derivative is one-hot on the chosen entry, and zero where initial wins
        ct = rng.standard_normal(np.shape(want))
        grad = ft.grad(lambda x: fnp.sum(f(x) * ct))(x)
        want = _extremum_grad(x, kwargs.get("axis"), mask, initial, ct, "max" in name)
        _same(grad, want, zero_sign=False)  # (0 * ct is -0.0 where ct < 0)


def _extremum_grad(x, axis, mask, initial, ct, is_max):
    """The gradient of sum(ct * extremum) by brute force: for each output, the masked-in entry
    that beats initial and all the others gets that output's ct."""
    axes = tuple(range(x.ndim)) if axis is None else tuple(np.atleast_1d(axis) % x.ndim)
    kept = [d for d in range(x.ndim) if d not in axes]
    mask = np.broadcast_to(mask, x.shape)
    ct = np.reshape(ct, [x.shape[d] for d in kept])
    grad = np.zeros_like(x)
    for out in np.ndindex(*ct.shape):
        best, chosen = initial, None
        for pos in np.ndindex(*x.shape):
            if tuple(pos[d] for d in kept) != out or not mask[pos]:
                continue
            if (x[pos] > best) if is_max else (x[pos] < best):
                best, chosen = x[pos], pos
        if chosen is not None:
            grad[chosen] = ct[out]
    return grad


def test_initial_tie_and_traced_initial_derivatives():
    x = np.array([1.0, 3.0, 2.0])
    # initial wins: no derivative to x, all of it to a traced initial
    _same(ft.grad(lambda x: fnp.max(x, initial=5.0))(x), np.zeros(3))
    assert float(ft.grad(lambda c: fnp.max(x, initial=c))(np.float64(5.0))) == 1.0
    assert float(ft.grad(lambda c: fnp.max(x, initial=c))(np.float64(2.0))) == 0.0
    empty_min = ft.grad(lambda c: fnp.min(np.zeros((0, 2)), axis=0, initial=c)[1])
    assert float(empty_min(np.float64(2.0))) == 1.0
    # a tie between x's extremum and initial splits the derivative as fnp.maximum does
    _same(ft.grad(lambda x: fnp.max(x, initial=3.0))(x), np.array([0.0, 0.5, 0.0]))
    # a masked-out entry gets no derivative, even where it is the largest
    mask = np.array([True, False, True])
    _same(ft.grad(lambda x: fnp.max(x, where=mask, initial=0.0))(x), np.array([0.0, 0.0, 1.0]))
    check_grads(lambda x, c: fnp.min(x, where=mask, initial=c), (x, np.array(1.5)), order=2)
    check_grads(lambda x, c: fnp.max(x, where=mask, initial=c), (x, np.array(2.5)), order=2)


@pytest.mark.parametrize("name", EXTREMA + ["sum", "prod"])
def test_initial_and_where_vmap_and_jit(name):
    rng = np.random.default_rng(4)
    xs = _distinct(rng, (5, 3, 4))
    masks = rng.random((5, 3, 4)) < 0.5
    inits = np.linspace(-1.25, 1.25, 5)
    fn = getattr(fnp, name)
    exact = name not in ("sum", "prod")

    def f(x, mask, c):
        return fn(x, axis=1, initial=c, where=mask)

    loop = _loop(f, xs, masks, inits)
    _same(ft.vmap(f)(xs, masks, inits), loop, exact)  # x, the mask and initial all batched
    _same(
        ft.vmap(f, in_axes=(0, None, None))(xs, masks[0], 0.25),
        _loop(lambda x: f(x, masks[0], 0.25), xs),
        exact,
    )
    _same(
        ft.vmap(f, in_axes=(2, 2, None))(xs, masks, 0.25),
        _loop(lambda x, m: f(x, m, 0.25), np.moveaxis(xs, 2, 0), np.moveaxis(masks, 2, 0)),
        exact,
    )
    _same(ft.jit(f)(xs[0], masks[0], np.float64(0.25)), f(xs[0], masks[0], 0.25), exact)
    _same(
        ft.jit(f)(xs[0], masks[0], np.float64(0.25)),
        getattr(np, name)(xs[0], axis=1, initial=0.25, where=masks[0]),
        exact,
    )


def test_tracer_methods_take_initial_and_where():
    x = _distinct(np.random.default_rng(5), (3, 4))
    mask = x > 0

    def f(x):
        return x.max(axis=0, initial=-10.0, where=mask) + x.sum(axis=0, where=mask, initial=1.0)

    want = np.max(x, 0, initial=-10.0, where=mask) + np.sum(x, 0, where=mask, initial=1.0)
    _same(ft.jit(f)(x), want, exact=False)


# ---------------------------------------------------------------------------------------------
# astype(copy=...)


def test_astype_copy_on_arrays_follows_numpy():
    x = np.arange(3.0)
    assert fnp.astype(x, np.float64, copy=False) is x
    y = fnp.astype(x, np.float64)
    assert y is not x and not np.shares_memory(x, y)
    _same(y, x)
    _same(fnp.astype(x, np.float32, copy=False), x.astype(np.float32))
    _same(fnp.astype(np.float64(1.5), np.int64), np.int64(1))  # a scalar stays a scalar
    with pytest.raises(TypeError, match="NumPy array or scalar"):
        fnp.astype([1, 2], np.float64)


@pytest.mark.parametrize("copy", [True, False])
def test_astype_copy_under_transformations(copy):
    x = np.linspace(-2.0, 2.0, 6).reshape(2, 3)

    def f(x):
        return x.astype(np.float32, copy=copy) * 2 + fnp.astype(x, np.float64, copy=copy)

    _same(ft.jit(f)(x), f(x))
    _same(ft.vmap(f)(x), _loop(f, x))
    _same(ft.grad(lambda x: fnp.sum(fnp.astype(x, np.float64, copy=copy) ** 2))(x), 2 * x)
    _same(ft.jit(lambda x: x.astype(np.int32, copy=copy))(x), x.astype(np.int32))


# ---------------------------------------------------------------------------------------------
# Tracer attributes: mT, itemsize, nbytes


@settings(max_examples=30)
@given(
    shape=array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3),
    dtype=st.sampled_from([np.float32, np.float64, np.int8, np.int64, np.bool_, np.complex128]),
)
def test_tracer_attributes_match_numpy(shape, dtype):
    x = (np.arange(np.prod(shape)) % 7).reshape(shape).astype(dtype)
    seen = {}

    def f(x):
        seen.update(itemsize=x.itemsize, nbytes=x.nbytes)
        return x.mT if x.ndim >= 2 else x

    out = ft.jit(f)(x)
    assert seen == dict(itemsize=x.itemsize, nbytes=x.nbytes)
    assert all(type(v) is int for v in seen.values())
    if len(shape) >= 2:
        _same(out, x.mT)
        batched = ft.vmap(f)(x)  # per example: one axis fewer
        assert seen == dict(itemsize=x.itemsize, nbytes=x[0].nbytes)
        _same(batched, _loop(f, x))
    else:
        with pytest.raises(ValueError, match="matrix transpose with ndim < 2 is undefined"):
            ft.jit(lambda x: x.mT)(x)


def test_mT_derivative():
    a = np.random.default_rng(6).standard_normal((2, 3, 4))
    check_grads(lambda a: a.mT @ a, (a,), order=2)
    _same(
        ft.grad(lambda a: fnp.sum(a.mT * np.arange(3.0)))(a),
        np.broadcast_to(np.arange(3.0)[:, None], a.shape) + 0.0,
    )
