"""functrans.testing is itself tested: correct functions pass, deliberately wrong rules fail with
a report that names the check, order, mode, argument, errors and tolerance."""

from __future__ import annotations

import re

import numpy as np
import pytest

import functrans.numpy as fnp
from functrans.core import Primitive, ShapedArray, aval_of, is_undefined
from functrans.primitives import elementwise as ew
from functrans.testing import check_grads, check_jvp, check_vjp

RNG = np.random.default_rng(0)
X = RNG.uniform(-1.0, 1.0, (3, 4))


def _unary(name: str, impl, jvp=None, transpose=None) -> Primitive:
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = lambda aval: aval
    p.batch = lambda vals, dims: (p.bind(*vals), dims[0])  # elementwise: the axis stays put
    if jvp is not None:
        p.jvp = jvp
    if transpose is not None:
        p.transpose = transpose
    return p


# sin with a derivative that is off by a factor of 2
bad_sin_p = _unary(
    "bad_sin",
    np.sin,
    jvp=lambda primals, tangents: (
        bad_sin_p.bind(primals[0]),
        ew.mul(tangents[0], ew.mul(ew.full_like(primals[0], 2.0), ew.cos(primals[0]))),
    ),
)


# 3x, whose transpose wrongly multiplies by 2
def _scale(x, c):
    return ew.mul(x, ew.full_like(x, c))


bad_scale_p = _unary(
    "bad_scale",
    lambda x: 3.0 * x,
    jvp=lambda primals, tangents: (bad_scale_p.bind(primals[0]), bad_scale_p.bind(tangents[0])),
    transpose=lambda ct, x: [_scale(ct, 2.0) if is_undefined(x) else None],
)

# sin whose first derivative is right but whose derivative of the derivative is wrong:
# the JVP multiplies by cos(x) computed through a primitive with a zero JVP
frozen_cos_p = _unary(
    "frozen_cos",
    np.cos,
    jvp=lambda primals, tangents: (frozen_cos_p.bind(primals[0]), ew.zeros(aval_of(primals[0]))),
)
second_order_bad_sin_p = _unary(
    "second_order_bad_sin",
    np.sin,
    jvp=lambda primals, tangents: (
        second_order_bad_sin_p.bind(primals[0]),
        ew.mul(tangents[0], frozen_cos_p.bind(primals[0])),
    ),
)


def _field(message: str, name: str) -> float:
    return float(re.search(rf"{name} ([0-9.e+-]+)", message).group(1))


# ---------------------------------------------------------------------------------------------
# Correct functions pass


def test_correct_function_passes_all_orders():
    def f(x, params):
        return fnp.sum(fnp.sin(x) * params["w"]) + fnp.exp(params["b"]) * x[0, 0]

    args = (X, {"w": RNG.standard_normal((3, 4)), "b": np.array(0.3)})
    check_jvp(f, args)
    check_vjp(f, args)
    check_grads(f, args, order=3)


def test_correct_function_with_several_outputs_and_integer_arguments():
    def f(x, n, flags):
        y = fnp.tanh(x) * n.astype(x.dtype)
        return {"y": y, "max": fnp.max(y, axis=0), "positive": y > 0, "n": n}

    args = (X, np.arange(4), {"flags": np.array([True, False])})
    check_grads(f, args, order=2)


def test_float32_passes_with_dtype_defaults():
    x = X.astype(np.float32)
    check_grads(lambda x, y: fnp.sum(fnp.exp(x) * fnp.log(y)), (x, x * x + 1.0), order=2)


# ---------------------------------------------------------------------------------------------
# A wrong JVP


def test_wrong_jvp_fails_check_jvp_with_a_report():
    with pytest.raises(AssertionError) as info:
        check_jvp(lambda x, y: ew.add(bad_sin_p.bind(x), y), (X, X))
    msg = str(info.value)
    assert "check_jvp failed (order 1, mode fwd)" in msg
    assert "argument(s): args[0]\n" in msg  # y is fine, only x's tangent reproduces the error
    assert "out:" in msg
    assert _field(msg, "max abs error") > 0.1
    assert _field(msg, "max rel error") > 0.5
    assert "atol=1e-05" in msg and "rtol=1e-05" in msg


def test_wrong_jvp_is_located_by_key_path():
    def f(a, params):
        return {"out": bad_sin_p.bind(params["w"]), "other": ew.sin(a)}

    with pytest.raises(AssertionError) as info:
        check_grads(f, (X, {"w": X, "n": np.arange(3)}), order=1, modes=("fwd",))
    msg = str(info.value)
    assert "argument(s): args[1]['w']\n" in msg
    assert "out['out']" in msg and "out['other']" not in msg


def test_wrong_jvp_fails_check_grads_and_check_vjp_is_consistent_with_it():
    with pytest.raises(AssertionError, match=r"check_jvp failed \(order 1, mode fwd\)"):
        check_grads(bad_sin_p.bind, (X,), order=2)
    # reverse mode is derived from the same wrong JVP, so VJP and JVP agree: "rev" alone checks
    # consistency, only "fwd" compares with finite differences
    check_vjp(bad_sin_p.bind, (X,))
    check_grads(bad_sin_p.bind, (X,), order=2, modes=("rev",))
    # the forward check runs even when listed second, before any order-2 check
    with pytest.raises(AssertionError, match=r"check_jvp failed \(order 1, mode fwd\)"):
        check_grads(bad_sin_p.bind, (X,), order=2, modes=("rev", "fwd"))


def test_wrong_second_derivative_fails_only_at_order_2():
    f = second_order_bad_sin_p.bind
    check_grads(f, (X,), order=1)
    with pytest.raises(AssertionError) as info:
        check_grads(f, (X,), order=2)
    msg = str(info.value)
    assert "check_jvp failed (order 2, mode fwd over fwd)" in msg
    assert "(args, tangents) -> jvp(f)" in msg
    assert "argument(s): args[0][0]\n" in msg  # the primal, not the tangent args[1][0]
    assert "out[1]" in msg  # the tangent output


def test_nonzero_tangent_of_a_boolean_output_fails():
    leaky_p = _unary(
        "leaky_gt0",
        lambda x: x > 0,
        jvp=lambda primals, tangents: (leaky_p.bind(primals[0]), tangents[0]),
    )
    leaky_p.abstract_eval = lambda aval: ShapedArray(aval.shape, np.dtype(bool))
    with pytest.raises(AssertionError, match="not floating point but its tangent is nonzero"):
        check_jvp(leaky_p.bind, (X,))


# ---------------------------------------------------------------------------------------------
# A wrong transpose


def test_wrong_transpose_fails_check_vjp_with_a_report():
    f = bad_scale_p.bind
    check_jvp(f, (X,))  # the JVP is right
    with pytest.raises(AssertionError) as info:
        check_vjp(lambda a, b: ew.add(ew.sin(a), f(b)), (X, X))
    msg = str(info.value)
    assert "check_vjp failed (order 1, mode rev)" in msg
    assert "<u, J v> = <J^T u, v>" in msg
    assert "argument(s): args[1]\n" in msg
    assert _field(msg, "max rel error") > 0.1
    assert "atol 1e-05" in msg and "rtol 1e-05" in msg
    with pytest.raises(AssertionError, match=r"check_vjp failed \(order 1, mode rev\)"):
        check_grads(f, (X,), order=2)


def test_transpose_with_wrong_shape_is_reported():
    bad_shape_p = _unary(
        "bad_shape_scale",
        lambda x: 3.0 * x,
        jvp=lambda primals, tangents: (bad_shape_p.bind(primals[0]), bad_shape_p.bind(tangents[0])),
        transpose=lambda ct, x: [fnp.sum(ct, axis=0)],
    )
    with pytest.raises(AssertionError, match=r"cotangent of args\[0\] is float64\[4\]"):
        check_vjp(bad_shape_p.bind, (X,))


# ---------------------------------------------------------------------------------------------
# Options and tolerances


def test_tolerance_is_respected():
    # a 1% error in the derivative passes a 5% tolerance and fails the default one
    slightly_p = _unary(
        "slightly_off_sin",
        np.sin,
        jvp=lambda primals, tangents: (
            slightly_p.bind(primals[0]),
            ew.mul(tangents[0], _scale(ew.cos(primals[0]), 1.01)),
        ),
    )
    check_jvp(slightly_p.bind, (X,), atol=5e-2, rtol=5e-2)
    with pytest.raises(AssertionError):
        check_jvp(slightly_p.bind, (X,))


def test_float32_uses_looser_defaults_and_still_catches_wrong_rules():
    x = X.astype(np.float32)
    check_grads(fnp.sin, (x,), order=2)
    with pytest.raises(AssertionError, match="atol=0.01"):
        check_jvp(bad_sin_p.bind, (x,))


def test_no_float_argument_is_an_error():
    with pytest.raises(ValueError, match="nothing to differentiate"):
        check_jvp(lambda n: n + 1, (np.arange(3),))


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="order"):
        check_grads(fnp.sin, (X,), order=0)
    with pytest.raises(ValueError, match="modes"):
        check_grads(fnp.sin, (X,), modes=("backward",))


# ---------------------------------------------------------------------------------------------
# Reports name the inputs; the complex step


def test_reports_list_the_inputs_avals_not_their_values():
    with pytest.raises(AssertionError) as info:
        check_grads(lambda x, p: bad_sin_p.bind(x) * p["s"], (X, {"s": np.float64(2.0)}), order=1)
    msg = str(info.value)
    assert "inputs: args[0] float64[3,4], args[1]['s'] float64[]" in msg
    assert str(X[0, 0])[:6] not in msg


def test_complex_step_in_check_grads_reports_order_and_mode():
    # a JVP off by one part in 10^7 passes central differences but not the complex step
    tiny_p = _unary(
        "tiny_off_sin",
        np.sin,
        jvp=lambda primals, tangents: (
            tiny_p.bind(primals[0]),
            ew.mul(tangents[0], _scale(ew.cos(primals[0]), 1.0 + 1e-7)),
        ),
    )
    check_grads(tiny_p.bind, (X,), order=2)
    with pytest.raises(AssertionError) as info:
        check_grads(tiny_p.bind, (X,), order=2, complex_step=True)
    msg = str(info.value)
    assert "check_complex_step failed (order 1, mode fwd) for f" in msg
    assert "(h=1e-20)" in msg and "argument(s): args[0]\n" in msg
    check_grads(fnp.sin, (X.astype(np.float32),), order=2, complex_step=True)
