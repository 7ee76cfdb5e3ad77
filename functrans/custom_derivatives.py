"""Custom derivative rules: custom_jvp and custom_vjp, as higher-order primitives.

- `custom_jvp_call(fun, jvp)`: evaluation runs `fun`; the JVP interpreter runs the user's `jvp`
  instead of differentiating `fun`. Reverse mode transposes the rule's tangent computation, which
  must therefore be linear in the tangents.
- `custom_vjp_call(fun, fwd, bwd, jvp)`: the JVP interpreter runs `fwd` and emits one
  `custom_lin` equation, linear in the tangents. Evaluated forward (plain forward mode) it
  differentiates `fun` — or applies `jvp` when the function has both rules; transposed (reverse
  mode) it calls `bwd`. So a custom VJP never blocks forward mode, jacfwd or hessian.
Batching maps the user's functions with vmap and binds the primitive again one level down, so
the rules still apply to transformations further out. The user's functions are stored flat.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import tree_util
from functrans.api import _as_array, jvp_flat
from functrans.api_vmap import vmap_flat
from functrans.core import Primitive, Tracer, UndefPrimal, aval_of, instantiate
from functrans.errors import ShapeDtypeMismatchError, TreeStructureError
from functrans.interpreters.staging import trace_to_jaxpr
from functrans.primitives import bdim_to
from functrans.primitives.base import batch_size

# ---------------------------------------------------------------------------------------------
# Flat views of the user's functions


class _Flat:
    """A user function as flat-in, flat-out, with non-array arguments held aside."""

    def __init__(self, fun: Callable, in_tree, nondiff: dict[int, Any]):
        self.fun = fun
        self.in_tree = in_tree
        self.nondiff = nondiff
        self.out_tree = None
        self.__name__ = getattr(fun, "__name__", "fun")

    def dyn_args(self, flat: Sequence[Any]) -> tuple:
        return tuple(tree_util.tree_unflatten(self.in_tree, list(flat)))

    def args(self, flat: Sequence[Any]) -> list[Any]:
        dyn = self.dyn_args(flat)
        it = iter(dyn)
        total = len(dyn) + len(self.nondiff)
        return [self.nondiff[i] if i in self.nondiff else next(it) for i in range(total)]

    def nondiff_args(self) -> list[Any]:
        return [self.nondiff[i] for i in sorted(self.nondiff)]

    def __call__(self, *flat):
        leaves, self.out_tree = tree_util.tree_flatten(self.fun(*self.args(flat)))
        return [_as_array(x) for x in leaves]

    def output_tree(self, flat: Sequence[Any]):
        if self.out_tree is None:
            # the function never ran at this level (a rule produced the outputs): stage it on
            # abstract values to learn its output structure
            trace_to_jaxpr(lambda *xs: self(*xs), [aval_of(x) for x in flat])
        return self.out_tree


def _split_nondiff(transform: str, args: tuple, nondiff_argnums: tuple[int, ...]):
    nondiff = {}
    for i in nondiff_argnums:
        if not -len(args) <= i < len(args):
            raise TypeError(
                f"{transform}: nondiff_argnums {i} is out of range for {len(args)} arguments"
            )
        a = args[i]
        if any(isinstance(x, (np.ndarray, Tracer)) for x in tree_util.tree_leaves(a)):
            raise TypeError(
                f"{transform}: argument {i} is listed in nondiff_argnums but holds an array. "
                "nondiff_argnums is for non-array arguments (callables, ints, strings); pass "
                "arrays as regular arguments (their derivative may simply go unused) or close "
                "over them."
            )
        nondiff[i % len(args)] = a
    dyn = tuple(a for i, a in enumerate(args) if i not in nondiff)
    flat, in_tree = tree_util.tree_flatten(dyn)
    return nondiff, [_as_array(x) for x in flat], in_tree


def _flatten_like(transform: str, what: str, value: Any, tree, avals) -> list[Any]:
    leaves, got = tree_util.tree_flatten(value)
    if got != tree:
        raise TreeStructureError(
            f"{transform}: the {what} has structure {got} but must have structure {tree}."
        )
    return [
        _shaped_like(transform, f"leaf {i} of the {what}", leaf, aval)
        for i, (leaf, aval) in enumerate(zip(leaves, avals, strict=True))
    ]


def _shaped_like(transform: str, what: str, leaf: Any, aval) -> Any:
    leaf = _as_array(leaf)
    if aval_of(leaf).shape != aval.shape:
        raise ShapeDtypeMismatchError(
            f"{transform}: {what} is {aval_of(leaf).str_short()} but must be shaped like "
            f"{aval.str_short()}."
        )
    return leaf


# ---------------------------------------------------------------------------------------------
# Batching helpers: map flat callables with vmap, batch axes at the front


def _batched_callable(fn: Callable, dims: Sequence[int | None], size: int) -> Callable:
    def batched(*xs):
        outs, out_dims = vmap_flat(lambda *a: list(fn(*a)), xs, dims, size)
        return [bdim_to(o, d, 0, size) for o, d in zip(outs, out_dims, strict=True)]

    return batched


def _to_front(vals, dims):
    size = batch_size(vals, dims)
    vals = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(vals, dims, strict=True)]
    return vals, [None if d is None else 0 for d in dims], size


# ---------------------------------------------------------------------------------------------
# custom_jvp_call(*args, fun, jvp): jvp(primals, tangents) -> (outs, tangent_outs), all flat

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)


def _call_abstract_eval(*avals, fun, **_):
    jaxpr, _ = trace_to_jaxpr(lambda *xs: fun(*xs), avals)
    return jaxpr.out_avals


def _custom_jvp_call_batch(vals, dims, *, fun, jvp):
    vals, dims, size = _to_front(vals, dims)
    n = len(vals)

    def jvp_pairs(*a):
        outs, t_outs = jvp(list(a[:n]), list(a[n:]))
        return list(outs) + list(t_outs)

    jvp_mapped = _batched_callable(jvp_pairs, list(dims) * 2, size)

    def jvp_b(primals, tangents):
        flat = jvp_mapped(*primals, *tangents)
        return flat[: len(flat) // 2], flat[len(flat) // 2 :]

    outs = custom_jvp_call_p.bind(*vals, fun=_batched_callable(fun, dims, size), jvp=jvp_b)
    return outs, [0] * len(outs)


custom_jvp_call_p.impl = lambda *args, fun, jvp: fun(*args)
custom_jvp_call_p.abstract_eval = _call_abstract_eval
custom_jvp_call_p.jvp = lambda primals, tangents, *, fun, jvp: jvp(
    list(primals), [instantiate(t) for t in tangents]
)
custom_jvp_call_p.batch = _custom_jvp_call_batch


def _rule_caller(transform: str, rule: Callable, flat_fun: _Flat) -> Callable:
    """The user's jvp rule as flat (primals, tangents) -> (outs, tangent_outs)."""

    def call(primals, tangents):
        out, t_out = rule(
            *flat_fun.nondiff_args(), flat_fun.dyn_args(primals), flat_fun.dyn_args(tangents)
        )
        out_flat, out_tree = tree_util.tree_flatten(out)
        out_flat = [_as_array(x) for x in out_flat]
        if flat_fun.out_tree is None:
            flat_fun.out_tree = out_tree
        avals = [aval_of(x) for x in out_flat]
        t_flat = _flatten_like(transform, "tangent output of the JVP rule", t_out, out_tree, avals)
        return out_flat, t_flat

    call.__name__ = getattr(rule, "__name__", "jvp")
    return call


class custom_jvp:  # noqa: N801 - JAX's name
    """A function with a custom JVP rule; forward mode, reverse mode (by transposing the rule),
    vmap and jit all use it.

    Args:
      fun: the function.
      nondiff_argnums: positions of non-array arguments (callables, ints, strings), passed
        through unchanged and given to the rule first.

    Raises:
      TypeError: an array in nondiff_argnums, or a call before a rule is defined.
      NonLinearError: in reverse mode, when the rule is not linear in the tangents.

    Example:
      >>> @custom_jvp
      ... def log1pexp(x):
      ...     return fnp.log1p(fnp.exp(x))
      >>> @log1pexp.defjvp
      ... def log1pexp_jvp(primals, tangents):
      ...     (x,), (t,) = primals, tangents
      ...     return log1pexp(x), t * (1 - 1 / (1 + fnp.exp(x)))
      >>> grad(log1pexp)(1000.0)   # no overflow in the derivative
      1.0
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp_rule: Callable | None = None
        functools.update_wrapper(self, fun, updated=())  # never copy fun.__dict__ over ours

    def defjvp(self, jvp: Callable) -> Callable:
        """Set `jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`."""
        self.jvp_rule = jvp
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        """One rule per argument: `jvps[i](t_i, primal_out, *primals)` is argument i's tangent
        contribution (None: the output does not depend on it); contributions are summed."""

        def jvp(*args):
            *nondiff, primals, tangents = args
            out = self.fun(*nondiff, *primals)
            total = None
            for rule, t in zip(jvps, tangents, strict=True):
                if rule is not None:
                    term = rule(t, out, *primals)
                    total = (
                        term
                        if total is None
                        else tree_util.tree_map(lambda a, b: a + b, total, term)
                    )
            if total is None:
                total = tree_util.tree_map(lambda o: np.zeros_like(np.asarray(o)), out)
            return out, total

        self.jvp_rule = jvp

    def __call__(self, *args):
        if self.jvp_rule is None:
            raise TypeError(
                f"custom_jvp function {self.__name__} has no rule yet: define it with "
                "@f.defjvp (or f.defjvps) before calling f."
            )
        nondiff, flat, in_tree = _split_nondiff("custom_jvp", args, self.nondiff_argnums)
        fun = _Flat(self.fun, in_tree, nondiff)
        outs = custom_jvp_call_p.bind(
            *flat, fun=fun, jvp=_rule_caller("custom_jvp", self.jvp_rule, fun)
        )
        return tree_util.tree_unflatten(fun.output_tree(flat), outs)


# ---------------------------------------------------------------------------------------------
# custom_vjp_call(*args, fun, fwd, bwd, jvp): fwd(args) -> (outs, residuals), flat;
# bwd(residuals, cts_out) -> cts_in, flat; jvp: a flat JVP rule, or None.

custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)


class _VJPRules:
    """The user's fwd/bwd pair as flat functions; remembers the residual tree per call."""

    def __init__(self, transform: str, fwd: Callable, bwd: Callable, fun: _Flat):
        self.transform = transform
        self.fwd_user = fwd
        self.bwd_user = bwd
        self.fun = fun

    def __repr__(self):  # how a printed program shows the rules
        return f"(fwd={_fun_name(self.fwd_user)}, bwd={_fun_name(self.bwd_user)})"

    def fwd(self, primals):
        out, res = self.fwd_user(*self.fun.args(primals))
        out_flat, out_tree = tree_util.tree_flatten(out)
        if self.fun.out_tree is None:
            self.fun.out_tree = out_tree
        res_flat, res_tree = tree_util.tree_flatten(res)
        return [_as_array(x) for x in out_flat], [_as_array(x) for x in res_flat], res_tree

    def bwd(self, res_tree, residuals, cts, in_avals):
        """Flat cotangents of the differentiable inputs (None where bwd gave None: zero)."""
        res = tree_util.tree_unflatten(res_tree, list(residuals))
        ct = tree_util.tree_unflatten(self.fun.out_tree, list(cts))
        cts_in = self.bwd_user(*self.fun.nondiff_args(), res, ct)
        arg_trees = self.fun.in_tree.children()
        if not isinstance(cts_in, (tuple, list)) or len(cts_in) != len(arg_trees):
            got = (
                f"{type(cts_in).__name__} of length {len(cts_in)}"
                if isinstance(cts_in, (tuple, list))
                else type(cts_in).__name__
            )
            raise TypeError(
                f"{self.transform}: bwd must return a tuple with one cotangent per "
                f"differentiable argument ({len(arg_trees)}), got a {got}."
            )
        leaves: list[Any] = []
        for k, (arg_ct, tree) in enumerate(zip(cts_in, arg_trees, strict=True)):
            if arg_ct is None:
                leaves.extend([None] * tree.num_leaves)
                continue
            flat, got = tree_util.tree_flatten(arg_ct)
            if got != tree:
                raise TreeStructureError(
                    f"{self.transform}: bwd's cotangent for argument {k} has structure {got} "
                    f"but the argument has structure {tree}."
                )
            leaves.extend(flat)
        return [
            None if leaf is None else _shaped_like(self.transform, "a cotangent from bwd", leaf, a)
            for leaf, a in zip(leaves, in_avals, strict=True)
        ]


def _custom_vjp_call_jvp(primals, tangents, *, fun, rules, jvp):
    outs, residuals, res_tree = rules.fwd(list(primals))
    tangents = [instantiate(t) for t in tangents]
    n, r = len(primals), len(residuals)
    t_outs = custom_lin_p.bind(
        *primals,
        *residuals,
        *tangents,
        fun=fun,
        rules=rules,
        jvp=jvp,
        res_tree=res_tree,
        counts=(n, r),
        out_avals=tuple(aval_of(o) for o in outs),
    )
    return outs, t_outs


def _custom_vjp_call_batch(vals, dims, *, fun, rules, jvp):
    # Map the primal function; the rules of the mapped function are the mapped rules.
    vals, dims, size = _to_front(vals, dims)
    fun_b = _batched_callable(fun, dims, size)
    outs = custom_jvp_call_p.bind(
        *vals, fun=fun_b, jvp=_batched_vjp_as_jvp(fun, rules, jvp, dims, size)
    )
    return outs, [0] * len(outs)


def _batched_vjp_as_jvp(fun, rules, jvp, dims, size):
    """Under vmap, the custom-VJP function's JVP (for transformations further out): forward
    mode through `fun` (or its jvp rule), mapped."""
    n = len(dims)

    def pairs(*a):
        outs, t_outs, _ = jvp_flat(lambda *x: (fun(*x), None), list(a[:n]), list(a[n:]))
        return list(outs) + [instantiate(t) for t in t_outs]

    mapped = _batched_callable(pairs, list(dims) * 2, size)

    def call(primals, tangents):
        flat = mapped(*primals, *tangents)
        return flat[: len(flat) // 2], flat[len(flat) // 2 :]

    return call


custom_vjp_call_p.impl = lambda *args, fun, rules, jvp: fun(*args)
custom_vjp_call_p.abstract_eval = _call_abstract_eval
custom_vjp_call_p.jvp = _custom_vjp_call_jvp
custom_vjp_call_p.batch = _custom_vjp_call_batch


# custom_lin(*primals, *residuals, *tangents): the tangent map of a custom-VJP function, linear
# in the tangents. Evaluated: forward mode through fun (or its jvp rule). Transposed: bwd.

custom_lin_p = Primitive("custom_lin", multiple_results=True)


def _split_ops(ops, counts):
    n, r = counts
    return list(ops[:n]), list(ops[n : n + r]), list(ops[n + r :])


def _custom_lin_impl(*ops, fun, rules, jvp, res_tree, counts, out_avals):
    primals, _, tangents = _split_ops(ops, counts)
    if jvp is not None:
        return list(jvp(primals, tangents)[1])
    _, t_outs, _ = jvp_flat(lambda *x: (fun(*x), None), primals, tangents)
    return [instantiate(t) for t in t_outs]


def _custom_lin_transpose(cts, *ops, fun, rules, jvp, res_tree, counts, out_avals):
    primals, residuals, tangents = _split_ops(ops, counts)
    cts = [instantiate(c) for c in cts]
    in_avals = [t.aval if type(t) is UndefPrimal else aval_of(t) for t in tangents]
    cts_in = rules.bwd(res_tree, residuals, cts, in_avals)
    # only tangents being transposed (UndefPrimal) receive cotangents
    cts_in = [c if type(t) is UndefPrimal else None for c, t in zip(cts_in, tangents, strict=True)]
    return [None] * (len(primals) + len(residuals)) + cts_in


def _custom_lin_jvp(primals, tangents, **params):
    # differentiate the forward evaluation (only reached when evaluating, not transposing)
    outs, t_outs, _ = jvp_flat(
        lambda *ops: (_custom_lin_impl(*ops, **params), None), primals, tangents
    )
    return outs, t_outs


def _custom_lin_batch(vals, dims, **params):
    vals, dims, size = _to_front(vals, dims)
    outs = _batched_callable(lambda *ops: _custom_lin_impl(*ops, **params), dims, size)(*vals)
    return outs, [0] * len(outs)


custom_lin_p.impl = _custom_lin_impl
custom_lin_p.abstract_eval = lambda *avals, out_avals, **_: list(out_avals)
custom_lin_p.jvp = _custom_lin_jvp
custom_lin_p.transpose = _custom_lin_transpose
custom_lin_p.batch = _custom_lin_batch


class custom_vjp:  # noqa: N801 - JAX's name
    """A function with a custom VJP (reverse-mode) rule.

    Reverse mode (grad, vjp, jacrev) calls `bwd`. Forward mode (jvp, jacfwd) differentiates the
    function itself — or uses its custom JVP when one is also defined with `defjvp` — so
    `hessian` and `jacfwd` work through a custom VJP.

    Args:
      fun: the function.
      nondiff_argnums: positions of non-array arguments, passed to fwd unchanged and to bwd
        first.

    Example:
      >>> @custom_vjp
      ... def clip_gradient(x):
      ...     return x
      >>> clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -1, 1),))
      >>> grad(lambda x: 3.0 * clip_gradient(x))(2.0)
      1.0
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self.jvp_rule: Callable | None = None
        functools.update_wrapper(self, fun, updated=())  # never copy fun.__dict__ over ours

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set `fwd(*args) -> (out, residuals)` and `bwd(*nondiff_args, residuals, ct_out) ->
        tuple of cotangents, one per differentiable argument` (None for a zero cotangent)."""
        self.fwd, self.bwd = fwd, bwd

    def defjvp(self, jvp: Callable) -> Callable:
        """Also give a JVP rule (as custom_jvp.defjvp): forward mode then uses it."""
        self.jvp_rule = jvp
        return jvp

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(
                f"custom_vjp function {self.__name__} has no rule yet: define it with "
                "f.defvjp(fwd, bwd) before calling f."
            )
        nondiff, flat, in_tree = _split_nondiff("custom_vjp", args, self.nondiff_argnums)
        fun = _Flat(self.fun, in_tree, nondiff)
        rules = _VJPRules("custom_vjp", self.fwd, self.bwd, fun)
        jvp = None if self.jvp_rule is None else _rule_caller("custom_vjp", self.jvp_rule, fun)
        outs = custom_vjp_call_p.bind(*flat, fun=fun, rules=rules, jvp=jvp)
        return tree_util.tree_unflatten(fun.output_tree(flat), outs)


__all__ = ["custom_jvp", "custom_vjp"]


def _fun_name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)
