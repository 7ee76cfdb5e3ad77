"""checkpoint (remat): trade recomputation for memory in reverse mode, and saved_residuals.

Reverse mode keeps the residuals of the linearized program (the primal values its tangent
equations read) from the forward pass to the backward pass. `checkpoint(f, policy)` keeps only
f's inputs and the residuals the policy allows, and recomputes the others in the backward pass.

How: f's JVP is staged once as a joint program (primal and tangent equations). Its primal-only
equations run in the forward pass; residuals that the policy does not save are traced back to
the primal equations that produce them, and those equations are re-run in the backward pass just
before the tangent equations are transposed. `saved_residuals` reports the same analysis.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import core, tree_util
from functrans.api import _as_array, jvp_flat
from functrans.api_vmap import vmap_flat
from functrans.control_flow.programs import split_program
from functrans.core import Primitive, UndefPrimal, aval_of, instantiate, transform_scope
from functrans.interpreters.staging import trace_to_jaxpr
from functrans.interpreters.transpose import backward_pass
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var, eval_jaxpr
from functrans.primitives import bdim_to
from functrans.primitives.base import batch_size
from functrans.primitives.elementwise import unary

# ---------------------------------------------------------------------------------------------
# Naming values, and policies


def _name_impl(x, *, name):
    return x


name_p = unary("name", _name_impl, deriv=None)
name_p.jvp = lambda primals, tangents, *, name: (
    checkpoint_name(primals[0], name),
    tangents[0],
)


def checkpoint_name(x: Any, name: str) -> Any:
    """The identity, tagging x so that `save_only_these_names(name)` can save it."""
    return name_p.bind(_as_array(x), name=name)


# An identity that common-subexpression elimination cannot see through: recomputed equations
# read their inputs through it, so jit never merges them back into the forward pass.
barrier_p = unary("recompute_barrier", lambda x: x, deriv=None)
barrier_p.jvp = lambda primals, tangents: (barrier_p.bind(primals[0]), tangents[0])


class checkpoint_policies:  # noqa: N801 - JAX's name
    """Which residuals a checkpointed function keeps: a policy maps an equation to True (save its
    outputs) or False (recompute them)."""

    @staticmethod
    def nothing_saveable(eqn: Eqn) -> bool:
        """Keep only the checkpointed function's inputs; recompute everything else."""
        return False

    @staticmethod
    def everything_saveable(eqn: Eqn) -> bool:
        """Keep every residual (no recomputation: as if not checkpointed)."""
        return True

    @staticmethod
    def dots_saveable(eqn: Eqn) -> bool:
        """Keep the outputs of dot_general (matmul, dot, einsum); recompute elementwise work."""
        return eqn.prim.name == "dot_general"

    checkpoint_dots = dots_saveable

    @staticmethod
    def save_only_these_names(*names: str) -> Callable[[Eqn], bool]:
        """Keep only values tagged with `checkpoint_name(x, name)` for one of `names`."""
        wanted = set(names)
        return lambda eqn: eqn.prim.name == "name" and eqn.params["name"] in wanted


_POLICIES = {
    None: checkpoint_policies.nothing_saveable,
    "nothing": checkpoint_policies.nothing_saveable,
    "everything": checkpoint_policies.everything_saveable,
    "dots": checkpoint_policies.dots_saveable,
}


# ---------------------------------------------------------------------------------------------
# The joint program and its split


class _Split:
    """f's JVP as a joint program, split into: primal equations (forward pass), equations to
    recompute (backward pass) and tangent equations (transposed).

    The known/unknown split itself is `split_program`'s, with the tangents unknown; what the
    policy adds is the choice, among the residuals it reports, of which to save and which to
    recompute."""

    def __init__(self, fun: Callable, primals: Sequence[Any], policy: Callable[[Eqn], bool]):
        avals = [aval_of(p) for p in primals]
        n = len(avals)

        def joint(*args):
            outs, t_outs, _ = jvp_flat(lambda *x: (fun(*x), None), args[:n], args[n:])
            return list(outs) + [instantiate(t) for t in t_outs]

        jaxpr, consts = trace_to_jaxpr(joint, avals + avals)
        self.jaxpr, self.consts = jaxpr, consts
        self.n_in = n
        self.n_out = len(jaxpr.outvars) // 2
        # the tangent outputs are unknown even where they do not read a tangent (a zero tangent
        # is a primal-only constant): the linear program returns them, as residuals if need be
        known, linear, _, _ = split_program(
            ClosedJaxpr(jaxpr, consts),
            [False] * n + [True] * n,
            [False] * self.n_out + [True] * self.n_out,
        )
        self.primal_in = jaxpr.invars[:n]
        self.primal_eqns = known.jaxpr.eqns
        self.producer: dict[Var, Eqn] = {v: e for e in self.primal_eqns for v in e.outputs}
        order = {v: i for i, e in enumerate(self.primal_eqns) for v in e.outputs}
        n_res = len(linear.jaxpr.invars) - n
        # everything the backward pass reads (inputs first), in the order it is computed
        self.needed = sorted(linear.jaxpr.invars[:n_res], key=lambda v: order.get(v, -1))
        # the linear program in the tangents, with its residuals as constants
        self.linear = Jaxpr(
            linear.jaxpr.constvars + self.needed,
            linear.jaxpr.invars[n_res:],
            linear.jaxpr.eqns,
            linear.jaxpr.outvars,
        )
        available = set(self.primal_in) | set(jaxpr.constvars)
        # Walk back from the residuals: a value whose producer the policy saves is kept from the
        # forward pass; any other is recomputed from its producer's inputs, recursively.
        saved: set[Var] = set()
        recompute: set[int] = set()
        seen: set[Var] = set()
        stack = [v for v in self.needed if v not in available]
        while stack:
            v = stack.pop()
            if v in seen or v in available:
                continue
            seen.add(v)
            eqn = self.producer[v]
            if policy(eqn):
                saved.add(v)
            elif id(eqn) not in recompute:
                recompute.add(id(eqn))
                stack.extend(a for a in eqn.inputs if type(a) is Var)
        self.saved = sorted(saved, key=order.__getitem__)
        self.recompute_eqns = [e for e in self.primal_eqns if id(e) in recompute]
        # the forward pass runs only what the outputs and the saved values need
        live = {a for a in jaxpr.outvars[: self.n_out] if type(a) is Var} | saved
        forward = []
        for eqn in reversed(self.primal_eqns):
            if any(v in live for v in eqn.outputs):
                forward.append(eqn)
                live.update(a for a in eqn.inputs if type(a) is Var)
        self.forward_eqns = forward[::-1]

    def forward(self, primals: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """Run the primal equations: f's outputs and the saved residuals."""
        env = dict(zip(self.jaxpr.constvars, self.consts, strict=True))
        env.update(zip(self.primal_in, primals, strict=True))
        keep = {a for a in self.jaxpr.outvars[: self.n_out] if type(a) is Var} | set(self.saved)
        _run(self.forward_eqns, env, keep=keep)
        outs = [_read(env, a) for a in self.jaxpr.outvars[: self.n_out]]
        return outs, [env[v] for v in self.saved]

    def residual_env(self, primals: Sequence[Any], saved: Sequence[Any]) -> dict:
        """Inputs, saved residuals and the recomputed ones (read through a CSE barrier)."""
        env = dict(zip(self.jaxpr.constvars, self.consts, strict=True))
        env.update(zip(self.primal_in, [barrier_p.bind(p) for p in primals], strict=True))
        env.update(zip(self.saved, saved, strict=True))
        with transform_scope("recomputation"):  # reports say what ran (debug_nans)
            _run(self.recompute_eqns, env, keep=set(self.needed))
        return env

    def linear_program(self, env: dict) -> tuple[Jaxpr, list[Any]]:
        """The tangent equations as a linear program with its residuals bound."""
        return self.linear, self.consts + [env[v] for v in self.needed]


def _run(eqns: Sequence[Eqn], env: dict, keep: set) -> None:
    """Evaluate equations into env; values outside `keep` are dropped after their last use (the
    recomputation's peak memory is one segment's residuals, not all its values).

    Not `eval_jaxpr`, which keeps every value until the program returns: recomputing through it
    holds a whole segment's intermediates at once, the memory checkpointing exists to save
    (bench/memory.py's checkpointed peak goes from 0.16x to 0.21x of the activations)."""
    last_use = {a: i for i, eqn in enumerate(eqns) for a in eqn.inputs if type(a) is Var}
    debugging = core.output_check is not None
    for i, eqn in enumerate(eqns):
        ins = [_read(env, a) for a in eqn.inputs]
        if debugging:  # as in eval_jaxpr: errors name the staged equation's source line
            token = core.debug_eqn.set(eqn)
            try:
                outs = eqn.prim.bind(*ins, **eqn.params)
            finally:
                core.debug_eqn.reset(token)
        else:
            outs = eqn.prim.bind(*ins, **eqn.params)
        env.update(zip(eqn.outputs, outs if eqn.prim.multiple_results else [outs], strict=True))
        for a in eqn.inputs:
            if type(a) is Var and last_use.get(a) == i and a not in keep:
                env.pop(a, None)


def _read(env: dict, a: Any) -> Any:
    return a.val if type(a) is Literal else env[a]


# ---------------------------------------------------------------------------------------------
# checkpoint_call(*args, fun, policy) and remat_lin(*primals, *saved, *tangents, split)

checkpoint_call_p = Primitive("checkpoint", multiple_results=True)


def _checkpoint_jvp(primals, tangents, *, fun, policy):
    split = _Split(fun, primals, policy)
    outs, saved = split.forward(primals)
    t_outs = remat_lin_p.bind(*primals, *saved, *[instantiate(t) for t in tangents], split=split)
    return outs, t_outs


def _checkpoint_abstract_eval(*avals, fun, policy):
    jaxpr, _ = trace_to_jaxpr(lambda *xs: fun(*xs), avals)
    return jaxpr.out_avals


def _checkpoint_batch(vals, dims, *, fun, policy):
    size = batch_size(vals, dims)
    vals = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(vals, dims, strict=True)]
    in_dims = [None if d is None else 0 for d in dims]

    def fun_b(*xs):
        outs, out_dims = vmap_flat(lambda *a: list(fun(*a)), xs, in_dims, size)
        return [bdim_to(o, d, 0, size) for o, d in zip(outs, out_dims, strict=True)]

    fun_b.__name__ = getattr(fun, "__name__", "fun")
    outs = checkpoint_call_p.bind(*vals, fun=fun_b, policy=policy)
    return outs, [0] * len(outs)


checkpoint_call_p.impl = lambda *args, fun, policy: fun(*args)
checkpoint_call_p.abstract_eval = _checkpoint_abstract_eval
checkpoint_call_p.jvp = _checkpoint_jvp
checkpoint_call_p.batch = _checkpoint_batch

remat_lin_p = Primitive("remat_lin", multiple_results=True)


def _split_ops(ops, split: _Split):
    n, s = split.n_in, len(split.saved)
    return list(ops[:n]), list(ops[n : n + s]), list(ops[n + s :])


def _remat_lin_impl(*ops, split):
    primals, saved, tangents = _split_ops(ops, split)
    jaxpr, consts = split.linear_program(split.residual_env(primals, saved))
    return eval_jaxpr(jaxpr, consts, *tangents)


def _remat_lin_transpose(cts, *ops, split):
    primals, saved, tangents = _split_ops(ops, split)
    jaxpr, consts = split.linear_program(split.residual_env(primals, saved))
    cts_in = backward_pass(jaxpr, consts, [instantiate(c) for c in cts])
    cts_in = [c if type(t) is UndefPrimal else None for c, t in zip(cts_in, tangents, strict=True)]
    return [None] * (len(primals) + len(saved)) + cts_in


def _remat_lin_jvp(primals, tangents, *, split):
    outs, t_outs, _ = jvp_flat(
        lambda *ops: (_remat_lin_impl(*ops, split=split), None), primals, tangents
    )
    return outs, t_outs


def _remat_lin_batch(vals, dims, *, split):
    size = batch_size(vals, dims)
    vals = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(vals, dims, strict=True)]
    in_dims = [None if d is None else 0 for d in dims]
    outs, out_dims = vmap_flat(lambda *ops: _remat_lin_impl(*ops, split=split), vals, in_dims, size)
    return [bdim_to(o, d, 0, size) for o, d in zip(outs, out_dims, strict=True)], [0] * len(outs)


remat_lin_p.impl = _remat_lin_impl
remat_lin_p.abstract_eval = lambda *avals, split: [
    v.aval for v in split.jaxpr.outvars[split.n_out :]
]
remat_lin_p.jvp = _remat_lin_jvp
remat_lin_p.transpose = _remat_lin_transpose
remat_lin_p.batch = _remat_lin_batch


# ---------------------------------------------------------------------------------------------
# Public API


def _policy(policy: Any) -> Callable[[Eqn], bool]:
    if callable(policy):
        return policy
    if policy in _POLICIES:
        return _POLICIES[policy]
    raise ValueError(
        f"checkpoint: unknown policy {policy!r}; use None / 'nothing', 'everything', 'dots', or "
        "a policy from functrans.checkpoint_policies (e.g. save_only_these_names('h'))."
    )


def checkpoint(fun: Callable, policy: Any = None) -> Callable:
    """`fun` whose reverse mode recomputes intermediates instead of storing them.

    Args:
      fun: the function.
      policy: which residuals to keep anyway: None or 'nothing' (keep only the inputs),
        'everything' (no recomputation), 'dots' (keep dot/matmul outputs), or a callable from
        `checkpoint_policies` such as `save_only_these_names("h")` (values tagged with
        `checkpoint_name`).

    Returns:
      A function with `fun`'s signature and values; only its derivatives' memory use changes.

    Example:
      >>> layer = checkpoint(lambda x: fnp.sin(fnp.sin(x)))
      >>> grad(lambda x: fnp.sum(layer(x)))(np.ones(3))    # cos(sin 1) cos(1), recomputed
      array([0.3600..., 0.3600..., 0.3600...])
    """
    rule = _policy(policy)

    @functools.wraps(fun)
    def checkpointed(*args, **kwargs):
        flat, in_tree = tree_util.tree_flatten((args, kwargs))
        store: dict = {}

        def flat_fun(*xs):
            fargs, fkwargs = tree_util.tree_unflatten(in_tree, list(xs))
            out = fun(*fargs, **fkwargs)
            leaves, store["out_tree"] = tree_util.tree_flatten(out)
            return [_as_array(x) for x in leaves]

        flat_fun.__name__ = getattr(fun, "__name__", "fun")
        operands = [_as_array(x) for x in flat]
        if core.current_trace() is not core.eval_trace:
            # under a transformation `fun` may close over its traced values (a layer's
            # parameters being differentiated): stage it now, and pass what it captured as
            # operands, so the rules below never meet a tracer of the transformation above them
            staged, operands = _closure_converted(flat_fun, operands)
            outs = checkpoint_call_p.bind(*operands, fun=staged, policy=rule)
        else:
            outs = checkpoint_call_p.bind(*operands, fun=flat_fun, policy=rule)
        if "out_tree" not in store:
            trace_to_jaxpr(flat_fun, [aval_of(x) for x in operands])
        return tree_util.tree_unflatten(store["out_tree"], outs)

    return checkpointed


remat = checkpoint


def _closure_converted(flat_fun: Callable, operands: list) -> tuple[Callable, list]:
    """flat_fun staged on the operands' avals, as a function of (captured values, operands),
    and those values followed by the operands."""
    jaxpr, consts = trace_to_jaxpr(flat_fun, [aval_of(x) for x in operands])
    program = Jaxpr([], [*jaxpr.constvars, *jaxpr.invars], jaxpr.eqns, jaxpr.outvars)

    def staged(*xs):
        return eval_jaxpr(program, [], *xs)

    staged.__name__ = flat_fun.__name__
    return staged, [*consts, *operands]


def saved_residuals(fun: Callable, *args: Any) -> list[dict]:
    """What reverse mode through `fun` keeps from the forward pass to the backward pass.

    Returns:
      One dict per residual: shape, dtype, bytes, and the primitive that produced it ("input"
      for an argument of fun). Inside `checkpoint`, only the inputs and saved values appear.

    Example:
      >>> [r["primitive"] for r in saved_residuals(lambda x: fnp.sum(fnp.sin(x) * x), np.ones(3))]
      ['input', 'sin', 'cos']
    """
    flat, in_tree = tree_util.tree_flatten(args)
    flat = [_as_array(x) for x in flat]

    def flat_fun(*xs):
        return [
            _as_array(o)
            for o in tree_util.tree_leaves(fun(*tree_util.tree_unflatten(in_tree, list(xs))))
        ]

    split = _Split(flat_fun, flat, checkpoint_policies.everything_saveable)
    inputs = set(split.primal_in)
    return [
        _describe(v, "input" if v in inputs else split.producer[v].prim.name) for v in split.needed
    ]


def _describe(v: Var, primitive: str) -> dict:
    aval = v.aval
    return {
        "shape": aval.shape,
        "dtype": aval.dtype,
        "bytes": int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize,
        "primitive": primitive,
    }


__all__ = ["checkpoint", "checkpoint_name", "checkpoint_policies", "remat", "saved_residuals"]
