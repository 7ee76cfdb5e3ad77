"""vmap: in_axes/out_axes (ints, negative, None, pytree prefixes), axis_size, chunk_size, kwargs,
nesting, and every vmap error."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans.core import Tracer, current_trace, eval_trace
from functrans.errors import BatchingError, TreeStructureError

RNG = np.random.default_rng(1)


def loop(f, in_axes, args, out_axis=0, size=None):
    """The reference: apply f slice by slice and stack along out_axis."""
    if not isinstance(in_axes, tuple):
        in_axes = (in_axes,) * len(args)
    if size is None:
        size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    outs = []
    for i in range(size):
        sl = [a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, in_axes)]
        outs.append(np.asarray(f(*sl)))
    return np.stack(outs, axis=out_axis)


def f2(x, y):
    return fnp.sin(x) * y + fnp.sum(y)


@pytest.mark.parametrize(
    "in_axes,shapes",
    [
        (0, [(5, 3), (5, 3)]),
        (1, [(3, 5), (3, 5)]),
        (-1, [(3, 5), (3, 5)]),
        ((0, None), [(5, 3), (3,)]),
        ((None, 1), [(3,), (3, 5)]),
        ((-2, 0), [(5, 3), (5, 3)]),
        ([1, 0], [(3, 5), (5, 3)]),
    ],
)
def test_in_axes_matches_loop(in_axes, shapes):
    args = [RNG.normal(size=s) for s in shapes]
    out = ft.vmap(f2, in_axes=in_axes)(*args)
    assert isinstance(out, np.ndarray) and not isinstance(out, Tracer)
    ref_axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else in_axes
    np.testing.assert_allclose(out, loop(f2, ref_axes, args), rtol=1e-12)


@pytest.mark.parametrize("out_axes", [0, 1, 2, -1, -2, -3])
def test_out_axes_int_and_negative(out_axes):
    x = RNG.normal(size=(4, 2, 3))
    out = ft.vmap(lambda x: fnp.exp(x), out_axes=out_axes)(x)
    ref = np.moveaxis(np.exp(x), 0, out_axes)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref)


def test_in_axes_pytree_prefixes():
    def f(p, q):
        return p["a"] * q[0] + fnp.sum(p["b"]) * q[1]

    p = {"a": RNG.normal(size=(3, 4)), "b": RNG.normal(size=(2, 4))}
    q = (RNG.normal(size=(4, 3)), np.array(2.0))
    out = ft.vmap(f, in_axes=({"a": 1, "b": None}, (0, None)))(p, q)
    assert out.shape == (4, 3)
    ref = np.stack([p["a"][:, i] * q[0][i] + p["b"].sum() * q[1] for i in range(4)])
    np.testing.assert_allclose(out, ref)
    # a whole subtree given one axis (prefix)
    p2 = {"a": RNG.normal(size=(4, 3)), "b": RNG.normal(size=(4, 2))}
    out = ft.vmap(f, in_axes=(0, None))(p2, (np.ones(3), np.array(2.0)))
    ref = np.stack([p2["a"][i] + p2["b"][i].sum() * 2.0 for i in range(4)])
    np.testing.assert_allclose(out, ref)


def test_out_axes_none_and_pytree():
    x = RNG.normal(size=(4, 3))
    c = np.arange(3.0)

    def f(x):
        return {"b": x * 2.0, "c": c * 1.0, "t": (x, fnp.sum(x))}

    out = ft.vmap(f, out_axes={"b": 1, "c": None, "t": (-1, 0)})(x)
    np.testing.assert_allclose(out["b"], (2 * x).T)
    np.testing.assert_allclose(out["c"], c)
    assert out["c"].shape == (3,)
    np.testing.assert_allclose(out["t"][0], x.T)
    np.testing.assert_allclose(out["t"][1], x.sum(axis=1))


def test_unbatched_output_broadcast_by_out_axes():
    x = RNG.normal(size=(5, 2))
    out = ft.vmap(lambda x: (x + 1.0, np.array([7.0, 8.0])))(x)
    np.testing.assert_allclose(out[0], x + 1.0)
    assert out[1].shape == (5, 2)
    np.testing.assert_allclose(out[1], np.tile([7.0, 8.0], (5, 1)))
    out = ft.vmap(lambda x: np.array(3.0), out_axes=0)(x)
    np.testing.assert_allclose(out, np.full(5, 3.0))
    out = ft.vmap(lambda x, y: y * 2.0, in_axes=(0, None), out_axes=1)(x, np.ones(3))
    np.testing.assert_allclose(out, np.full((3, 5), 2.0))


def test_axis_size_without_mapped_input():
    out = ft.vmap(lambda c: c * 2.0, in_axes=None, axis_size=4)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(out, np.tile([2.0, 4.0], (4, 1)))
    out = ft.vmap(lambda: np.array(1.5), axis_size=3)()
    np.testing.assert_allclose(out, np.full(3, 1.5))


def test_axis_size_consistent_with_mapped_input():
    x = RNG.normal(size=(3, 2))
    np.testing.assert_allclose(ft.vmap(fnp.sin, axis_size=3)(x), np.sin(x))
    with pytest.raises(BatchingError, match="axis_size"):
        ft.vmap(fnp.sin, axis_size=4)(x)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 10])
def test_chunk_size_same_result(chunk_size):
    x = RNG.normal(size=(7, 3))
    y = RNG.normal(size=(3, 7))
    f = lambda x, y, c: (fnp.tanh(x) * y + c, fnp.sum(x * c))  # noqa: E731
    c = RNG.normal(size=3)
    kw = dict(in_axes=(0, 1, None), out_axes=(1, 0))
    ref = ft.vmap(f, **kw)(x, y, c)
    got = ft.vmap(f, chunk_size=chunk_size, **kw)(x, y, c)
    for r, g in zip(ref, got):
        assert r.shape == g.shape
        np.testing.assert_allclose(g, r, rtol=1e-12)
    np.testing.assert_allclose(got[0], (np.tanh(x) * y.T + c).T, rtol=1e-12)


def test_chunk_size_with_unbatched_output():
    x = RNG.normal(size=(5, 2))
    out = ft.vmap(lambda x: (x * 3.0, np.ones(2)), chunk_size=2)(x)
    np.testing.assert_allclose(out[0], 3 * x)
    np.testing.assert_allclose(out[1], np.ones((5, 2)))
    out = ft.vmap(lambda x: (x * 3.0, np.ones(2)), out_axes=(0, None), chunk_size=2)(x)
    np.testing.assert_allclose(out[1], np.ones(2))


def test_kwargs_mapped_over_axis_0():
    def f(x, *, scale, shift=0.0):
        return x * scale + shift

    x, s, b = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=(4, 1))
    out = ft.vmap(f)(x, scale=s, shift=b)
    np.testing.assert_allclose(out, x * s + b)
    out = ft.vmap(f, in_axes=1)(x.T, scale=s)  # kwargs still use axis 0
    np.testing.assert_allclose(out, x * s)
    with pytest.raises(BatchingError):
        ft.vmap(f)(x, scale=np.ones((5, 3)))


def test_nested_vmap_different_axes():
    A = RNG.normal(size=(3, 4, 5))
    B = RNG.normal(size=(5, 4))

    # outer maps A over axis 1 and B over axis 1; inner maps A-slice over 0, B-slice not at all
    inner = ft.vmap(lambda a, b: fnp.dot(a, b), in_axes=(0, None))
    outer = ft.vmap(inner, in_axes=(1, 1), out_axes=1)
    out = outer(A, B)  # (3, 4)
    ref = np.einsum("ijk,kj->ij", A, B)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    # vmap(vmap) of a pairwise function gives the outer table
    x, y = RNG.normal(size=4), RNG.normal(size=6)
    table = ft.vmap(ft.vmap(lambda a, b: a * fnp.sin(b), in_axes=(None, 0)), in_axes=(0, None))(
        x, y
    )
    np.testing.assert_allclose(table, np.outer(x, np.sin(y)))


def test_vmap_of_reductions_and_matmul():
    X = RNG.normal(size=(6, 3, 4))
    W = RNG.normal(size=(4, 2))
    out = ft.vmap(lambda x: fnp.max(x @ W, axis=0))(X)
    np.testing.assert_allclose(out, np.max(X @ W, axis=1), rtol=1e-12)
    out = ft.vmap(lambda x: x[::-1, 1:3].T, in_axes=2)(X)
    ref = np.stack([X[:, :, k][::-1, 1:3].T for k in range(4)])
    np.testing.assert_allclose(out, ref)


def test_vmap_integer_inputs():
    idx = np.arange(4)
    out = ft.vmap(lambda i, x: x * i, in_axes=(0, None))(idx, 2.0)
    np.testing.assert_allclose(out, 2.0 * idx)


# ---------------------------------------------------------------------------------------------
# errors


def test_error_inconsistent_sizes_names_arguments_axes_sizes():
    with pytest.raises(BatchingError) as e:
        ft.vmap(lambda x, y: x + y, in_axes=(0, 1))(np.ones((3, 2)), np.ones((2, 5)))
    msg = str(e.value)
    assert "3" in msg and "5" in msg
    assert "[0]" in msg and "[1]" in msg  # which arguments
    assert "axis 0" in msg and "axis 1" in msg
    assert current_trace() is eval_trace


def test_error_inconsistent_sizes_in_pytree_names_key_path():
    with pytest.raises(BatchingError) as e:
        ft.vmap(lambda d: d["a"] + d["b"])({"a": np.ones(3), "b": np.ones(4)})
    msg = str(e.value)
    assert "['a']" in msg and "['b']" in msg
    assert "3" in msg and "4" in msg


def test_error_in_axes_structure_mismatch():
    with pytest.raises(TreeStructureError) as e:
        ft.vmap(lambda x, y: x + y, in_axes=(0, None, 0))(np.ones(3), np.ones(3))
    assert "in_axes" in str(e.value)
    with pytest.raises(TreeStructureError) as e:
        ft.vmap(lambda d: d["a"], in_axes=({"a": 0, "c": 0},))({"a": np.ones(3), "b": np.ones(3)})
    msg = str(e.value)
    assert "in_axes" in msg
    with pytest.raises(TreeStructureError) as e:
        ft.vmap(lambda t: t[0], in_axes=((0, 0, 0),))((np.ones(3), np.ones(3)))
    assert "in_axes" in str(e.value)


def test_error_out_axes_structure_mismatch_has_key_path():
    with pytest.raises(TreeStructureError) as e:
        ft.vmap(lambda x: {"a": x, "b": (x, x)}, out_axes={"a": 0, "b": (0, 0, 0)})(np.ones(3))
    msg = str(e.value)
    assert "out_axes" in msg and "['b']" in msg, msg
    with pytest.raises(TreeStructureError) as e:
        ft.vmap(lambda x: (x, x), out_axes=(0, 0, 0))(np.ones(3))
    assert "out_axes" in str(e.value)


def test_error_in_axes_out_of_range():
    with pytest.raises(BatchingError) as e:
        ft.vmap(fnp.sin, in_axes=2)(np.ones((3, 4)))
    msg = str(e.value)
    assert "in_axes" in msg and "2" in msg and "(3, 4)" in msg
    with pytest.raises(BatchingError):
        ft.vmap(fnp.sin, in_axes=-3)(np.ones((3, 4)))
    with pytest.raises(BatchingError) as e:
        ft.vmap(lambda a: a["x"], in_axes=({"x": 1},))({"x": np.ones(3)})
    assert "['x']" in str(e.value)
    with pytest.raises(BatchingError):
        ft.vmap(fnp.sin)(np.float64(1.0))  # a scalar has no axis 0


def test_error_out_axes_out_of_range():
    with pytest.raises(BatchingError) as e:
        ft.vmap(fnp.sin, out_axes=3)(np.ones((3, 4)))
    assert "out_axes" in str(e.value)
    with pytest.raises(BatchingError):
        ft.vmap(fnp.sin, out_axes=-3)(np.ones((3, 4)))


def test_error_out_axes_none_for_batched_output():
    with pytest.raises(BatchingError) as e:
        ft.vmap(lambda x: (x * 2.0, 1.0 * x), out_axes=(0, None))(np.ones(3))
    msg = str(e.value)
    assert "out_axes" in msg and "None" in msg and "[1]" in msg, msg


def test_error_python_if_on_batched_value():
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(BatchingError) as e:
        ft.vmap(f)(np.array([1.0, -2.0]))
    msg = str(e.value)
    assert "where" in msg and "cond" in msg, msg
    assert "bool[]" in msg  # what was seen: the aval of the comparison
    assert current_trace() is eval_trace
    # the suggested fix works
    out = ft.vmap(lambda x: fnp.where(x > 0, x, -x))(np.array([1.0, -2.0]))
    np.testing.assert_allclose(out, [1.0, 2.0])
    with pytest.raises(BatchingError):
        ft.vmap(lambda x: float(x))(np.array([1.0, -2.0]))


def test_error_no_mapped_input_and_no_axis_size():
    with pytest.raises(BatchingError) as e:
        ft.vmap(lambda x: x, in_axes=None)(np.ones(3))
    assert "axis_size" in str(e.value)
    with pytest.raises(BatchingError):
        ft.vmap(lambda: np.ones(2))()
    assert current_trace() is eval_trace


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_unmapped_non_array_arguments_pass_through(chunk_size):
    # in_axes None: functions, strings and Python scalars reach the function as they are (JAX)
    x = np.arange(5.0)

    def f(fn, x, mode, n):
        assert callable(fn) and mode == "power" and type(n) is int
        return fn(x) ** n

    got = ft.vmap(f, in_axes=(None, 0, None, None), chunk_size=chunk_size)(fnp.sin, x, "power", 2)
    np.testing.assert_allclose(got, np.sin(x) ** 2)
    # a static argument of a jitted function stays hashable; a Python float stays weak
    jitted = ft.jit(lambda x, n: x**n, static_argnums=1)
    np.testing.assert_allclose(ft.vmap(jitted, in_axes=(0, None))(x, 3), x**3)
    x32 = x.astype(np.float32)
    assert ft.vmap(lambda x, s: x * s, in_axes=(0, None))(x32, 2.0).dtype == np.float32


def test_results_never_share_memory_with_passed_through_arguments():
    w = np.arange(3.0)
    out = ft.vmap(lambda x, p: p[1], in_axes=(0, None), out_axes=None)(np.ones(2), ("k", w))
    assert not np.shares_memory(out, w)
    out[...] = 0.0
    np.testing.assert_array_equal(w, [0.0, 1.0, 2.0])


def test_unmapped_non_array_leaves_pass_through_at_any_depth():
    # in_axes prefixes reach into pytrees: a function leaf under None is held out of the batch
    x = np.arange(4.0)
    got = ft.vmap(lambda x, p: p[0](x) * p[1], in_axes=(0, (None, None)))(x, (fnp.cos, 2.0))
    np.testing.assert_allclose(got, np.cos(x) * 2.0)
    got = ft.vmap(lambda x, d: d["f"](x) + d["w"], in_axes=(0, {"f": None, "w": 0}))(
        x, {"f": fnp.sin, "w": x}
    )
    np.testing.assert_allclose(got, np.sin(x) + x)
    got = ft.vmap(lambda f, x: f(x), in_axes=None, axis_size=3)(fnp.exp, np.float64(1.0))
    np.testing.assert_allclose(got, np.full(3, np.e))


def test_chunk_size_with_axis_size():
    x = np.arange(7.0)
    got = ft.vmap(lambda x: x * 2.0, axis_size=7, chunk_size=3)(x)
    np.testing.assert_array_equal(got, 2.0 * x)
    got = ft.vmap(lambda a: a + 1.0, in_axes=None, axis_size=7, chunk_size=3)(np.float64(2.0))
    np.testing.assert_array_equal(got, np.full(7, 3.0))


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5])
def test_chunk_size_must_be_a_positive_int(chunk_size):
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        ft.vmap(lambda x: x, chunk_size=chunk_size)
