"""cond(index, *operands, branches): branches[clamp(index)](*operands), as a primitive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans.control_flow.programs import (
    SPLIT_RULES,
    batch_program,
    closed,
    convert_closures,
    jvp_program,
    run,
    split_program,
    stage,
)
from functrans.core import Primitive, UndefPrimal, aval_of, instantiate
from functrans.interpreters.staging import StagingTrace
from functrans.interpreters.transpose import backward_pass
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Var
from functrans.primitives import bdim_to
from functrans.primitives import elementwise as ew
from functrans.primitives.base import batch_size
from functrans.primitives.structural import broadcast_in_dim, full

# ---------------------------------------------------------------------------------------------
# cond(index, *operands, branches): branches[clamp(index)](*operands)

cond_p = Primitive("cond", multiple_results=True)


def _clamp(index: Any, n: int) -> int:
    return min(max(int(index), 0), n - 1)


def _cond_impl(index, *operands, branches):
    return run(branches[_clamp(index, len(branches))], *operands)


def _cond_abstract_eval(index, *avals, branches):
    return branches[0].out_avals


def _cond_jvp(primals, tangents, *, branches):
    index, operands = primals[0], primals[1:]
    t_ops = [instantiate(t) for t in tangents[1:]]
    outs = cond_p.bind(index, *operands, *t_ops, branches=tuple(map(jvp_program, branches)))
    n = len(outs) // 2
    return outs[:n], outs[n:]


def _cond_batch(vals, dims, *, branches):
    size = batch_size(vals, dims)
    index, operands = vals[0], vals[1:]
    op_dims = [None if d is None else 0 for d in dims[1:]]
    operands = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(operands, dims[1:])]
    if dims[0] is None:
        batched = tuple(batch_program(b, op_dims, size) for b in branches)
        outs = cond_p.bind(index, *operands, branches=batched)
        return outs, [0] * len(outs)
    # a batched index: run every branch and pick per batch element
    index = bdim_to(index, dims[0], 0, size)
    index = ew.convert_element_type(index, new_dtype=np.int64)
    lo, hi = full((size,), 0, np.int64), full((size,), len(branches) - 1, np.int64)
    index = ew.min(ew.max(index, lo), hi)
    results = [run(batch_program(b, op_dims, size), *operands) for b in branches]
    outs = []
    for cases in zip(*results, strict=True):
        shape = aval_of(cases[0]).shape
        which = broadcast_in_dim(index, shape=shape, broadcast_dimensions=(0,))
        outs.append(ew.select_n(which, *cases))
    return outs, [0] * len(outs)


def _split_branches(branches, in_uk: list, known_avals: list, unknown_avals: list):
    """Every branch split alike into known and unknown parts: (outputs unknown, known branches
    (known operands -> known outputs + residuals), unknown branches (residuals + unknown
    operands -> unknown outputs), residual avals). The branches share residual slots: each
    puts its residuals in slots of their shape and dtype, the first free ones, and zeros in the
    slots it does not use (so a cond keeps as many residuals as its hungriest branch needs of
    each type, not the sum of all branches'). Shared by the trace rule and split_program's
    rule."""
    out_uk = [any(u) for u in zip(*[split_program(b, in_uk)[2] for b in branches], strict=True)]
    splits = [split_program(b, in_uk, out_uk) for b in branches]
    slots: list = []  # the residual avals, one per slot
    where = []  # per branch: the slot of each of its residuals
    for _, _, _, avals in splits:
        taken: set[int] = set()
        mine = []
        for a in avals:
            s = next((i for i, b in enumerate(slots) if i not in taken and b == a), None)
            if s is None:
                s = len(slots)
                slots.append(a)
            taken.add(s)
            mine.append(s)
        where.append(mine)
    n_known_out = out_uk.count(False)
    known_branches, unknown_branches = [], []
    for (known, rest, _, _), mine in zip(splits, where, strict=True):

        def known_fn(*xs, known=known, mine=mine):
            outs = run(known, *xs)
            res = [None] * len(slots)
            for s, r in zip(mine, outs[n_known_out:], strict=True):
                res[s] = r
            zeros = [full(a.shape, 0, a.dtype) if r is None else r for a, r in zip(slots, res)]
            return outs[:n_known_out] + zeros

        def unknown_fn(*xs, rest=rest, mine=mine):
            return run(rest, *[xs[s] for s in mine], *xs[len(slots) :])

        known_branches.append(closed(known_fn, known_avals))
        unknown_branches.append(closed(unknown_fn, slots + unknown_avals))
    return out_uk, tuple(known_branches), tuple(unknown_branches), slots


def _cond_partial_eval(trace, args, *, branches):
    index, operands = args[0], args[1:]
    if not trace.is_known(index):
        return StagingTrace.process_primitive(trace, cond_p, args, {"branches": branches})
    in_uk = [not trace.is_known(x) for x in operands]
    known_ins = [x for x, u in zip(operands, in_uk, strict=True) if not u]
    unknown_ins = [x for x, u in zip(operands, in_uk, strict=True) if u]
    out_uk, known_branches, unknown_branches, _ = _split_branches(
        branches, in_uk, [aval_of(x) for x in known_ins], [aval_of(x) for x in unknown_ins]
    )
    n_known_out = out_uk.count(False)
    known_outs = trace.forward(cond_p, [index, *known_ins], {"branches": known_branches})
    residuals = known_outs[n_known_out:]
    staged = StagingTrace.process_primitive(
        trace, cond_p, [index, *residuals, *unknown_ins], {"branches": unknown_branches}
    )
    known_iter, staged_iter = iter(known_outs[:n_known_out]), iter(staged)
    return [next(staged_iter) if uk else next(known_iter) for uk in out_uk]


def _split_cond_eqn(eqn, in_unknown):
    """split_program's rule for a cond equation with a known index: each branch split alike
    (residual slots shared between branches, zeros in those a branch does not use), as
    _cond_partial_eval does on a trace."""
    if in_unknown[0]:
        return None
    index, operands, op_uk = eqn.inputs[0], eqn.inputs[1:], in_unknown[1:]
    known_ins = [x for x, u in zip(operands, op_uk, strict=True) if not u]
    unknown_ins = [x for x, u in zip(operands, op_uk, strict=True) if u]
    out_uk, known_branches, unknown_branches, res_avals = _split_branches(
        eqn.params["branches"], op_uk, [x.aval for x in known_ins], [x.aval for x in unknown_ins]
    )
    residuals = [Var(a) for a in res_avals]
    known_eqn = Eqn(
        cond_p,
        [index, *known_ins],
        {"branches": known_branches},
        [o for o, u in zip(eqn.outputs, out_uk, strict=True) if not u] + residuals,
    )
    unknown_eqn = Eqn(
        cond_p,
        [index, *residuals, *unknown_ins],
        {"branches": unknown_branches},
        [o for o, u in zip(eqn.outputs, out_uk, strict=True) if u],
    )
    return known_eqn, unknown_eqn, out_uk


def _cond_transpose(cts, index, *args, branches):
    linear = [type(a) is UndefPrimal for a in args]
    known = [a for a, lin in zip(args, linear, strict=True) if not lin]
    cts = [instantiate(c) for c in cts]

    def transposed(b: ClosedJaxpr) -> ClosedJaxpr:
        jaxpr = b.jaxpr
        known_vars = [v for v, lin in zip(jaxpr.invars, linear, strict=True) if not lin]
        lin_vars = [v for v, lin in zip(jaxpr.invars, linear, strict=True) if lin]
        program = Jaxpr(jaxpr.constvars + known_vars, lin_vars, jaxpr.eqns, jaxpr.outvars)

        def f(*xs):
            known_vals, ct_vals = xs[: len(known)], xs[len(known) :]
            out = backward_pass(
                program, list(b.consts) + list(known_vals), list(ct_vals), mixed=True
            )
            return [instantiate(c) for c in out]

        return closed(f, [aval_of(k) for k in known] + [aval_of(c) for c in cts])

    cts_in = iter(cond_p.bind(index, *known, *cts, branches=tuple(map(transposed, branches))))
    return [None] + [next(cts_in) if lin else None for lin in linear]


cond_p.impl = _cond_impl
cond_p.abstract_eval = _cond_abstract_eval
cond_p.jvp = _cond_jvp
cond_p.batch = _cond_batch
cond_p.partial_eval = _cond_partial_eval
cond_p.transpose = _cond_transpose
SPLIT_RULES[cond_p] = _split_cond_eqn


def staged_cond(index: Any, branch_funs: Sequence[Callable], operands: list[Any]) -> list[Any]:
    """Bind cond on flat operands, staging each branch (flat in, flat out) on their avals."""
    avals = [aval_of(x) for x in operands]
    programs = [stage(f, avals) for f in branch_funs]
    out_avals = [p[0].out_avals for p in programs]
    if any(o != out_avals[0] for o in out_avals):
        raise TypeError(
            "lax.cond/switch: the branches must return the same structure, shapes and dtypes, "
            "got " + " vs ".join("(" + ", ".join(a.str_short() for a in o) + ")" for o in out_avals)
        )
    branches, consts = convert_closures(programs)
    return cond_p.bind(index, *consts, *operands, branches=tuple(branches))
