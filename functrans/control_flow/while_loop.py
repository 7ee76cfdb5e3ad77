"""while_loop as a primitive, with reverse mode through a run-time tape of residuals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.control_flow import ops
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
from functrans.core import Primitive, ShapedArray, UndefPrimal, aval_of, instantiate
from functrans.errors import MissingRuleError
from functrans.interpreters.staging import StagingTrace
from functrans.interpreters.transpose import backward_pass
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Var
from functrans.primitives import bdim_to
from functrans.primitives.base import batch_size

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
        return [ops.any_along(run(cond_b, *xs)[0], 0)]

    def step(*xs):  # (cc, bc, carry): finished lanes keep their values
        c, b, k = xs[:nc], xs[nc : nc + len(bc)], xs[nc + len(bc) :]
        go = run(cond_b, *c, *k)[0]
        new = run(body_b, *b, *k)
        return [ops.where(go, o, old) for o, old in zip(new, k, strict=True)]

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


def _while_split(cond, body, n_cc: int, cc_avals, bc_uk: list, carry_uk: list, kc_avals):
    """The parts of a while loop split into a known loop that records a tape and an unknown one
    that replays it: (carries unknown, known condition, known body, unknown body, residual
    avals), or None where the split does not apply (no carry unknown, or the condition reads
    an unknown one). Shared by the trace rule and split_program's rule. `kc_avals(carry_uk)`
    gives the known carries' avals."""
    n = len(carry_uk)
    while True:  # a carry is unknown if any step can make it so
        out_uk = split_program(body, bc_uk + carry_uk)[2]
        new = [a or b for a, b in zip(carry_uk, out_uk, strict=True)]
        if new == carry_uk:
            break
        carry_uk = new
    if not any(carry_uk):
        return None
    cond_reads = {v for e in cond.jaxpr.eqns for v in e.inputs} | set(cond.jaxpr.outvars)
    carry_vars = cond.jaxpr.invars[n_cc:]
    if any(v in cond_reads for v, uk in zip(carry_vars, carry_uk, strict=True) if uk):
        return None
    body_known, body_rest, _, res_avals = split_program(body, bc_uk + carry_uk, carry_uk)
    known_idx = [i for i, u in enumerate(carry_uk) if not u]

    def known_cond(*xs):  # (cc, known carries): unknown carries are bound to None, unread
        full_carry = [None] * n
        for i, x in zip(known_idx, xs[n_cc:], strict=True):
            full_carry[i] = x
        return run(cond, *xs[:n_cc], *full_carry)

    known_cond_p = closed(known_cond, list(cc_avals) + list(kc_avals(carry_uk)))
    return carry_uk, known_cond_p, body_known, body_rest, res_avals


def _while_partial_eval(trace, args, *, cond, body, counts):
    cc, bc, carry = _split3(args, counts)
    known = trace.is_known
    if not all(map(known, cc)):
        return StagingTrace.process_primitive(
            trace, while_p, args, {"cond": cond, "body": body, "counts": counts}
        )
    bc_uk = [not known(x) for x in bc]
    carry_uk = [not known(x) for x in carry]
    parts = _while_split(
        cond,
        body,
        len(cc),
        [aval_of(x) for x in cc],
        bc_uk,
        carry_uk,
        lambda uk: [aval_of(x) for x, u in zip(carry, uk, strict=True) if not u],
    )
    if parts is None or any(not known(x) for x, uk in zip(carry, parts[0], strict=True) if not uk):
        return StagingTrace.process_primitive(
            trace, while_p, args, {"cond": cond, "body": body, "counts": counts}
        )
    carry_uk, known_cond_p, body_known, body_rest, res_avals = parts
    kb = [x for x, u in zip(bc, bc_uk, strict=True) if not u]
    ub = [x for x, u in zip(bc, bc_uk, strict=True) if u]
    kc = [x for x, u in zip(carry, carry_uk, strict=True) if not u]
    uc = [x for x, u in zip(carry, carry_uk, strict=True) if u]
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


def _split_while_eqn(eqn, in_unknown):
    """split_program's rule for a while equation whose condition reads only known values: a
    known loop that records its tape (while_tape) and an unknown one that replays it
    (while_lin), as _while_partial_eval does on a trace. None where that does not apply."""
    cond, body, counts = eqn.params["cond"], eqn.params["body"], eqn.params["counts"]
    cc, bc, carry = _split3(eqn.inputs, counts)
    cc_uk, bc_uk, carry_uk = _split3(list(in_unknown), counts)
    if any(cc_uk):
        return None
    parts = _while_split(
        cond,
        body,
        len(cc),
        [x.aval for x in cc],
        bc_uk,
        carry_uk,
        lambda uk: [x.aval for x, u in zip(carry, uk, strict=True) if not u],
    )
    if parts is None:
        return None
    carry_uk, known_cond_p, body_known, body_rest, res_avals = parts
    kb = [x for x, u in zip(bc, bc_uk, strict=True) if not u]
    ub = [x for x, u in zip(bc, bc_uk, strict=True) if u]
    kc = [x for x, u in zip(carry, carry_uk, strict=True) if not u]
    uc = [x for x, u in zip(carry, carry_uk, strict=True) if u]
    tape = Var(_TAPE)
    known_eqn = Eqn(
        while_tape_p,
        [*cc, *kb, *kc],
        {
            "cond": known_cond_p,
            "body": body_known,
            "counts": (len(cc), len(kb)),
            "n_res": len(res_avals),
            "mask_size": None,
        },
        [o for o, u in zip(eqn.outputs, carry_uk, strict=True) if not u] + [tape],
    )
    unknown_eqn = Eqn(
        while_lin_p,
        [tape, *ub, *uc],
        {"body": body_rest, "n_consts": len(ub), "n_res": len(res_avals), "mask_size": None},
        [o for o, u in zip(eqn.outputs, carry_uk, strict=True) if u],
    )
    return known_eqn, unknown_eqn, carry_uk


def _tape_list(tape) -> list:
    """The steps recorded in a tape (a 0-d object array, or one entry per lane when masked)."""
    if type(tape) is list:  # (a tape a scan stacked as a residual, and sliced: its entry)
        return tape
    return tape.flat[0]


def _while_tape_impl(*operands, cond, body, counts, n_res, mask_size):
    cc, bc, carry = _split3(operands, counts)
    tape = []
    while True:
        active = run(cond, *cc, *carry)[0]
        if not (np.any(active) if mask_size else bool(active)):
            break
        outs = run(body, *bc, *carry)
        new, res = outs[: len(carry)], outs[len(carry) :]
        if mask_size:  # finished lanes keep their carries; the step records which lanes ran
            new = [ops.where(active, o, c) for o, c in zip(new, carry, strict=True)]
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
    consts, tangents = list(operands[:n_consts]), list(operands[n_consts:])
    for step in _tape_list(tape):
        if mask_size:
            active, res = step[0], step[1:]
            new = run(body, *res, *consts, *tangents)
            tangents = [ops.where(active, t_new, t) for t_new, t in zip(new, tangents, strict=True)]
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
    jaxpr = body.jaxpr
    res_vars, lin_vars = jaxpr.invars[:n_res], jaxpr.invars[n_res:]
    program = Jaxpr(jaxpr.constvars + res_vars, lin_vars, jaxpr.eqns, jaxpr.outvars)
    const_cts = [np.zeros(a.shape, a.dtype) for a in const_avals]
    carry_cts = list(cts)
    for step in reversed(_tape_list(tape)):
        if mask_size:  # lanes that had finished passed their cotangent through unchanged
            active, res = step[0], step[1:]
            into = [ops.where(active, c, ops.zeros_like(c)) for c in carry_cts]
        else:
            res, into = step, carry_cts
        out = [
            instantiate(c)
            for c in backward_pass(program, list(body.consts) + list(res), into, mixed=True)
        ]
        const_cts = [a + b for a, b in zip(const_cts, out[:n_consts], strict=True)]
        if mask_size:
            carry_cts = [
                ct_prev + ops.where(active, ops.zeros_like(c), c)
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


def _while_tape_jvp(primals, tangents, **params):
    raise MissingRuleError(
        "a second derivative through a while_loop staged inside jit (grad of grad, hessian, "
        "jacrev of grad, ...) with reverse mode inside is not supported: reverse mode through "
        "the staged loop records a run-time tape of its iterations, which is not itself "
        "differentiable. Use forward mode for both derivatives (jacfwd(jacfwd(f))), a fixed "
        "trip count (lax.fori_loop with static bounds, or lax.scan), or differentiate outside "
        "jit, where the loop runs as Python and any order works."
    )


while_tape_p.impl = _while_tape_impl
while_tape_p.abstract_eval = _while_tape_abstract_eval
while_tape_p.batch = _while_tape_batch
while_tape_p.jvp = _while_tape_jvp

while_lin_p.impl = _while_lin_impl
while_lin_p.abstract_eval = lambda tape, *avals, body, n_consts, n_res, mask_size: list(
    avals[n_consts:]
)
while_lin_p.transpose = _while_lin_transpose
while_lin_p.batch = _while_lin_batch

SPLIT_RULES[while_p] = _split_while_eqn

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
