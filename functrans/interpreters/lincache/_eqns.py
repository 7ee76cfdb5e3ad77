"""The lin equations the eager linearization stages, their transposition in the backward pass,
and the lin primitives (lin1: one tangent output, lin: any number)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from functrans import core
from functrans.core import Primitive, Tracer, UndefPrimal, Zero, _current_trace, aval_of, eval_trace
from functrans.interpreters.batching import BatchTrace, BatchTracer
from functrans.interpreters.lincache._compile import batched_program
from functrans.ir import Eqn, Literal, eval_jaxpr
from functrans.primitives.base import batch_size

if TYPE_CHECKING:
    from functrans.interpreters.lincache._derive import Transposed

_SEEN_ONCE = object()  # a batched transpose not tried yet


class LinEqn(Eqn):
    """A lin equation as the eager linearization stages it, which also keeps its residual
    values at hand (the same values as its residual operands), so the backward pass need not
    look them up. Passes that rebuild equations make plain ones; both transpose the same."""

    __slots__ = ("res", "tangents", "tangent", "direct")

    def __init__(self, prim, inputs, params, outputs, res, rule):  # Eqn's fields, set inline
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.source = None
        self.res = res
        self.tangents = inputs[rule.n_res :]
        self.direct = rule.direct
        # one tangent in, one out: the backward pass's hottest case
        self.tangent = inputs[-1] if _one_tangent(rule) else None


class ScalarLinEqn(LinEqn):
    """A lin1 equation whose residuals are all scalars (scalar code, the per-primitive overhead
    case): its operands, literals then the tangents' variables, are spelled out when read,
    which the eager backward pass never does."""

    __slots__ = ()

    def __init__(self, rule, outputs, res, tangents):  # LinEqn's fields, set inline
        self.prim = lin1_p
        self.params = rule.params
        self.outputs = outputs
        self.source = None
        self.res = res
        self.tangents = tangents
        self.direct = rule.direct
        self.tangent = tangents[0] if _one_tangent(rule) else None

    @property
    def inputs(self):
        avals = self.params["rule"].res_avals
        return [*(Literal(r, a) for r, a in zip(self.res, avals, strict=True)), *self.tangents]


LIN_EQNS = frozenset((LinEqn, ScalarLinEqn))


def _one_tangent(rule) -> bool:
    """One output and one tangent operand: `rule.direct` holds the two transposes (without,
    with a running cotangent)."""
    return rule.direct is not None and len(rule.direct) == 2


def transpose_direct(eqn: LinEqn, ct: Any, ct_env: dict, trace=None) -> None:
    """Transpose an eager lin equation with one output cotangent `ct`: its compiled transpose
    for the pattern of running sums at hand, run on concrete values (no `trace`) or bound on
    `trace`, the current one (the backward pass of an inner grad of nested differentiation)."""
    tangents = eqn.tangents
    args = [*eqn.res, ct]
    mask = 0
    bit = 1
    for a in tangents:
        acc = ct_env.get(a)
        if acc is not None:
            args.append(acc)
            mask |= bit
        bit <<= 1
    entry = eqn.direct[mask]
    if entry is None:
        entry = eqn.params["rule"].direct_entry(mask)
    t, targets = entry
    outs = t.fn(*args) if trace is None else t.bind_fn()(trace, *args)
    for i, ct_in in zip(targets, outs, strict=True):
        ct_env[tangents[i]] = ct_in


def transpose_into(eqn, ct_env: dict, known: dict, direct: bool) -> None:
    """Transpose a lin equation inside `backward_pass`: read its output cotangents from
    `ct_env`, and add its contributions onto the running cotangents of its tangent operands."""
    rule = eqn.params["rule"]
    if eqn.prim is lin1_p:
        ct = ct_env.pop(eqn.outputs[0], None)
        if ct is None:
            return
        cts = [ct]
        ct_zero: tuple[bool, ...] = (False,)
    else:
        cts = [ct_env.pop(v, None) for v in eqn.outputs]
        ct_zero = tuple(c is None for c in cts)
        if all(ct_zero):
            return
        cts = [c for c in cts if c is not None]
    if type(eqn) in LIN_EQNS:  # staged by the eager linearization: residuals at hand
        tangent_vars = eqn.tangents
        args = list(eqn.res)
    else:
        ins = eqn.inputs
        tangent_vars = ins[rule.n_res :]
        args = [a.val if type(a) is Literal else known[a] for a in ins[: rule.n_res]]
    accs = [ct_env.get(a) for a in tangent_vars]
    t = rule.transposed(ct_zero, tuple(a is not None for a in accs))
    args += cts
    args += [a for a in accs if a is not None]
    if direct:
        outs = t.fn(*args)
    else:
        outs = None
        current = _current_trace.get()
        if (
            type(current) is BatchTrace
            and current.parent is eval_trace
            and core.output_check is None
        ):
            outs = _batched_transpose(t, args, current)
        if outs is None:
            if core.output_check is None:
                outs = t.bind_fn()(current, *args)
            else:  # debugging: reports name the equation being evaluated
                outs = eval_jaxpr(t.jaxpr, t.consts, *args)
    it = iter(outs)
    for a, zero in zip(tangent_vars, t.zero, strict=True):
        if not zero:
            ct_env[a] = next(it)


def _batched_transpose(t: Transposed, args: list, batch) -> list | None:
    """Run a compiled transpose on the values of an eager vmap (jacrev's basis, grad inside
    vmap) with its batched program, compiled once per pattern of batch axes and shapes. None:
    the caller binds the program instead (nothing batched, operands of another type than the
    rule was derived for, or a program that cannot be compiled)."""
    vals, dims, key = [], [], []
    batched = False
    for a in args:
        if type(a) is BatchTracer and a._trace is batch:
            v = a.val
            d = a.batch_dim
            batched = True
        elif isinstance(a, Tracer):
            return None
        else:
            v = a
            d = None
        vals.append(v)
        dims.append(d)
        if type(v) is np.ndarray:
            key.append((d, v.shape, v.dtype))
        else:
            aval = aval_of(v)
            key.append((d, aval.shape, aval.dtype))
    if not batched:
        return None
    key = tuple(key)
    entry = t.batched.get(key, _SEEN_ONCE)
    if entry is _SEEN_ONCE:
        if len(t.batched) >= 64:
            t.batched.clear()
        entry = t.batched[key] = _batched_transpose_program(t, vals, dims)
    if entry is None:
        return None
    fn, out_dims = entry
    return [o if d is None else BatchTracer(batch, o, d) for o, d in zip(fn(*vals), out_dims)]


def _batched_transpose_program(t: Transposed, vals: list, dims: list):
    # The operands must be what the transpose was derived for, example by example: a custom
    # rule's cotangent may come in another dtype, which the general path lets through.
    for v, d, var in zip(vals, dims, t.jaxpr.invars, strict=True):
        shape = np.shape(v)
        example = shape if d is None else shape[:d] + shape[d + 1 :]
        if example != var.aval.shape or aval_of(v).dtype != var.aval.dtype:
            return None
    size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    try:
        return batched_program(t.jaxpr, t.consts, [aval_of(v) for v in vals], dims, size)
    except Exception:  # cannot be staged batched (or too large to keep): bind instead
        return None


# ---------------------------------------------------------------------------------------------
# The lin primitives: lin1 has one tangent output (the common case), lin any number.
# lin(*residuals, *tangents, rule) -> the non-zero output tangents of rule's primitive.

lin_p = Primitive("lin", multiple_results=True)
lin1_p = Primitive("lin1")


def _lin_impl(*ops, rule):
    return list(rule.forward_fn()(*ops))


def _lin1_impl(*ops, rule):
    return rule.forward_fn()(*ops)[0]


def _lin_transpose(cts, *ops, rule):
    # backward_pass transposes lin equations itself (transpose_into); this rule serves other
    # callers of transpose rules
    n_res = rule.n_res
    if type(cts) is list:
        ct_zero = tuple(type(c) is Zero for c in cts)
        cts = [c for c in cts if type(c) is not Zero]
    else:
        ct_zero = (False,)
        cts = [cts]
    t = rule.transposed(ct_zero, (False,) * (len(ops) - n_res))
    if _current_trace.get() is eval_trace and core.output_check is None:
        cts_in = t.fn(*ops[:n_res], *cts)
    else:  # under a transformation: bind
        cts_in = eval_jaxpr(t.jaxpr, t.consts, *ops[:n_res], *cts)
    out: list[Any] = [None] * n_res
    it = iter(cts_in)
    for zero, x in zip(t.zero, ops[n_res:], strict=True):
        ct = None if zero else next(it)
        out.append(ct if type(x) is UndefPrimal else None)  # linear: a known tangent gets none
    return out


def _lin_jvp(primals, tangents, *, rule):
    from functrans.api import jvp_flat

    outs, t_outs, _ = jvp_flat(lambda *ops: (rule.evaluate(list(ops)), None), primals, tangents)
    return outs, t_outs


def _lin1_jvp(primals, tangents, *, rule):
    (out,), (t_out,) = _lin_jvp(primals, tangents, rule=rule)
    return out, t_out


def _lin_batch(vals, dims, *, rule):
    from functrans.api_vmap import vmap_flat

    return vmap_flat(lambda *ops: rule.evaluate(list(ops)), vals, dims, batch_size(vals, dims))


def _lin1_batch(vals, dims, *, rule):
    (out,), (dim,) = _lin_batch(vals, dims, rule=rule)
    return out, dim


lin_p.impl = _lin_impl
lin_p.abstract_eval = lambda *avals, rule: list(rule.lin_out_avals)
lin_p.transpose = _lin_transpose
lin_p.jvp = _lin_jvp
lin_p.batch = _lin_batch
lin1_p.impl = _lin1_impl
lin1_p.abstract_eval = lambda *avals, rule: rule.lin_out_avals[0]
lin1_p.transpose = _lin_transpose
lin1_p.jvp = _lin1_jvp
lin1_p.batch = _lin1_batch
