"""Eager transformations at staged speed: record the user's function, reuse its derivative.

A transformed function called outside any transformation (`grad(f)(x)`, `vmap(grad(f))(x)`,
`hessian(f)(x)`) runs `f` itself on every call, but under a light recording trace: `f`'s
operations are recorded as a program (its Python, its globals, its branches and its side effects
run as usual, once per call). The transformation is a deterministic function of that program, so
when the same program is recorded again for the same argument signature, its transformation is
staged and compiled once, as `jit` would, and reused; the recorded program's constants (arrays
`f` closed over or made) are inputs of the compiled program, read anew on each call.

  - The first two times a program is seen, the transformation runs eagerly on the recorded
    program (the same operations in the same order as on `f` itself, so the same bits).
  - The third time, it is compiled, and the compiled result is checked against the eager one,
    bit for bit (shape, dtype, memory order and bytes of every output); a program whose
    compiled result differs in any way is never compiled again and keeps running eagerly.
  - Programs holding Python functions (custom derivative rules, callbacks) run eagerly always:
    what those functions do is not recorded.

`f` is re-recorded on every call, so nothing is assumed about it: a value-dependent branch, a
changed global or a new closed-over array gives a different program, which is looked up (or
recorded) in its turn. `bool()`, `int()` and indexing with traced values work where the eager
transformation allows them (their values are computed on demand); anything the recording cannot
reproduce exactly (`float()` of a traced value, a batched value's truth, ...) sends the call,
and later calls of that function and signature, down the ordinary eager path, which then gives
the usual result or error. `functrans.config.update("eager_cache", False)` turns this off.
"""

from __future__ import annotations

import functools
import types
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from functrans import core, tree_util
from functrans.core import ShapedArray, Tracer, _current_trace, eval_trace, run_impl
from functrans.errors import ConcretizationError
from functrans.interpreters.staging import StagingTrace, StagingTracer
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var, eval_jaxpr

COMPILE_AT = 3  # the sighting of one program at which its transformation is compiled
MAX_PROGRAMS = 16  # distinct programs kept per function and signature (then: always eager)

_ENABLED = [True]  # functrans.config's "eager_cache"
_bypass: ContextVar[bool] = ContextVar("functrans_eager_bypass", default=False)
_trace = _current_trace.get


class _Chain:
    """A stack of transformations over one user function: `descr` says what they are (a
    hashable description, outermost first) and `rebuild(g)` applies them to another function."""

    __slots__ = ("fun", "descr", "rebuild", "owner", "__weakref__")

    def __init__(self, fun: Callable, descr: tuple, rebuild: Callable[[Callable], Callable]):
        self.fun = fun
        self.descr = descr
        self.rebuild = rebuild
        self.owner: Any = None


def cached(body: Callable, fun: Callable, name: str, params: tuple, rebuild: Callable) -> Callable:
    """`body` (the transformation `name` of `fun` with `params`) with eager calls cached.

    `rebuild(g)` must build the same transformation of another function g.
    """
    try:
        own = (name, _freeze(params))
    except TypeError:  # unhashable settings (a list of axes, ...): no caching
        return body
    inner = getattr(fun, "_ft_chain", None)
    if type(inner) is _Chain and inner.owner is not None and inner.owner() is fun:
        outer_rebuild = rebuild
        inner_rebuild = inner.rebuild
        chain = _Chain(inner.fun, (own, *inner.descr), lambda g: outer_rebuild(inner_rebuild(g)))
    else:
        chain = _Chain(fun, (own,), rebuild)

    @functools.wraps(body)
    def transformed(*args, **kwargs):
        if (
            _trace() is not eval_trace
            or core.output_check is not None
            or not _ENABLED[0]
            or _bypass.get()
        ):
            return body(*args, **kwargs)
        token = _bypass.set(True)
        try:
            return _call(chain, body, args, kwargs)
        finally:
            _bypass.reset(token)

    transformed._ft_chain = chain
    chain.owner = weakref.ref(transformed)
    return transformed


def _freeze(v: Any) -> Any:
    """A hashable key for a transformation's settings, every value with its type."""
    t = type(v)
    if t is float or t is complex or isinstance(v, np.generic):
        return (t, np.asarray(v).tobytes())
    if v is None or t in (bool, int, str):
        return (t, v)
    if t in (tuple, list):
        return (t, tuple(map(_freeze, v)))
    if t is dict:
        return (t, tuple(sorted((k, _freeze(x)) for k, x in v.items())))
    raise TypeError(f"not a plain setting: {t.__name__}")


# ---------------------------------------------------------------------------------------------
# The cache: per user function (weakly), per (transformations, signature)

_ENTRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NUMERIC = frozenset("biufc")
_PY_SCALARS = (bool, int, float, complex)
_INT64 = np.iinfo(np.int64)
_RAISING = frozenset(("raise", "call"))


class _Entry:
    __slots__ = ("ok", "traced", "avals", "concrete", "programs")

    def __init__(self):
        self.ok = True
        self.traced: list[int] = []  # positions (in the flat arguments) f receives traced
        self.avals: list[ShapedArray] = []
        self.concrete: list[bool] = []  # its value is the argument's own (not batched)
        self.programs: dict[Any, Any] = {}  # program key -> sightings, or its compiled form


class _Compiled:
    __slots__ = ("run",)

    def __init__(self, run: Callable):
        self.run = run


_EAGER_ONLY = object()  # a program that is not compiled (Python functions in it, or it differed)


def _signature(leaves: list) -> tuple | None:
    sig = []
    for x in leaves:
        t = type(x)
        if t is np.ndarray:
            if x.dtype.kind not in _NUMERIC:
                return None
            sig.append((x.shape, x.dtype))
        elif t in _PY_SCALARS:
            if t is int and not _INT64.min <= x <= _INT64.max:
                return None
            sig.append(t)
        elif isinstance(x, np.generic) and x.dtype.kind in _NUMERIC:
            sig.append(t)
        else:
            return None
    return tuple(sig)


def _call(chain: _Chain, body: Callable, args: tuple, kwargs: dict) -> Any:
    fun = chain.fun
    weak_key = fun.__func__ if type(fun) is types.MethodType else fun
    try:
        table = _ENTRIES.get(weak_key)
    except TypeError:  # not weakly referenceable (a builtin): nothing to key the cache on
        return body(*args, **kwargs)
    leaves, tree = tree_util.tree_flatten((args, kwargs))
    sig = _signature(leaves)
    if sig is None:
        return body(*args, **kwargs)
    key = (chain.descr, tree, sig)
    if table is None:
        try:
            table = _ENTRIES[weak_key] = {}
        except TypeError:
            return body(*args, **kwargs)
    entry = table.get(key)
    if entry is None:
        entry = _Entry()
        out = _first_call(chain, entry, args, kwargs, leaves, tree)
        table[key] = entry  # only once the call succeeded: an error leaves nothing behind
        return out
    if not entry.ok:
        return body(*args, **kwargs)
    return _later_call(chain, body, entry, args, kwargs, leaves, tree)


def _first_call(chain, entry: _Entry, args, kwargs, leaves, tree) -> Any:
    """Run the transformation eagerly with `f` recorded where it is called, learning which
    arguments `f` receives traced and which as they are."""
    calls = []

    def recorded_fun(*fargs, **fkwargs):
        calls.append(None)
        fleaves, ftree = tree_util.tree_flatten((fargs, fkwargs))
        if len(calls) > 1 or ftree != tree:  # f called twice, or with other arguments
            entry.ok = False
            return chain.fun(*fargs, **fkwargs)
        traced, avals, values, concrete = [], [], [], []
        for i, (x, outer) in enumerate(zip(fleaves, leaves)):
            if isinstance(x, Tracer):
                value = _known_value(x)
                traced.append(i)
                avals.append(x.aval)
                values.append(value)
                concrete.append(value is not None and _same_value(value, outer))
            elif x is not outer:  # made by the transformation: not reproducible from the call
                entry.ok = False
                return chain.fun(*fargs, **fkwargs)
        try:
            jaxpr, consts, out_tree = _record(chain, tree, fleaves, traced, avals, values)
        except Exception:  # the recording cannot stand in for f: f itself, eagerly
            entry.ok = False
            return chain.fun(*fargs, **fkwargs)
        entry.traced, entry.avals, entry.concrete = traced, avals, concrete
        pkey = _program_key(jaxpr, consts, out_tree)
        entry.programs[pkey] = 1 if pkey[0] else _EAGER_ONLY
        return _replay(jaxpr, consts, out_tree, [fleaves[i] for i in traced])

    out = chain.rebuild(_like(chain.fun, recorded_fun))(*args, **kwargs)
    if len(calls) != 1:
        entry.ok = False
    return out


def _later_call(chain, body, entry: _Entry, args, kwargs, leaves, tree) -> Any:
    values = [
        (np.asarray(leaves[i]) if type(leaves[i]) in _PY_SCALARS else leaves[i]) if c else None
        for i, c in zip(entry.traced, entry.concrete)
    ]
    try:
        jaxpr, consts, out_tree = _record(chain, tree, leaves, entry.traced, entry.avals, values)
    except Exception:
        # f as the ordinary eager path runs it: its own error, or (if it succeeds) a function
        # this recording cannot stand in for
        out = body(*args, **kwargs)
        entry.ok = False
        return out
    pkey = _program_key(jaxpr, consts, out_tree)
    seen = entry.programs.get(pkey)
    if type(seen) is _Compiled and _RAISING.isdisjoint(np.geterr().values()):
        # (jit's Python-float programs do not consult np.errstate: where floating-point errors
        # raise, the transformation runs eagerly)
        return seen.run(*consts, *map(_as_input, leaves))
    eager = functools.partial(_eagerly, chain, jaxpr, consts, out_tree, entry.traced, args, kwargs)
    if seen is None:
        if len(entry.programs) >= MAX_PROGRAMS:  # a new program on most calls: stop recording
            entry.ok = False
        else:
            entry.programs[pkey] = 1 if pkey[0] else _EAGER_ONLY
        return eager()
    if seen is _EAGER_ONLY or type(seen) is _Compiled:
        return eager()
    if seen + 1 < COMPILE_AT:
        entry.programs[pkey] = seen + 1
        return eager()
    out = eager()
    entry.programs[pkey] = _compile(chain, jaxpr, consts, out_tree, entry.traced, tree, leaves, out)
    return out


def _eagerly(chain, jaxpr, consts, out_tree, traced, args, kwargs) -> Any:
    def recorded_fun(*fargs, **fkwargs):
        fleaves = tree_util.tree_flatten((fargs, fkwargs))[0]
        return _replay(jaxpr, consts, out_tree, [fleaves[i] for i in traced])

    return chain.rebuild(_like(chain.fun, recorded_fun))(*args, **kwargs)


def _like(fun: Callable, recorded_fun: Callable) -> Callable:
    """`recorded_fun` under `fun`'s name and signature (which error messages quote)."""
    try:
        return functools.update_wrapper(recorded_fun, fun, updated=())
    except (AttributeError, TypeError):
        return recorded_fun


def _replay(jaxpr: Jaxpr, consts: list, out_tree, inputs: list) -> Any:
    return tree_util.tree_unflatten(out_tree, eval_jaxpr(jaxpr, consts, *inputs))


def _as_input(x: Any) -> Any:
    return np.asarray(x) if type(x) in _PY_SCALARS else x


def _compile(chain, jaxpr, consts, out_tree, traced, tree, leaves, expected) -> Any:
    """The transformation of the recorded program, staged and compiled by jit with the
    program's constants as arguments; _EAGER_ONLY unless it reproduces `expected` bit for bit."""
    from functrans.jit import Jitted

    n = len(consts)

    def staged(*flat):
        cs, xs = flat[:n], flat[n:]
        args, kwargs = tree_util.tree_unflatten(tree, list(xs))

        def recorded_fun(*fargs, **fkwargs):
            fleaves = tree_util.tree_flatten((fargs, fkwargs))[0]
            return _replay(jaxpr, cs, out_tree, [fleaves[i] for i in traced])

        return chain.rebuild(_like(chain.fun, recorded_fun))(*args, **kwargs)

    program = Jitted(staged, (), ())
    try:
        got = program(*consts, *map(_as_input, leaves))
    except Exception:
        return _EAGER_ONLY
    if not _identical(got, expected):
        return _EAGER_ONLY
    return _Compiled(program)


def _identical(a: Any, b: Any) -> bool:
    la, ta = tree_util.tree_flatten(a)
    lb, tb = tree_util.tree_flatten(b)
    if ta != tb:
        return False
    for x, y in zip(la, lb):
        if type(x) is not type(y):
            return False
        if isinstance(x, (np.ndarray, np.generic)):
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                return False
            if isinstance(x, np.ndarray) and (
                x.flags.c_contiguous != y.flags.c_contiguous
                or x.flags.f_contiguous != y.flags.f_contiguous
            ):
                return False
        elif not (x == y):
            return False
    return True


def _known_value(x: Any) -> Any:
    """The concrete value behind a tracer of forward-mode transformations (None if batched)."""
    while isinstance(x, Tracer):
        x = getattr(x, "primal", None)
    return x if isinstance(x, (np.ndarray, np.generic)) else None


def _same_value(value: Any, outer: Any) -> bool:
    """Whether the argument `outer` itself is `value` (so later calls can supply it)."""
    if value is outer:
        return True
    if type(outer) in _PY_SCALARS:
        a = np.asarray(outer)
        return a.dtype == value.dtype and a.shape == value.shape and a.tobytes() == value.tobytes()
    return False


# ---------------------------------------------------------------------------------------------
# Recording


class _Unreproducible(Exception):
    """The recording cannot reproduce what the eager transformation would do here."""


class RecordingTracer(StagingTracer):
    __slots__ = ()

    def to_concrete(self, what: str):
        return self._trace.value_of(self.ir_var, what)


class RecordingTrace(StagingTrace):
    """Stages `f`'s operations like make_jaxpr, and computes a value on demand (for bool(),
    int(), indexing) from the arguments' values where they are known."""

    __slots__ = ("values", "depends", "producers", "seen", "kind")

    def __init__(self, parent, kind: str):
        super().__init__(parent)
        self.kind = kind  # what the eager transformation's own trace is called, for messages
        self.values: dict[Var, Any] = {}  # computed on demand; None: not known (batched)
        self.depends: dict[Var, bool] = {}  # whether a computed value depends on an argument
        self.producers: dict[Var, Any] = {}
        self.seen = 0

    def new_recorded(self, aval: ShapedArray, value: Any) -> RecordingTracer:
        v = Var(aval)
        self.invars.append(v)
        self.values[v] = value
        self.depends[v] = True
        return RecordingTracer(self, v)

    def to_atom(self, x: Any) -> Var | Literal:
        if type(x) is RecordingTracer and x._trace is self:
            return x.ir_var
        return StagingTrace.to_atom(self, x)

    def stage(self, prim, args, params):
        inputs = []
        avals = []
        for x in args:
            a = x.ir_var if type(x) is RecordingTracer and x._trace is self else self.to_atom(x)
            inputs.append(a)
            avals.append(a.aval)
        out = prim.abstract_eval(*avals, **params)
        if prim.multiple_results:
            outputs = [Var(a) for a in out]
            tracers = [RecordingTracer(self, v) for v in outputs]
        else:
            outputs = [Var(out)]
            tracers = RecordingTracer(self, outputs[0])
        self.eqns.append(Eqn(prim, inputs, params, outputs))
        return tracers

    def value_of(self, var: Var, what: str) -> Any:
        if not self.alive:
            raise _Unreproducible(what)
        for eqn in self.eqns[self.seen :]:
            for o in eqn.outputs:
                self.producers[o] = eqn
        self.seen = len(self.eqns)
        for v, c in zip(self.constvars, self.consts):
            if v not in self.depends:
                self.values[v] = c
                self.depends[v] = False
        value, depends = self._compute(var)
        if what in ("float()", "complex()") and depends:
            # eagerly, float() of a value being differentiated is an error
            raise _Unreproducible(what)
        return value

    def _compute(self, var: Var) -> tuple[Any, bool]:
        values, depends = self.values, self.depends
        stack = [var]
        while stack:
            v = stack[-1]
            if v in depends:
                stack.pop()
                continue
            eqn = self.producers[v]
            todo = [a for a in eqn.inputs if type(a) is Var and a not in depends]
            if todo:
                stack.extend(todo)
                continue
            ins = [values[a] if type(a) is Var else a.val for a in eqn.inputs]
            if any(x is None for x in ins):
                raise _Unreproducible("the value of a batched argument")
            outs = run_impl(eqn.prim, ins, eqn.params)
            dep = any(depends[a] for a in eqn.inputs if type(a) is Var)
            for o, x in zip(eqn.outputs, outs if eqn.prim.multiple_results else [outs]):
                values[o] = x
                depends[o] = dep
        if values[var] is None:
            raise _Unreproducible("the value of a batched argument")
        return values[var], depends[var]


_KINDS = {"vmap": "BatchTrace"}  # the others differentiate: forward mode, to the user


def _record(chain, tree, leaves, traced, avals, values) -> tuple[Jaxpr, list, Any]:
    fun = chain.fun
    trace = RecordingTrace(eval_trace, _KINDS.get(chain.descr[-1][0], "JVPTrace"))
    flat = list(leaves)
    for i, aval, value in zip(traced, avals, values):
        flat[i] = trace.new_recorded(aval, value)
    fargs, fkwargs = tree_util.tree_unflatten(tree, flat)
    token = _current_trace.set(trace)
    try:
        out = fun(*fargs, **fkwargs)
    finally:
        _current_trace.reset(token)
        trace.alive = False
    outs, out_tree = tree_util.tree_flatten(out)
    jaxpr, consts = trace.to_jaxpr(outs)
    return jaxpr, consts, out_tree


# ---------------------------------------------------------------------------------------------
# Program keys: two recordings with equal keys are the same program


class _Opaque:
    """A param that is not a plain value (a Python function): compared by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return type(other) is _Opaque and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def _program_key(jaxpr: Jaxpr, consts: list, out_tree) -> tuple:
    """(compilable, key): the program's structure with every literal and param by value (floats
    by their bits), its constants by shape and dtype only (they are inputs)."""
    flags = [True]
    body = _jaxpr_key(jaxpr, flags)
    return (flags[0], body, out_tree)


def _jaxpr_key(jaxpr: Jaxpr, flags: list) -> tuple:
    ids: dict[Var, int] = {}
    for v in jaxpr.constvars:
        ids[v] = len(ids)
    for v in jaxpr.invars:
        ids[v] = len(ids)
    n = len(ids)
    eqns = []
    for eqn in jaxpr.eqns:
        ins = []
        for a in eqn.inputs:
            if type(a) is Var:
                ins.append(ids[a])
            elif type(a.val) is float:  # the common literal, by its bits (0.0 is not -0.0)
                ins.append(a.val.hex())
            else:
                ins.append(_literal_key(a))
        params = eqn.params
        pk = tuple([(k, _param_key(v, flags)) for k, v in params.items()]) if params else ()
        eqns.append((eqn.prim, pk, tuple(ins)))
        for o in eqn.outputs:
            ids[o] = n
            n += 1
    outs = tuple(ids[a] if type(a) is Var else _literal_key(a) for a in jaxpr.outvars)
    return (
        tuple([(v.aval.shape, v.aval.dtype) for v in jaxpr.constvars]),
        tuple([(v.aval.shape, v.aval.dtype) for v in jaxpr.invars]),
        tuple(eqns),
        outs,
    )


def _literal_key(a: Literal) -> tuple:
    v = a.val
    return ("lit", type(v), a.aval.dtype.str, np.asarray(v).tobytes())


def _param_key(v: Any, flags: list) -> Any:
    t = type(v)
    if t is float or t is complex or isinstance(v, np.generic):
        return (t, np.asarray(v).tobytes())
    if v is None or t in (bool, int, str):
        return (t, v)
    if t is tuple or t is list:
        return (t, tuple(_param_key(x, flags) for x in v))
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if t is Jaxpr:
        return ("jaxpr", _jaxpr_key(v, flags))
    if t is ClosedJaxpr:
        return ("closed", _jaxpr_key(v.jaxpr, flags), tuple(_param_key(c, flags) for c in v.consts))
    if t is np.ndarray:
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if t is dict:
        return (t, tuple(sorted((k, _param_key(x, flags)) for k, x in v.items())))
    flags[0] = False  # a Python function or another object: what it does is not recorded
    return _Opaque(v)


__all__ = ["ConcretizationError", "cached"]
