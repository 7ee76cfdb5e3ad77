"""The properties of functrans.testing catch planted bugs with a readable report, and pass correct
functions under hypothesis in float64 and float32 (with the per-dtype tolerances)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans.core import Primitive, aval_of
from functrans.primitives import elementwise as ew
from functrans.testing import (
    assert_grad_matches,
    assert_hessian_symmetric,
    assert_jacfwd_matches_jacrev,
    assert_jvp_matches_fd,
    assert_vjp_matches_jvp,
    assert_vmap_matches_loop,
    check_complex_step,
    check_grads,
    check_jvp,
    check_transforms,
)
from functrans.testing import strategies as fts

X = np.random.default_rng(1).uniform(-1.0, 1.0, (3, 4))


def _number(message: str, label: str) -> float:
    return float(re.search(rf"{label} ([0-9.e+-]+)", message).group(1))


def _elementwise(name: str, impl, jvp) -> Primitive:
    p = Primitive(name)
    p.impl = impl
    p.abstract_eval = lambda aval: aval
    p.batch = lambda vals, dims: (p.bind(vals[0]), dims[0])
    p.jvp = jvp
    return p


# sin whose JVP is wrong by a factor of 2
wrong_sin_p = _elementwise(
    "wrong_sin",
    np.sin,
    lambda primals, tangents: (
        wrong_sin_p.bind(primals[0]),
        ew.mul(tangents[0], ew.mul(ew.full_like(primals[0], 2.0), ew.cos(primals[0]))),
    ),
)

# exp whose JVP is wrong by one part in a million: invisible to central differences
nearly_exp_p = _elementwise(
    "nearly_exp",
    np.exp,
    lambda primals, tangents: (
        nearly_exp_p.bind(primals[0]),
        ew.mul(tangents[0], ew.mul(ew.full_like(primals[0], 1.0 + 1e-6), ew.exp(primals[0]))),
    ),
)

# x - mean(x): right on one example, but its batch rule treats it as elementwise, so under vmap
# it subtracts the mean over the whole batch (a batch-coupled op)
center_p = Primitive("center")
center_p.impl = lambda x: x - np.mean(x)
center_p.abstract_eval = lambda aval: aval
center_p.batch = lambda vals, dims: (center_p.bind(vals[0]), dims[0])
center_p.jvp = lambda primals, tangents: (center_p.bind(primals[0]), center_p.bind(tangents[0]))
center_p.transpose = lambda ct, x: [center_p.bind(ct)]  # I - 11^T/n is symmetric

# x * y whose JVP treats y's factor as a constant in x's term: first derivatives are right, but
# d/dy (d/dx) = 0 while d/dx (d/dy) = 1, so its Hessian is not symmetric
frozen_p = _elementwise(
    "frozen",
    lambda y: y,
    lambda primals, tangents: (frozen_p.bind(primals[0]), ew.zeros(aval_of(primals[0]))),
)
lopsided_mul_p = Primitive("lopsided_mul")
lopsided_mul_p.impl = np.multiply
lopsided_mul_p.abstract_eval = lambda a, b: a
lopsided_mul_p.batch = lambda vals, dims: (lopsided_mul_p.bind(*vals), dims[0])
lopsided_mul_p.jvp = lambda primals, tangents: (
    lopsided_mul_p.bind(*primals),
    ew.add(ew.mul(tangents[0], frozen_p.bind(primals[1])), ew.mul(tangents[1], primals[0])),
)


def softmax_cross_entropy(logits, labels):
    shifted = logits - fnp.max(logits, axis=-1, keepdims=True)
    log_probs = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=-1, keepdims=True))
    return -fnp.sum(labels * log_probs) / logits.shape[0]


def softmax_cross_entropy_grad(logits, labels):
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    probs = e / np.sum(e, axis=-1, keepdims=True)
    return (probs * np.sum(labels, axis=-1, keepdims=True) - labels) / logits.shape[0]


def wrong_softmax_cross_entropy_grad(logits, labels):
    e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return (e / np.sum(e, axis=-1, keepdims=True) - labels) / logits.shape[0] ** 2


# ---------------------------------------------------------------------------------------------
# A wrong JVP rule


def test_wrong_jvp_rule_fails_assert_jvp_matches_fd():
    with pytest.raises(AssertionError) as info:
        assert_jvp_matches_fd(
            lambda p: {"y": wrong_sin_p.bind(p["x"]), "z": ew.cos(p["b"])}, ({"x": X, "b": X},)
        )
    msg = str(info.value)
    assert "assert_jvp_matches_fd failed (order 1, mode fwd)" in msg
    assert "argument(s): args[0]['x']\n" in msg
    assert "out['y']: max abs error" in msg and "out['z']" not in msg
    assert _number(msg, "max rel error") > 0.5
    assert "atol=1e-05" in msg
    assert "inputs: args[0]['b'] float64[3,4], args[0]['x'] float64[3,4]" in msg


def test_wrong_jvp_rule_is_caught_with_user_tangents_and_in_float32():
    x = X.astype(np.float32)
    with pytest.raises(AssertionError, match=r"atol=0\.01.*\n.*inputs: args\[0\] float32\[3,4\]"):
        assert_jvp_matches_fd(wrong_sin_p.bind, (x,), (np.ones_like(x),))
    assert_jvp_matches_fd(ew.sin, (x,), (np.ones_like(x),))


def test_tiny_jvp_error_needs_the_complex_step():
    check_jvp(nearly_exp_p.bind, (X,))  # a 1e-6 relative error is below central differences
    with pytest.raises(AssertionError) as info:
        check_complex_step(nearly_exp_p.bind, (X,))
    msg = str(info.value)
    assert "check_complex_step failed (order 1, mode fwd)" in msg
    assert "argument(s): args[0]\n" in msg
    assert 5e-7 < _number(msg, "max rel error") < 2e-6
    assert "atol=1e-09" in msg
    with pytest.raises(AssertionError, match="check_complex_step failed"):
        check_grads(nearly_exp_p.bind, (X,), order=1, complex_step=True)
    check_complex_step(fnp.exp, (X,))
    check_grads(lambda x: fnp.sum(fnp.exp(x) / (1.0 + x * x)), (X,), complex_step=True)


def test_complex_step_refuses_what_it_cannot_check():
    with pytest.raises(ValueError, match="real inputs only"):
        check_complex_step(fnp.sin, (X + 1j * X,))

    def no_complex(x):
        if x.dtype.kind == "c":
            raise TypeError("real only")
        return fnp.sin(x)

    with pytest.raises(ValueError, match="accepts complex numbers"):
        check_complex_step(no_complex, (X,))
    # abs is not analytic: the complex step would be wrong, and the report says why
    with pytest.raises(AssertionError, match="drops imaginary parts"):
        check_complex_step(lambda x: fnp.abs(x) + 0.0, (X,))


# ---------------------------------------------------------------------------------------------
# A wrong user gradient


def test_wrong_hand_written_gradient_is_caught():
    logits = X
    labels = np.eye(4)[[0, 3, 1]]
    assert_grad_matches(softmax_cross_entropy, softmax_cross_entropy_grad, (logits, labels))
    with pytest.raises(AssertionError) as info:
        assert_grad_matches(
            softmax_cross_entropy, wrong_softmax_cross_entropy_grad, (logits, labels)
        )
    msg = str(info.value)
    assert "assert_grad_matches failed for wrong_softmax_cross_entropy_grad" in msg
    assert "args[0]: max abs error" in msg
    assert "worst at [" in msg and "reference_grad" in msg
    assert "central differences agree with grad(f): the hand-written gradient is wrong" in msg
    assert "inputs: args[0] float64[3,4], args[1] float64[3,4]" in msg


def test_wrong_gradient_of_a_pytree_argument_names_the_leaf():
    def loss(params, x):
        return fnp.sum(fnp.tanh(x @ params["w"]) + params["b"])

    def hand_grad(params, x):
        d = 1.0 - np.tanh(x @ params["w"]) ** 2
        return {"w": x.T @ d, "b": np.ones_like(params["b"]) * 2.0}  # b's gradient is 1, not 2

    params = {"w": X[0], "b": np.zeros(3)}
    with pytest.raises(AssertionError) as info:
        assert_grad_matches(loss, hand_grad, (params, X[:, :4]))
    msg = str(info.value)
    assert "args[0]['b']: max abs error 1" in msg and "args[0]['w']" not in msg.split("along")[0]


def test_gradient_with_the_wrong_structure_is_reported():
    with pytest.raises(AssertionError, match="reference_grad returns"):
        assert_grad_matches(lambda p: fnp.sum(p["a"]), lambda p: p["a"], ({"a": X},))


# ---------------------------------------------------------------------------------------------
# vmap against a loop


def test_python_state_makes_vmap_differ_from_the_loop():
    calls = [0]

    def counting(x):
        calls[0] += 1  # vmap traces f once, the loop calls it per example
        return x * float(calls[0])

    with pytest.raises(AssertionError) as info:
        assert_vmap_matches_loop(counting, (X,))
    msg = str(info.value)
    assert "assert_vmap_matches_loop failed for f: vmap(f) differs from a loop" in msg
    assert "out: batch element(s) [0, 1, 2] of 3 differ" in msg
    assert "in_axes=0, out_axes=0, batch size 3" in msg
    assert "inputs: args[0] float64[3,4]" in msg


def test_batch_coupled_rule_is_caught_for_every_in_axes():
    assert_vmap_matches_loop(lambda x: center_p.bind(x), (np.ones((3, 4)),))  # all equal: no sign
    for in_axes, batch in [(0, X), (1, X.T), (-1, X.T), ((None, 0), (X[0], X))]:
        f = (
            (lambda x: center_p.bind(x))
            if not isinstance(in_axes, tuple)
            else (lambda a, x: a + center_p.bind(x))
        )
        args = batch if isinstance(batch, tuple) else (batch,)
        with pytest.raises(AssertionError) as info:
            assert_vmap_matches_loop(f, args, in_axes)
        msg = str(info.value)
        assert "vmap(f) differs from a loop" in msg and f"in_axes={in_axes!r}" in msg
        assert "max abs error" in msg and "worst at [" in msg


def test_vmap_errors_and_out_axes_are_reported():
    def bad_python_branch(x):
        return x if float(fnp.sum(x)) > 0 else -x  # concretizes a batched value

    with pytest.raises(AssertionError, match="vmap\\(f\\) raised"):
        assert_vmap_matches_loop(bad_python_branch, (X,))
    assert_vmap_matches_loop(
        lambda x, p: {"a": x * p["s"], "b": p["s"]},
        (X, {"s": np.float64(2.0)}),
        (1, None),
        {"a": -1, "b": None},
    )
    with pytest.raises(ValueError, match="in_axes"):
        assert_vmap_matches_loop(fnp.sin, (X,), in_axes=2)


# ---------------------------------------------------------------------------------------------
# jacfwd vs jacrev, Hessian symmetry


def test_asymmetric_hessian_is_caught():
    def f(x, y):
        return fnp.sum(lopsided_mul_p.bind(x, y))

    check_grads(f, (X, X), order=1)  # first derivatives are right
    with pytest.raises(AssertionError) as info:
        assert_hessian_symmetric(f, (X[0], X[1]))
    msg = str(info.value)
    assert "assert_hessian_symmetric failed for f: the Hessian" in msg
    pair = re.search(
        r"H\[(args\[\d\]\[\d\]), (args\[\d\]\[\d\])\] = (\S+) but H\[\2, \1\] = (\S+)", msg
    )
    assert pair and {pair.group(1)[:7], pair.group(2)[:7]} == {"args[0]", "args[1]"}
    assert {float(pair.group(3)), float(pair.group(4))} == {0.0, 1.0}
    assert "4 asymmetric pair(s)" in msg
    assert "inputs: args[0] float64[4], args[1] float64[4]" in msg
    assert_hessian_symmetric(lambda x, y: fnp.sum(fnp.sin(x) * y * x), (X[0], X[1]))


def test_hessian_symmetry_needs_a_real_scalar():
    with pytest.raises(ValueError, match="real scalar output"):
        assert_hessian_symmetric(fnp.sin, (X,))


def test_jacfwd_differs_from_jacrev_when_a_transpose_is_wrong():
    bad_scale_p = Primitive("bad_scale3")
    bad_scale_p.impl = lambda x: 3.0 * x
    bad_scale_p.abstract_eval = lambda aval: aval
    bad_scale_p.batch = lambda vals, dims: (bad_scale_p.bind(vals[0]), dims[0])
    bad_scale_p.jvp = lambda primals, tangents: (
        bad_scale_p.bind(primals[0]),
        bad_scale_p.bind(tangents[0]),
    )
    bad_scale_p.transpose = lambda ct, x: [ew.mul(ct, ew.full_like(ct, 2.0))]

    def f(x, n):
        return {"y": bad_scale_p.bind(x) * 2.0, "n": n, "z": fnp.sin(x)}

    with pytest.raises(AssertionError) as info:
        assert_jacfwd_matches_jacrev(f, (X[0], np.arange(2)))
    msg = str(info.value)
    assert "d out['y'] / d args[0]:" in msg and "out['z']" not in msg
    assert "worst at out['y'][" in msg and "/ args[0][" in msg
    with pytest.raises(AssertionError, match="assert_vjp_matches_jvp failed"):
        assert_vjp_matches_jvp(f, (X[0], np.arange(2)))


# ---------------------------------------------------------------------------------------------
# check_transforms


def test_check_transforms_picks_the_properties_that_apply():
    ran = check_transforms(softmax_cross_entropy, X, np.eye(4)[[0, 3, 1]], complex_step=False)
    assert ran[:5] == [
        "jvp vs central differences",
        "vjp vs jvp",
        "jacfwd vs jacrev",
        "hessian symmetric",
        "vmap(grad) vs loop",
    ]
    assert "vmap vs loop (in_axes=(None, 0))" in ran
    vector = check_transforms(lambda x: {"s": fnp.sin(x), "i": fnp.argmax(x)}, X[0])
    assert "hessian symmetric" not in vector and "jacfwd vs jacrev" in vector
    integer = check_transforms(lambda n: n * 2, np.arange(3))
    assert integer == ["vmap vs loop (in_axes=0)", "vmap vs loop (in_axes=-1)"]
    complex_ = check_transforms(lambda z: fnp.sum(z * z), X + 1j * X)
    assert "jacfwd vs jacrev" not in complex_ and "vjp vs jvp" in complex_


def test_check_transforms_reports_every_failure():
    with pytest.raises(AssertionError) as info:
        check_transforms(lambda x, y: fnp.sum(wrong_sin_p.bind(x) + center_p.bind(y)), X[0], X[1])
    msg = str(info.value)
    assert re.match(r"check_transforms: \d+ of \d+ properties failed for f", msg)
    assert "[jvp vs central differences] assert_jvp_matches_fd failed" in msg
    assert "[vmap vs loop (in_axes=0)] assert_vmap_matches_loop failed" in msg


# ---------------------------------------------------------------------------------------------
# Correct functions pass under hypothesis, float64 and float32


def _labels(rng_seed: int, shape) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[0])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_correct_functions_pass_check_transforms(dtype, data):
    logits = data.draw(fts.arrays(fts.shapes(2, 2, 1, 4), dtype, min_value=-3, max_value=3))
    labels = _labels(data.draw(st.integers(0, 100)), logits.shape).astype(dtype)
    check_transforms(softmax_cross_entropy, logits, labels, complex_step=dtype == np.float64)
    assert_grad_matches(softmax_cross_entropy, softmax_cross_entropy_grad, (logits, labels))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_correct_functions_pass_each_property(dtype, data):
    params = data.draw(
        fts.pytrees_of_arrays(fts.arrays(st.sampled_from([(), (3,)]), dtype), max_depth=1)
    )
    x = data.draw(fts.arrays((3,), dtype, min_value=-1, max_value=1))

    def f(params, x):
        leaves = ft.tree_util.tree_leaves(params)
        return sum(fnp.sum(fnp.tanh(leaf * x) * fnp.exp(-leaf * leaf)) for leaf in leaves)

    args = (params, x)
    t = data.draw(fts.tangents_like(args))
    assert_jvp_matches_fd(f, args, t)
    assert_vjp_matches_jvp(f, args, data.draw(fts.cotangents_like(f(*args))), t)
    assert_jacfwd_matches_jacrev(f, args)
    assert_hessian_symmetric(f, args)
    in_axes = data.draw(fts.in_axes_for(args))
    assert_vmap_matches_loop(f, data.draw(fts.batched(args, in_axes)), in_axes)
