"""Transposition: the backward pass over a linear Jaxpr (reverse mode's only machinery).

The program's invars are the linear inputs; its constvars are known values (residuals). Every
equation depends on a linear input — partial evaluation stages nothing else — so the backward
pass visits each equation once, in reverse, passing its output cotangent through the primitive's
`transpose` rule and accumulating the results. The loop is iterative, so program length is not
limited by Python's recursion limit, and equations whose outputs get no cotangent cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from functrans import core
from functrans.core import UndefPrimal, Zero
from functrans.interpreters.batching import BatchTrace
from functrans.interpreters.lincache import (
    LIN_EQNS,
    lin1_p,
    lin_p,
    transpose_direct,
    transpose_into,
)
from functrans.ir import Jaxpr, Literal, Var
from functrans.primitives import add_p


def backward_pass(
    jaxpr: Jaxpr,
    consts: Sequence[Any],
    cts_out: Sequence[Any],
    mixed: bool = False,
    init: Sequence[Any] | None = None,
) -> list[Any]:
    """Cotangents of the invars. `mixed`: the program may also hold equations on known values
    only (sub-programs of control flow, batched after staging); they are evaluated first.
    `init`: running cotangents of the invars (None: none) that contributions are added onto."""
    known: dict[Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    ct_env: dict[Var, Any] = {}
    if init is not None:
        ct_env.update((v, c) for v, c in zip(jaxpr.invars, init, strict=True) if c is not None)
    eqns = jaxpr.eqns
    if mixed:
        linear = set(jaxpr.invars)
        eqns = []
        for eqn in jaxpr.eqns:
            if any(type(a) is Var and a in linear for a in eqn.inputs):
                eqns.append(eqn)
                linear.update(eqn.outputs)
            else:
                ins = [a.val if type(a) is Literal else known[a] for a in eqn.inputs]
                outs = eqn.prim.bind(*ins, **eqn.params)
                outs = outs if eqn.prim.multiple_results else [outs]
                known.update(zip(eqn.outputs, outs, strict=True))

    add = add_p.bind

    for v, ct in zip(jaxpr.outvars, cts_out, strict=True):
        if type(ct) is not Zero and type(v) is Var and v not in known:
            old = ct_env.get(v)
            ct_env[v] = ct if old is None else add(old, ct)

    checking = core.output_check is not None
    # On concrete values, a compiled rule's equation runs its generated transpose directly;
    # under another transformation (nested differentiation) it binds it on the current trace,
    # except on the batched values of an eager vmap, which transpose_into runs batched.
    current = core._current_trace.get()
    direct = not checking and not mixed and current is core.eval_trace
    binding = (
        not checking
        and not mixed
        and not direct
        and not (type(current) is BatchTrace and current.parent is core.eval_trace)
    )
    for eqn in reversed(eqns):
        if (direct or binding) and type(eqn) in LIN_EQNS and eqn.direct is not None:
            # a compiled rule's transpose from its table, adding onto the running cotangents
            ct = ct_env.pop(eqn.outputs[0], None)
            if ct is None:
                continue
            a = eqn.tangent
            if a is None or binding:
                transpose_direct(eqn, ct, ct_env, None if direct else current)
                continue
            # the eager hot path: one tangent in, run inline
            acc = ct_env.get(a)
            fn = eqn.direct[acc is not None][0].fn
            outs = fn(*eqn.res, ct) if acc is None else fn(*eqn.res, ct, acc)
            if outs:
                ct_env[a] = outs[0]
            continue
        prim = eqn.prim
        if (prim is lin1_p or prim is lin_p) and not mixed:
            transpose_into(eqn, ct_env, known, direct)
            continue
        if prim.multiple_results:
            cts = [ct_env.pop(v, None) for v in eqn.outputs]
            if all(ct is None for ct in cts):
                continue
            ct = [Zero(v.aval) if c is None else c for v, c in zip(eqn.outputs, cts)]
        else:
            ct = ct_env.pop(eqn.outputs[0], None)
            if ct is None:
                continue
        args = []
        for a in eqn.inputs:
            if type(a) is Literal:
                args.append(a.val)
            else:
                val = known.get(a, UndefPrimal)
                args.append(UndefPrimal(a.aval) if val is UndefPrimal else val)
        if not checking:
            cts_in = prim.transpose(ct, *args, **eqn.params)
        else:  # debugging: non-finite values are reported against the equation being transposed
            token = core.debug_eqn.set(eqn)
            try:
                cts_in = prim.transpose(ct, *args, **eqn.params)
            finally:
                core.debug_eqn.reset(token)
        for a, arg, ct_a in zip(eqn.inputs, args, cts_in, strict=True):
            if ct_a is not None and type(arg) is UndefPrimal and type(ct_a) is not Zero:
                old = ct_env.get(a)
                ct_env[a] = ct_a if old is None else add(old, ct_a)

    return [_pop_ct(ct_env, v) for v in jaxpr.invars]


def _pop_ct(ct_env: dict, v: Var) -> Any:
    ct = ct_env.pop(v, None)
    return Zero(v.aval) if ct is None else ct
