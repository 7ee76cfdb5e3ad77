"""Staged control flow: higher-order primitives whose params hold programs (ClosedJaxprs).

`lax` uses these only when a predicate or index is a traced value that is not known while
tracing (jit, make_jaxpr); otherwise control flow runs as Python. Each primitive has the full set
of rules, built from the transformations of its sub-programs:
- `cond(index, *operands, branches)`: JVP = cond of the branches' JVPs; batching = cond of
  batched branches, or a select over all branches when the index is batched; partial evaluation
  splits every branch into the work known now and a linear remainder (with the residuals of
  every branch in their own slots), and the remainder transposes branch by branch.
- `while_loop(*consts, *carry, cond, body)`: JVP = a loop over (primal, tangent) carries;
  batching = a loop that runs until every lane is done; reverse mode through a run-time tape.
- `scan(*consts, *carry, *xs, body)`: a loop over a leading axis; reverse mode stacks the
  residuals of each step and transposes into a scan in the opposite direction.
Sub-programs never close over tracers: their captured values become explicit operands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans.core import Primitive, ShapedArray, UndefPrimal, aval_of, instantiate
from functrans.interpreters.staging import StagingTrace, trace_to_jaxpr
from functrans.interpreters.transpose import backward_pass
from functrans.ir import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from functrans.primitives import bdim_to
from functrans.primitives import elementwise as ew
from functrans.primitives.base import batch_size
from functrans.primitives.structural import broadcast_in_dim, full

# ---------------------------------------------------------------------------------------------
# Programs: staging, closure conversion, and the transformations of a program


def stage(fun: Callable[..., Sequence[Any]], avals: Sequence[ShapedArray]) -> tuple[Jaxpr, list]:
    """`fun` (flat in, flat out) as a Jaxpr and the values it captured."""
    return trace_to_jaxpr(lambda *xs: [_arr(o) for o in fun(*xs)], list(avals))


def _arr(x: Any) -> Any:
    return np.asarray(x) if isinstance(x, (bool, int, float, complex)) else x


def closed(fun: Callable, avals: Sequence[ShapedArray]) -> ClosedJaxpr:
    jaxpr, consts = stage(fun, avals)
    return ClosedJaxpr(jaxpr, consts)


def run(program: ClosedJaxpr, *args: Any) -> list[Any]:
    return eval_jaxpr(program.jaxpr, program.consts, *args)


def jvp_program(program: ClosedJaxpr) -> ClosedJaxpr:
    """(primals, tangents) -> (outs, tangent outs) of a program (tangents instantiated)."""
    from functrans.api import jvp_flat

    n = len(program.in_avals)

    def f(*args):
        outs, t_outs, _ = jvp_flat(lambda *x: (run(program, *x), None), args[:n], args[n:])
        return list(outs) + [instantiate(t) for t in t_outs]

    return closed(f, program.in_avals * 2)


def batch_program(program: ClosedJaxpr, dims: Sequence[int | None], size: int) -> ClosedJaxpr:
    """The program on inputs batched along axis 0 where dims[i] == 0; outputs batched at 0."""
    from functrans.api_vmap import vmap_flat

    avals = [
        a if d is None else ShapedArray((size,) + a.shape, a.dtype)
        for a, d in zip(program.in_avals, dims, strict=True)
    ]

    def f(*xs):
        outs, out_dims = vmap_flat(lambda *a: run(program, *a), xs, dims, size)
        return [bdim_to(o, d, 0, size) for o, d in zip(outs, out_dims, strict=True)]

    return closed(f, avals)


def convert_closures(programs: Sequence[tuple[Jaxpr, list]]) -> tuple[list[ClosedJaxpr], list]:
    """Programs that take every program's captured values as leading inputs (each uses its own
    slots), and those values: so no staged sub-program closes over a tracer."""
    all_consts = [c for _, consts in programs for c in consts]
    converted = []
    for i, (jaxpr, _) in enumerate(programs):
        slots = []
        for j, (other, _) in enumerate(programs):
            slots += jaxpr.constvars if i == j else [Var(v.aval) for v in other.constvars]
        converted.append(
            ClosedJaxpr(Jaxpr([], slots + jaxpr.invars, jaxpr.eqns, jaxpr.outvars), [])
        )
    return converted, all_consts


def split_program(
    program: ClosedJaxpr, in_unknown: Sequence[bool], out_unknown: Sequence[bool] | None = None
):
    """Partial evaluation of a program: (known part, unknown part, out_unknown, residual avals).

    known: known inputs -> known outputs + residuals. unknown: residuals + unknown inputs ->
    unknown outputs. `out_unknown` may force outputs known here to be unknown (they are then
    passed through as residuals).
    """
    jaxpr = program.jaxpr
    unknown = {v for v, u in zip(jaxpr.invars, in_unknown, strict=True) if u}
    known_eqns, unknown_eqns = [], []
    for eqn in jaxpr.eqns:
        if any(type(a) is Var and a in unknown for a in eqn.inputs):
            unknown_eqns.append(eqn)
            unknown.update(eqn.outputs)
        else:
            known_eqns.append(eqn)
    natural = [type(v) is Var and v in unknown for v in jaxpr.outvars]
    out_uk = list(natural) if out_unknown is None else list(out_unknown)
    assert all(f or not n for n, f in zip(natural, out_uk, strict=True))
    constvars = set(jaxpr.constvars)
    residuals: list[Var] = []
    seen: set[Var] = set()

    def need(v):
        if type(v) is Var and v not in unknown and v not in constvars and v not in seen:
            seen.add(v)
            residuals.append(v)

    for eqn in unknown_eqns:
        for a in eqn.inputs:
            need(a)
    for v, uk in zip(jaxpr.outvars, out_uk, strict=True):
        if uk:
            need(v)
    known_in = [v for v, u in zip(jaxpr.invars, in_unknown, strict=True) if not u]
    unknown_in = [v for v, u in zip(jaxpr.invars, in_unknown, strict=True) if u]
    known = ClosedJaxpr(
        Jaxpr(
            jaxpr.constvars,
            known_in,
            known_eqns,
            [v for v, uk in zip(jaxpr.outvars, out_uk, strict=True) if not uk] + residuals,
        ),
        program.consts,
    )
    rest = ClosedJaxpr(
        Jaxpr(
            jaxpr.constvars,
            residuals + unknown_in,
            unknown_eqns,
            [v for v, uk in zip(jaxpr.outvars, out_uk, strict=True) if uk],
        ),
        program.consts,
    )
    return known, rest, out_uk, [v.aval for v in residuals]


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


def _cond_partial_eval(trace, args, *, branches):
    index, operands = args[0], args[1:]
    if not trace.is_known(index):
        return StagingTrace.process_primitive(trace, cond_p, args, {"branches": branches})
    in_uk = [not trace.is_known(x) for x in operands]
    out_uk = [any(u) for u in zip(*[split_program(b, in_uk)[2] for b in branches], strict=True)]
    splits = [split_program(b, in_uk, out_uk) for b in branches]
    res_avals = [a for s in splits for a in s[3]]
    n_known_out = out_uk.count(False)
    known_ins = [x for x, u in zip(operands, in_uk, strict=True) if not u]
    unknown_ins = [x for x, u in zip(operands, in_uk, strict=True) if u]
    # known part: every branch fills its own residual slots and zeros elsewhere
    known_branches, unknown_branches, offset = [], [], 0
    for known, rest, _, avals in splits:
        before, after = res_avals[:offset], res_avals[offset + len(avals) :]

        def known_fn(*xs, known=known, before=before, after=after):
            outs = run(known, *xs)
            zeros = (
                [full(a.shape, 0, a.dtype) for a in before],
                [full(a.shape, 0, a.dtype) for a in after],
            )
            return outs[:n_known_out] + zeros[0] + outs[n_known_out:] + zeros[1]

        def unknown_fn(*xs, rest=rest, start=offset, count=len(avals)):
            return run(rest, *xs[start : start + count], *xs[len(res_avals) :])

        known_branches.append(closed(known_fn, [aval_of(x) for x in known_ins]))
        unknown_branches.append(closed(unknown_fn, res_avals + [aval_of(x) for x in unknown_ins]))
        offset += len(avals)
    known_outs = trace.forward(cond_p, [index, *known_ins], {"branches": tuple(known_branches)})
    residuals = known_outs[n_known_out:]
    staged = StagingTrace.process_primitive(
        trace, cond_p, [index, *residuals, *unknown_ins], {"branches": tuple(unknown_branches)}
    )
    known_iter, staged_iter = iter(known_outs[:n_known_out]), iter(staged)
    return [next(staged_iter) if uk else next(known_iter) for uk in out_uk]


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


# ---------------------------------------------------------------------------------------------
# while_loop(*cond_consts, *body_consts, *carry, cond, body, counts)
#
# cond: (cond_consts, carry) -> [bool scalar]; body: (body_consts, carry) -> carry.
# Reverse mode: partial evaluation runs the primal loop as `while_tape`, which also returns a
# tape (one list of residuals per iteration, a runtime object); the tangent loop is `while_lin`,
# linear in the tangents, and its transpose `while_lin_t` walks the tape backwards. The tape is
# built when the loop runs, so the trip count may depend on the values (JAX cannot do this).

while_p = Primitive("while_loop", multiple_results=True)
while_tape_p = Primitive("while_tape", multiple_results=True)
while_lin_p = Primitive("while_lin", multiple_results=True)
while_lin_t_p = Primitive("while_lin_transpose", multiple_results=True)

_TAPE = ShapedArray((), np.dtype(object))


def _split3(seq, counts):
    a, b = counts
    return list(seq[:a]), list(seq[a : a + b]), list(seq[a + b :])


def _while_impl(*operands, cond, body, counts):
    cc, bc, carry = _split3(operands, counts)
    while bool(run(cond, *cc, *carry)[0]):
        carry = run(body, *bc, *carry)
    return carry


def _while_abstract_eval(*avals, cond, body, counts):
    return _split3(avals, counts)[2]


def _while_jvp(primals, tangents, *, cond, body, counts):
    cc, bc, carry = _split3(primals, counts)
    _, t_bc, t_carry = _split3([instantiate(t) for t in tangents], counts)
    nb, n = len(bc), len(carry)
    body_jvp = jvp_program(body)  # (bc, carry, t_bc, t_carry) -> (carry, t_carry)
    bc_avals, carry_avals = [aval_of(x) for x in bc], [aval_of(x) for x in carry]

    def new_cond(*xs):  # (cc, carry, t_carry)
        return run(cond, *xs[: len(cc) + n])

    def new_body(*xs):  # (bc, t_bc, carry, t_carry)
        b, tb, c, tc = xs[:nb], xs[nb : 2 * nb], xs[2 * nb : 2 * nb + n], xs[2 * nb + n :]
        return run(body_jvp, *b, *c, *tb, *tc)

    cc_avals = [aval_of(x) for x in cc]
    outs = while_p.bind(
        *cc,
        *bc,
        *t_bc,
        *carry,
        *t_carry,
        cond=closed(new_cond, cc_avals + carry_avals * 2),
        body=closed(new_body, bc_avals * 2 + carry_avals * 2),
        counts=(len(cc), 2 * nb),
    )
    return outs[:n], outs[n:]


def _while_batch(vals, dims, *, cond, body, counts):
    from functrans import numpy as fnp

    size = batch_size(vals, dims)
    cc, bc, carry = _split3(vals, counts)
    cd, bd, _ = _split3(dims, counts)
    front = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(vals, dims, strict=True)]
    cc, bc, _ = _split3(front, counts)
    carry = [bdim_to(v, d, 0, size) for v, d in zip(carry, dims[sum(counts) :], strict=True)]
    c_dims = [None if d is None else 0 for d in cd]
    b_dims = [None if d is None else 0 for d in bd]
    n = len(carry)
    cond_b = batch_program(cond, c_dims + [0] * n, size)  # -> (size,) bools
    body_b = batch_program(body, b_dims + [0] * n, size)
    nc = len(cc)

    def any_lane(*xs):  # (cc, carry)
        return [fnp.any(run(cond_b, *xs)[0])]

    def step(*xs):  # (cc, bc, carry): finished lanes keep their values
        c, b, k = xs[:nc], xs[nc : nc + len(bc)], xs[nc + len(bc) :]
        go = run(cond_b, *c, *k)[0]
        new = run(body_b, *b, *k)
        return [
            fnp.where(fnp.reshape(go, (size,) + (1,) * (fnp.ndim(o) - 1)), o, old)
            for o, old in zip(new, k, strict=True)
        ]

    avals_c = [aval_of(x) for x in cc]
    avals_b = [aval_of(x) for x in bc]
    avals_k = [aval_of(x) for x in carry]
    outs = while_p.bind(
        *cc,
        *cc,
        *bc,
        *carry,
        cond=closed(any_lane, avals_c + avals_k),
        body=closed(step, avals_c + avals_b + avals_k),
        counts=(nc, nc + len(bc)),
    )
    return outs, [0] * n


def _while_partial_eval(trace, args, *, cond, body, counts):
    cc, bc, carry = _split3(args, counts)
    known = trace.is_known
    n = len(carry)
    if not all(map(known, cc)):
        return StagingTrace.process_primitive(
            trace, while_p, args, {"cond": cond, "body": body, "counts": counts}
        )
    # which carries are unknown: a fixed point (an unknown input can make a carry unknown)
    bc_uk = [not known(x) for x in bc]
    carry_uk = [not known(x) for x in carry]
    while True:
        _, _, out_uk, _ = split_program(body, bc_uk + carry_uk)
        new = [a or b for a, b in zip(carry_uk, out_uk, strict=True)]
        if new == carry_uk:
            break
        carry_uk = new
    if any(not known(x) for x, uk in zip(carry, carry_uk, strict=True) if not uk) or not any(
        carry_uk
    ):
        return StagingTrace.process_primitive(
            trace, while_p, args, {"cond": cond, "body": body, "counts": counts}
        )
    body_known, body_rest, _, res_avals = split_program(body, bc_uk + carry_uk, carry_uk)
    if any(u for u, k in zip(carry_uk, [known(x) for x in carry], strict=True) if not u and not k):
        raise AssertionError("unreachable")
    # the cond must read only known carries
    cond_reads = {v for e in cond.jaxpr.eqns for v in e.inputs} | set(cond.jaxpr.outvars)
    carry_vars = cond.jaxpr.invars[len(cc) :]
    if any(v in cond_reads for v, uk in zip(carry_vars, carry_uk, strict=True) if uk):
        return StagingTrace.process_primitive(
            trace, while_p, args, {"cond": cond, "body": body, "counts": counts}
        )
    kb = [x for x, u in zip(bc, bc_uk, strict=True) if not u]
    ub = [x for x, u in zip(bc, bc_uk, strict=True) if u]
    kc = [x for x, u in zip(carry, carry_uk, strict=True) if not u]
    uc = [x for x, u in zip(carry, carry_uk, strict=True) if u]
    known_idx = [i for i, u in enumerate(carry_uk) if not u]

    def known_cond(*xs):  # (cc, known carries): unknown carries are not read
        full_carry = [None] * n
        for i, x in zip(known_idx, xs[len(cc) :], strict=True):
            full_carry[i] = x
        return _run_partial(cond, list(xs[: len(cc)]) + full_carry)

    known_cond_p = closed(known_cond, [aval_of(x) for x in cc] + [aval_of(x) for x in kc])
    outs = trace.forward(
        while_tape_p,
        [*cc, *kb, *kc],
        {
            "cond": known_cond_p,
            "body": body_known,
            "counts": (len(cc), len(kb)),
            "n_res": len(res_avals),
            "mask_size": None,
        },
    )
    known_final, tape = outs[:-1], outs[-1]
    staged = StagingTrace.process_primitive(
        trace,
        while_lin_p,
        [tape, *ub, *uc],
        {"body": body_rest, "n_consts": len(ub), "n_res": len(res_avals), "mask_size": None},
    )
    ki, ui = iter(known_final), iter(staged)
    return [next(ui) if u else next(ki) for u in carry_uk]


def _run_partial(program: ClosedJaxpr, args: list) -> list:
    """Evaluate a program whose unread inputs may be None."""
    env = dict(zip(program.jaxpr.constvars, program.consts, strict=True))
    env.update((v, a) for v, a in zip(program.jaxpr.invars, args, strict=True) if a is not None)
    for eqn in program.jaxpr.eqns:
        outs = eqn.prim.bind(
            *[env[a] if type(a) is Var else a.val for a in eqn.inputs], **eqn.params
        )
        env.update(zip(eqn.outputs, outs if eqn.prim.multiple_results else [outs], strict=True))
    return [env[a] if type(a) is Var else a.val for a in program.jaxpr.outvars]


def _tape_list(tape) -> list:
    """The steps recorded in a tape (a 0-d object array, or one entry per lane when masked)."""
    return tape.flat[0]


def _lanes(active, x):
    """`active` (one bool per lane, axis 0) broadcast against x."""
    from functrans import numpy as fnp

    return fnp.reshape(active, (aval_of(active).shape[0],) + (1,) * (aval_of(x).ndim - 1))


def _while_tape_impl(*operands, cond, body, counts, n_res, mask_size):
    from functrans import numpy as fnp

    cc, bc, carry = _split3(operands, counts)
    tape = []
    while True:
        active = run(cond, *cc, *carry)[0]
        if not (np.any(active) if mask_size else bool(active)):
            break
        outs = run(body, *bc, *carry)
        new, res = outs[: len(carry)], outs[len(carry) :]
        if mask_size:  # finished lanes keep their carries; the step records which lanes ran
            new = [fnp.where(_lanes(active, o), o, c) for o, c in zip(new, carry, strict=True)]
            res = [active] + list(res)
        carry = new
        tape.append(res)
    box = np.empty((mask_size,) if mask_size else (), dtype=object)
    for k in np.ndindex(box.shape):
        box[k] = tape
    return list(carry) + [box]


def _while_tape_abstract_eval(*avals, cond, body, counts, n_res, mask_size):
    tape = ShapedArray((mask_size,), np.dtype(object)) if mask_size else _TAPE
    return _split3(avals, counts)[2] + [tape]


def _while_tape_batch(vals, dims, *, cond, body, counts, n_res, mask_size):
    from functrans.errors import NotSupportedError

    if mask_size:
        raise NotSupportedError(
            "vmap of vmap of reverse mode through a staged while_loop is not supported; "
            "apply jit inside the outer vmap, or vmap once over a flattened batch."
        )
    size = batch_size(vals, dims)
    cc, bc, carry = _split3(vals, counts)
    cd, bd, kd = _split3(dims, counts)
    cc = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(cc, cd, strict=True)]
    bc = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(bc, bd, strict=True)]
    carry = [bdim_to(v, d, 0, size) for v, d in zip(carry, kd, strict=True)]
    n = len(carry)
    cond_b = batch_program(cond, [None if d is None else 0 for d in cd] + [0] * n, size)
    body_b = batch_program(body, [None if d is None else 0 for d in bd] + [0] * n, size)
    outs = while_tape_p.bind(
        *cc, *bc, *carry, cond=cond_b, body=body_b, counts=counts, n_res=n_res, mask_size=size
    )
    return outs, [0] * len(outs)


def _while_lin_impl(tape, *operands, body, n_consts, n_res, mask_size):
    from functrans import numpy as fnp

    consts, tangents = list(operands[:n_consts]), list(operands[n_consts:])
    for step in _tape_list(tape):
        if mask_size:
            active, res = step[0], step[1:]
            new = run(body, *res, *consts, *tangents)
            tangents = [
                fnp.where(_lanes(active, t), t_new, t)
                for t_new, t in zip(new, tangents, strict=True)
            ]
        else:
            tangents = run(body, *step, *consts, *tangents)
    return tangents


def _lin_batch_body(body, n_res, tape_dim, const_dims, n_t, size):
    res_dims = [None if tape_dim is None else 0] * n_res
    return batch_program(body, res_dims + const_dims + [0] * n_t, size)


def _while_lin_batch(vals, dims, *, body, n_consts, n_res, mask_size):
    from functrans.errors import NotSupportedError

    if mask_size:
        raise NotSupportedError(
            "vmap of vmap of reverse mode through a staged while_loop is not supported."
        )
    size = batch_size(vals, dims)
    tape, ops = vals[0], vals[1:]
    consts, tangents = ops[:n_consts], ops[n_consts:]
    cds = [None if d is None else 0 for d in dims[1 : 1 + n_consts]]
    consts = [
        v if d is None else bdim_to(v, d, 0, size)
        for v, d in zip(consts, dims[1 : 1 + n_consts], strict=True)
    ]
    tangents = [bdim_to(v, d, 0, size) for v, d in zip(tangents, dims[1 + n_consts :], strict=True)]
    body_b = _lin_batch_body(body, n_res, dims[0], cds, len(tangents), size)
    outs = while_lin_p.bind(
        tape,
        *consts,
        *tangents,
        body=body_b,
        n_consts=n_consts,
        n_res=n_res,
        mask_size=size if dims[0] is not None else None,
    )
    return outs, [0] * len(outs)


def _while_lin_transpose(cts, tape, *operands, body, n_consts, n_res, mask_size):
    consts, carries = operands[:n_consts], operands[n_consts:]
    carry_avals = [a.aval if type(a) is UndefPrimal else aval_of(a) for a in carries]
    const_avals = [a.aval if type(a) is UndefPrimal else aval_of(a) for a in consts]
    cts = [instantiate(c) for c in cts]
    outs = while_lin_t_p.bind(
        tape,
        *cts,
        body=body,
        n_consts=n_consts,
        n_res=n_res,
        const_avals=tuple(const_avals),
        carry_avals=tuple(carry_avals),
        mask_size=mask_size,
    )
    # only operands being transposed (UndefPrimal) receive cotangents
    return [None] + [
        c if type(a) is UndefPrimal else None
        for c, a in zip(outs, list(consts) + list(carries), strict=True)
    ]


def _while_lin_t_impl(tape, *cts, body, n_consts, n_res, const_avals, carry_avals, mask_size):
    from functrans import numpy as fnp

    jaxpr = body.jaxpr
    res_vars, lin_vars = jaxpr.invars[:n_res], jaxpr.invars[n_res:]
    program = Jaxpr(jaxpr.constvars + res_vars, lin_vars, jaxpr.eqns, jaxpr.outvars)
    const_cts = [np.zeros(a.shape, a.dtype) for a in const_avals]
    carry_cts = list(cts)
    for step in reversed(_tape_list(tape)):
        if mask_size:  # lanes that had finished passed their cotangent through unchanged
            active, res = step[0], step[1:]
            into = [fnp.where(_lanes(active, c), c, 0.0 * c) for c in carry_cts]
        else:
            res, into = step, carry_cts
        out = [
            instantiate(c)
            for c in backward_pass(program, list(body.consts) + list(res), into, mixed=True)
        ]
        const_cts = [a + b for a, b in zip(const_cts, out[:n_consts], strict=True)]
        if mask_size:
            carry_cts = [
                ct_prev + fnp.where(_lanes(active, c), 0.0 * c, c)
                for ct_prev, c in zip(out[n_consts:], carry_cts, strict=True)
            ]
        else:
            carry_cts = out[n_consts:]
    return const_cts + carry_cts


def _while_lin_t_batch(vals, dims, *, body, n_consts, n_res, const_avals, carry_avals, mask_size):
    from functrans.errors import NotSupportedError

    if mask_size:
        raise NotSupportedError(
            "vmap of vmap of reverse mode through a staged while_loop is not supported."
        )
    size = batch_size(vals, dims)
    tape, cts = vals[0], [bdim_to(v, d, 0, size) for v, d in zip(vals[1:], dims[1:], strict=True)]
    # batched: every constant's cotangent gets a lane axis too (the rule sums nothing away)
    body_b = _lin_batch_body(body, n_res, dims[0], [0] * n_consts, len(cts), size)
    outs = while_lin_t_p.bind(
        tape,
        *cts,
        body=body_b,
        n_consts=n_consts,
        n_res=n_res,
        const_avals=tuple(ShapedArray((size,) + a.shape, a.dtype) for a in const_avals),
        carry_avals=tuple(ShapedArray((size,) + a.shape, a.dtype) for a in carry_avals),
        mask_size=size if dims[0] is not None else None,
    )
    return outs, [0] * len(outs)


while_p.impl = _while_impl
while_p.abstract_eval = _while_abstract_eval
while_p.jvp = _while_jvp
while_p.batch = _while_batch
while_p.partial_eval = _while_partial_eval

while_tape_p.impl = _while_tape_impl
while_tape_p.abstract_eval = _while_tape_abstract_eval
while_tape_p.batch = _while_tape_batch

while_lin_p.impl = _while_lin_impl
while_lin_p.abstract_eval = lambda tape, *avals, body, n_consts, n_res, mask_size: list(
    avals[n_consts:]
)
while_lin_p.transpose = _while_lin_transpose
while_lin_p.batch = _while_lin_batch

while_lin_t_p.impl = _while_lin_t_impl
while_lin_t_p.batch = _while_lin_t_batch
while_lin_t_p.abstract_eval = lambda tape, *cts, const_avals, carry_avals, **_: (
    list(const_avals) + list(carry_avals)
)


def staged_while(cond_fun: Callable, body_fun: Callable, carry: list[Any]) -> list[Any]:
    """Bind while_loop on a flat carry, staging cond and body (flat in, flat out)."""
    avals = [aval_of(x) for x in carry]
    cond_prog, body_prog = stage(cond_fun, avals), stage(body_fun, avals)
    if body_prog[0].out_avals != avals:
        raise TypeError(
            "lax.while_loop: body_fun must return a carry of the same structure, shapes and "
            "dtypes as init_val: got ("
            + ", ".join(a.str_short() for a in body_prog[0].out_avals)
            + ") for ("
            + ", ".join(a.str_short() for a in avals)
            + ")"
        )
    (cond_c, body_c), _ = convert_closures([cond_prog, body_prog])
    cc, bc = cond_prog[1], body_prog[1]
    # each program reads only its own slots; pass the other's as unused inputs
    cond_only = ClosedJaxpr(
        Jaxpr(
            [],
            cond_c.jaxpr.invars[: len(cc)] + cond_c.jaxpr.invars[len(cc) + len(bc) :],
            cond_c.jaxpr.eqns,
            cond_c.jaxpr.outvars,
        ),
        [],
    )
    body_only = ClosedJaxpr(
        Jaxpr([], body_c.jaxpr.invars[len(cc) :], body_c.jaxpr.eqns, body_c.jaxpr.outvars), []
    )
    return while_p.bind(*cc, *bc, *carry, cond=cond_only, body=body_only, counts=(len(cc), len(bc)))


# ---------------------------------------------------------------------------------------------
# scan(*consts, *carry, *xs, body, counts, length, reverse): body (consts, carry, x) -> (carry, y)
#
# Staged loops over a leading axis keep one copy of the body however long the loop. Reverse mode:
# partial evaluation runs the known part as a scan that also stacks the per-step residuals (the
# length is static, so they are ordinary arrays), and the linear remainder is a scan whose
# transpose is a scan in the opposite direction.

scan_p = Primitive("scan", multiple_results=True)


def _scan_split(ops, counts):
    nc, nk = counts
    return list(ops[:nc]), list(ops[nc : nc + nk]), list(ops[nc + nk :])


def _scan_impl(*ops, body, counts, length, reverse):
    consts, carry, xs = _scan_split(ops, counts)
    ys = []
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for i in steps:
        outs = run(body, *consts, *carry, *[x[i] for x in xs])
        carry, y = outs[: len(carry)], outs[len(carry) :]
        ys.append(y)
    if reverse:
        ys.reverse()
    y_avals = body.out_avals[len(carry) :]
    stacked = [
        np.stack(col) if ys else np.empty((0,) + a.shape, a.dtype)
        for col, a in zip(
            zip(*ys, strict=True) if ys else [()] * len(y_avals), y_avals, strict=True
        )
    ]
    return list(carry) + stacked


def _scan_abstract_eval(*avals, body, counts, length, reverse):
    nk = counts[1]
    outs = body.out_avals
    return list(outs[:nk]) + [ShapedArray((length,) + a.shape, a.dtype) for a in outs[nk:]]


def _scan_jvp(primals, tangents, *, body, counts, length, reverse):
    consts, carry, xs = _scan_split(primals, counts)
    tc, tk, tx = _scan_split([instantiate(t) for t in tangents], counts)
    nc, nk, nx = len(consts), len(carry), len(xs)
    body_jvp = jvp_program(body)  # (c, k, x, tc, tk, tx) -> (k', y, tk', ty)
    ny = len(body.out_avals) - nk

    def new_body(*a):  # (c, tc, k, tk, x, tx) -> (k', tk', y, ty)
        c, tc_, k, tk_ = (
            a[:nc],
            a[nc : 2 * nc],
            a[2 * nc : 2 * nc + nk],
            a[2 * nc + nk : 2 * nc + 2 * nk],
        )
        x, tx_ = a[2 * nc + 2 * nk : 2 * nc + 2 * nk + nx], a[2 * nc + 2 * nk + nx :]
        o = run(body_jvp, *c, *k, *x, *tc_, *tk_, *tx_)
        k2, y, tk2, ty = o[:nk], o[nk : nk + ny], o[nk + ny : 2 * nk + ny], o[2 * nk + ny :]
        return list(k2) + list(tk2) + list(y) + list(ty)

    in_avals = body.in_avals
    c_av, k_av, x_av = in_avals[:nc], in_avals[nc : nc + nk], in_avals[nc + nk :]
    prog = closed(new_body, c_av * 2 + k_av * 2 + x_av * 2)
    outs = scan_p.bind(
        *consts,
        *tc,
        *carry,
        *tk,
        *xs,
        *tx,
        body=prog,
        counts=(2 * nc, 2 * nk),
        length=length,
        reverse=reverse,
    )
    k2, tk2 = outs[:nk], outs[nk : 2 * nk]
    ys, tys = outs[2 * nk : 2 * nk + ny], outs[2 * nk + ny :]
    return list(k2) + list(ys), list(tk2) + list(tys)


def _scan_batch(vals, dims, *, body, counts, length, reverse):
    size = batch_size(vals, dims)
    consts, carry, xs = _scan_split(vals, counts)
    cd, kd, xd = _scan_split(dims, counts)
    consts = [v if d is None else bdim_to(v, d, 0, size) for v, d in zip(consts, cd, strict=True)]
    carry = [bdim_to(v, d, 0, size) for v, d in zip(carry, kd, strict=True)]
    xs = [v if d is None else bdim_to(v, d, 1, size) for v, d in zip(xs, xd, strict=True)]
    inner = (
        [None if d is None else 0 for d in cd]
        + [0] * len(carry)
        + [None if d is None else 0 for d in xd]
    )
    batched = batch_program(body, inner, size)
    outs = scan_p.bind(
        *consts, *carry, *xs, body=batched, counts=counts, length=length, reverse=reverse
    )
    return outs, [0] * len(carry) + [1] * (len(outs) - len(carry))


def _scan_partial_eval(trace, args, *, body, counts, length, reverse):
    params = {"body": body, "counts": counts, "length": length, "reverse": reverse}
    known = trace.is_known
    consts, carry, xs = _scan_split(args, counts)
    nc, nk = counts
    c_uk = [not known(x) for x in consts]
    x_uk = [not known(x) for x in xs]
    k_uk = [not known(x) for x in carry]
    while True:  # a carry is unknown if any step can make it so
        out_uk = split_program(body, c_uk + k_uk + x_uk)[2]
        new = [a or b for a, b in zip(k_uk, out_uk[:nk], strict=True)]
        if new == k_uk:
            break
        k_uk = new
    if not any(c_uk + k_uk + x_uk) or any(
        not known(x) for x, u in zip(carry, k_uk, strict=True) if not u
    ):
        return StagingTrace.process_primitive(trace, scan_p, args, params)
    natural = split_program(body, c_uk + k_uk + x_uk)[2]
    out_uk = k_uk + natural[nk:]
    known_body, rest, _, res_avals = split_program(body, c_uk + k_uk + x_uk, out_uk)
    kc = [x for x, u in zip(consts, c_uk, strict=True) if not u]
    kk = [x for x, u in zip(carry, k_uk, strict=True) if not u]
    kx = [x for x, u in zip(xs, x_uk, strict=True) if not u]
    n_known_carry = len(kk)
    n_known_y = out_uk[nk:].count(False)
    # known scan: known carries; ys = known ys + stacked residuals
    outs = trace.forward(
        scan_p,
        [*kc, *kk, *kx],
        {"body": known_body, "counts": (len(kc), len(kk)), "length": length, "reverse": reverse},
    )
    known_carry = outs[:n_known_carry]
    known_ys = outs[n_known_carry : n_known_carry + n_known_y]
    res_stacked = outs[n_known_carry + n_known_y :]
    uc = [x for x, u in zip(consts, c_uk, strict=True) if u]
    uk = [x for x, u in zip(carry, k_uk, strict=True) if u]
    ux = [x for x, u in zip(xs, x_uk, strict=True) if u]
    nuc, nuk = len(uc), len(uk)

    def lin_body(*a):  # (uc, uk, res_i, ux_i) -> (uk', uy)
        c, k = a[:nuc], a[nuc : nuc + nuk]
        r, x = a[nuc + nuk : nuc + nuk + len(res_avals)], a[nuc + nuk + len(res_avals) :]
        return run(rest, *r, *c, *k, *x)

    u_avals = [aval_of(x) for x in uc + uk]
    ux_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in ux]
    lin_prog = closed(lin_body, u_avals + list(res_avals) + ux_avals)
    staged = StagingTrace.process_primitive(
        trace,
        scan_p,
        [*uc, *uk, *res_stacked, *ux],
        {"body": lin_prog, "counts": (nuc, nuk), "length": length, "reverse": reverse},
    )
    staged_carry, staged_ys = iter(staged[:nuk]), iter(staged[nuk:])
    kc_iter, ky_iter = iter(known_carry), iter(known_ys)
    carry_out = [next(staged_carry) if u else next(kc_iter) for u in k_uk]
    ys_out = [next(staged_ys) if u else next(ky_iter) for u in out_uk[nk:]]
    return carry_out + ys_out


def _scan_transpose(cts, *ops, body, counts, length, reverse):
    consts, carry, xs = _scan_split(ops, counts)
    nk = len(carry)
    c_lin = [type(c) is UndefPrimal for c in consts]
    x_lin = [type(x) is UndefPrimal for x in xs]
    nl_consts = [c for c, lin in zip(consts, c_lin, strict=True) if not lin]
    nl_xs = [x for x, lin in zip(xs, x_lin, strict=True) if not lin]
    lin_c_avals = [c.aval for c, lin in zip(consts, c_lin, strict=True) if lin]
    cts = [instantiate(c) for c in cts]
    ct_carry, ct_ys = cts[:nk], cts[nk:]
    jaxpr = body.jaxpr
    cv, kv, xv = _scan_split(jaxpr.invars, counts)
    nl_vars = [v for v, lin in zip(cv, c_lin, strict=True) if not lin] + [
        v for v, lin in zip(xv, x_lin, strict=True) if not lin
    ]
    lin_vars = (
        [v for v, lin in zip(cv, c_lin, strict=True) if lin]
        + list(kv)
        + [v for v, lin in zip(xv, x_lin, strict=True) if lin]
    )
    program = Jaxpr(jaxpr.constvars + nl_vars, lin_vars, jaxpr.eqns, jaxpr.outvars)
    n_nlc, n_lc, n_nlx = len(nl_consts), len(lin_c_avals), len(nl_xs)

    def step(*a):  # (nl consts, acc, ct_carry, nl x_i, ct_y_i) -> (acc', ct_carry', ct_x_i)
        nlc, acc = a[:n_nlc], a[n_nlc : n_nlc + n_lc]
        ctk = a[n_nlc + n_lc : n_nlc + n_lc + nk]
        nlx, cty = a[n_nlc + n_lc + nk : n_nlc + n_lc + nk + n_nlx], a[n_nlc + n_lc + nk + n_nlx :]
        out = [
            instantiate(c)
            for c in backward_pass(
                program,
                list(body.consts) + list(nlc) + list(nlx),
                list(ctk) + list(cty),
                mixed=True,
            )
        ]
        new_acc = [ew.add(a_, b) for a_, b in zip(acc, out[:n_lc], strict=True)]
        return new_acc + out[n_lc : n_lc + nk] + out[n_lc + nk :]

    avals = (
        [aval_of(c) for c in nl_consts]
        + lin_c_avals
        + [aval_of(c) for c in ct_carry]
        + [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in nl_xs]
        + [ShapedArray(aval_of(c).shape[1:], aval_of(c).dtype) for c in ct_ys]
    )
    zeros = [full(a.shape, 0, a.dtype) for a in lin_c_avals]
    outs = scan_p.bind(
        *nl_consts,
        *zeros,
        *ct_carry,
        *nl_xs,
        *ct_ys,
        body=closed(step, avals),
        counts=(n_nlc, n_lc + nk),
        length=length,
        reverse=not reverse,
    )
    ct_lin_c, ct_k, ct_lin_x = outs[:n_lc], outs[n_lc : n_lc + nk], outs[n_lc + nk :]
    ci, xi = iter(ct_lin_c), iter(ct_lin_x)
    return (
        [next(ci) if lin else None for lin in c_lin]
        + list(ct_k)
        + [next(xi) if lin else None for lin in x_lin]
    )


scan_p.impl = _scan_impl
scan_p.abstract_eval = _scan_abstract_eval
scan_p.jvp = _scan_jvp
scan_p.batch = _scan_batch
scan_p.partial_eval = _scan_partial_eval
scan_p.transpose = _scan_transpose


def staged_scan(body_fun: Callable, carry: list, xs: list, length: int, reverse: bool):
    """Bind scan on flat carry/xs, staging body (carry..., x...) -> (carry..., y...)."""
    c_avals = [aval_of(c) for c in carry]
    x_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs]
    jaxpr, consts = stage(body_fun, c_avals + x_avals)
    out_c = jaxpr.out_avals[: len(carry)]
    if out_c != c_avals:
        raise TypeError(
            "lax.scan: f must return a carry of the structure, shapes and dtypes of init: got ("
            + ", ".join(a.str_short() for a in out_c)
            + ") for ("
            + ", ".join(a.str_short() for a in c_avals)
            + ")"
        )
    (prog,), consts = convert_closures([(jaxpr, consts)])
    return scan_p.bind(
        *consts,
        *carry,
        *xs,
        body=prog,
        counts=(len(consts), len(carry)),
        length=length,
        reverse=reverse,
    )


__all__ = ["cond_p", "scan_p", "staged_cond", "staged_scan", "staged_while", "while_p"]
