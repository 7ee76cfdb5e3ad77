"""Eager linearization, derived once per primitive signature and compiled.

Reverse mode at the top level (grad, vjp, jacrev) linearizes: each primitive's JVP rule runs on
concrete primals with staged tangents, so the primal work happens now and the tangent work is
recorded, then transposed. For one *signature* — primitive, params, operand shapes and dtypes,
and which operands carry a tangent — the rule always does the same work. So the first time a
signature is seen twice, this module derives its split once, with the ordinary machinery:

  - the known part: the rule's primal and residual computations, staged into a program;
  - the linear part: the rule's tangent computations, partially evaluated against the
    residuals (a small linear program);
  - its transpose: the linear program run through `backward_pass` while staging.

The known part and the transpose are compiled to NumPy code. From then on, linearizing that
primitive is one generated call plus one `lin` equation in the linear program, and transposing
it is one generated call. Reverse mode is still the transpose of the linearized JVP rule; it is
only worked out once per signature instead of on every call.

Directly under an eager vmap (`vmap(grad(f))`: per-example gradients) the primals are batched
values; a rule's known program is then staged once more under the batching interpreter and
compiled (`BatchedRule`), and a transpose evaluated on batched values (a pullback under vmap, as
in jacrev) runs a batched compiled program (`Transposed.batched`). Inside another transformation
(the inner grads of grad(grad(f)), grad under jit) the primals are tracers: the known program
and the transposes are compiled to `bind`s on the trace below instead (`compile_bind`,
`NestedLinearizeJVPTrace`), the operations the rule would send there, in the same order.

Only primitives whose params are plain values (numbers, strings, dtypes, tuples of them) are
compiled: higher-order primitives (functions or programs as params), effectful ones and those
with their own partial-evaluation rule take the general path, as does everything while
`debug_nans` is on (its reports name the equation being evaluated).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from functrans import core
from functrans.core import (
    Primitive,
    Tracer,
    UndefPrimal,
    Zero,
    _current_trace,
    aval_of,
    eval_trace,
)
from functrans.interpreters.batching import BatchTrace, BatchTracer
from functrans.interpreters.jvp import JVPTrace, JVPTracer
from functrans.interpreters.staging import StagingTrace, StagingTracer
from functrans.ir import Eqn, Jaxpr, Literal, Var, eval_jaxpr
from functrans.primitives.base import batch_size


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
        "single",
        "lin_prim",
        "params",
        "_transposes",
        "_fwd_fn",
        "_bind_fn",
        "direct",
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

    def direct_entry(self, mask: int) -> tuple[Callable, tuple[int, ...]]:
        """For a one-output rule, the compiled transpose adding onto the running cotangents of
        the tangent operands whose bit is set in `mask`, with the indices of the tangent
        operands it returns cotangents for (cached in `direct[mask]`)."""
        k = len(self.lin_jaxpr.invars)
        t = self.transposed((False,), tuple(bool(mask >> i & 1) for i in range(k)))
        entry = self.direct[mask] = (t.fn, tuple(i for i in range(k) if not t.zero[i]))
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
    makes it so), without the interpretation. Dead equations are dropped."""
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
        for i, eqn in enumerate(_live_eqns(jaxpr)):
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


class LinEqn(Eqn):
    """A lin equation as the eager linearization stages it, which also keeps its residual
    values at hand (the same values as its residual operands), so the backward pass need not
    look them up. Passes that rebuild equations make plain ones; both transpose the same."""

    __slots__ = ("res", "tangents", "single", "tangent", "direct")

    def __init__(self, prim, inputs, params, outputs, res, rule):  # Eqn's fields, set inline
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.source = None
        self.res = res
        self.tangents = inputs[rule.n_res :]
        # one tangent in, one out: the backward pass runs one of rule.single directly
        self.single = rule.single
        self.direct = rule.direct
        self.tangent = inputs[-1] if rule.single is not None else None


class ScalarLinEqn(LinEqn):
    """A lin1 equation whose residuals are all scalars (scalar code, the per-primitive overhead
    case): its operands, literals then the tangents' variables, are spelled out when read,
    which the eager backward pass never does."""

    __slots__ = ()

    def __init__(self, rule, outputs, res, tangents):  # LinEqn's fields, set inline
        self.prim = lin1_p
        self.params = rule.params
        self.outputs = outputs
        self.source = None
        self.res = res
        self.tangents = tangents
        self.single = single = rule.single
        self.tangent = tangents[0] if single is not None else None
        self.direct = rule.direct

    @property
    def inputs(self):
        avals = self.params["rule"].res_avals
        return [*(Literal(r, a) for r, a in zip(self.res, avals, strict=True)), *self.tangents]


LIN_EQNS = frozenset((LinEqn, ScalarLinEqn))


def transpose_direct(eqn: LinEqn, ct: Any, ct_env: dict) -> None:
    """Transpose an eager lin equation with one output cotangent `ct` on concrete values (the
    eager backward pass): its compiled transpose for the pattern of running sums at hand."""
    tangents = eqn.tangents
    args = [*eqn.res, ct]
    mask = 0
    bit = 1
    for a in tangents:
        acc = ct_env.get(a)
        if acc is not None:
            args.append(acc)
            mask |= bit
        bit <<= 1
    entry = eqn.direct[mask]
    if entry is None:
        entry = eqn.params["rule"].direct_entry(mask)
    fn, targets = entry
    for i, ct_in in zip(targets, fn(*args), strict=True):
        ct_env[tangents[i]] = ct_in


def transpose_into(eqn, ct_env: dict, known: dict, direct: bool) -> None:
    """Transpose a lin equation inside `backward_pass`: read its output cotangents from
    `ct_env`, and add its contributions onto the running cotangents of its tangent operands."""
    rule = eqn.params["rule"]
    if eqn.prim is lin1_p:
        ct = ct_env.pop(eqn.outputs[0], None)
        if ct is None:
            return
        cts = [ct]
        ct_zero: tuple[bool, ...] = (False,)
    else:
        cts = [ct_env.pop(v, None) for v in eqn.outputs]
        ct_zero = tuple(c is None for c in cts)
        if all(ct_zero):
            return
        cts = [c for c in cts if c is not None]
    if type(eqn) in LIN_EQNS:  # staged by the eager linearization: residuals at hand
        tangent_vars = eqn.tangents
        args = list(eqn.res)
    else:
        ins = eqn.inputs
        tangent_vars = ins[rule.n_res :]
        args = [a.val if type(a) is Literal else known[a] for a in ins[: rule.n_res]]
    accs = [ct_env.get(a) for a in tangent_vars]
    t = rule.transposed(ct_zero, tuple(a is not None for a in accs))
    args += cts
    args += [a for a in accs if a is not None]
    if direct:
        outs = t.fn(*args)
    else:
        outs = None
        current = _current_trace.get()
        if (
            type(current) is BatchTrace
            and current.parent is eval_trace
            and core.output_check is None
        ):
            outs = _batched_transpose(t, args, current)
        if outs is None:
            if core.output_check is None:
                outs = t.bind_fn()(current, *args)
            else:  # debugging: reports name the equation being evaluated
                outs = eval_jaxpr(t.jaxpr, t.consts, *args)
    it = iter(outs)
    for a, zero in zip(tangent_vars, t.zero, strict=True):
        if not zero:
            ct_env[a] = next(it)


# ---------------------------------------------------------------------------------------------
# The lin primitives: lin1 has one tangent output (the common case), lin any number.
# lin(*residuals, *tangents, rule) -> the non-zero output tangents of rule's primitive.

lin_p = Primitive("lin", multiple_results=True)
lin1_p = Primitive("lin1")


def _lin_impl(*ops, rule):
    return list(rule.forward_fn()(*ops))


def _lin1_impl(*ops, rule):
    return rule.forward_fn()(*ops)[0]


def _lin_transpose(cts, *ops, rule):
    # backward_pass transposes lin equations itself (transpose_into); this rule serves other
    # callers of transpose rules
    n_res = rule.n_res
    if type(cts) is list:
        ct_zero = tuple(type(c) is Zero for c in cts)
        cts = [c for c in cts if type(c) is not Zero]
    else:
        ct_zero = (False,)
        cts = [cts]
    t = rule.transposed(ct_zero, (False,) * (len(ops) - n_res))
    if _current_trace.get() is eval_trace and core.output_check is None:
        cts_in = t.fn(*ops[:n_res], *cts)
    else:  # under a transformation: bind
        cts_in = eval_jaxpr(t.jaxpr, t.consts, *ops[:n_res], *cts)
    out: list[Any] = [None] * n_res
    it = iter(cts_in)
    for zero, x in zip(t.zero, ops[n_res:], strict=True):
        ct = None if zero else next(it)
        out.append(ct if type(x) is UndefPrimal else None)  # linear: a known tangent gets none
    return out


def _lin_jvp(primals, tangents, *, rule):
    from functrans.api import jvp_flat

    outs, t_outs, _ = jvp_flat(lambda *ops: (rule.evaluate(list(ops)), None), primals, tangents)
    return outs, t_outs


def _lin1_jvp(primals, tangents, *, rule):
    (out,), (t_out,) = _lin_jvp(primals, tangents, rule=rule)
    return out, t_out


def _lin_batch(vals, dims, *, rule):
    from functrans.api_vmap import vmap_flat

    return vmap_flat(lambda *ops: rule.evaluate(list(ops)), vals, dims, batch_size(vals, dims))


def _lin1_batch(vals, dims, *, rule):
    (out,), (dim,) = _lin_batch(vals, dims, rule=rule)
    return out, dim


lin_p.impl = _lin_impl
lin_p.abstract_eval = lambda *avals, rule: list(rule.lin_out_avals)
lin_p.transpose = _lin_transpose
lin_p.jvp = _lin_jvp
lin_p.batch = _lin_batch
lin1_p.impl = _lin1_impl
lin1_p.abstract_eval = lambda *avals, rule: rule.lin_out_avals[0]
lin1_p.transpose = _lin_transpose
lin1_p.jvp = _lin1_jvp
lin1_p.batch = _lin1_batch


# ---------------------------------------------------------------------------------------------
# Deriving a rule


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
    if sum(np.asarray(c).nbytes for c in known_consts) > _MAX_CONST_BYTES:
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
    if sum(np.asarray(c).nbytes for c in t.consts) > _MAX_CONST_BYTES:
        return None
    # one tangent in, one out: the two transposes (without, with a running sum) at hand
    rule.single = None
    if len(lin_outs) == 1 and len(lin_jaxpr.invars) == 1:
        rule.single = (t, rule.transposed((False,), (True,)))
    # one output with a tangent, scalar residuals, no forwarded tangent
    # one output: the eager backward pass runs the transposes from this table (by running-sum
    # pattern, filled on first use)
    n_tangents = len(lin_jaxpr.invars)
    rule.direct = [None] * (1 << n_tangents) if len(lin_outs) == 1 and n_tangents <= 4 else None
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
_MAX_CONST_BYTES = 64 * 1024
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
    if sum(np.asarray(c).nbytes for c in out_consts) > _MAX_CONST_BYTES:
        raise _TooLarge
    return compile_exact(out_jaxpr, out_consts), [d for _, d in pairs]


class _TooLarge(Exception):
    """A compiled program would keep too many bytes of constants alive."""


def batch_rule(rule: LinRule, in_avals: list, dims: list, size: int) -> BatchedRule:
    """`rule` with its known program batched."""
    brule = BatchedRule()
    brule.base = rule
    brule.known_fn, brule.out_dims = batched_program(
        rule.known_jaxpr, rule.known_consts, in_avals, dims, size
    )
    return brule


def _batched_transpose(t: Transposed, args: list, batch) -> list | None:
    """Run a compiled transpose on the values of an eager vmap (jacrev's basis, grad inside
    vmap) with its batched program, compiled once per pattern of batch axes and shapes. None:
    the caller binds the program instead (nothing batched, operands of another type than the
    rule was derived for, or a program that cannot be compiled)."""
    vals, dims = [], []
    batched = False
    for a in args:
        if type(a) is BatchTracer and a._trace is batch:
            vals.append(a.val)
            dims.append(a.batch_dim)
            batched = True
        elif isinstance(a, Tracer):
            return None
        else:
            vals.append(a)
            dims.append(None)
    if not batched:
        return None
    key = tuple((d, np.shape(v), aval_of(v).dtype) for v, d in zip(vals, dims))
    entry = t.batched.get(key, _SEEN_ONCE)
    if entry is _SEEN_ONCE:
        if len(t.batched) >= 64:
            t.batched.clear()
        entry = t.batched[key] = _batched_transpose_program(t, vals, dims)
    if entry is None:
        return None
    fn, out_dims = entry
    return [o if d is None else BatchTracer(batch, o, d) for o, d in zip(fn(*vals), out_dims)]


def _batched_transpose_program(t: Transposed, vals: list, dims: list):
    # The operands must be what the transpose was derived for, example by example: a custom
    # rule's cotangent may come in another dtype, which the general path lets through.
    for v, d, var in zip(vals, dims, t.jaxpr.invars, strict=True):
        shape = np.shape(v)
        example = shape if d is None else shape[:d] + shape[d + 1 :]
        if example != var.aval.shape or aval_of(v).dtype != var.aval.dtype:
            return None
    size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    try:
        return batched_program(t.jaxpr, t.consts, [aval_of(v) for v in vals], dims, size)
    except Exception:  # cannot be staged batched (or too large to keep): bind instead
        return None


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


# ---------------------------------------------------------------------------------------------
# The trace


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
                if type(t) is Zero:
                    key.append(0)
                elif type(t) is StagingTracer and t._trace is pe:
                    for i, u in enumerate(lin_tangents):  # the same tangent twice: x * x
                        if u is t:
                            key.append(i + 1)
                            break
                    else:
                        lin_tangents.append(t)
                        key.append(len(lin_tangents))
                else:  # a known tangent: the general path
                    return JVPTrace.process_primitive(self, prim, args, params)
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
                key.append((p.batch_dim, np.shape(v), aval_of(v).dtype))
                batched = True
            else:
                a = aval_of(p)
                key.append((a.shape, a.dtype))
        if not lin_tangents:
            return self.forward(prim, primals, params)
        if params:
            pk = params_key(prim, params)
            if pk is None:
                return JVPTrace.process_primitive(self, prim, args, params)
            key.append(pk)
        key = tuple(key)
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
                tangents = [t.ir_var for t in lin_tangents]
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
                t = x.tangent
                if type(t) is Zero:
                    key.append(0)
                elif type(t) is StagingTracer and t._trace is pe:
                    for i, u in enumerate(lin_tangents):  # the same tangent twice: x * x
                        if u is t:
                            key.append(i + 1)
                            break
                    else:
                        lin_tangents.append(t)
                        key.append(len(lin_tangents))
                else:  # a known tangent: the general path
                    return JVPTrace.process_primitive(self, prim, args, params)
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
        if params:
            pk = params_key(prim, params)
            if pk is None:
                return JVPTrace.process_primitive(self, prim, args, params)
            key.append(pk)
        key = tuple(key)
        rule = _rules.get(key)
        if type(rule) is not LinRule:
            mask = tuple(key[1 : 1 + 2 * len(primals) : 2])
            rule = rule_for(key, lambda: derive(prim, params, avals, mask))
            if rule is None:
                return JVPTrace.process_primitive(self, prim, args, params)
        below = pe.parent  # where the general path's known operations end up
        token = _current_trace.set(below)
        try:
            outs = rule.known_bind_fn()(below, *primals)
        finally:
            _current_trace.reset(token)
        return self.stage_lin(prim, rule, outs, lin_tangents, True)
