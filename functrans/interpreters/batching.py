"""Batching: the vmap interpreter.

A `BatchTracer` is a value with one extra axis, `batch_dim`, that runs over the batch (or None: the
same for every batch element). A primitive with at least one batched operand runs its `batch` rule
one level down on the underlying arrays, which vectorises it; nothing ever loops over the batch.
An output that its rule reports unbatched leaves the trace as a plain value.
"""

from __future__ import annotations

from typing import Any

from functrans.core import ShapedArray, Trace, Tracer, _current_trace, aval_of
from functrans.errors import BatchingError


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim", "_aval")

    def __init__(self, trace: BatchTrace, val: Any, batch_dim: int):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim
        self._aval = None

    @property
    def aval(self) -> ShapedArray:
        aval = self._aval
        if aval is None:
            full = aval_of(self.val)
            d = self.batch_dim
            aval = self._aval = ShapedArray(full.shape[:d] + full.shape[d + 1 :], full.dtype)
        return aval

    def to_concrete(self, what: str):
        raise BatchingError(
            f"vmap: {what} of a batched value {self.aval.str_short()} (it differs across the "
            "batch, so it has no single Python value). Use functrans.numpy.where to choose "
            "elementwise per batch element, or functrans.lax.cond / lax.while_loop for batched "
            "branches and loops."
        )


class BatchTrace(Trace):
    __slots__ = ("axis_size",)

    def __init__(self, parent: Trace | None, axis_size: int):
        super().__init__(parent)
        self.axis_size = axis_size

    def process_primitive(self, prim, args, params):
        vals = []
        dims = []
        batched = False
        for x in args:
            if type(x) is BatchTracer and x._trace is self:
                vals.append(x.val)
                dims.append(x.batch_dim)
                batched = True
            else:
                if isinstance(x, Tracer):
                    self.check_foreign(x)
                vals.append(x)
                dims.append(None)
        if not batched:
            return self.forward(prim, vals, params)
        token = _current_trace.set(self.parent)
        try:
            out, out_dim = prim.batch(vals, dims, **params)
        finally:
            _current_trace.reset(token)
        if prim.multiple_results:
            return [self.pure(o, d) for o, d in zip(out, out_dim, strict=True)]
        return self.pure(out, out_dim)

    def pure(self, val: Any, dim: int | None) -> Any:
        return val if dim is None else BatchTracer(self, val, dim)

    def lower(self, x: Any) -> tuple[Any, int | None]:
        """(value, batch_dim) of a value leaving this trace; foreign values are unbatched."""
        if type(x) is BatchTracer and x._trace is self:
            return x.val, x.batch_dim
        if isinstance(x, Tracer):
            self.check_foreign(x)
        return x, None
