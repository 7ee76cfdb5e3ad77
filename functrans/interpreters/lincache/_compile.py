"""Compiled programs: a closed Jaxpr as one generated Python function, calling each equation's
impl (concrete values) or binding it on a given trace (values of an outer transformation)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.core import _current_trace, eval_trace
from functrans.interpreters.batching import BatchTrace, BatchTracer
from functrans.interpreters.staging import StagingTrace
from functrans.ir import Eqn, Jaxpr, Var, eval_jaxpr

# A compiled program keeps its constants alive as long as it is cached: programs holding more
# than this are not kept (the n x n masks of matrix rules, gather's batch-sized offsets).
MAX_CONST_BYTES = 64 * 1024


def compile_exact(jaxpr: Jaxpr, consts: list[Any]) -> Callable[..., tuple]:
    """A closed program as one Python function calling each equation's impl, in order.

    Unlike jit's code generator, nothing is rewritten (no operator templates, no Python-float
    variant, no in-place updates), so results are bit-for-bit those of eager evaluation: the
    compiled rules must agree exactly with the general path. Dead equations are dropped.
    """
    return _Program(jaxpr, consts, binding=False).function


def compile_bind(jaxpr: Jaxpr, consts: list[Any]) -> Callable[..., tuple]:
    """A closed program as one Python function `program(trace, *args)` that binds each
    equation, in order, on `trace`: what `eval_jaxpr` does with `trace` current (the caller
    makes it so), without the interpretation. Every equation is bound, dead ones too: on a
    staging trace the program staged is then the one the general path stages."""
    return _Program(jaxpr, consts, binding=True).function


class _Program:
    """Generated straight-line Python for a closed program (compile_exact, compile_bind)."""

    def __init__(self, jaxpr: Jaxpr, consts: list[Any], binding: bool):
        self.namespace: dict[str, Any] = {}
        self.names: dict[Any, str] = {}
        for v, c in zip(jaxpr.constvars, consts, strict=True):
            self.names[v] = self.name("c", c)
        args = [f"a{i}" for i in range(len(jaxpr.invars))]
        self.names.update(zip(jaxpr.invars, args, strict=True))
        if binding:
            lines = [f"def program(trace, {', '.join(args)}):"]
            lines.append("    bind = trace.process_primitive")
        else:
            lines = [f"def program({', '.join(args)}):"]
        for i, eqn in enumerate(jaxpr.eqns if binding else _live_eqns(jaxpr)):
            outs = []
            for v in eqn.outputs:
                self.names[v] = out = f"v{i}_{len(outs)}"
                outs.append(out)
            lhs = ", ".join(outs) + ("," if eqn.prim.multiple_results and len(outs) == 1 else "")
            if eqn.prim.multiple_results and not outs:
                lhs = "_"
            lines.append(f"    {lhs} = {self.bind(eqn) if binding else self.call(eqn)}")
        outs = [self.ref(a) for a in jaxpr.outvars]
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        exec(compile("\n".join(lines), "<functrans.lincache>", "exec"), self.namespace)  # noqa: S102
        self.function = self.namespace["program"]

    def name(self, prefix: str, value: Any) -> str:
        n = f"{prefix}{len(self.namespace)}"
        self.namespace[n] = value
        return n

    def ref(self, a: Any) -> str:
        return self.names[a] if type(a) is Var else self.name("k", a.val)

    def call(self, eqn: Eqn) -> str:
        impl = eqn.prim.impl
        inline = getattr(impl, "inline", None) if not eqn.params else None
        if inline is not None:  # the operator impl, spelled out: one Python frame less
            x, y = (self.ref(a) for a in eqn.inputs)
            types, ufunc = self.name("T", impl.operator_types), self.name("u", inline[1])
            return (
                f"{x} {inline[0]} {y} if type({x}) in {types} and type({y}) in {types} "
                f"else {ufunc}({x}, {y})"
            )
        fn = self.name("f", functools.partial(impl, **eqn.params) if eqn.params else impl)
        return f"{fn}({', '.join(self.ref(a) for a in eqn.inputs)})"

    def bind(self, eqn: Eqn) -> str:
        ins = "".join(f"{self.ref(a)}, " for a in eqn.inputs)
        return f"bind({self.name('p', eqn.prim)}, ({ins}), {self.name('q', eqn.params)})"


def _live_eqns(jaxpr: Jaxpr) -> list[Eqn]:
    """The equations the outputs depend on, in order."""
    live = {v for v in jaxpr.outvars if type(v) is Var}
    eqns = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in live for v in eqn.outputs):
            eqns.append(eqn)
            live.update(a for a in eqn.inputs if type(a) is Var)
    eqns.reverse()
    return eqns


def batched_program(jaxpr: Jaxpr, consts: list, in_avals: list, dims: list, size: int):
    """`jaxpr` staged under vmap (operand i batched along dims[i], or not) and compiled:
    (function of the batched values, the batch axis of each output or None)."""
    staging = StagingTrace(eval_trace)
    batch = BatchTrace(staging, size)
    args = [staging.new_arg(a) for a in in_avals]
    ins = [a if d is None else BatchTracer(batch, a, d) for a, d in zip(args, dims, strict=True)]
    token = _current_trace.set(batch)
    try:
        pairs = [batch.lower(o) for o in eval_jaxpr(jaxpr, consts, *ins)]
    finally:
        _current_trace.reset(token)
        batch.alive = staging.alive = False
    out_jaxpr, out_consts = staging.to_jaxpr([v for v, _ in pairs])
    # batch rules may make constants as large as the batch (gather's offsets): not cached
    if sum(np.asarray(c).nbytes for c in out_consts) > MAX_CONST_BYTES:
        raise _TooLarge
    return compile_exact(out_jaxpr, out_consts), [d for _, d in pairs]


class _TooLarge(Exception):
    """A compiled program would keep too many bytes of constants alive."""
