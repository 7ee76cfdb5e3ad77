"""Forward mode: the JVP interpreter (dual numbers).

A `JVPTracer` carries a primal and a tangent; a primitive with at least one non-zero tangent runs
its `jvp` rule one level down, everything else is passed down untouched. Symbolic zero tangents are
never materialised: an output whose tangent is zero leaves the trace as a plain value.
"""

from __future__ import annotations

from typing import Any

from functrans.core import (
    Trace,
    Tracer,
    Zero,
    _current_trace,
    aval_of,
    leaked_tracer_error,
    user_location,
)
from functrans.errors import ConcretizationError


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent", "_aval")

    def __init__(self, trace: JVPTrace, primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self._aval = None

    @property
    def aval(self):
        aval = self._aval
        if aval is None:
            aval = self._aval = aval_of(self.primal)
        return aval

    def to_concrete(self, what: str):
        # The primal is known (or known further down), so Python control flow on values works:
        # bool(), int() and indexing are piecewise constant, so nothing is lost. float() of a
        # value being differentiated would silently cut its derivative, so it is an error.
        if not self._trace.alive:
            raise leaked_tracer_error(self)
        if what in ("float()", "complex()"):
            raise ConcretizationError(
                f"{what} of a value being differentiated ({self.aval.str_short()}, at "
                f"{user_location()}) would silently drop its derivative. Keep it an array "
                f"(functrans.numpy works on it), or write {what[:-2]}(functrans.stop_gradient(x))"
                " to drop the derivative on purpose."
            )
        p = self.primal
        return p.to_concrete(what) if isinstance(p, Tracer) else p


class JVPTrace(Trace):
    __slots__ = ()

    def process_primitive(self, prim, args, params):
        primals = []
        tangents = []
        differentiating = False
        foreign = False
        for x in args:
            if type(x) is JVPTracer and x._trace is self:
                primals.append(x.primal)
                tangents.append(x.tangent)
                differentiating = differentiating or type(x.tangent) is not Zero
            else:
                if isinstance(x, Tracer):
                    self.check_foreign(x)
                primals.append(x)
                tangents.append(None)
                foreign = True
        if not differentiating:
            return self.forward(prim, primals, params)
        token = _current_trace.set(self.parent)
        try:
            if foreign:  # values from outside this trace have zero tangents
                tangents = [Zero(aval_of(p)) if t is None else t for p, t in zip(primals, tangents)]
            primal_out, tangent_out = prim.jvp(primals, tangents, **params)
        finally:
            _current_trace.reset(token)
        if prim.multiple_results:
            return [self.pure(p, t) for p, t in zip(primal_out, tangent_out, strict=True)]
        return self.pure(primal_out, tangent_out)

    def pure(self, primal: Any, tangent: Any) -> Any:
        return primal if type(tangent) is Zero else JVPTracer(self, primal, tangent)

    def lower(self, x: Any) -> tuple[Any, Any]:
        """(primal, tangent) of a value leaving this trace; foreign values have zero tangent."""
        if type(x) is JVPTracer and x._trace is self:
            return x.primal, x.tangent
        if isinstance(x, Tracer):
            self.check_foreign(x)
        return x, Zero(aval_of(x))
