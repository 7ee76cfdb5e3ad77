"""Debugging tools: debug_nans provenance and debug.print inside transformations."""

from __future__ import annotations

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans.errors import NonFiniteError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def log_then_sqrt(x):
    y = fnp.log(x)
    return fnp.sum(fnp.sqrt(y))  # SQRT_LINE


SQRT_LINE = "test_debug.py:" + str(log_then_sqrt.__code__.co_firstlineno + 2)
LOG_LINE = "test_debug.py:" + str(log_then_sqrt.__code__.co_firstlineno + 1)


def test_debug_nans_is_off_by_default_and_the_context_manager_restores_it():
    assert ft.config.read("debug_nans") is False
    assert np.isnan(log_then_sqrt(np.array([0.5])))
    with ft.config.debug_nans():
        assert ft.config.read("debug_nans") is True
        with pytest.raises(NonFiniteError):
            log_then_sqrt(np.array([0.5]))
    assert ft.config.read("debug_nans") is False
    with pytest.raises(ValueError, match="unknown flag"):
        ft.config.update("debug_infs_and_more", True)


@pytest.mark.parametrize(
    "transform, arg, prim, where, line",
    [
        (lambda f: f, np.array([-1.0, 2.0]), "log", "outside any transformation", LOG_LINE),
        (ft.jit, np.array([0.5, 2.0]), "sqrt", "under jit", SQRT_LINE),
        (ft.vmap, np.array([[0.5, 2.0]]), "sqrt", "under vmap", SQRT_LINE),
        # the derivative of sqrt at 0 (0.5 / sqrt(0)) is where grad first meets an inf
        (ft.grad, np.array([1.0, 2.0]), "div", "under linearize", SQRT_LINE),
        (lambda f: ft.jit(ft.grad(f)), np.array([1.0, 2.0]), "div", "under jit", SQRT_LINE),
    ],
    ids=["eager", "jit", "vmap", "grad", "jit-grad"],
)
def test_debug_nans_names_the_primitive_transform_and_source_line(
    transform, arg, prim, where, line
):
    with ft.config.debug_nans():
        with pytest.raises(NonFiniteError) as info:
            transform(log_then_sqrt)(arg)
    message = str(info.value)
    assert f"primitive '{prim}'" in message
    assert where in message
    assert line in message


def test_debug_nans_reports_where_a_value_is_created_not_where_it_propagates():
    def f(x):
        bad = fnp.log(x)  # creates the NaN
        return fnp.exp(bad) + 1.0  # only propagates it

    with ft.config.debug_nans(), pytest.raises(NonFiniteError, match="primitive 'log'"):
        f(np.array([-1.0]))


def test_debug_nans_in_the_backward_pass():
    @ft.custom_vjp
    def f(x):
        return x

    # a bwd rule that divides by zero: the inf appears only in the backward pass
    f.defvjp(lambda x: (x, x), lambda x, g: (fnp.divide(g, fnp.subtract(x, x)),))
    with ft.config.debug_nans():
        with pytest.raises(NonFiniteError, match="backward pass"):
            ft.grad(f)(1.0)


def test_debug_print_in_every_transformation(capsys):
    def f(x):
        ft.debug.print("x = {}", x)
        return x**2

    assert ft.grad(f)(3.0) == 6.0
    assert capsys.readouterr().out == "x = 3.0\n"
    ft.vmap(f)(np.array([1.0, 2.0]))
    assert capsys.readouterr().out == "x = 1.0\nx = 2.0\n"
    jf = ft.jit(f)
    jf(4.0)
    jf(5.0)
    # printed when the program runs, once per call, with the call's values
    assert capsys.readouterr().out == "x = 4.0\nx = 5.0\n"
    assert "debug_print" in str(ft.make_jaxpr(f)(1.0))
    ft.jit(ft.vmap(f))(np.array([6.0, 7.0]))
    assert capsys.readouterr().out == "x = 6.0\nx = 7.0\n"
    ft.debug.print("{a} and {b}", a=np.float64(1.5), b=2)
    assert capsys.readouterr().out == "1.5 and 2\n"
