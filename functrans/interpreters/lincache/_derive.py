"""Deriving a primitive's compiled rule for one signature, and the cache of rules."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from functrans.core import Primitive, Zero, _current_trace, aval_of, eval_trace
from functrans.interpreters.batching import BatchTracer
from functrans.interpreters.lincache._compile import (
    MAX_CONST_BYTES,
    batched_program,
    compile_bind,
    compile_exact,
)
from functrans.interpreters.lincache._eqns import lin1_p, lin_p
from functrans.interpreters.staging import StagingTrace, StagingTracer
from functrans.ir import Jaxpr, eval_jaxpr


class LinRule:
    """One primitive's linearization at one signature (see the module docstring)."""

    __slots__ = (
        "name",
        "n_out",
        "n_res",
        "res_avals",
        "res_scalar",
        "scalar_lin1",
        "out_zero",
        "out_avals",
        "lin_out_avals",
        "lin_jaxpr",
        "known_jaxpr",
        "known_consts",
        "known_fn",
        "forwards",
        "lin_prim",
        "params",
        "_transposes",
        "_fwd_fn",
        "_bind_fn",
        "direct",
        "bindable",
    )

    def __repr__(self):
        return f"lin[{self.name}]"

    def evaluate(self, ops: list[Any]) -> list[Any]:
        """The linear map by binding (under any transformation): residuals, tangents -> outs."""
        return eval_jaxpr(self.lin_jaxpr, ops[: self.n_res], *ops[self.n_res :])

    def transposed(self, ct_zero: tuple[bool, ...], acc: tuple[bool, ...]) -> Transposed:
        """The transpose for output cotangents that are symbolically zero where `ct_zero` says,
        adding onto running input cotangents where `acc` says.

        Zero cotangents must stay symbolic: eigh's transpose, say, multiplies the eigenvector
        cotangent by 1/(w_i - w_j), which is inf at a repeated eigenvalue; a real zero there
        would give NaN where the eigenvalues alone have a finite gradient. The running sums are
        inputs so that every contribution is added onto them in the order the general path
        adds it: floating-point addition is not associative, and a gradient must not change
        between the first call and the compiled ones.
        """
        key = (ct_zero, acc)
        t = self._transposes.get(key)
        if t is None:
            t = self._transposes[key] = Transposed(self.lin_jaxpr, ct_zero, acc)
        return t

    def direct_entry(self, mask: int) -> tuple[Transposed, tuple[int, ...]]:
        """For a one-output rule, the transpose adding onto the running cotangents of the
        tangent operands whose bit is set in `mask`, with the indices of the tangent operands
        it returns cotangents for (cached in `direct[mask]`)."""
        k = len(self.lin_jaxpr.invars)
        t = self.transposed((False,), tuple(bool(mask >> i & 1) for i in range(k)))
        entry = self.direct[mask] = (t, tuple(i for i in range(k) if not t.zero[i]))
        return entry

    def known_bind_fn(self):
        """The known part as a program that binds on a given trace (nested linearization)."""
        if self._bind_fn is None:
            self._bind_fn = compile_bind(self.known_jaxpr, self.known_consts)
        return self._bind_fn

    def forward_fn(self):
        """The linear map as generated NumPy code (for evaluation on concrete values)."""
        if self._fwd_fn is None:
            j = self.lin_jaxpr
            self._fwd_fn = compile_exact(Jaxpr([], j.constvars + j.invars, j.eqns, j.outvars), [])
        return self._fwd_fn


class Transposed:
    """A rule's linear program transposed for one pattern of zero output cotangents and of
    running input cotangents, staged and compiled:
    (residuals, non-zero cotangents, running sums) -> the input cotangents that are not zero."""

    __slots__ = ("jaxpr", "consts", "zero", "fn", "batched", "_bind_fn")

    def __init__(self, lin_jaxpr: Jaxpr, ct_zero: tuple[bool, ...], acc: tuple[bool, ...]):
        from functrans.interpreters.transpose import backward_pass

        staging = StagingTrace(eval_trace)
        res = [staging.new_arg(v.aval) for v in lin_jaxpr.constvars]
        cts = [
            Zero(v.aval) if z else staging.new_arg(v.aval)
            for v, z in zip(lin_jaxpr.outvars, ct_zero, strict=True)
        ]
        init = [staging.new_arg(v.aval) if a else None for v, a in zip(lin_jaxpr.invars, acc)]
        token = _current_trace.set(staging)
        try:
            cts_in = backward_pass(lin_jaxpr, res, cts, init=init)
        finally:
            _current_trace.reset(token)
            staging.alive = False
        self.zero = [type(c) is Zero for c in cts_in]
        self.jaxpr, self.consts = staging.to_jaxpr([c for c in cts_in if type(c) is not Zero])
        self.fn = compile_exact(self.jaxpr, self.consts)
        self.batched: dict = {}  # batch-axis pattern -> compiled batched transpose
        self._bind_fn = None

    def bind_fn(self):
        """The transpose as a program that binds on a given trace (under a transformation)."""
        if self._bind_fn is None:
            self._bind_fn = compile_bind(self.jaxpr, self.consts)
        return self._bind_fn


def _param_key(v: Any) -> Any:
    """A hashable key that tells apart the values a rule may depend on, or raises TypeError.

    Floats are keyed by their bits (0.0 and -0.0 are equal numbers but pad differently; NaN is
    not equal to itself), every value with its type (1, 1.0 and True are equal dictionary keys).
    Functions, programs and arrays are not plain values: their rules are not compiled.
    """
    t = type(v)
    if t is float:
        return ("f", v.hex())
    if t is complex:
        return ("c", v.real.hex(), v.imag.hex())
    if v is None or t in (bool, int, str):
        return (t.__name__, v)
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if t is tuple:
        return ("tuple", *map(_param_key, v))
    raise TypeError(f"not a plain param value: {t.__name__}")


def params_key(prim: Primitive, params: dict) -> tuple | None:
    """A hashable key for params, or None when the rule cannot be compiled."""
    if prim.effectful or prim.partial_eval is not None:
        return None
    try:
        return tuple(sorted((k, _param_key(v)) for k, v in params.items()))
    except TypeError:
        return None


def derive(prim: Primitive, params: dict, in_avals: list, mask: tuple[int, ...]) -> LinRule | None:
    """Stage `prim`'s JVP rule on abstract operands and split it. mask[i] is 0 where operand i
    has no tangent, else the number of its distinct tangent (x * x: both operands carry 1)."""
    from functrans.interpreters.partial_eval import PartialEvalTrace

    known = StagingTrace(eval_trace)
    pe = PartialEvalTrace(known)
    primals = [known.new_arg(a) for a in in_avals]
    # mask[i]: 0 for no tangent, else which distinct tangent operand i carries (1, 2, ...): an
    # operand used twice (x * x) is one tangent, as in the general path
    distinct: dict[int, Any] = {}
    for a, m in zip(in_avals, mask, strict=True):
        if m and m not in distinct:
            distinct[m] = pe.new_arg(a)
    tangents = [distinct[m] if m else Zero(a) for a, m in zip(in_avals, mask, strict=True)]
    token = _current_trace.set(pe)
    try:
        out, t_out = prim.jvp(primals, tangents, **params)
    finally:
        _current_trace.reset(token)
        pe.alive = False
    outs = list(out) if prim.multiple_results else [out]
    t_outs = list(t_out) if prim.multiple_results else [t_out]
    out_zero = [type(t) is Zero for t in t_outs]
    lin_outs = [t for t in t_outs if type(t) is not Zero]
    # Only a tangent staged from the input tangents is linear in them; anything else (a
    # constant tangent, say) takes the general path, which handles or reports it.
    if not lin_outs or any(not (type(t) is StagingTracer and t._trace is pe) for t in lin_outs):
        return None
    lin_jaxpr, lin_consts = pe.to_jaxpr(lin_outs)
    # An output tangent that is an input tangent (x + c) is passed on without an equation, as
    # the general path does, so cotangents add up in its order; mixed cases take that path.
    forwards = [v in lin_jaxpr.invars for v in lin_jaxpr.outvars]
    if any(forwards) and not all(forwards) or len(set(lin_jaxpr.outvars)) < len(lin_outs):
        return None
    known_jaxpr, known_consts = known.to_jaxpr(outs + list(lin_consts))
    known.alive = False
    # A rule keeps its constants alive as long as it is cached. Rules with large ones (the n x n
    # masks of matrix rules) are not worth caching: at those sizes the interpreters' overhead is
    # negligible next to the NumPy work.
    if sum(np.asarray(c).nbytes for c in known_consts) > MAX_CONST_BYTES:
        return None

    rule = LinRule()
    rule.name = prim.name
    rule.n_out = len(outs)
    rule.n_res = len(lin_consts)
    rule.res_avals = tuple(v.aval for v in lin_jaxpr.constvars)
    rule.res_scalar = tuple(not a.shape for a in rule.res_avals)
    rule.out_zero = out_zero
    rule.out_avals = tuple(aval_of(o) for o in outs)
    rule.lin_out_avals = tuple(aval_of(t) for t in lin_outs)
    rule.lin_jaxpr = lin_jaxpr
    rule.known_jaxpr, rule.known_consts = known_jaxpr, known_consts
    rule.known_fn = compile_exact(known_jaxpr, known_consts)
    rule._transposes = {}
    rule._fwd_fn = rule._bind_fn = None
    rule.lin_prim = lin1_p if len(lin_outs) == 1 else lin_p
    rule.params = {"rule": rule}  # shared by its equations (params are never mutated)
    rule.forwards = (
        [lin_jaxpr.invars.index(v) for v in lin_jaxpr.outvars] if all(forwards) else None
    )
    t = rule.transposed((False,) * len(lin_outs), (False,) * len(lin_jaxpr.invars))
    if sum(np.asarray(c).nbytes for c in t.consts) > MAX_CONST_BYTES:
        return None
    # Bound on another trace (nested linearization), a rule's array constants would be one
    # object each time, which a staging trace keeps as one constant where the general path
    # makes a new one per use: such rules (sort's offsets, say) take the general path there.
    rule.bindable = not any(np.ndim(c) for c in [*known_consts, *t.consts])
    # One output: the backward pass runs the transposes from this table, by running-sum pattern
    # (filled on first use; with one tangent, the common case, both entries at hand).
    n_tangents = len(lin_jaxpr.invars)
    rule.direct = [None] * (1 << n_tangents) if len(lin_outs) == 1 and n_tangents <= 4 else None
    if rule.direct is not None and n_tangents == 1:
        rule.direct_entry(0)
        rule.direct_entry(1)
    # one output with a tangent, scalar residuals, no forwarded tangent
    rule.scalar_lin1 = (
        len(lin_outs) == 1
        and all(rule.res_scalar)
        and not prim.multiple_results
        and rule.forwards is None
    )
    return rule


# The cache: signature -> LinRule, or None for "not compilable", or _SEEN_ONCE (a signature is
# compiled on its second sighting, so one-off signatures cost nothing extra).
_SEEN_ONCE = object()
_SCALAR_TYPES = frozenset(np.dtype(c).type for c in "?bhilqBHILQefdgFDG")
_MAX_RULES = 4096
_rules: dict[tuple, Any] = {}
_compile_first_sighting = False


@contextlib.contextmanager
def compiling(mode: str) -> Iterator[None]:
    """For tests: "now" compiles a signature when first seen, "never" keeps the general path."""
    global _compile_first_sighting, _MAX_RULES
    saved = _compile_first_sighting, _MAX_RULES
    _compile_first_sighting, _MAX_RULES = (mode == "now"), (0 if mode == "never" else _MAX_RULES)
    _rules.clear()
    try:
        yield
    finally:
        _compile_first_sighting, _MAX_RULES = saved
        _rules.clear()


def rule_for(key: tuple, build: Callable[[], Any]) -> Any:
    """The compiled rule for the signature `key`, or None (not compilable, or first sighting);
    `build()` derives it (None when it cannot be compiled)."""
    rule = _rules.get(key)
    if rule is None:
        if key in _rules or not _MAX_RULES:
            return None
        if len(_rules) >= _MAX_RULES:
            _rules.clear()
        _rules[key] = rule = _SEEN_ONCE
        if not _compile_first_sighting:
            return None
    if rule is _SEEN_ONCE:
        try:
            rule = build()
        except Exception:  # a rule that cannot be staged abstractly: the general path
            rule = None
        _rules[key] = rule
    return rule


class BatchedRule:
    """A rule's known part batched: linearizing under an eager vmap (grad inside vmap), the
    primal and residual work runs once on the batched values, by one generated call."""

    __slots__ = ("base", "known_fn", "out_dims")


def batch_rule(rule: LinRule, in_avals: list, dims: list, size: int) -> BatchedRule:
    """`rule` with its known program batched."""
    brule = BatchedRule()
    brule.base = rule
    brule.known_fn, brule.out_dims = batched_program(
        rule.known_jaxpr, rule.known_consts, in_avals, dims, size
    )
    return brule


def _derive_batched(prim, params, primals, mask, batch):  # raises _TooLarge: not cached
    example = [
        p.aval if type(p) is BatchTracer and p._trace is batch else aval_of(p) for p in primals
    ]
    rule = derive(prim, params, example, mask)
    if rule is None:
        return None
    dims, avals, size = [], [], None
    for p in primals:
        if type(p) is BatchTracer and p._trace is batch:
            dims.append(p.batch_dim)
            avals.append(aval_of(p.val))
            size = aval_of(p.val).shape[p.batch_dim]
        else:
            dims.append(None)
            avals.append(aval_of(p))
    return batch_rule(rule, avals, dims, size)
