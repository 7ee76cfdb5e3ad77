"""Staging: trace a Python function into a Jaxpr (what make_jaxpr and jit build on).

A `StagingTrace` records every primitive applied to its tracers as an equation. Values it does not
own (NumPy arrays, tracers of enclosing transformations) become constvars; scalars become
literals. Its tracers know only their aval, so Python control flow on their values is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import core
from functrans.core import ShapedArray, Trace, Tracer, _current_trace, aval_of, user_location
from functrans.ir import Eqn, Jaxpr, Literal, Var


class StagingTracer(Tracer):
    __slots__ = ("ir_var",)  # not "var": tracers have the array method .var()

    def __init__(self, trace: StagingTrace, var: Var):
        self._trace = trace
        self.ir_var = var

    @property
    def aval(self) -> ShapedArray:
        return self.ir_var.aval


class StagingTrace(Trace):
    __slots__ = ("invars", "eqns", "constvars", "consts", "_const_ids")

    def __init__(self, parent: Trace | None):
        super().__init__(parent)
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.consts: list[Any] = []
        self._const_ids: dict[int, Var] = {}

    def new_arg(self, aval: ShapedArray) -> StagingTracer:
        v = Var(aval)
        self.invars.append(v)
        return StagingTracer(self, v)

    def to_atom(self, x: Any) -> Var | Literal:
        if type(x) is StagingTracer and x._trace is self:
            return x.ir_var
        if isinstance(x, Tracer):
            self.check_foreign(x)
        elif type(x) is not np.ndarray:  # scalars are inline
            return Literal(x)
        elif not x.ndim:  # so are 0-d arrays, by value: updating one later changes nothing
            return Literal(x.copy())
        v = self._const_ids.get(id(x))
        if v is None:
            v = self._const_ids[id(x)] = Var(aval_of(x))
            self.constvars.append(v)
            self.consts.append(x)  # also keeps x alive, so its id stays unique
        return v

    def process_primitive(self, prim, args, params):
        return self.stage(prim, args, params)

    def stage(self, prim, args, params):
        """Record `prim(*args)` as an equation and return tracers of its outputs (hot path)."""
        inputs = []
        avals = []
        for x in args:
            a = x.ir_var if type(x) is StagingTracer and x._trace is self else self.to_atom(x)
            inputs.append(a)
            avals.append(a.aval)
        out = prim.abstract_eval(*avals, **params)
        if prim.multiple_results:
            outputs = [Var(a) for a in out]
            tracers = [StagingTracer(self, v) for v in outputs]
        else:
            outputs = [Var(out)]
            tracers = StagingTracer(self, outputs[0])
        eqn = Eqn(prim, inputs, params, outputs)
        if core.output_check is not None:  # debugging: remember the user's line for errors
            # (re-staging a staged equation, as jit of a checkpoint's recomputation does, keeps
            # the line that equation came from)
            evaluating = core.debug_eqn.get()
            eqn.source = evaluating.source if evaluating is not None else user_location()
        self.eqns.append(eqn)
        return tracers

    def to_jaxpr(self, outs: Sequence[Any]) -> tuple[Jaxpr, list[Any]]:
        outvars = [self.to_atom(x) for x in outs]
        return Jaxpr(self.constvars, self.invars, self.eqns, outvars), self.consts


def trace_to_jaxpr(
    fun: Callable[..., Sequence[Any]], in_avals: Sequence[ShapedArray]
) -> tuple[Jaxpr, list[Any]]:
    """Stage `fun` (flat list of arrays in, flat list out) on abstract inputs."""
    trace = StagingTrace(_current_trace.get())
    args = [trace.new_arg(a) for a in in_avals]
    token = _current_trace.set(trace)
    try:
        outs = fun(*args)
    finally:
        _current_trace.reset(token)
        trace.alive = False
    return trace.to_jaxpr(outs)
