"""Numerical derivative checks: JVP against central differences, VJP against JVP, any order.

Every check works on a function of positional pytree arguments and differentiates with respect
to the floating-point leaves only (integer and boolean leaves are held fixed). Nothing builds a
Jacobian: JVPs are compared along random tangents, and VJPs through the dot-product identity
<u, J v> = <J^T u, v>. A failure raises AssertionError naming the check, the order and mode, the
argument key path and the measured errors against the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import api, tree_util
from functrans.testing._flat import (
    _as_leaf,
    _aval_str,
    _Flat,
    _fmt,
    _is_float,
    _leaves_with_names,
    _Options,
    _random_like,
    _require_float_args,
    _Where,
    _wide,
    _wide_array,
)

# ---------------------------------------------------------------------------------------------
# JVP against central differences


def _central_difference(flat: _Flat, x: list, t: list, eps: float, wide: bool) -> list[Any]:
    if wide:
        x = [_wide_array(xi) for xi in x]
        t = [_wide_array(ti) for ti in t]
    plus = flat.call(*[xi + eps * ti for xi, ti in zip(x, t)])
    minus = flat.call(*[xi - eps * ti for xi, ti in zip(x, t)])
    return [
        (_wide_array(p) - _wide_array(m)) / (2 * eps) if _is_float(p) else None
        for p, m in zip(tree_util.tree_leaves(plus), tree_util.tree_leaves(minus))
    ]


def _tangent_failures(out_names, outs, tangents_out, reference, atol, rtol) -> list:
    """(output name, problem) for each output whose tangent differs from `reference`.

    The bound is `atol * scale + rtol * |reference|` elementwise, with scale the larger of 1 and
    the rms of the reference, so that derivatives of large functions are not held to an absolute
    tolerance meant for values of size 1.
    """
    failures = []
    for name, o, to, d in zip(out_names, outs, tangents_out, reference, strict=True):
        o, to = np.asarray(o), np.asarray(to)
        if to.shape != o.shape:
            failures.append((name, f"tangent has shape {to.shape} but the output {o.shape}"))
        elif d is None:
            if np.any(to != 0):
                failures.append(
                    (name, "the output is not floating point but its tangent is nonzero")
                )
        elif to.dtype != o.dtype:
            failures.append((name, f"tangent dtype {to.dtype} differs from output dtype {o.dtype}"))
        else:
            err = np.abs(_wide_array(to) - d)
            scale = max(1.0, float(np.sqrt(np.mean(np.abs(d) ** 2)))) if d.size else 1.0
            if not np.all(err <= atol * scale + rtol * np.abs(d)):  # also catches NaN
                abs_err = float(np.max(err))
                rel_err = float(np.max(err / np.maximum(np.abs(d), np.finfo(float).tiny)))
                failures.append(
                    (
                        name,
                        f"max abs error {_fmt(abs_err)}, max rel error {_fmt(rel_err)} "
                        f"(tolerance atol={atol:g} x scale {_fmt(scale)}, rtol={rtol:g})",
                    )
                )
    return failures


def _jvp_errors(flat: _Flat, x: list, t: list, opts: _Options, wide_fd: bool):
    """The JVP along t, and a (output name, problem) pair per output where it fails."""
    out, t_out = api.jvp(flat.call, x, t)
    out_names, outs = _leaves_with_names(out, "out")
    dtypes = [xi.dtype for xi in x] + [np.asarray(o).dtype for o in outs]
    atol, rtol = opts.tolerances(dtypes)
    eps = opts.step([np.float64] if wide_fd else dtypes)
    fd = _central_difference(flat, x, t, eps, wide_fd)
    return out, _tangent_failures(out_names, outs, tree_util.tree_leaves(t_out), fd, atol, rtol)


def _fd_can_widen(flat: _Flat, x: list) -> bool:
    """Difference in float64 when f accepts widened inputs and then returns wide floats."""
    if all(_wide(xi.dtype) == xi.dtype for xi in x):
        return False
    try:
        out = flat.call(*[_wide_array(xi) for xi in x])
    except Exception:  # noqa: BLE001 - any failure means: difference in the input dtype
        return False
    return all(
        _wide(o.dtype) == o.dtype
        for o in map(np.asarray, tree_util.tree_leaves(out))
        if np.issubdtype(o.dtype, np.inexact)
    )


def _jvp_check(
    f: Callable,
    args: tuple,
    opts: _Options,
    rng,
    where: _Where,
    tangents: Any = None,
    check: str = "check_jvp",
) -> None:
    flat = _Flat(f, args)
    _require_float_args(flat, check)
    x = [np.asarray(v) for v in flat.diff_leaves]
    if tangents is None:
        t = [_random_like(rng, xi) for xi in x]
    else:
        t = flat.diff_part(tangents, "tangents")
    wide = _fd_can_widen(flat, x)
    out, failures = _jvp_errors(flat, x, t, opts, wide)
    expected = tree_util.tree_leaves(flat.call(*x))
    for name, o, p in zip(*_leaves_with_names(out, "out"), expected, strict=True):
        o, p = np.asarray(o), np.asarray(p)
        atol, rtol = opts.tolerances([p.dtype])
        same = o.shape == p.shape and (
            np.allclose(o, p, atol=atol, rtol=rtol, equal_nan=True)
            if _is_float(p)
            else np.array_equal(o, p)
        )
        if not same:
            failures.append((name, "the primal output of jvp differs from f(*args)"))
    if not failures:
        return
    # Localise: which arguments' tangents alone reproduce a failure?
    culprits = []
    for k, name in enumerate(flat.diff_names):
        t_k = [ti if j == k else np.zeros_like(ti) for j, ti in enumerate(t)]
        if _jvp_errors(flat, x, t_k, opts, wide)[1]:
            culprits.append(name)
    args_str = ", ".join(culprits) if culprits else "only the combined direction of all arguments"
    lines = [where.header(check) + ": JVP differs from central differences"]
    lines.append(f"  argument(s): {args_str}")
    lines += [f"  {name}: {msg}" for name, msg in failures]
    lines.append(f"  inputs: {flat.describe()}")
    raise AssertionError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# VJP against JVP by the dot-product identity


def _inner(a: Sequence[Any], b: Sequence[Any]) -> tuple[float, float]:
    """Re sum_k sum(a_k * b_k) (in float64) and the 2-norm of the elementwise products.

    For complex values the real part of the bilinear form is the pairing under which the
    transpose of a real-linear map is taken (JAX's convention: the transpose of conj is conj).
    """
    total, sq = 0.0, 0.0
    for ak, bk in zip(a, b, strict=True):
        prod = _wide_array(ak) * _wide_array(bk)
        total += float(np.sum(np.real(prod)))
        sq += float(np.sum(np.abs(prod) ** 2))
    return total, float(np.sqrt(sq))


def _float_outputs(out: Any) -> tuple[list[str], list[Any], list[bool]]:
    names, outs = _leaves_with_names(out, "out")
    return names, outs, [_is_float(o) for o in outs]


def _vjp_check(
    f: Callable,
    args: tuple,
    opts: _Options,
    rng,
    where: _Where,
    cotangents: Any = None,
    tangents: Any = None,
    check: str = "check_vjp",
) -> None:
    flat = _Flat(f, args)
    _require_float_args(flat, check)
    x = [np.asarray(v) for v in flat.diff_leaves]
    out, pullback = api.vjp(flat.call, *x)
    _, outs, is_float = _float_outputs(out)
    out_tree = tree_util.tree_structure(out)
    if cotangents is None:
        u = [_random_like(rng, o) for o in outs]
    else:
        u = [
            np.asarray(c, np.asarray(o).dtype)
            for c, o in zip(out_tree.flatten_up_to(cotangents), outs, strict=True)
        ]
    cts = list(pullback(tree_util.tree_unflatten(out_tree, u)))
    header = where.header(check)
    for name, xi, ct in zip(flat.diff_names, x, cts, strict=True):
        ct = np.asarray(ct)
        if ct.shape != xi.shape or ct.dtype != xi.dtype:
            raise AssertionError(
                f"{header}: the cotangent of {name} is {_aval_str(ct)} but the "
                f"argument is {_aval_str(xi)}\n  inputs: {flat.describe()}"
            )
    v = (
        [_random_like(rng, xi) for xi in x]
        if tangents is None
        else flat.diff_part(tangents, "tangents")
    )
    dtypes = [xi.dtype for xi in x] + [np.asarray(o).dtype for o in outs]
    atol, rtol = opts.tolerances(dtypes)

    def mismatch(v_used):
        _, jv = api.jvp(flat.call, x, v_used)
        float_u = [uk for uk, fl in zip(u, is_float) if fl]
        float_jv = [jk for jk, fl in zip(tree_util.tree_leaves(jv), is_float) if fl]
        lhs, lhs_norm = _inner(float_u, float_jv)
        rhs, rhs_norm = _inner(cts, v_used)
        err = float(np.abs(lhs - rhs))
        bound = atol + rtol * max(lhs_norm, rhs_norm)
        return err, bound, lhs, rhs

    err, bound, lhs, rhs = mismatch(v)
    if err <= bound:
        return
    culprits = [
        name
        for k, name in enumerate(flat.diff_names)
        if not (lambda e: e[0] <= e[1])(
            mismatch([vi if j == k else np.zeros_like(vi) for j, vi in enumerate(v)])
        )
    ]
    rel = err / max(abs(lhs), abs(rhs), np.finfo(float).tiny)
    args_str = ", ".join(culprits) if culprits else "only the combined direction of all arguments"
    raise AssertionError(
        f"{header}: VJP violates <u, J v> = <J^T u, v> for random u, v\n"
        f"  argument(s): {args_str}\n"
        f"  <u, J v> = {_fmt(lhs)} (by jvp), <J^T u, v> = {_fmt(rhs)} (by vjp)\n"
        f"  max abs error {_fmt(err)}, max rel error {_fmt(rel)} "
        f"(tolerance {_fmt(bound)} = atol {atol:g} + rtol {rtol:g} x product norm)\n"
        f"  inputs: {flat.describe()}"
    )


# ---------------------------------------------------------------------------------------------
# JVP against the complex step: for real-analytic f, f(x + i h t) = f(x) + i h J t + O(h^2), so
# Im f(x + i h t) / h is J t with no subtraction, hence no cancellation: h can be 1e-20 and the
# derivative is exact to rounding. It needs an implementation that computes with complex numbers
# analytically (no abs, conj, real, comparisons or casts on the perturbed values).

_COMPLEX_STEP = 1e-20


def _complex_step(flat: _Flat, x: list, t: list, h: float) -> tuple[list[Any], list[str]]:
    """Im f(x + i h t) / h per output (None for non-float ones), in complex128; and the names of
    float outputs that came back real (their derivative along t then reads as 0)."""
    z = [xi.astype(np.complex128) + 1j * h * ti.astype(np.float64) for xi, ti in zip(x, t)]
    try:
        out = flat.call(*z)
    except Exception as err:
        raise ValueError(
            f"check_complex_step: f raised {type(err).__name__} on complex inputs ({err}). The "
            "complex step needs a real-analytic f whose implementation accepts complex numbers "
            "(functrans.numpy functions do); use check_jvp for this f."
        ) from err
    steps, real_outputs = [], []
    for name, o in zip(*_leaves_with_names(out, "out"), strict=True):
        o = np.asarray(o)
        if not np.issubdtype(o.dtype, np.inexact):
            steps.append(None)
        elif np.iscomplexobj(o):
            steps.append(np.imag(o).astype(np.float64) / h)
        else:
            real_outputs.append(name)
            steps.append(np.zeros(o.shape))
    return steps, real_outputs


def _complex_step_errors(flat: _Flat, x: list, t: list, opts: _Options, h: float):
    out, t_out = api.jvp(flat.call, x, t)
    out_names, outs = _leaves_with_names(out, "out")
    atol, rtol = opts.exact_tolerances([xi.dtype for xi in x] + [np.asarray(o).dtype for o in outs])
    steps, real_outputs = _complex_step(flat, x, t, h)
    failures = _tangent_failures(out_names, outs, tree_util.tree_leaves(t_out), steps, atol, rtol)
    return failures, real_outputs


def _complex_step_check(
    f: Callable, args: tuple, opts: _Options, rng, where: _Where, h: float, tangents: Any = None
) -> None:
    flat = _Flat(f, args)
    _require_float_args(flat, "check_complex_step")
    x = [np.asarray(v) for v in flat.diff_leaves]
    for name, xi in zip(flat.diff_names, x, strict=True):
        if np.iscomplexobj(xi):
            raise ValueError(
                f"check_complex_step: {name} is {_aval_str(xi)}; the complex step perturbs real "
                "inputs along the imaginary axis, so it applies to real inputs only. Use "
                "check_jvp for complex arguments."
            )
    t = (
        [_random_like(rng, xi) for xi in x]
        if tangents is None
        else flat.diff_part(tangents, "tangents")
    )
    failures, real_outputs = _complex_step_errors(flat, x, t, opts, h)
    if not failures:
        return
    culprits = [
        name
        for k, name in enumerate(flat.diff_names)
        if _complex_step_errors(
            flat, x, [ti if j == k else np.zeros_like(ti) for j, ti in enumerate(t)], opts, h
        )[0]
    ]
    args_str = ", ".join(culprits) if culprits else "only the combined direction of all arguments"
    lines = [
        where.header("check_complex_step")
        + f": JVP differs from the complex-step derivative Im f(x + i h t) / h (h={h:g})",
        f"  argument(s): {args_str}",
    ]
    lines += [f"  {name}: {msg}" for name, msg in failures]
    if real_outputs:
        lines.append(
            f"  note: {', '.join(real_outputs)} came back real for complex inputs, so f drops "
            "imaginary parts (abs, real, a cast?) and the complex step does not apply to it"
        )
    else:
        lines.append(
            "  (the complex step assumes f is real-analytic: abs, maximum, conj or branches on "
            "the perturbed values break it; use check_jvp for such f)"
        )
    lines.append(f"  inputs: {flat.describe()}")
    raise AssertionError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Derivative functions, for the next order


def _jvp_function(f: Callable) -> Callable:
    """(args, tangents) -> (f(*args), J t), tangents shaped like args with None at non-floats."""

    def f_jvp(args, tangents):
        flat = _Flat(f, args)
        return api.jvp(flat.call, flat.diff_leaves, tree_util.tree_leaves(tangents))

    return f_jvp


def _vjp_function(f: Callable) -> Callable:
    """(args, cotangent) -> J^T cotangent, shaped like args with None at non-float leaves."""

    def f_vjp(args, cotangent):
        flat = _Flat(f, args)
        _, pullback = api.vjp(flat.call, *flat.diff_leaves)
        return flat.like_args(list(pullback(cotangent)))

    return f_vjp


def _check_grads(f, args, order, modes, opts, rng, complex_step=False) -> None:
    """Breadth first, so that a wrong rule is reported at the lowest order that shows it."""
    level = [(f, args, _Where())]
    for k in range(1, order + 1):
        next_level = []
        for g, g_args, where in level:
            flat = _Flat(g, g_args)
            for mode in modes:
                here = _Where(k, where.modes + (mode,), where.described)
                if mode == "fwd":
                    _jvp_check(g, g_args, opts, rng, here)
                    if k < order:
                        t = flat.like_args([_random_like(rng, x) for x in flat.diff_leaves])
                        described = f"(args, tangents) -> jvp({where.described})"
                        next_level.append(
                            (_jvp_function(g), (g_args, t), _Where(k + 1, here.modes, described))
                        )
                else:
                    _vjp_check(g, g_args, opts, rng, here)
                    if k < order:
                        out = flat.call(*flat.diff_leaves)
                        ct = tree_util.tree_map(lambda o: _random_like(rng, _as_leaf(o)), out)
                        described = f"(args, cotangent) -> vjp({where.described})"
                        next_level.append(
                            (_vjp_function(g), (g_args, ct), _Where(k + 1, here.modes, described))
                        )
        if k == 1 and complex_step:
            _complex_step_check(f, args, opts, rng, _Where(1, ("fwd",)), _COMPLEX_STEP)
        level = next_level


# ---------------------------------------------------------------------------------------------
# Public checks


def check_jvp(
    f: Callable,
    args: Sequence[Any],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> None:
    """Check the JVP of `f` at `args` against central differences along a random tangent.

    The JVP along t is compared with (f(x + eps t) - f(x - eps t)) / (2 eps) elementwise, with
    bound `atol * scale + rtol * |fd|` where scale is max(1, rms of the difference quotient).
    Inputs of lower precision (float32) are differenced in float64 when `f` accepts them.
    Non-float outputs must have a zero tangent.

    Args:
      f: function of positional arguments (pytrees of arrays); float leaves are differentiated,
        integer and boolean leaves held fixed.
      args: tuple of positional arguments.
      atol, rtol: tolerances (default per dtype: 1e-5 for float64, 1e-2 for float32).
      eps: finite-difference step (default 1e-4 for float64, 1e-2 for float32).
      seed: seed of the random tangent.

    Returns:
      None.

    Raises:
      AssertionError: the JVP disagrees; the message names the output, the argument key path(s)
        whose tangent alone reproduces the error, the errors and the tolerance.
      ValueError: `args` has no floating-point leaf.

    Example:
      >>> from functrans.primitives.elementwise import sin
      >>> check_jvp(sin, (np.linspace(0.0, 1.0, 5),))
    """
    opts = _Options(atol, rtol, eps)
    _jvp_check(f, tuple(args), opts, np.random.default_rng(seed), _Where(1, ("fwd",)))


def check_vjp(
    f: Callable,
    args: Sequence[Any],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> None:
    """Check the VJP of `f` at `args` against its JVP by the dot-product identity.

    For random u (output-shaped) and v (input-shaped), <u, J v> from `jvp` must equal
    <J^T u, v> from `vjp` (for complex values: the real part of the bilinear pairing), within
    `atol + rtol * ||u * Jv||`; no Jacobian is built. The cotangents must also have the shapes
    and dtypes of the arguments.

    Args:
      f: function of positional arguments (pytrees of arrays); float leaves are differentiated.
      args: tuple of positional arguments.
      atol, rtol: tolerances (default per dtype: 1e-5 for float64, 1e-2 for float32).
      seed: seed of u and v.

    Returns:
      None.

    Raises:
      AssertionError: the identity fails or a cotangent has the wrong shape or dtype; the
        message names the argument key path(s), the errors and the tolerance.
      ValueError: `args` has no floating-point leaf.

    Example:
      >>> from functrans.primitives.elementwise import mul
      >>> check_vjp(mul, (np.ones(3), np.arange(3.0)))
    """
    opts = _Options(atol, rtol, None)
    _vjp_check(f, tuple(args), opts, np.random.default_rng(seed), _Where(1, ("rev",)))


def check_grads(
    f: Callable,
    args: Sequence[Any],
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
    complex_step: bool = False,
) -> None:
    """Check derivatives of `f` at `args` up to `order`, in forward and/or reverse mode.

    Order 1 runs `check_jvp` ("fwd") and `check_vjp` ("rev"). Order k+1 checks the derivative
    functions of order k: `(args, tangents) -> jvp(f, args, tangents)` for "fwd" and
    `(args, cotangent) -> vjp(f, *args)[1](cotangent)` for "rev", each again in every mode, at
    random tangents and cotangents. All checks of one order run before the next order, in the
    order of `modes`, so a failure is reported at the lowest order that shows it. Key paths in
    messages of order >= 2 refer to those functions' arguments: `args[0]` is the original
    arguments, `args[1]` the tangent/cotangent. With `complex_step=True`, order 1 also runs
    `check_complex_step` (machine-precision first derivatives; only for real-analytic f).

    Args:
      f: function of positional arguments (pytrees of arrays).
      args: tuple of positional arguments.
      order: highest derivative order to check (>= 1).
      modes: any of "fwd" and "rev".
      atol, rtol, eps: as for check_jvp (defaults per dtype); atol and rtol also apply to the
        complex-step check.
      seed: seed of all random directions.
      complex_step: also compare first derivatives with the complex step (see
        check_complex_step).

    Returns:
      None.

    Raises:
      AssertionError: a check fails; the message says which check, order and mode(s), which
        argument, the errors and the tolerance.
      ValueError: bad `order` or `modes`, or no floating-point leaf in `args`.

    Example:
      >>> import functrans.numpy as fnp
      >>> check_grads(lambda x, p: fnp.sum(fnp.sin(x) * p["w"]),
      ...             (np.ones(3), {"w": np.arange(3.0)}), order=2)
    """
    modes = tuple(modes)
    if order < 1 or not modes or not set(modes) <= {"fwd", "rev"}:
        raise ValueError(
            f"check_grads: order must be >= 1 and modes a non-empty subset of ('fwd', 'rev'); "
            f"got order={order!r}, modes={modes!r}"
        )
    opts = _Options(atol, rtol, eps)
    _check_grads(f, tuple(args), order, modes, opts, np.random.default_rng(seed), complex_step)


def check_complex_step(
    f: Callable,
    args: Sequence[Any],
    *,
    atol: float | None = None,
    rtol: float | None = None,
    h: float = _COMPLEX_STEP,
    seed: int = 0,
) -> None:
    """Check the JVP of `f` at `args` against the complex-step derivative, to machine precision.

    For f real-analytic, Im f(x + i h t) / h equals J t up to O(h^2) with no subtractive
    cancellation, so with h = 1e-20 it is exact to rounding, and the check can use tolerances
    near machine precision (1e-9 for float64, 1e-4 for float32, relative to the derivative's
    rms) where central differences need 1e-5 and 1e-2: it catches derivatives that are slightly
    wrong. It applies only when f is real-analytic in its float arguments and its implementation
    computes with complex numbers analytically: abs, maximum, sign, conj, real/imag, comparisons
    or casts on the perturbed values make it meaningless (use check_jvp there). The step is
    evaluated in complex128, whatever the input precision.

    Args:
      f: function of positional arguments (pytrees of arrays) with real float leaves.
      args: tuple of positional arguments.
      atol, rtol: tolerances (default per dtype: 1e-9 for float64, 1e-4 for float32).
      h: the imaginary step.
      seed: seed of the random tangent.

    Returns:
      None.

    Raises:
      AssertionError: the JVP disagrees; the message names the output, the argument key path(s),
        the errors and the tolerance.
      ValueError: `args` has no real floating-point leaf, a complex leaf, or f rejects complex
        inputs.

    Example:
      >>> import functrans.numpy as fnp
      >>> check_complex_step(lambda x: fnp.sum(fnp.exp(x) / (1.0 + x * x)), (np.ones(3),))
    """
    opts = _Options(atol, rtol, None)
    _complex_step_check(f, tuple(args), opts, np.random.default_rng(seed), _Where(1, ("fwd",)), h)
