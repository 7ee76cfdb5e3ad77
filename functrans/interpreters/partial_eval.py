"""Partial evaluation: split a computation into known work (done now) and unknown work (staged).

`PartialEvalTrace` runs every primitive whose inputs are all known one level down, immediately,
and stages the rest into a Jaxpr whose constvars are the known values it needed (the residuals).
Run under the JVP interpreter with known primals and unknown tangents, this is `linearize`: the
primal computation happens eagerly (so Python control flow on values works) and what is staged is
exactly the linear map from input tangents to output tangents, ready to be transposed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import core, tree_util
from functrans.core import (
    ShapedArray,
    Tracer,
    Zero,
    _current_trace,
    aval_of,
    eval_trace,
    instantiate,
    transform_scope,
)
from functrans.interpreters.batching import BatchTrace
from functrans.interpreters.jvp import JVPTrace, JVPTracer
from functrans.interpreters.lincache import LinearizeJVPTrace, NestedLinearizeJVPTrace
from functrans.interpreters.lincache._eqns import LIN_EQNS, ScalarLinEqn
from functrans.interpreters.staging import StagingTrace, StagingTracer
from functrans.interpreters.transpose import backward_pass
from functrans.ir import Jaxpr, Literal, eval_jaxpr


class PartialEvalTrace(StagingTrace):
    __slots__ = ()

    def process_primitive(self, prim, args, params):
        for x in args:
            if isinstance(x, Tracer):
                if type(x) is StagingTracer and x._trace is self:
                    if prim.partial_eval is not None:
                        return prim.partial_eval(self, args, **params)
                    return self.stage(prim, args, params)
                self.check_foreign(x)
        if self.parent is eval_trace and core.output_check is None:  # the eager hot path
            return prim.impl(*args, **params)
        return self.forward(prim, args, params)

    def is_known(self, x: Any) -> bool:
        return not (type(x) is StagingTracer and x._trace is self)


class LinearFunction:
    """A staged linear map between flat lists of arrays, with its transpose.

    Outputs known to be zero are kept out of the program (`out_avals[i]` with `out_zero[i]`), so
    neither evaluating nor transposing it does any work for them.
    """

    __slots__ = ("jaxpr", "consts", "in_avals", "out_avals", "out_zero")

    def __init__(self, jaxpr: Jaxpr, consts: list, in_avals, out_avals, out_zero: list[bool]):
        self.jaxpr = jaxpr
        self.consts = consts
        self.in_avals = in_avals
        self.out_avals = out_avals
        self.out_zero = out_zero

    def __call__(self, tangents: Sequence[Any]) -> list[Any]:
        """Tangents out (Zero where structurally zero) for tangents in."""
        outs = iter(eval_jaxpr(self.jaxpr, self.consts, *map(instantiate, tangents)))
        return [Zero(a) if z else next(outs) for a, z in zip(self.out_avals, self.out_zero)]

    def detach(self, arrays: Sequence[Any]) -> None:
        """Copy the residuals that share memory with `arrays` (the caller's inputs), wherever the
        program keeps them (constants, literals, compiled lin equations): a map returned to the
        user must not change when an input is later updated in place (`w -= lr * g`)."""
        arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        if not arrays:
            return
        copies: dict[int, Any] = {}

        def own(v):
            if not isinstance(v, np.ndarray) or not any(np.may_share_memory(v, a) for a in arrays):
                return v
            if id(v) not in copies:
                copies[id(v)] = np.array(v)
            return copies[id(v)]

        self.consts = [own(c) for c in self.consts]
        for eqn in self.jaxpr.eqns:
            if type(eqn) in LIN_EQNS:
                eqn.res = [own(r) for r in eqn.res]
            if type(eqn) is not ScalarLinEqn and any(type(a) is Literal for a in eqn.inputs):
                eqn.inputs = [
                    Literal(own(a.val), a.aval) if type(a) is Literal else a for a in eqn.inputs
                ]

    def transpose(self, cts: Sequence[Any]) -> list[Any]:
        """Cotangents in (Zero where unreached) for cotangents out (which may be Zero)."""
        cts = [ct for ct, z in zip(cts, self.out_zero, strict=True) if not z]
        with transform_scope("backward pass"):
            return backward_pass(self.jaxpr, self.consts, cts)


def stage_linear(
    pe: PartialEvalTrace, in_avals: list[ShapedArray], tangents_out: Sequence[Any]
) -> LinearFunction:
    out_avals = [aval_of(t) if type(t) is not Zero else t.aval for t in tangents_out]
    out_zero = [type(t) is Zero for t in tangents_out]
    jaxpr, consts = pe.to_jaxpr([t for t in tangents_out if type(t) is not Zero])
    return LinearFunction(jaxpr, consts, in_avals, out_avals, out_zero)


def linearize_flat(
    fun: Callable[..., Sequence[Any]], primals: Sequence[Any], compiled: bool = False
) -> tuple[list[Any], LinearFunction, Any]:
    """Run `fun` on `primals` eagerly and stage its JVP as a linear program.

    `fun` maps a flat list of arrays to `(flat outputs, aux)`. Returns the primal outputs, the
    linear map from input tangents to output tangents, and aux (computed on primal values).
    `compiled`: on concrete primals, linearize each primitive with its compiled rule
    (interpreters/lincache/), so the program is made of `lin` equations. Reverse mode asks for
    it; the default keeps the program readable primitive by primitive.
    """
    pe = PartialEvalTrace(_current_trace.get())
    parent = pe.parent
    if not compiled:
        jt = JVPTrace(pe)
    elif parent is eval_trace or (type(parent) is BatchTrace and parent.parent is eval_trace):
        jt = LinearizeJVPTrace(pe)  # concrete primals, or batched ones of an eager vmap
    else:  # primals of an outer transformation
        jt = NestedLinearizeJVPTrace(pe)
    in_avals = [aval_of(p) for p in primals]
    tangents_in = [pe.new_arg(a) for a in in_avals]
    token = _current_trace.set(jt)
    try:
        with transform_scope("linearize"):
            outs, aux = fun(*[JVPTracer(jt, p, t) for p, t in zip(primals, tangents_in)])
            pairs = [jt.lower(o) for o in outs]
            aux = strip_tangents(jt, aux)
    finally:
        _current_trace.reset(token)
        jt.alive = False
        pe.alive = False
    primals_out = [p for p, _ in pairs]
    return primals_out, stage_linear(pe, in_avals, [t for _, t in pairs]), aux


def strip_tangents(jt: JVPTrace, aux: Any) -> Any:
    """Auxiliary outputs leave the JVP trace as their primal values."""
    if aux is None:
        return None
    return tree_util.tree_map(lambda x: jt.lower(x)[0], aux)
