"""scan as a primitive: one equation for a loop over a leading axis, whatever its length."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from functrans.control_flow.cond import cond_p
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
from functrans.core import (
    Primitive,
    ShapedArray,
    UndefPrimal,
    _current_trace,
    aval_of,
    instantiate,
)
from functrans.interpreters.staging import StagingTrace
from functrans.interpreters.transpose import backward_pass
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var, eval_jaxpr, has_effects
from functrans.primitives import bdim_to
from functrans.primitives import elementwise as ew
from functrans.primitives.base import batch_size
from functrans.primitives.structural import full

# ---------------------------------------------------------------------------------------------
# scan(*consts, *carry, *xs, body, counts, length, reverse): body (consts, carry, x) -> (carry, y)
#
# Staged loops over a leading axis keep one copy of the body however long the loop. Reverse mode:
# partial evaluation runs the known part as a scan that also stacks the per-step residuals (the
# length is static, so they are ordinary arrays), and the linear remainder is a scan whose
# transpose is a scan in the opposite direction. Residuals that depend on the known consts alone
# (a weight matrix, its transpose) are computed once before the loop and read once, not stacked.

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


def _scan_split_body(
    body, c_uk: list, k_uk: list, x_uk: list, u_avals: list, ux_avals: list, length: int
):
    """A scan body split for partial evaluation: (carries unknown, outputs unknown, known body
    (known consts, carries, xs -> known carries, ys and per-step residuals), per-step residual
    avals, the linear body (unknown consts, hoisted residuals, unknown carries, per-step
    residuals, unknown xs -> unknown carries, ys), hoist (see _hoist_invariants): the
    loop-invariant work whose results are read once rather than stacked). Shared by the trace
    rule and split_program's rule. u_avals: the unknown consts' and carries' avals as a
    function of the carries unknown."""
    nk = len(k_uk)
    while True:  # a carry is unknown if any step can make it so
        out_uk = split_program(body, c_uk + k_uk + x_uk)[2]
        new = [a or b for a, b in zip(k_uk, out_uk[:nk], strict=True)]
        if new == k_uk:
            break
        k_uk = new
    out_uk = k_uk + split_program(body, c_uk + k_uk + x_uk)[2][nk:]
    known_body, rest, _, res_avals = split_program(body, c_uk + k_uk + x_uk, out_uk)
    if length:
        known_body, res_avals, hoist, per_residual = _hoist_invariants(
            known_body, res_avals, c_uk.count(False)
        )
    else:  # (no step runs: neither may the work of one, and nothing reads a residual)
        hoist, per_residual = (None, 0), [(None, a) for a in res_avals]
    nuc, nuk = c_uk.count(True), k_uk.count(True)
    h_avals = [a for j, a in per_residual if j is not None]
    nh, nres = len(h_avals), len(res_avals)

    def lin_body(*a):  # (uc, hoisted residuals, uk, res_i, ux_i) -> (uk', uy)
        c, h = a[:nuc], iter(a[nuc : nuc + nh])
        k = a[nuc + nh : nuc + nh + nuk]
        r = iter(a[nuc + nh + nuk : nuc + nh + nuk + nres])
        x = a[nuc + nh + nuk + nres :]
        residuals = [next(r) if j is None else next(h) for j, _ in per_residual]
        return run(rest, *residuals, *c, *k, *x)

    u = list(u_avals(k_uk))
    lin_prog = closed(lin_body, u[:nuc] + h_avals + u[nuc:] + list(res_avals) + list(ux_avals))
    return k_uk, out_uk, known_body, res_avals, lin_prog, hoist


def _hoist_invariants(known_body: ClosedJaxpr, res_avals: list, n_known_consts: int):
    """Loop-invariant code motion for the residuals of a scan's known body: the residuals that
    depend on its known consts alone (a weight matrix the linear body multiplies by, or its
    transpose) are computed once, before the loop, with the operations they need; the linear
    scan reads them once, as consts, instead of a copy per step, and the known body takes the
    values of those operations it also uses as consts.

    Returns (known body: (known consts, hoisted values it uses, carries, xs) -> ..., per-step
    residual avals, hoist: (program: known consts -> hoisted values the known body uses, then
    the hoisted residuals; or None; how many the known body uses), per residual in order: its
    number among the hoisted residuals, or None for a per-step one, and its aval)."""
    jaxpr = known_body.jaxpr
    n_out = len(jaxpr.outvars) - len(res_avals)
    consts_in = jaxpr.invars[:n_known_consts]
    invariant = set(consts_in) | set(jaxpr.constvars)  # (constvars: arrays the body holds)
    candidates = []
    for eqn in jaxpr.eqns:  # (an effect happens once per step: it stays in the loop)
        if all(type(a) is not Var or a in invariant for a in eqn.inputs) and not has_effects(eqn):
            candidates.append(eqn)
            invariant.update(eqn.outputs)
    res_vars = jaxpr.outvars[n_out:]
    hoisted_res = [v for v in res_vars if type(v) is Var and v in invariant]
    if not hoisted_res:
        return known_body, res_avals, (None, 0), [(None, a) for a in res_avals]
    needed = set(hoisted_res)
    moved = []
    for eqn in reversed(candidates):  # the operations the hoisted residuals need
        if any(o in needed for o in eqn.outputs):
            moved.append(eqn)
            needed.update(a for a in eqn.inputs if type(a) is Var)
    moved.reverse()
    moved_ids = {id(e) for e in moved}
    kept_eqns = [e for e in jaxpr.eqns if id(e) not in moved_ids]
    step_res = [v for v in res_vars if not (type(v) is Var and v in invariant)]
    kept_outs = jaxpr.outvars[:n_out] + step_res
    used = {a for e in kept_eqns for a in e.inputs if type(a) is Var}
    used.update(v for v in kept_outs if type(v) is Var)
    body_in = [o for e in moved for o in e.outputs if o in used]
    hoist = ClosedJaxpr(
        Jaxpr(jaxpr.constvars, list(consts_in), moved, body_in + hoisted_res), known_body.consts
    )
    body = ClosedJaxpr(
        Jaxpr(
            jaxpr.constvars,
            list(consts_in) + body_in + list(jaxpr.invars[n_known_consts:]),
            kept_eqns,
            kept_outs,
        ),
        known_body.consts,
    )
    numbers = iter(range(len(hoisted_res)))
    per_residual = [
        (next(numbers), a) if type(v) is Var and v in invariant else (None, a)
        for v, a in zip(res_vars, res_avals, strict=True)
    ]
    return body, [v.aval for v in step_res], (hoist, len(body_in)), per_residual


def _scan_partial_eval(trace, args, *, body, counts, length, reverse):
    params = {"body": body, "counts": counts, "length": length, "reverse": reverse}
    known = trace.is_known
    consts, carry, xs = _scan_split(args, counts)
    nk = counts[1]
    c_uk = [not known(x) for x in consts]
    x_uk = [not known(x) for x in xs]
    uc = [x for x, u in zip(consts, c_uk, strict=True) if u]
    ux = [x for x, u in zip(xs, x_uk, strict=True) if u]
    k_uk, out_uk, known_body, res_avals, lin_prog, hoisted = _scan_split_body(
        body,
        c_uk,
        [not known(x) for x in carry],
        x_uk,
        lambda k_uk: (
            [aval_of(x) for x in uc] + [aval_of(x) for x, u in zip(carry, k_uk, strict=True) if u]
        ),
        [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in ux],
        length,
    )
    if not any(c_uk + k_uk + x_uk) or any(
        not known(x) for x, u in zip(carry, k_uk, strict=True) if not u
    ):
        return StagingTrace.process_primitive(trace, scan_p, args, params)
    kc = [x for x, u in zip(consts, c_uk, strict=True) if not u]
    kk = [x for x, u in zip(carry, k_uk, strict=True) if not u]
    kx = [x for x, u in zip(xs, x_uk, strict=True) if not u]
    uk = [x for x, u in zip(carry, k_uk, strict=True) if u]
    n_known_carry = len(kk)
    n_known_y = out_uk[nk:].count(False)
    # loop-invariant work, once (one level down, as the known scan runs)
    hoist, n_body_in = hoisted
    hv = [] if hoist is None else _forward_program(trace, hoist, kc)
    hb, hc = hv[:n_body_in], hv[n_body_in:]  # (what the known body uses; the residuals)
    # known scan: known carries; ys = known ys + stacked residuals
    outs = trace.forward(
        scan_p,
        [*kc, *hb, *kk, *kx],
        _params(known_body, len(kc) + len(hb), len(kk), length, reverse),
    )
    known_carry = outs[:n_known_carry]
    known_ys = outs[n_known_carry : n_known_carry + n_known_y]
    res_stacked = outs[n_known_carry + n_known_y :]
    staged = StagingTrace.process_primitive(
        trace,
        scan_p,
        [*uc, *hc, *uk, *res_stacked, *ux],
        _params(lin_prog, len(uc) + len(hc), len(uk), length, reverse),
    )
    staged_carry, staged_ys = iter(staged[: len(uk)]), iter(staged[len(uk) :])
    kc_iter, ky_iter = iter(known_carry), iter(known_ys)
    carry_out = [next(staged_carry) if u else next(kc_iter) for u in k_uk]
    ys_out = [next(staged_ys) if u else next(ky_iter) for u in out_uk[nk:]]
    return carry_out + ys_out


def _split_scan_eqn(eqn, in_unknown):
    """split_program's rule for a scan equation: a known scan (known carries and ys, and the
    residuals of every step stacked as more ys) and an unknown one that reads them, as
    _scan_partial_eval does on a trace."""
    body, counts = eqn.params["body"], eqn.params["counts"]
    length, reverse = eqn.params["length"], eqn.params["reverse"]
    consts, carry, xs = _scan_split(eqn.inputs, counts)
    c_uk, k_uk, x_uk = _scan_split(list(in_unknown), counts)
    uc = [x for x, u in zip(consts, c_uk, strict=True) if u]
    ux = [x for x, u in zip(xs, x_uk, strict=True) if u]
    k_uk, out_uk, known_body, res_avals, lin_prog, hoisted = _scan_split_body(
        body,
        c_uk,
        k_uk,
        x_uk,
        lambda k_uk: [x.aval for x in uc] + [x.aval for x, u in zip(carry, k_uk, strict=True) if u],
        [ShapedArray(x.aval.shape[1:], x.aval.dtype) for x in ux],
        length,
    )
    kc = [x for x, u in zip(consts, c_uk, strict=True) if not u]
    kk = [x for x, u in zip(carry, k_uk, strict=True) if not u]
    kx = [x for x, u in zip(xs, x_uk, strict=True) if not u]
    uk = [x for x, u in zip(carry, k_uk, strict=True) if u]
    # loop-invariant work, once: the hoisted operations as equations before the known scan
    hoist, n_body_in = hoisted
    pre, hv = ([], []) if hoist is None else _inline_program(hoist, kc)
    hb, hc = hv[:n_body_in], hv[n_body_in:]  # (what the known body uses; the residuals)
    nuc, nuk = len(uc) + len(hc), len(uk)
    residuals = [Var(ShapedArray((length, *a.shape), a.dtype)) for a in res_avals]
    known_eqn = Eqn(
        scan_p,
        [*kc, *hb, *kk, *kx],
        _params(known_body, len(kc) + len(hb), len(kk), length, reverse),
        [o for o, u in zip(eqn.outputs, out_uk, strict=True) if not u] + residuals,
    )
    unknown_eqn = Eqn(
        scan_p,
        [*uc, *hc, *uk, *residuals, *ux],
        _params(lin_prog, nuc, nuk, length, reverse),
        [o for o, u in zip(eqn.outputs, out_uk, strict=True) if u],
    )
    return [*pre, known_eqn], unknown_eqn, out_uk


def _params(body: ClosedJaxpr, n_consts: int, n_carry: int, length: int, reverse: bool) -> dict:
    return {"body": body, "counts": (n_consts, n_carry), "length": length, "reverse": reverse}


def _forward_program(trace, program: ClosedJaxpr, args: list) -> list:
    """A program run on known values one level below `trace`, as trace.forward runs one
    primitive (eval_jaxpr: under debug_nans a report names each equation's source line)."""
    token = _current_trace.set(trace.parent)
    try:
        return eval_jaxpr(program.jaxpr, program.consts, *args)
    finally:
        _current_trace.reset(token)


def _inline_program(program: ClosedJaxpr, args: list) -> tuple[list[Eqn], list]:
    """A program as equations on the atoms `args`, with fresh variables: (equations, outputs).
    A program holding arrays (constvars) is one equation, a cond of one branch."""
    jaxpr = program.jaxpr
    if jaxpr.constvars:
        outs = [Var(v.aval) for v in jaxpr.outvars]
        return [Eqn(cond_p, [Literal(0), *args], {"branches": (program,)}, outs)], outs
    env: dict = dict(zip(jaxpr.invars, args, strict=True))
    eqns = []
    for eqn in jaxpr.eqns:
        outs = [Var(o.aval) for o in eqn.outputs]
        ins = [env[a] if type(a) is Var else a for a in eqn.inputs]
        copy = Eqn(eqn.prim, ins, eqn.params, outs)
        copy.source = eqn.source  # (what debug_nans reports)
        eqns.append(copy)
        env.update(zip(eqn.outputs, outs, strict=True))
    return eqns, [env[a] if type(a) is Var else a for a in jaxpr.outvars]


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
SPLIT_RULES[scan_p] = _split_scan_eqn


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
