"""Programs as values: staging a function, closure conversion, and the JVP, batched and
partially evaluated versions of a program (what the control-flow primitives are built from)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans.core import ShapedArray, instantiate
from functrans.interpreters.staging import trace_to_jaxpr
from functrans.ir import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from functrans.primitives import bdim_to

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


# primitive -> rule(eqn, inputs_unknown) -> (known eqn, unknown eqn, outputs unknown), or None:
# how split_program splits an equation of that primitive whose inputs are partly unknown (the
# known part may be a list of equations: work the rule moved out of a loop, then the loop)
SPLIT_RULES: dict = {}


def split_program(
    program: ClosedJaxpr, in_unknown: Sequence[bool], out_unknown: Sequence[bool] | None = None
):
    """Partial evaluation of a program: (known part, unknown part, out_unknown, residual avals).

    known: known inputs -> known outputs + residuals. unknown: residuals + unknown inputs ->
    unknown outputs. `out_unknown` may force outputs known here to be unknown (they are then
    passed through as residuals). An equation with known and unknown inputs waits for the
    unknown ones, unless its primitive has a rule in SPLIT_RULES (cond, scan, while_loop), which
    splits it into a known equation and an unknown one, recursively: so the primal work of
    control flow inside a checkpointed function, or nested in another loop, stays known.
    """
    jaxpr = program.jaxpr
    unknown = {v for v, u in zip(jaxpr.invars, in_unknown, strict=True) if u}
    known_eqns, unknown_eqns = [], []
    for eqn in jaxpr.eqns:
        eqn_uk = [type(a) is Var and a in unknown for a in eqn.inputs]
        if not any(eqn_uk):
            known_eqns.append(eqn)
            continue
        rule = SPLIT_RULES.get(eqn.prim)
        parts = rule(eqn, eqn_uk) if rule is not None and not all(eqn_uk) else None
        if parts is None:  # the whole equation waits for its unknown inputs
            unknown_eqns.append(eqn)
            unknown.update(eqn.outputs)
            continue
        # a control-flow equation split by its own rule: a known equation (its known outputs,
        # and residuals as new variables) and an unknown one that reads them
        known_eqn, unknown_eqn, out_uk_eqn = parts
        if type(known_eqn) is list:  # (work a rule moved before its known equation)
            known_eqns.extend(known_eqn)
        else:
            known_eqns.append(known_eqn)
        unknown_eqns.append(unknown_eqn)
        unknown.update(o for o, u in zip(eqn.outputs, out_uk_eqn, strict=True) if u)
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
