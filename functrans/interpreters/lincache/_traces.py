"""The JVP traces of reverse mode's linearization that use the compiled rules."""

from __future__ import annotations

import numpy as np

from functrans import core
from functrans.core import Tracer, Zero, _current_trace, aval_of, eval_trace
from functrans.interpreters.batching import BatchTracer
from functrans.interpreters.jvp import JVPTrace, JVPTracer
from functrans.interpreters.lincache._derive import (
    _SCALAR_TYPES,
    BatchedRule,
    LinRule,
    _derive_batched,
    _rules,
    derive,
    params_key,
    rule_for,
)
from functrans.interpreters.lincache._eqns import LinEqn, ScalarLinEqn, lin1_p
from functrans.interpreters.staging import StagingTracer
from functrans.ir import Literal, Var


def _which_tangent(t, pe, lin_tangents: list) -> int | None:
    """An operand's tangent in a signature: 0 if zero, else which distinct staged tangent it is
    (1, 2, ...; x * x has one), collected into `lin_tangents`; None for a known tangent."""
    if type(t) is Zero:
        return 0
    if type(t) is StagingTracer and t._trace is pe:
        for i, u in enumerate(lin_tangents):
            if u is t:
                return i + 1
        lin_tangents.append(t)
        return len(lin_tangents)
    return None


def _signature(prim, params: dict, key: list) -> tuple | None:
    """The signature: `key` (the primitive and its operands) with the params, or None when
    the params are not plain values."""
    if params:
        pk = params_key(prim, params)
        if pk is None:
            return None
        key.append(pk)
    return tuple(key)


class LinearizeJVPTrace(JVPTrace):
    """The JVP trace of a top-level linearize: compiled rules where a signature allows."""

    __slots__ = ()
    kind = "JVPTrace"  # to the user, this is forward mode

    def process_primitive(self, prim, args, params):
        pe = self.parent
        if core.output_check is not None:
            return JVPTrace.process_primitive(self, prim, args, params)
        batch = pe.parent if pe.parent is not eval_trace else None  # grad inside an eager vmap
        batched = False
        # One pass over the operands collects the primals, the staged tangents and the
        # signature: (prim, then per operand: has-tangent, shape, dtype; then params).
        primals = []
        lin_tangents = []
        key = [prim]
        for x in args:
            if type(x) is JVPTracer and x._trace is self:
                p = x.primal
                t = x.tangent
                if not lin_tangents and type(t) is StagingTracer and t._trace is pe:
                    lin_tangents.append(t)  # the first tangent (the common case, inline)
                    key.append(1)
                else:
                    which = _which_tangent(t, pe, lin_tangents)
                    if which is None:  # a known tangent: the general path
                        return JVPTrace.process_primitive(self, prim, args, params)
                    key.append(which)
            elif isinstance(x, Tracer) and not (type(x) is BatchTracer and x._trace is batch):
                # not ours, nor a value of the vmap below: the general path checks and reports
                return JVPTrace.process_primitive(self, prim, args, params)
            else:
                p = x
                key.append(0)
            primals.append(p)
            # a NumPy scalar's type is its shape and dtype (and the cheapest key there is)
            tp = type(p)
            if tp in _SCALAR_TYPES:
                key.append(tp)
            elif tp is np.ndarray:
                key.append((p.shape, p.dtype))
            elif tp is BatchTracer and p._trace is batch:
                v = p.val
                if type(v) is np.ndarray:
                    key.append((p.batch_dim, v.shape, v.dtype))
                else:
                    a = aval_of(v)
                    key.append((p.batch_dim, a.shape, a.dtype))
                batched = True
            else:
                a = aval_of(p)
                key.append((a.shape, a.dtype))
        if not lin_tangents:
            return self.forward(prim, primals, params)
        key = _signature(prim, params, key) if params else tuple(key)
        if key is None:  # params that are not plain values
            return JVPTrace.process_primitive(self, prim, args, params)
        rule = _rules.get(key)
        if batched:
            if type(rule) is not BatchedRule:
                mask = tuple(key[1 : 1 + 2 * len(primals) : 2])
                rule = rule_for(key, lambda: _derive_batched(prim, params, primals, mask, batch))
                if rule is None:
                    return JVPTrace.process_primitive(self, prim, args, params)
            vals = [p.val if type(p) is BatchTracer and p._trace is batch else p for p in primals]
            outs = [
                v if d is None else BatchTracer(batch, v, d)
                for v, d in zip(rule.known_fn(*vals), rule.out_dims, strict=True)
            ]
            rule = rule.base
        else:
            if type(rule) is not LinRule:
                mask = tuple(key[1 : 1 + 2 * len(primals) : 2])
                rule = rule_for(
                    key, lambda: derive(prim, params, [aval_of(p) for p in primals], mask)
                )
                if rule is None:
                    return JVPTrace.process_primitive(self, prim, args, params)
            outs = rule.known_fn(*primals)
            if rule.scalar_lin1:  # scalar code: the equation in its lightest form
                v = Var(rule.lin_out_avals[0])
                tangents = (
                    [lin_tangents[0].ir_var]
                    if len(lin_tangents) == 1
                    else [t.ir_var for t in lin_tangents]
                )
                pe.eqns.append(ScalarLinEqn(rule, [v], outs[1:], tangents))
                tracer = JVPTracer(self, outs[0], StagingTracer(pe, v))
                tracer._aval = rule.out_avals[0]
                return tracer
        return self.stage_lin(prim, rule, outs, lin_tangents, batched)

    def stage_lin(self, prim, rule: LinRule, outs: list, lin_tangents: list, traced: bool):
        """The outputs of `prim` linearized by `rule`: `outs` are its known program's results
        (primal outputs, then residuals); one lin equation stages the tangents. `traced`: the
        residuals may be tracers (of the vmap below, or of an outer transformation)."""
        pe = self.parent
        n_out = rule.n_out
        if rule.forwards is not None:  # output tangents are input tangents: no equation
            lin_out_tracers = [lin_tangents[i] for i in rule.forwards]
            if not prim.multiple_results:
                return JVPTracer(self, outs[0], lin_out_tracers[0])
            it = iter(lin_out_tracers)
            return [
                o if zero else JVPTracer(self, o, next(it))
                for o, zero in zip(outs[:n_out], rule.out_zero, strict=True)
            ]
        # Stage the lin equation directly: its operands' avals are known from the rule.
        res = outs[n_out:]
        if traced:
            inputs = [pe.to_atom(r) for r in res]
        else:
            inputs = [
                Literal(r, a) if scalar else pe.to_atom(r)
                for r, a, scalar in zip(res, rule.res_avals, rule.res_scalar)
            ]
        for t in lin_tangents:
            inputs.append(t.ir_var)
        if not prim.multiple_results:
            v = Var(rule.lin_out_avals[0])
            pe.eqns.append(LinEqn(lin1_p, inputs, rule.params, [v], res, rule))
            tracer = JVPTracer(self, outs[0], StagingTracer(pe, v))
            tracer._aval = rule.out_avals[0]
            return tracer
        lin_vars = [Var(a) for a in rule.lin_out_avals]
        pe.eqns.append(LinEqn(rule.lin_prim, inputs, rule.params, lin_vars, res, rule))
        it = iter(lin_vars)
        return [
            o if zero else JVPTracer(self, o, StagingTracer(pe, next(it)))
            for o, zero in zip(outs[:n_out], rule.out_zero, strict=True)
        ]


class NestedLinearizeJVPTrace(LinearizeJVPTrace):
    """The JVP trace of a linearize inside another transformation (the inner `grad`s of
    `grad(grad(f))`, jacrev inside hessian's jacfwd, `grad` under jit): compiled rules whose
    known part is bound on the trace below, as the rule's own known operations would be."""

    __slots__ = ()
    kind = "JVPTrace"  # to the user, this is forward mode

    def process_primitive(self, prim, args, params):
        pe = self.parent
        if core.output_check is not None:
            return JVPTrace.process_primitive(self, prim, args, params)
        primals = []
        lin_tangents = []
        avals = []
        key = [prim]
        for x in args:
            if type(x) is JVPTracer and x._trace is self:
                which = _which_tangent(x.tangent, pe, lin_tangents)
                if which is None:  # a known tangent: the general path
                    return JVPTrace.process_primitive(self, prim, args, params)
                key.append(which)
                primals.append(x.primal)
                a = x.aval
            else:
                if isinstance(x, Tracer):
                    self.check_foreign(x)
                    a = x.aval
                else:
                    a = aval_of(x)
                primals.append(x)
                key.append(0)
            avals.append(a)
            key.append((a.shape, a.dtype))
        if not lin_tangents:
            return self.forward(prim, primals, params)
        key = _signature(prim, params, key)
        if key is None:  # params that are not plain values
            return JVPTrace.process_primitive(self, prim, args, params)
        rule = _rules.get(key)
        if type(rule) is not LinRule:
            mask = tuple(key[1 : 1 + 2 * len(primals) : 2])
            rule = rule_for(key, lambda: derive(prim, params, avals, mask))
            if rule is None:
                return JVPTrace.process_primitive(self, prim, args, params)
        if not rule.bindable:
            return JVPTrace.process_primitive(self, prim, args, params)
        below = pe.parent  # where the general path's known operations end up
        token = _current_trace.set(below)
        try:
            outs = rule.known_bind_fn()(below, *primals)
        finally:
            _current_trace.reset(token)
        return self.stage_lin(prim, rule, outs, lin_tangents, True)
