"""Every user-facing error of the core, and the guarantees around failures: no interpreter state
left behind, inputs never mutated, thread safety, and very long programs."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import functrans as ft
import functrans.api as api
import functrans.numpy as fnp
from functrans.core import Tracer, current_trace, eval_trace
from functrans.errors import (
    ArgnumsError,
    BatchingError,
    ConcretizationError,
    FunctransError,
    LeakedTracerError,
    NonDifferentiableInputError,
    NonLinearError,
    NonScalarOutputError,
    ShapeDtypeMismatchError,
    TracerArrayConversionError,
    TreeStructureError,
)


@pytest.fixture(autouse=True)
def _no_interpreter_left_behind():
    assert current_trace() is eval_trace
    yield
    assert current_trace() is eval_trace


def test_error_classes_subclass_builtin_errors():
    for cls in (TreeStructureError, ArgnumsError, ShapeDtypeMismatchError, BatchingError):
        assert issubclass(cls, ValueError) and issubclass(cls, FunctransError)
    for cls in (
        NonScalarOutputError,
        NonDifferentiableInputError,
        LeakedTracerError,
        ConcretizationError,
        TracerArrayConversionError,
        NonLinearError,
    ):
        assert issubclass(cls, TypeError) and issubclass(cls, FunctransError)


# ---------------------------------------------------------------------------------------------
# grad output errors


def test_grad_of_non_scalar_output():
    with pytest.raises(NonScalarOutputError) as e:
        ft.grad(lambda x: x * 2.0)(np.ones(3))
    msg = str(e.value)
    assert "f64[3]" in msg and "jacrev" in msg and "vjp" in msg, msg
    assert "[1. 1. 1.]" not in msg  # an aval, never an array dump


def test_grad_of_tuple_output_without_has_aux():
    with pytest.raises(NonScalarOutputError) as e:
        ft.grad(lambda x: (fnp.sum(x), x))(np.ones(3))
    msg = str(e.value)
    assert "tuple" in msg and "has_aux" in msg, msg
    # the suggested fix works
    g, aux = ft.grad(lambda x: (fnp.sum(x), x), has_aux=True)(np.ones(3))
    np.testing.assert_allclose(g, np.ones(3))


def test_grad_has_aux_without_pair():
    with pytest.raises(TypeError) as e:
        ft.grad(lambda x: x * 2.0, has_aux=True)(1.0)
    assert "has_aux" in str(e.value)


def test_grad_of_integer_output():
    with pytest.raises(NonScalarOutputError) as e:
        ft.grad(lambda x: fnp.argmax(x))(np.array([1.0, 3.0]))
    assert "i64[]" in str(e.value) or "int" in str(e.value)


# ---------------------------------------------------------------------------------------------
# non-differentiable inputs


def test_integer_argument_named():
    def f(x):
        return fnp.sum(x * 2.0)

    with pytest.raises(NonDifferentiableInputError) as e:
        ft.grad(f)(np.arange(3))
    msg = str(e.value)
    assert "'x'" in msg and "i64[3]" in msg and "astype" in msg, msg
    assert "grad" in msg


def test_integer_argument_position_via_argnums():
    def f(w, n):
        return w * n

    with pytest.raises(NonDifferentiableInputError) as e:
        ft.grad(f, argnums=1)(1.0, 3)
    msg = str(e.value)
    assert "'n'" in msg and "position 1" in msg, msg
    # leaving it out of argnums is the fix
    np.testing.assert_allclose(ft.grad(f)(1.0, 3), 3.0)


def test_bool_argument():
    with pytest.raises(NonDifferentiableInputError) as e:
        ft.grad(lambda b: fnp.sum(fnp.where(b, 1.0, 0.0)))(np.array([True, False]))
    assert "bool[2]" in str(e.value)


def test_integer_leaf_in_pytree_key_path():
    def loss(params):
        return params["w"] * 2.0 + fnp.sum(params["layers"][1]["b"] * 1.0)

    params = {"w": 1.0, "layers": [{"b": np.ones(2)}, {"b": np.arange(2)}]}
    with pytest.raises(NonDifferentiableInputError) as e:
        ft.grad(loss)(params)
    msg = str(e.value)
    assert "'params'" in msg and "['layers'][1]['b']" in msg and "i64[2]" in msg, msg


@pytest.mark.parametrize(
    "call",
    [
        lambda f: ft.jvp(f, (np.arange(2),), (np.arange(2),)),
        lambda f: ft.vjp(f, np.arange(2)),
        lambda f: ft.jacfwd(f)(np.arange(2)),
        lambda f: ft.jacrev(f)(np.arange(2)),
        lambda f: ft.hessian(lambda x: fnp.sum(f(x)))(np.arange(2)),
        lambda f: ft.value_and_grad(lambda x: fnp.sum(f(x)))(np.arange(2)),
    ],
)
def test_integer_argument_every_transform(call):
    with pytest.raises(NonDifferentiableInputError) as e:
        call(lambda x: x * 2.0)
    assert "i64[2]" in str(e.value)


# ---------------------------------------------------------------------------------------------
# argnums


@pytest.mark.parametrize("argnums", [2, -3, (0, 5), (0, -4)])
def test_argnums_out_of_range(argnums):
    with pytest.raises(ArgnumsError) as e:
        ft.grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)
    msg = str(e.value)
    assert "argnums" in msg and "2 positional arguments" in msg, msg


def test_argnums_out_of_range_jacobians():
    for jac in (ft.jacfwd, ft.jacrev, ft.jacobian, ft.value_and_grad):
        with pytest.raises(ArgnumsError):
            jac(lambda x: x, argnums=1)(1.0)


def test_argnums_repeated():
    with pytest.raises(ArgnumsError):
        ft.grad(lambda x, y: x * y, argnums=(0, -2))(1.0, 2.0)


# ---------------------------------------------------------------------------------------------
# tangents and cotangents that do not match


def test_jvp_tangent_wrong_structure():
    with pytest.raises(TreeStructureError):
        ft.jvp(lambda p: p["a"] * 2.0, ({"a": 1.0},), ({"b": 1.0},))
    with pytest.raises(TreeStructureError):
        ft.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(TreeStructureError):
        ft.jvp(lambda t: t[0] * t[1], ((1.0, 2.0),), ([1.0, 2.0],))


def test_jvp_tangent_wrong_shape():
    with pytest.raises(ShapeDtypeMismatchError) as e:
        ft.jvp(lambda p: fnp.sum(p["a"]), ({"a": np.ones(3)},), ({"a": np.ones(2)},))
    msg = str(e.value)
    assert "f64[2]" in msg and "f64[3]" in msg and "['a']" in msg, msg


def test_jvp_tangent_wrong_dtype():
    with pytest.raises(ShapeDtypeMismatchError) as e:
        ft.jvp(fnp.sin, (np.ones(3),), (np.ones(3, np.float32),))
    msg = str(e.value)
    assert "f32[3]" in msg and "f64[3]" in msg, msg


def test_jvp_primals_not_a_tuple():
    with pytest.raises(TypeError) as e:
        ft.jvp(fnp.sin, np.ones(3), np.ones(3))
    assert "tuple" in str(e.value)


def test_vjp_cotangent_mismatch():
    _, vjp_fn = ft.vjp(lambda x: {"y": x * 2.0, "z": fnp.sum(x)}, np.ones(3))
    with pytest.raises(TreeStructureError):
        vjp_fn(np.ones(3))
    with pytest.raises(ShapeDtypeMismatchError) as e:
        vjp_fn({"y": np.ones(4), "z": np.array(1.0)})
    msg = str(e.value)
    assert "['y']" in msg and "f64[4]" in msg and "f64[3]" in msg, msg
    with pytest.raises(ShapeDtypeMismatchError) as e:
        vjp_fn({"y": np.ones(3, np.float32), "z": np.array(1.0)})
    assert "f32[3]" in str(e.value)
    # the right cotangent works afterwards
    (g,) = vjp_fn({"y": np.ones(3), "z": np.array(2.0)})
    np.testing.assert_allclose(g, np.full(3, 4.0))


def test_linearize_tangent_mismatch():
    _, f_jvp = ft.linearize(fnp.sin, np.ones(3))
    with pytest.raises(ShapeDtypeMismatchError):
        f_jvp(np.ones(2))


def test_linear_transpose_of_nonlinear_function():
    with pytest.raises(NonLinearError):
        f_t = ft.linear_transpose(lambda x: x * x, 1.0)
        f_t(1.0)


# ---------------------------------------------------------------------------------------------
# leaked tracers


def _leak(transform):
    box = []

    def f(x):
        box.append(x)
        return fnp.sum(x * 2.0)

    transform(f)
    assert len(box) >= 1 and isinstance(box[0], Tracer)
    return box[0]


TRANSFORMS = {
    "grad": lambda f: ft.grad(f)(np.ones(2)),
    "jvp": lambda f: ft.jvp(f, (np.ones(2),), (np.ones(2),)),
    "vjp": lambda f: ft.vjp(f, np.ones(2)),
    "vmap": lambda f: ft.vmap(f)(np.ones((3, 2))),
    "make_jaxpr": lambda f: ft.make_jaxpr(f)(np.ones(2)),
    "jacfwd": lambda f: ft.jacfwd(f)(np.ones(2)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_leaked_tracer_used_after_transform(name):
    leaked = _leak(TRANSFORMS[name])
    with pytest.raises(LeakedTracerError) as e:
        leaked * 2.0
    assert "leak" in str(e.value)
    with pytest.raises(LeakedTracerError):
        fnp.sin(leaked)
    with pytest.raises(LeakedTracerError):
        np.sin(leaked)
    # used inside a new transformation: still an error, never a number
    with pytest.raises(LeakedTracerError):
        ft.grad(lambda y: fnp.sum(y * leaked))(np.ones(2))
    with pytest.raises(LeakedTracerError):
        ft.jvp(lambda y: y + leaked, (np.ones(2),), (np.ones(2),))
    with pytest.raises(LeakedTracerError):
        ft.vmap(lambda y: y * leaked)(np.ones((3, 2)))


def test_inner_tracer_leaked_into_outer_transform():
    def outer(x):
        box = []

        def inner(y):
            box.append(y)
            return y * x

        ft.grad(inner)(x)
        return box[0] * x  # the inner trace is finished: its tracer must not be used

    with pytest.raises(LeakedTracerError):
        ft.grad(outer)(2.0)


# ---------------------------------------------------------------------------------------------
# exceptions from user code propagate unchanged, and leave no state behind


class _UserError(Exception):
    pass


def _boom(x, *rest):
    y = fnp.sin(x) * 2.0
    raise _UserError("boom")
    return y  # pragma: no cover


EXC_CALLS = {
    "grad": lambda f: ft.grad(f)(1.0),
    "value_and_grad": lambda f: ft.value_and_grad(f)(1.0),
    "jvp": lambda f: ft.jvp(f, (1.0,), (1.0,)),
    "vjp": lambda f: ft.vjp(f, 1.0),
    "linearize": lambda f: ft.linearize(f, 1.0),
    "linear_transpose": lambda f: ft.linear_transpose(f, 1.0),
    "jacfwd": lambda f: ft.jacfwd(f)(np.ones(2)),
    "jacrev": lambda f: ft.jacrev(f)(np.ones(2)),
    "jacobian": lambda f: ft.jacobian(f)(np.ones(2)),
    "hessian": lambda f: ft.hessian(f)(np.ones(2)),
    "vmap": lambda f: ft.vmap(f)(np.ones(3)),
    "vmap_chunked": lambda f: ft.vmap(f, chunk_size=2)(np.ones(3)),
    "make_jaxpr": lambda f: ft.make_jaxpr(f)(1.0),
    "grad_grad": lambda f: ft.grad(ft.grad(f))(1.0),
    "vmap_grad": lambda f: ft.vmap(ft.grad(f))(np.ones(3)),
    "grad_vmap": lambda f: ft.grad(lambda x: fnp.sum(ft.vmap(f)(x)))(np.ones(3)),
    "jacfwd_jacrev": lambda f: ft.jacfwd(ft.jacrev(f))(np.ones(2)),
}


@pytest.mark.parametrize("name", sorted(EXC_CALLS))
def test_user_exception_propagates_unchanged(name):
    with pytest.raises(_UserError) as e:
        EXC_CALLS[name](_boom)
    assert str(e.value) == "boom"
    assert current_trace() is eval_trace
    # and the next transformation works normally
    np.testing.assert_allclose(ft.grad(lambda x: x**2)(3.0), 6.0)


def test_exception_inside_nested_inner_transform_caught_by_user():
    def f(x):
        try:
            ft.grad(_boom)(x)
        except _UserError:
            pass
        return x * x  # the outer trace must be current again

    np.testing.assert_allclose(ft.grad(f)(3.0), 6.0)
    np.testing.assert_allclose(ft.vmap(f)(np.array([1.0, 2.0])), [1.0, 4.0])


# ---------------------------------------------------------------------------------------------
# concrete conversions of traced values


@pytest.mark.parametrize(
    "call",
    [
        lambda f: ft.grad(f)(np.ones(2)),
        lambda f: ft.jvp(f, (np.ones(2),), (np.ones(2),)),
        lambda f: ft.vmap(f)(np.ones((3, 2))),
        lambda f: ft.make_jaxpr(f)(np.ones(2)),
    ],
)
def test_np_asarray_of_tracer(call):
    with pytest.raises(TracerArrayConversionError) as e:
        call(lambda x: np.asarray(x).sum())
    msg = str(e.value)
    assert "f64[" in msg and "functrans.numpy" in msg, msg
    with pytest.raises(TracerArrayConversionError):
        call(lambda x: np.array(x).sum())


def test_setitem_on_tracer_points_to_at():
    def f(x):
        x[0] = 1.0
        return fnp.sum(x)

    x = np.array([3.0, 4.0])
    with pytest.raises(TypeError) as e:
        ft.grad(f)(x)
    assert ".at" in str(e.value)
    np.testing.assert_array_equal(x, [3.0, 4.0])
    with pytest.raises(TypeError) as e:
        ft.vmap(f)(np.ones((2, 2)))
    assert ".at" in str(e.value)


def test_concretization_error_under_make_jaxpr():
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(ConcretizationError) as e:
        ft.make_jaxpr(f)(1.0)
    msg = str(e.value)
    assert "bool[]" in msg and "where" in msg, msg


def test_concrete_values_available_under_grad_of_grad():
    def f(x):
        return x**3 if x > 0 and int(x) >= 1 else -x

    np.testing.assert_allclose(ft.grad(ft.grad(f))(2.0), 12.0)


def test_float_of_a_differentiated_value_is_an_error_not_a_dropped_derivative():
    # x * float(x) would silently give derivative 3 instead of 6 at x = 3
    with pytest.raises(ConcretizationError, match=r"drop its derivative.*stop_gradient"):
        ft.grad(lambda x: x * float(x))(3.0)
    with pytest.raises(ConcretizationError, match="test_errors.py"):
        ft.jvp(lambda x: x * float(x), (3.0,), (1.0,))
    # dropping it on purpose is spelled out
    assert ft.grad(lambda x: x * float(ft.stop_gradient(x)))(3.0) == 3.0


# ---------------------------------------------------------------------------------------------
# inputs are never mutated


def _snapshot(tree):
    return ft.tree_util.tree_map(lambda a: np.array(a, copy=True), tree)


def _assert_same(before, after):
    for b, a in zip(ft.tree_util.tree_leaves(before), ft.tree_util.tree_leaves(after)):
        np.testing.assert_array_equal(a, b)


def test_inputs_never_mutated():
    rng = np.random.default_rng(3)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    t = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    ct = rng.normal(size=(4, 2))
    keep = _snapshot((params, x, t, ct))

    def f(p, x):
        y = x @ p["w"] + p["b"]
        return y + y  # accumulation of cotangents must not happen in the user's arrays

    def loss(p, x):
        return fnp.sum(fnp.tanh(f(p, x)))

    ft.grad(loss)(params, x)
    ft.grad(loss, argnums=(0, 1))(params, x)
    ft.value_and_grad(loss)(params, x)
    ft.jvp(lambda p: f(p, x), (params,), (t,))
    _, vjp_fn = ft.vjp(f, params, x)
    vjp_fn(ct)
    vjp_fn(ct)
    _, f_jvp = ft.linearize(lambda p: f(p, x), params)
    f_jvp(t)
    ft.linear_transpose(lambda x: x + x, x)(x)
    ft.vmap(f, in_axes=(None, 0))(params, x)
    ft.vmap(f, in_axes=(None, 0), chunk_size=3)(params, x)
    ft.jacfwd(f)(params, x)
    ft.jacrev(f)(params, x)
    ft.jacobian(f)(params, x)
    ft.hessian(loss)(params, x)
    ft.hvp(lambda p: loss(p, x), (params,), (t,))
    _assert_same(keep, (params, x, t, ct))


def test_cotangent_results_do_not_alias_user_arrays():
    # the user owns what a transformation returns: updating a gradient in place (g -= lr * ...)
    # must not change the cotangent they passed in
    for f in (lambda x: x, lambda x: x[::-1], lambda x: fnp.reshape(x, (2,))):
        ct = np.array([1.0, 2.0])
        _, vjp_fn = ft.vjp(f, np.zeros(2))
        (g,) = vjp_fn(ct)
        g += 10.0
        np.testing.assert_array_equal(ct, [1.0, 2.0])
    ct = np.array([1.0, 2.0])
    (g,) = ft.linear_transpose(lambda x: x, np.zeros(2))(ct)
    g += 10.0
    np.testing.assert_array_equal(ct, [1.0, 2.0])
    # forward mode and vmap results do not share memory with their arguments either
    x, t = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    y, ty = ft.jvp(lambda x: x, (x,), (t,))
    assert not np.shares_memory(y, x) and not np.shares_memory(ty, t)
    assert not np.shares_memory(ft.linearize(lambda x: x, x)[1](t), t)
    X = np.ones((3, 2))
    assert not np.shares_memory(ft.vmap(lambda x: x)(X), X)
    assert not np.shares_memory(ft.vmap(lambda x: x, in_axes=1, out_axes=1)(X), X)


# ---------------------------------------------------------------------------------------------
# threads


def test_concurrent_transforms_in_threads():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 3))
    errors, results = [], {}

    jobs = {
        "grad_sin": (lambda: ft.grad(lambda x: fnp.sum(fnp.sin(x)))(X[0]), np.cos(X[0])),
        "grad_cube": (lambda: ft.grad(lambda x: fnp.sum(x**3))(X[1]), 3 * X[1] ** 2),
        "vmap_exp": (lambda: ft.vmap(lambda x: fnp.exp(x) * 2.0)(X), 2 * np.exp(X)),
        "vmap_grad": (
            lambda: ft.vmap(ft.grad(lambda x: fnp.sum(fnp.tanh(x))))(X),
            1 - np.tanh(X) ** 2,
        ),
    }

    def worker(name):
        fn, ref = jobs[name]
        try:
            for _ in range(50):
                out = fn()
                np.testing.assert_allclose(out, ref, rtol=1e-12)
                assert current_trace() is eval_trace
            results[name] = True
        except BaseException as err:  # reported below, from the main thread
            errors.append((name, err))

    threads = [threading.Thread(target=worker, args=(n,)) for n in jobs]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to interleave the transformations
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert set(results) == set(jobs)


# ---------------------------------------------------------------------------------------------
# very long programs


def test_grad_of_100k_equation_program(monkeypatch):
    n = 100_000
    sizes = []
    linearize_flat = api.linearize_flat

    def spy(*args, **kwargs):
        out = linearize_flat(*args, **kwargs)
        sizes.append(len(out[1].jaxpr.eqns))
        return out

    monkeypatch.setattr(api, "linearize_flat", spy)

    def f(x):
        for _ in range(n):
            x = x * 1.0000001 + 0.0
        return x

    g = ft.grad(f)(np.float64(1.0))
    np.testing.assert_allclose(g, 1.0000001**n, rtol=1e-9)
    assert sizes and sizes[0] >= n, sizes  # really a 100,000-equation linear program


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda n: fnp.linspace(0.0, 1.0, n), "linspace"),
        (lambda n: fnp.arange(n), "arange"),
        (lambda n: fnp.zeros(n), "zeros"),
        (lambda n: fnp.ones((2, n)), "ones"),
        (lambda n: fnp.full(n, 1.0), "full"),
        (lambda n: fnp.eye(n), "eye"),
    ],
)
def test_traced_sizes_under_jit_name_the_users_line(make, name):
    # shapes must be known while staging: the error names the constructor and the user's line
    # (not a line inside NumPy), and points to static arguments
    with pytest.raises(ConcretizationError) as info:
        ft.jit(make)(3)
    message = str(info.value)
    assert f"fnp.{name}" in message and "static argument" in message
    assert f"{__file__}:" in message
    # eagerly the size is known, as in NumPy
    np.testing.assert_array_equal(ft.jit(make, static_argnums=0)(3), make(3))


@pytest.mark.parametrize("method", ["item", "tolist"])
def test_item_and_tolist_of_traced_values(method):
    with pytest.raises(ConcretizationError, match=rf"\.{method}\(\) of a traced value"):
        ft.jit(lambda x: getattr(x, method)())(np.float64(2.0))
    # an eager transformation knows the value
    assert ft.grad(lambda x: x * getattr(x, method)())(3.0) == 3.0
