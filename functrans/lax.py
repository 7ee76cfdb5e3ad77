"""Structured control flow: cond, switch, while_loop, fori_loop, scan, map.

Under evaluation and differentiation the predicate, index and trip count are concrete, so each
construct runs as ordinary Python: forward mode follows the branch taken, and reverse mode
records exactly the iterations that ran — so reverse mode works through `while_loop` and
`fori_loop` with a value-dependent trip count. Under vmap a batched predicate or index turns
`cond`/`switch` into a select over all branches, and `while_loop` into a loop that runs until
every lane is done (finished lanes keep their values). When the predicate is only known at run
time (inside jit or make_jaxpr), `cond`/`switch` and `while_loop`/`fori_loop` are staged as
higher-order primitives (functrans.control_flow); so is `scan` whenever a program is being staged,
so a long loop stays one equation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import tree_util
from functrans.control_flow import ops
from functrans.core import ShapedArray, Tracer, aval_of
from functrans.errors import BatchingError, ConcretizationError
from functrans.interpreters.batching import BatchTracer

_BATCHED = object()
_STAGED = object()


def _concrete(x: Any, construct: str) -> Any:
    """The Python value of a predicate/index/bound, _BATCHED when it varies over a vmap, or
    _STAGED when it is only known when a staged program runs (then the construct is staged)."""
    if not isinstance(x, Tracer):
        return np.asarray(x).item()
    try:
        return np.asarray(x.to_concrete(f"the {construct} predicate")).item()
    except BatchingError:
        return _BATCHED
    except ConcretizationError:
        return _STAGED


def _any_lane(p: Any) -> bool:
    """Whether a batched boolean is true in any lane (reducing over every enclosing vmap)."""
    while isinstance(p, BatchTracer):
        p = ops.any_along(p.val, p.batch_dim)
    return bool(p)


def _select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """Per lane, on_true where pred else on_false: both must be alike (as staged branches must
    be, and as JAX requires), not cast or broadcast to one another."""
    leaves_t, tree_t = tree_util.tree_flatten(on_true)
    leaves_f, tree_f = tree_util.tree_flatten(on_false)
    if tree_t == tree_f:  # a Python scalar is weakly typed: it takes the other side's dtype
        pairs = [_weak_pair(t, f) for t, f in zip(leaves_t, leaves_f)]
        leaves_t, leaves_f = [t for t, _ in pairs], [f for _, f in pairs]
    leaves_t = [ops.as_array(x) for x in leaves_t]
    leaves_f = [ops.as_array(x) for x in leaves_f]
    avals_t = [aval_of(x) for x in leaves_t]
    avals_f = [aval_of(x) for x in leaves_f]
    if tree_t != tree_f or avals_t != avals_f:
        raise TypeError(
            "lax.cond/switch/while_loop: under vmap with a batched predicate both sides must "
            "return the same structure, shapes and dtypes, got "
            f"{tree_t}: ({', '.join(a.str_short() for a in avals_t)}) vs "
            f"{tree_f}: ({', '.join(a.str_short() for a in avals_f)})"
        )
    outs = [ops.where(pred, t, f) for t, f in zip(leaves_t, leaves_f)]
    return tree_util.tree_unflatten(tree_t, outs)


# a Python scalar is weakly typed within its kind (an int carry is int32 with int32 bounds, a
# float one float32 in a float32 loop), as in JAX; across kinds (1 against 0.5) it is not
_WEAK_KINDS = {bool: "b", int: "iu", float: "f", complex: "c"}


def _weak_pair(t: Any, f: Any) -> tuple[Any, Any]:
    kinds_t, kinds_f = _WEAK_KINDS.get(type(t)), _WEAK_KINDS.get(type(f))
    if kinds_t and not kinds_f:
        dtype = aval_of(ops.as_array(f)).dtype
        return (np.asarray(t, dtype) if dtype.kind in kinds_t else t), f
    if kinds_f and not kinds_t:
        dtype = aval_of(ops.as_array(t)).dtype
        return t, (np.asarray(f, dtype) if dtype.kind in kinds_f else f)
    return t, f


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """`true_fun(*operands)` if pred else `false_fun(*operands)`.

    Under vmap with a batched predicate both branches run and the results are selected per
    element; the branches must then return the same structure, shapes and dtypes.

    Example:
      >>> cond(-2.0 > 0, lambda x: x, lambda x: -x, -2.0)
      2.0
    """
    if np.ndim(pred) != 0:
        raise TypeError(
            f"lax.cond: the predicate must be a scalar boolean, got shape {np.shape(pred)}; use "
            "functrans.numpy.where for elementwise choices."
        )
    p = _concrete(pred, "cond")
    if p is _STAGED:  # (the branch index: pred != 0, as a boolean)
        if aval_of(ops.as_array(pred)).dtype != np.dtype(bool):
            pred = ops.as_array(pred) != 0
        return _staged([false_fun, true_fun], pred, operands)
    if p is not _BATCHED:
        return (true_fun if p else false_fun)(*operands)
    return _select(pred, true_fun(*operands), false_fun(*operands))


def _staged(branches: Sequence[Callable], index: Any, operands: tuple) -> Any:
    """cond/switch on a traced index: stage every branch as a program (functrans.control_flow)."""
    from functrans.control_flow import staged_cond

    flat, in_tree = tree_util.tree_flatten(operands)
    store: dict = {}

    def flat_branch(fn):
        def call(*xs):
            out, store["out_tree"] = tree_util.tree_flatten(
                fn(*tree_util.tree_unflatten(in_tree, list(xs)))
            )
            return out

        return call

    outs = staged_cond(
        ops.as_int(index), [flat_branch(b) for b in branches], [ops.as_array(x) for x in flat]
    )
    return tree_util.tree_unflatten(store["out_tree"], outs)


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """`branches[index](*operands)`, with index clamped to the valid range (as JAX does).

    Example:
      >>> switch(1, [lambda x: x, lambda x: 2 * x], 3.0)
      6.0
    """
    n = len(branches)
    if n == 0:
        raise ValueError("lax.switch needs at least one branch")
    i = _concrete(index, "switch")
    if i is _STAGED:
        return _staged(branches, index, operands)
    if i is not _BATCHED:
        return branches[min(max(int(i), 0), n - 1)](*operands)
    clamped = ops.clip_index(index, n)
    outs = [b(*operands) for b in branches]
    result = outs[-1]
    for k in range(n - 2, -1, -1):
        result = _select(ops.equal_int(clamped, k), outs[k], result)
    return result


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """Repeat `val = body_fun(val)` while `cond_fun(val)`; differentiable in both modes, also
    when the number of iterations depends on the values (reverse mode records each iteration).

    Eagerly the loop runs as Python, and derivatives of any order work. Staged inside jit,
    reverse mode records a run-time tape that cannot be differentiated again: a second
    derivative there needs forward mode for both (jacfwd(jacfwd(f))).

    Example:
      >>> while_loop(lambda v: v < 10.0, lambda v: 2 * v, 1.0)
      16.0
    """
    val = init_val
    while True:
        p = cond_fun(val)
        c = _concrete(p, "while_loop")
        if c is _BATCHED:
            try:
                if not _any_lane(p):
                    return val
            except ConcretizationError:  # batched and staged (jit of vmap): stage the loop
                return _staged_while(cond_fun, body_fun, val)
            val = _select(p, body_fun(val), val)  # finished lanes keep their values
        elif c is _STAGED:
            return _staged_while(cond_fun, body_fun, val)
        elif c:
            val = body_fun(val)
        else:
            return val


def _staged_while(cond_fun: Callable, body_fun: Callable, val: Any) -> Any:
    """while_loop on a traced predicate: stage cond and body (functrans.control_flow)."""
    from functrans.control_flow import staged_while

    flat, tree = tree_util.tree_flatten(val)

    def flat_cond(*xs):
        return [cond_fun(tree_util.tree_unflatten(tree, list(xs)))]

    def flat_body(*xs):
        out = body_fun(tree_util.tree_unflatten(tree, list(xs)))
        leaves, out_tree = tree_util.tree_flatten(out)
        if out_tree != tree:
            raise TypeError(
                f"lax.while_loop: body_fun returned structure {out_tree} but the carry has "
                f"structure {tree}; they must match."
            )
        return leaves

    outs = staged_while(flat_cond, flat_body, _carry_arrays(flat, flat_body, []))
    return tree_util.tree_unflatten(tree, outs)


def _carry_arrays(carry: list, body: Callable, x_avals: list) -> list:
    """A staged loop's initial carry as arrays. A Python scalar is weakly typed, as it is
    eagerly (and in JAX): it takes the dtype the body makes of it (a float carry of a float32
    loop is float32), found by staging the body once with the scalar as it is."""
    arrays = [ops.as_array(c) for c in carry]
    weak = [type(c) in _WEAK_KINDS for c in carry]
    if not any(weak):
        return arrays
    from functrans.control_flow.programs import stage

    def trial(*args):  # the body with the Python scalars as they are: what eagerly happens
        it = iter(args)
        return body(*[c if w else next(it) for c, w in zip(carry, weak)], *it)

    avals = [aval_of(a) for a, w in zip(arrays, weak) if not w]
    try:
        jaxpr, _ = stage(trial, avals + list(x_avals))
    except Exception:  # the body uses its carry as an array (c.dtype): the default dtypes
        return arrays
    for k, out in enumerate(jaxpr.out_avals[: len(carry)]):
        if weak[k] and out.shape == () and out.dtype != aval_of(arrays[k]).dtype:
            arrays[k] = np.asarray(carry[k], out.dtype)
    return arrays


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """`val = body_fun(i, val)` for i in range(lower, upper); bounds may depend on values.

    Static bounds run the loop in Python with `i` a Python int, also inside jit (the staged
    program then holds one copy of the body per iteration, and computes exactly what the eager
    loop does); for a long loop inside jit, `lax.scan` stages one equation. Traced bounds stage
    a `while_loop`.

    Example:
      >>> fori_loop(0, 3, lambda i, v: v + i, 0.0)
      3.0
    """
    lo, hi = _concrete(lower, "fori_loop"), _concrete(upper, "fori_loop")
    if any(b is _BATCHED or b is _STAGED for b in (lo, hi)):

        def body(state):
            i, v = state
            return i + 1, body_fun(i, v)

        # i has the bounds' integer dtype (a Python int bound is weak), as in JAX
        from functrans.numpy import astype
        from functrans.numpy._base import asarray, result_dtype

        first = astype(asarray(lower), result_dtype(lower, upper))
        return while_loop(lambda s: ops.less(s[0], upper), body, (first, init_val))[1]
    val = init_val
    for i in range(int(lo), int(hi)):
        val = body_fun(i, val)
    return val


def scan(
    f: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
) -> tuple[Any, Any]:
    """Loop `carry, y = f(carry, x)` over the leading axis of xs; returns (carry, stacked ys).

    Args:
      f: the step function.
      init: the initial carry (a pytree).
      xs: a pytree of arrays sharing a leading axis, or None (then `length` is required).
      length: the number of steps when xs is None (checked against xs otherwise).
      reverse: run from the last element to the first (ys stay in xs's order).

    Example:
      >>> scan(lambda c, x: (c + x, c), 0.0, np.arange(3.0))
      (3.0, array([0., 0., 1.]))
    """

    leaves = tree_util.tree_leaves(xs)
    lengths = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if None in lengths:
        raise ValueError("lax.scan: every leaf of xs needs a leading axis to scan over")
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ValueError(
            f"lax.scan: xs leaves and length disagree on the number of steps: {sorted(lengths)}"
        )
    n = lengths.pop()
    if _staging() or n == 0:  # (no step to run: the staged scan knows the shapes of ys)
        return _staged_scan(f, init, xs, n, reverse)
    carry = init
    ys = []
    steps = range(n - 1, -1, -1) if reverse else range(n)
    for i in steps:
        x = tree_util.tree_map(lambda a, i=i: a[i], xs) if xs is not None else None
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys or ys[0] is None:
        return carry, None
    return carry, tree_util.tree_map(lambda *ys_: ops.stack(_alike(ys_)), *ys)


def _alike(values: Sequence[Any]) -> list:
    """Values in their common dtype, Python scalars weakly typed (a first `y` that is the
    Python int carry 0 takes the float dtype of the others, as when staged)."""
    from functrans.numpy._base import result_dtype
    from functrans.primitives import convert_element_type

    dtype = result_dtype(*values)
    return [
        x
        if aval_of(ops.as_array(x)).dtype == dtype
        else convert_element_type(ops.as_array(x), new_dtype=dtype)
        for x in values
    ]


def _staging() -> bool:
    """Whether a program is being staged (jit, make_jaxpr): loops then stay one equation."""
    from functrans.core import current_trace
    from functrans.interpreters.staging import StagingTrace

    trace = current_trace()
    while trace is not None:
        if type(trace) is StagingTrace:
            return True
        trace = trace.parent
    return False


def _staged_scan(f: Callable, init: Any, xs: Any, n: int, reverse: bool) -> tuple[Any, Any]:
    from functrans.control_flow import staged_scan

    carry_flat, carry_tree = tree_util.tree_flatten(init)
    xs_flat, xs_tree = tree_util.tree_flatten(xs)
    store: dict = {}

    def body(*a):
        c = tree_util.tree_unflatten(carry_tree, list(a[: len(carry_flat)]))
        x = (
            tree_util.tree_unflatten(xs_tree, list(a[len(carry_flat) :]))
            if xs is not None
            else None
        )
        new_c, y = f(c, x)
        c_leaves, c_tree = tree_util.tree_flatten(new_c)
        if c_tree != carry_tree:
            raise TypeError(
                f"lax.scan: f returned a carry of structure {c_tree} but init has structure "
                f"{carry_tree}; they must match."
            )
        y_leaves, store["y_tree"] = tree_util.tree_flatten(y)
        return c_leaves + y_leaves

    xs_arrays = [ops.as_array(x) for x in xs_flat]
    x_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs_arrays]
    outs = staged_scan(body, _carry_arrays(carry_flat, body, x_avals), xs_arrays, n, reverse)
    carry = tree_util.tree_unflatten(carry_tree, outs[: len(carry_flat)])
    ys = tree_util.tree_unflatten(store["y_tree"], outs[len(carry_flat) :])
    return carry, ys


def map(f: Callable, xs: Any, batch_size: int | None = None) -> Any:  # noqa: A001 - JAX's name
    """`f` applied to each element of xs along its leading axis, stacked: sequentially, or
    `batch_size` elements at a time with vmap.

    Example:
      >>> map(lambda x: x ** 2, np.arange(3.0))
      array([0., 1., 4.])
    """
    if batch_size is not None:
        from functrans.api_vmap import vmap

        return vmap(f, chunk_size=int(batch_size))(xs)
    return scan(lambda c, x: (c, f(x)), None, xs)[1]


__all__ = ["cond", "fori_loop", "map", "scan", "switch", "while_loop"]
