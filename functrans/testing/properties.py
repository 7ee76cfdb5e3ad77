"""Properties of transformed functions, ready to call from hypothesis tests (or plain ones).

Each `assert_*` computes one quantity two ways and raises AssertionError if they differ, with a
report: what was compared, where (output and argument key paths, the worst element), the largest
error against the tolerance, and the shapes and dtypes of the inputs (never their values).
`check_transforms` runs every property that applies to a function, deciding from the dtypes and
shapes of its inputs and output. Nothing here imports hypothesis: draw the inputs with
`functrans.testing.strategies`, or pass any arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import api, api_jacobians, api_vmap, tree_util
from functrans.testing._batches import _flat_axes, _scaled_examples, _stack, _unstack
from functrans.testing._checks import (
    _COMPLEX_STEP,
    _central_difference,
    _complex_step_check,
    _fd_can_widen,
    _jvp_check,
    _vjp_check,
)
from functrans.testing._flat import (
    _as_leaf,
    _aval_str,
    _describe_args,
    _dtypes,
    _fail,
    _Flat,
    _fmt,
    _index_str,
    _is_float,
    _leaves_with_names,
    _mismatch,
    _Options,
    _random_like,
    _require_float_args,
    _Where,
    _wide_array,
)

# ---------------------------------------------------------------------------------------------
# Derivatives against numerics


def assert_jvp_matches_fd(
    f: Callable,
    args: Sequence[Any],
    tangents: Any = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> None:
    """Assert that `jvp(f)` along `tangents` agrees with central differences.

    Args:
      f: function of positional pytree arguments; float leaves are differentiated.
      args: tuple of positional arguments.
      tangents: a pytree shaped like `args` (e.g. drawn with `strategies.tangents_like(args)`);
        entries at non-float leaves are ignored. Default: a random direction from `seed`.
      atol, rtol, eps: as for `check_jvp` (per-dtype defaults).
      seed: seed of the random direction when `tangents` is None.

    Raises:
      AssertionError: the report names the outputs that differ, the argument key path(s) whose
        tangent alone reproduces it, the errors, the tolerance and the inputs' avals.

    Example:
      >>> assert_jvp_matches_fd(fnp.tanh, (np.linspace(-1.0, 1.0, 5),))
    """
    _jvp_check(
        f,
        tuple(args),
        _Options(atol, rtol, eps),
        np.random.default_rng(seed),
        _Where(1, ("fwd",)),
        tangents,
        check="assert_jvp_matches_fd",
    )


def assert_vjp_matches_jvp(
    f: Callable,
    args: Sequence[Any],
    cotangents: Any = None,
    tangents: Any = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> None:
    """Assert the dot-product identity <u, J v> = <J^T u, v> between `jvp(f)` and `vjp(f)`.

    Args:
      f: function of positional pytree arguments; float leaves are differentiated.
      args: tuple of positional arguments.
      cotangents: u, shaped like `f(*args)` (e.g. `strategies.cotangents_like(f(*args))`).
      tangents: v, shaped like `args`; entries at non-float leaves are ignored.
      atol, rtol: as for `check_vjp` (per-dtype defaults).
      seed: seed of u and v when they are not given.

    Raises:
      AssertionError: the report gives both sides, the argument key path(s) that reproduce the
        error, the error against the tolerance and the inputs' avals.

    Example:
      >>> assert_vjp_matches_jvp(lambda x: fnp.sin(x) * x, (np.ones(3),))
    """
    _vjp_check(
        f,
        tuple(args),
        _Options(atol, rtol, None),
        np.random.default_rng(seed),
        _Where(1, ("rev",)),
        cotangents,
        tangents,
        check="assert_vjp_matches_jvp",
    )


def assert_grad_matches(
    f: Callable,
    reference_grad: Callable,
    args: Sequence[Any],
    *,
    argnums: int | Sequence[int] = 0,
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> None:
    """Assert that a hand-written gradient `reference_grad` equals `functrans.grad(f)`.

    Both are exact computations, so the tolerance is near machine precision (1e-9 for float64,
    1e-4 for float32). On a mismatch, the report also differentiates f by central differences
    along a random direction and says which of the two gradients that agrees with, so a wrong
    hand-written gradient is told apart from a wrong functrans rule.

    Args:
      f: real scalar-valued function.
      reference_grad: the user's gradient, called as `reference_grad(*args)`, returning what
        `functrans.grad(f, argnums)(*args)` returns (a pytree like the argument, or a tuple of
        them for a tuple `argnums`).
      args: tuple of positional arguments.
      argnums: which argument(s) the gradient is with respect to, as for `grad`.
      atol, rtol: tolerances of the comparison; eps: the finite-difference step.
      seed: seed of the finite-difference direction.

    Raises:
      AssertionError: the report names each differing gradient leaf by key path with its worst
        element, the errors against the tolerance, the finite-difference verdict and the
        inputs' avals.

    Example:
      >>> assert_grad_matches(lambda x: fnp.sum(x ** 3), lambda x: 3 * x ** 2, (np.ones(3),))
    """
    args = tuple(args)
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    nums = tuple(i % len(args) for i in nums)
    g = api.grad(f, argnums)(*args)
    ref = reference_grad(*args)
    g_pairs, g_tree = tree_util.tree_flatten_with_path(g)
    title = f"assert_grad_matches failed for {getattr(reference_grad, '__name__', 'reference')}"
    try:
        ref_leaves = g_tree.flatten_up_to(ref)
    except Exception as err:  # noqa: BLE001 - any mismatch of structure is reported the same way
        _fail(
            f"{title}: reference_grad returns {tree_util.tree_structure(ref)}, "
            f"but grad(f) returns {g_tree}",
            [str(err)],
            args,
        )

    def name(path) -> str:
        if single:
            return f"args[{nums[0]}]" + tree_util.keystr(path)
        return f"args[{nums[path[0].idx]}]" + tree_util.keystr(path[1:])

    atol_, rtol_ = _Options(atol, rtol, None).exact_tolerances(_dtypes(g))
    labels = ("reference_grad", "grad")
    problems = []
    for (path, gl), rl in zip(g_pairs, ref_leaves, strict=True):
        m = _mismatch(rl, gl, atol_, rtol_, labels, check_dtype=False)
        if m:
            problems.append(f"{name(path)}: {m}")
    if not problems:
        return
    verdict = _fd_verdict(
        f, args, nums, [gl for _, gl in g_pairs], ref_leaves, atol, rtol, eps, seed
    )
    _fail(f"{title}: the hand-written gradient differs from grad(f)", problems, args, verdict)


def _fd_verdict(f, args, nums, g_leaves, ref_leaves, atol, rtol, eps, seed) -> str:
    """Which gradient central differences along a random direction v agree with."""

    def f_of_dyn(*dyn):
        full = list(args)
        for i, a in zip(nums, dyn, strict=True):
            full[i] = a
        return f(*full)

    flat = _Flat(f_of_dyn, tuple(args[i] for i in nums))
    x = [np.asarray(v) for v in flat.diff_leaves]
    v = [_random_like(np.random.default_rng(seed), xi) for xi in x]
    opts = _Options(atol, rtol, eps)
    wide = _fd_can_widen(flat, x)
    fd = float(
        _central_difference(flat, x, v, opts.step([np.float64] if wide else _dtypes(x)), wide)[0]
    )
    atol_fd, rtol_fd = opts.tolerances(_dtypes(x))

    def along_v(leaves) -> float:
        return float(sum(np.sum(_wide_array(a) * _wide_array(b)) for a, b in zip(leaves, v)))

    ours, theirs = along_v(g_leaves), along_v(ref_leaves)
    close = [abs(d - fd) <= atol_fd * max(1.0, abs(fd)) + rtol_fd * abs(fd) for d in (ours, theirs)]
    side = {
        (True, False): "central differences agree with grad(f): the hand-written gradient is wrong",
        (False, True): "central differences agree with reference_grad: grad(f) looks wrong "
        "(please report it to functrans with this message)",
        (True, True): "central differences cannot tell them apart (the difference is below "
        "their resolution)",
        (False, False): "central differences agree with neither (is f smooth at these inputs?)",
    }[tuple(close)]
    return (
        f"along a random direction v: central differences {fd:.6g}, <grad(f), v> {ours:.6g}, "
        f"<reference_grad, v> {theirs:.6g}; {side}"
    )


# ---------------------------------------------------------------------------------------------
# Two transformations computing the same thing


def _float_leaf_function(f: Callable, args: tuple, title: str):
    flat = _Flat(f, args)
    _require_float_args(flat, title)
    x = [np.asarray(v) for v in flat.diff_leaves]
    return flat, x


def assert_jacfwd_matches_jacrev(
    f: Callable,
    args: Sequence[Any],
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Assert that the Jacobian by forward mode equals the Jacobian by reverse mode.

    The Jacobian is taken with respect to every float leaf of `args`, for every float output
    leaf (integer and boolean leaves are held fixed or skipped).

    Raises:
      AssertionError: the report names each differing block `d out... / d args...` with its
        worst element (output index / argument index), the errors, the tolerance and the
        inputs' avals.
      ValueError: no float argument or no float output.

    Example:
      >>> assert_jacfwd_matches_jacrev(lambda x: fnp.sin(x) * x[0], (np.arange(3.0),))
    """
    args = tuple(args)
    flat, x = _float_leaf_function(f, args, "assert_jacfwd_matches_jacrev")
    out_names, outs = _leaves_with_names(flat.call(*x), "out")
    keep = [k for k, o in enumerate(outs) if _is_float(o)]
    if not keep:
        raise ValueError("assert_jacfwd_matches_jacrev: f has no floating-point output")

    def float_outputs(*xs):
        leaves = tree_util.tree_leaves(flat.call(*xs))
        return [leaves[k] for k in keep]

    argnums = tuple(range(len(x)))
    fwd = api_jacobians.jacfwd(float_outputs, argnums)(*x)
    rev = api_jacobians.jacrev(float_outputs, argnums)(*x)
    atol_, rtol_ = _Options(atol, rtol, None).exact_tolerances(_dtypes(x, [outs[k] for k in keep]))
    problems = []
    for row, k in enumerate(keep):
        rank = np.ndim(outs[k])
        for col, arg_name in enumerate(flat.diff_names):

            def where(i, o=out_names[k], a=arg_name, r=rank):
                return f"{o}{_index_str(i[:r])} / {a}{_index_str(i[r:])}"

            m = _mismatch(fwd[row][col], rev[row][col], atol_, rtol_, ("jacfwd", "jacrev"), where)
            if m:
                problems.append(f"d {out_names[k]} / d {arg_name}: {m}")
    if problems:
        _fail("assert_jacfwd_matches_jacrev failed for f: jacfwd(f) != jacrev(f)", problems, args)


def assert_hessian_symmetric(
    f: Callable,
    args: Sequence[Any],
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Assert that the Hessian of a real scalar function (`functrans.hessian`) is symmetric.

    The Hessian is taken with respect to all float leaves of `args` together, so mixed blocks
    between two arguments are compared too: H[a, b] must equal H[b, a] for every pair of input
    elements a, b. An asymmetric Hessian means some second derivative rule is wrong (or f is not
    twice continuously differentiable at `args`).

    Raises:
      AssertionError: the report names the worst pair of input elements by key path and index,
        both entries, the number of asymmetric pairs, the tolerance and the inputs' avals.
      ValueError: the output is not a real scalar, or an argument is complex.

    Example:
      >>> assert_hessian_symmetric(lambda x, y: fnp.sum(fnp.sin(x) * y), (np.ones(2), np.ones(2)))
    """
    args = tuple(args)
    flat, x = _float_leaf_function(f, args, "assert_hessian_symmetric")
    out = np.asarray(flat.call(*x))
    if out.shape != () or out.dtype.kind != "f" or any(np.iscomplexobj(xi) for xi in x):
        raise ValueError(
            f"assert_hessian_symmetric: needs real float arguments and a real scalar output; "
            f"f returns {_aval_str(out)} for inputs {flat.describe()}"
        )
    argnums = tuple(range(len(x)))
    blocks = api_jacobians.hessian(flat.call, argnums)(*x)
    sizes = [xi.size for xi in x]
    h = np.block(
        [
            [_wide_array(blocks[i][j]).reshape(sizes[i], sizes[j]) for j in range(len(x))]
            for i in range(len(x))
        ]
    )
    atol_, rtol_ = _Options(atol, rtol, None).exact_tolerances(_dtypes(x, out))
    err = np.abs(h - h.T)
    scale = max(1.0, float(np.sqrt(np.mean(h**2)))) if h.size else 1.0
    bound = atol_ * scale + rtol_ * np.maximum(np.abs(h), np.abs(h.T))
    bad = ~(err <= bound)
    if not np.any(bad):
        return
    offsets = np.cumsum([0] + sizes)

    def element(p: int) -> str:
        i = int(np.searchsorted(offsets, p, side="right")) - 1
        index = np.unravel_index(p - offsets[i], x[i].shape) if x[i].ndim else ()
        return flat.diff_names[i] + _index_str(tuple(int(k) for k in index))

    p, q = np.unravel_index(
        int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1))), h.shape
    )
    a, b = element(int(p)), element(int(q))
    _fail(
        "assert_hessian_symmetric failed for f: the Hessian (forward over reverse) is not "
        "symmetric",
        [
            f"H[{a}, {b}] = {h[p, q]:.6g} but H[{b}, {a}] = {h[q, p]:.6g}",
            f"{int(np.sum(bad)) // 2 or 1} asymmetric pair(s); max abs error "
            f"{_fmt(float(np.max(err)))} (tolerance atol={atol_:g} x scale {_fmt(scale)}, "
            f"rtol={rtol_:g})",
        ],
        args,
    )


# ---------------------------------------------------------------------------------------------
# vmap against a loop


def assert_vmap_matches_loop(
    f: Callable,
    args: Sequence[Any],
    in_axes: Any = 0,
    out_axes: Any = 0,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Assert that `vmap(f, in_axes, out_axes)(*args)` equals a Python loop of `f` over the batch.

    The loop slices each mapped argument along its `in_axes` entry, calls `f` on every example
    and stacks the results along `out_axes` (an output with `out_axes` None must be the same for
    every example). Shapes and dtypes must match exactly; float values within near-machine
    precision (1e-9 for float64, 1e-4 for float32). Catches batch rules that mix batch elements
    and functions with Python-level state (vmap calls f once, the loop once per example).

    Args:
      f: function of positional pytree arguments.
      args: the batched arguments.
      in_axes, out_axes: as for `vmap` (ints, possibly negative, None, or pytree prefixes).
      atol, rtol: tolerances for float outputs.

    Raises:
      AssertionError: vmap raised where the loop did not, or an output differs; the report
        names the output key path, the batch elements that differ, the worst element, the
        errors and the tolerance, and the in_axes/out_axes and inputs' avals.
      ValueError: `in_axes` does not fit `args`.

    Example:
      >>> assert_vmap_matches_loop(lambda x, y: x @ y, (np.ones((4, 3)), np.ones(3)), (0, None))
    """
    args = tuple(args)
    examples, size = _unstack(args, in_axes)
    setting = f"in_axes={in_axes!r}, out_axes={out_axes!r}, batch size {size}"
    title = "assert_vmap_matches_loop failed for f"
    looped = [f(*ex) for ex in examples]
    try:
        batched = api_vmap.vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
    except Exception as err:
        raise AssertionError(
            f"{title}: vmap(f) raised {type(err).__name__} where a loop over the batch runs\n"
            f"  {err}\n  {setting}\n  inputs: {_describe_args(args)}"
        ) from err
    out_tree = tree_util.tree_structure(looped[0])
    if tree_util.tree_structure(batched) != out_tree:
        _fail(
            f"{title}: vmap(f) returns {tree_util.tree_structure(batched)} but f returns "
            f"{out_tree}",
            [],
            args,
            setting,
        )
    names = _leaves_with_names(looped[0], "out")[0]
    axes = _flat_axes(out_axes, looped[0], "out_axes", "outputs")
    columns = zip(*[out_tree.flatten_up_to(o) for o in looped], strict=True)
    problems = []
    # a float64 result computed from float32 inputs carries float32 rounding (summation order)
    in_dtypes = [
        np.asarray(leaf).dtype
        for leaf in tree_util.tree_leaves(args)
        if np.asarray(leaf).dtype.kind in "fc"
    ]
    for name, got, col, axis in zip(names, tree_util.tree_leaves(batched), columns, axes):
        col = [np.asarray(c) for c in col]
        atol_, rtol_ = _Options(atol, rtol, None).exact_tolerances(
            [c.dtype for c in col] + in_dtypes
        )
        if axis is None:
            want, got_b = col[0], [np.asarray(got)] * size
        else:
            want = np.stack(col, axis=axis)
            got_b = list(np.moveaxis(np.asarray(got), axis, 0)) if np.ndim(got) == want.ndim else []
        m = _mismatch(got, want, atol_, rtol_, ("vmap", "loop"))
        if m:
            differ = [
                b
                for b, (gb, c) in enumerate(zip(got_b, col))
                if _mismatch(gb, c, atol_, rtol_, ("vmap", "loop")) is not None
            ]
            which = f"batch element(s) {differ} of {size} differ; " if got_b else ""
            problems.append(f"{name}: {which}{m}")
    if problems:
        _fail(f"{title}: vmap(f) differs from a loop over the batch", problems, args, setting)


# ---------------------------------------------------------------------------------------------
# Everything that applies


def check_transforms(
    f: Callable,
    *args: Any,
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    complex_step: bool = False,
    seed: int = 0,
) -> list[str]:
    """Run every property that applies to `f` at `args`; report all failures together.

    Which properties apply is read off the inputs and the output `f(*args)`:
      - float inputs and a float output: JVP vs central differences, VJP vs JVP (any dtype);
        the complex step too if `complex_step=True` (only for real-analytic f);
      - real inputs and real outputs: jacfwd == jacrev;
      - a real scalar output: the Hessian is symmetric, and vmap(grad(f)) == a loop of grad;
      - always: vmap(f) == a loop, for in_axes 0, -1 and (when there are several arguments)
        None for the first one, on a batch of `args` and two copies scaled by 1 +- 2%.

    Args:
      f: function of positional pytree arguments.
      *args: the arguments.
      atol, rtol, eps: override the per-dtype defaults of every property.
      complex_step: also run `check_complex_step`.
      seed: seed of random directions and of the batch.

    Returns:
      The names of the properties that ran (all passed).

    Raises:
      AssertionError: listing the report of every property that failed (or raised).

    Example:
      >>> check_transforms(lambda x, w: fnp.sum(fnp.tanh(x @ w)), np.ones((2, 3)), np.ones(3))
      ['jvp vs central differences', 'vjp vs jvp', 'jacfwd vs jacrev', ...]
    """
    flat = _Flat(f, args)
    x = [np.asarray(v) for v in flat.diff_leaves]
    out = f(*args)
    outs = [np.asarray(_as_leaf(o)) for o in tree_util.tree_leaves(out)]
    float_out = any(_is_float(o) for o in outs)
    complex_any = any(np.iscomplexobj(v) for v in x + outs)
    real_scalar = (
        tree_util.treedef_is_leaf(tree_util.tree_structure(out))
        and outs[0].shape == ()
        and outs[0].dtype.kind == "f"
    )
    opts = dict(atol=atol, rtol=rtol)
    rng = np.random.default_rng(seed)
    checks: list[tuple[str, Callable[[], None]]] = []
    if x and float_out:
        checks.append(
            (
                "jvp vs central differences",
                lambda: assert_jvp_matches_fd(f, args, eps=eps, seed=seed, **opts),
            )
        )
        checks.append(("vjp vs jvp", lambda: assert_vjp_matches_jvp(f, args, seed=seed, **opts)))
        if complex_step:
            checks.append(
                (
                    "complex step",
                    lambda: _complex_step_check(
                        f,
                        args,
                        _Options(atol, rtol, None),
                        np.random.default_rng(seed),
                        _Where(1, ("fwd",)),
                        _COMPLEX_STEP,
                    ),
                )
            )
        if not complex_any:
            checks.append(
                ("jacfwd vs jacrev", lambda: assert_jacfwd_matches_jacrev(f, args, **opts))
            )
    if x and real_scalar and not complex_any:
        checks.append(("hessian symmetric", lambda: assert_hessian_symmetric(f, args, **opts)))
        grad_f = api.grad(flat.call, tuple(range(len(x))))
        x_batch = _stack(_scaled_examples(tuple(x), 3, rng), 0)
        checks.append(
            ("vmap(grad) vs loop", lambda: assert_vmap_matches_loop(grad_f, x_batch, 0, 0, **opts))
        )
    patterns = [0, -1] + ([(None,) + (0,) * (len(args) - 1)] if len(args) > 1 else [])
    examples = _scaled_examples(args, 3, rng)
    for in_axes in patterns if args else []:
        batch = _stack(examples, in_axes)
        checks.append(
            (
                f"vmap vs loop (in_axes={in_axes!r})",
                lambda b=batch, a=in_axes: assert_vmap_matches_loop(f, b, a, 0, **opts),
            )
        )
    failures = []
    for name, run in checks:
        try:
            run()
        except AssertionError as err:
            failures.append(f"[{name}] {err}")
        except Exception as err:  # noqa: BLE001 - a transformation that raises is a finding too
            failures.append(f"[{name}] raised {type(err).__name__}: {err}")
    if failures:
        raise AssertionError(
            f"check_transforms: {len(failures)} of {len(checks)} properties failed for f\n\n"
            + "\n\n".join(failures)
        )
    return [name for name, _ in checks]
