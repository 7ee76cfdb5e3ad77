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
recorded) in its turn. Values the eager path holds as plain arrays (operations on constants,
comparisons, integer results of known operands) are computed as `f` runs; `bool()`, `int()` and
indexing with traced values work where the eager transformation allows them (their values are
computed on demand). Anything the recording cannot reproduce exactly (`float()` of a value being
differentiated, a batched value's truth, an effect, a change of NumPy's error state inside `f`,
an array changed in place after use) sends the call, and later calls of that function and
signature, down the ordinary eager path, which then gives the usual result or error.
`functrans.config.update("eager_cache", False)` turns this off. docs/architecture.md (section 8)
and docs/sharp_edges.md describe it for users.
"""

from __future__ import annotations

import functools
import types
import warnings
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import numpy as np

from functrans import core, tree_util
from functrans.core import (
    ShapedArray,
    Trace,
    Tracer,
    _current_trace,
    _shaped,
    _trace_ids,
    bind,
    eval_trace,
    run_impl,
)
from functrans.errors import BatchingError
from functrans.ir import ClosedJaxpr, Eqn, Jaxpr, Literal, Var
from functrans.primitives.elementwise_base import ZERO_DERIVATIVE
from functrans.tree_util import _nodes

try:  # NumPy's error state (np.errstate) lives in a context variable; changes make a new value
    from numpy._core._ufunc_config import _extobj_contextvar

    _extobj_get = _extobj_contextvar.get
except (ImportError, AttributeError):  # pragma: no cover - other NumPy versions

    def _extobj_get() -> Any:
        return tuple(np.geterr().values())


COMPILE_AT = 3  # the sighting of one program at which its transformation is compiled
MAX_PROGRAMS = 16  # programs counted per function and signature (compiled ones are kept)
STREAK_LIMIT = 32  # calls in a row without a compiled program, after which recording stops
MAX_SIGNATURES = 64  # argument signatures recorded per function (then: the ordinary path)
MAX_EQNS = 5000  # a larger program is not recorded again: recording costs what it saves

_ENABLED = [True]  # functrans.config's "eager_cache"
_bypass: ContextVar[bool] = ContextVar("functrans_eager_bypass", default=False)
_trace = _current_trace.get


class _Chain:
    """A stack of transformations over one user function: `descr` says what they are (a
    hashable description, outermost first) and `rebuild(g)` applies them to another function."""

    __slots__ = ("fun", "descr", "rebuild", "owner", "last", "kind", "__weakref__")

    def __init__(self, fun: Callable, descr: tuple, rebuild: Callable[[Callable], Callable]):
        self.fun = fun
        self.descr = descr
        # what the eager transformation's own trace is called, for messages: the innermost
        self.kind = _KINDS.get(descr[-1][0], "JVPTrace")
        self.rebuild = rebuild
        self.owner: Any = None
        self.last: tuple | None = None  # (tree, signature, entry) of the last call


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
    """A hashable key for a transformation's settings, every value with its type (as params are
    keyed); TypeError for a setting that is not a plain value."""
    flag = _Flag()
    key = _param_key(v, flag)
    if flag.opaque:
        raise TypeError(f"not a plain setting: {type(v).__name__}")
    return key


class _Flag:
    """Collects whether a key met a value that is not plain (see _param_key)."""

    __slots__ = ("opaque",)

    def __init__(self):
        self.opaque = False


# ---------------------------------------------------------------------------------------------
# The cache: per user function (weakly), per (transformations, signature)

_ENTRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NUMERIC = frozenset("biufc")
_PY_SCALARS = (bool, int, float, complex)
_INT64 = np.iinfo(np.int64)


class _Entry:
    __slots__ = (
        "ok", "traced", "avals", "concrete", "programs", "streak", "unreproducible", "expect",
        "known",
    )  # fmt: skip

    def __init__(self):
        self.ok = True
        self.unreproducible = False  # the recording could not stand in for the function
        self.streak = 0  # calls since the last one a compiled program ran
        self.traced: list[int] = []  # positions (in the flat arguments) f receives traced
        self.avals: list[ShapedArray] = []
        self.concrete: list[bool] = []  # its value is the argument's own (not batched)
        # per traced position: the leaf whose value it has (None: not known), and whether that
        # leaf is a Python scalar (its value is then the array of it)
        self.known: list[tuple[int, bool] | None] = []
        self.programs: dict[Any, Any] = {}  # program key -> sightings, or its compiled form
        self.expect: _Compiled | None = None  # the compiled program that ran last


class _Compiled:
    """A compiled program, and what its recording was: later calls of the entry record `f`
    against it (the recording trace's checking mode) instead of keying their recording anew.

    `plan` follows the items of the program key (constants and operations, in order): a
    constant's item as it is; an operation's item (prim, params key, inputs) followed by its
    output avals and whether it is computed as it is recorded when its operands' values are at
    hand (a piecewise-constant or integer operation)."""

    __slots__ = ("run", "key", "plan")

    def __init__(self, run: Callable, key: tuple, plan: tuple):
        self.run = run
        self.key = key
        self.plan = plan


_EAGER_ONLY = object()  # a program whose compiled form failed or differed: it runs eagerly


_FLAT_TYPES = frozenset((np.ndarray, float, int, np.float64, np.float32))


@functools.lru_cache(maxsize=32)
def _flat_tree(n: int):
    """The tree of (n positional leaves, no keywords)."""
    return tree_util.tree_flatten((tuple(range(n)), {}))[1]


def _signature(leaves: list) -> tuple | None:
    sig = []
    for x in leaves:
        t = type(x)
        if t is np.ndarray:
            if x.dtype.kind not in _NUMERIC:
                return None
            sig.append((x.shape, x.dtype, x.flags.c_contiguous))
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
    last = chain.last
    if last is not None and last[3] and not kwargs and len(args) == len(last[1]):
        # the common case: positional arrays with the last call's signature (checked in place)
        for a, (shape, dtype, c_contiguous) in zip(args, last[1]):
            if (
                type(a) is not np.ndarray
                or a.shape != shape
                or (a.dtype is not dtype and a.dtype != dtype)
                or a.flags.c_contiguous is not c_contiguous
            ):
                break
        else:
            entry = last[2]
            if not entry.ok:
                return body(*args, **kwargs)
            return _later_call(chain, body, entry, args, kwargs, list(args), last[0])
    sig = None
    if not kwargs:  # the common case: positional arrays
        sig = []
        for a in args:
            if type(a) is not np.ndarray or a.dtype.kind not in _NUMERIC:
                sig = None
                break
            sig.append((a.shape, a.dtype, a.flags.c_contiguous))
    if sig is not None:
        sig = tuple(sig)
        leaves, tree = list(args), _flat_tree(len(args))
    else:
        if not kwargs and all(type(a) in _FLAT_TYPES for a in args):
            leaves, tree = list(args), _flat_tree(len(args))
        else:
            leaves, tree = tree_util.tree_flatten((args, kwargs))
        sig = _signature(leaves)
    if sig is None:
        return body(*args, **kwargs)
    # (whether the signature is of positional arrays only: the fast check above)
    positional = tree is _flat_tree(len(leaves)) and all(type(s) is tuple for s in sig)
    if last is not None and last[1] == sig and (last[0] is tree or last[0] == tree):
        entry = last[2]  # as on the last call
    else:
        if tree is not _flat_tree(len(leaves)) and not _plain_node(tree._node):
            return body(*args, **kwargs)  # a custom pytree node: its aux data is not keyed
        scope = _scope(chain.fun)
        try:
            table = _ENTRIES.get(scope)
            if table is None:
                table = _ENTRIES[scope] = {}
        except TypeError:  # not weakly referenceable (a builtin): nothing to key the cache on
            return body(*args, **kwargs)
        key = (chain.descr, tree, sig)
        entry = table.get(key)
        if entry is None:
            if len(table) >= MAX_SIGNATURES:
                return body(*args, **kwargs)
            entry = _Entry()
            try:
                out = _first_call(chain, entry, args, kwargs, leaves, tree)
            except BaseException:
                if entry.unreproducible:  # the ordinary path from now on, error or not
                    table[key] = entry
                raise
            table[key] = entry  # only once the call succeeded: an error leaves nothing behind
            chain.last = (tree, sig, entry, positional)
            return out
        chain.last = (tree, sig, entry, positional)
    if not entry.ok:
        return body(*args, **kwargs)
    return _later_call(chain, body, entry, args, kwargs, leaves, tree)


def _scope(fun: Callable) -> Any:
    """What the cache is kept under: a function's code, so that a new closure of one `def` or
    `lambda` (`ft.grad(lambda p: loss(p, batch))` in a loop) finds the programs of the last;
    anything else as itself. (Soundness rests on the program key alone.)"""
    f = fun.__func__ if type(fun) is types.MethodType else fun
    for _ in range(100):  # a decorated function: the definition it decorates
        if not hasattr(f, "__wrapped__"):
            break
        f = f.__wrapped__
        if type(f) is types.MethodType:
            f = f.__func__
    code = getattr(f, "__code__", None)
    return code if type(code) is types.CodeType else f


def _plain_node(node: Any) -> bool:
    """Whether a pytree is made of tuples, lists, None, namedtuples and dicts with string keys
    only (its structure, with what it holds, is then a sound and small cache key)."""
    if node is None:
        return True
    kind, aux, children = node
    if kind is _nodes._DICT:
        if not all(type(k) is str for k in aux):
            return False
    elif not any(kind is k for k in _PLAIN_KINDS):
        return False
    return all(_plain_node(c) for c in children)


_PLAIN_KINDS = (_nodes._TUPLE, _nodes._LIST, _nodes._NONE, _nodes._NAMEDTUPLE)


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
            rec = _record(chain, tree, fleaves, traced, avals, values)
        except Exception as err:  # the recording cannot stand in for f: f itself, eagerly
            entry.ok = False
            entry.unreproducible = isinstance(err, (_Unreproducible, _BatchedValue))
            return chain.fun(*fargs, **fkwargs)
        entry.traced, entry.avals, entry.concrete = traced, avals, concrete
        entry.known = [
            (i, type(leaves[i]) in _PY_SCALARS) if c else None for i, c in zip(traced, concrete)
        ]
        if len(rec.trace.records) > MAX_EQNS:  # recording it costs as much as it saves
            entry.ok = False
        elif rec.key[0]:
            entry.programs[rec.key] = 1
        return rec.replay(rec.consts, [fleaves[i] for i in traced])

    out = chain.rebuild(_like(chain.fun, recorded_fun))(*args, **kwargs)
    if len(calls) != 1:
        entry.ok = False
    return out


def _later_call(chain, body, entry: _Entry, args, kwargs, leaves, tree) -> Any:
    values = [
        None if k is None else np.asarray(leaves[k[0]]) if k[1] else leaves[k[0]]
        for k in entry.known
    ]
    try:
        rec = _record(chain, tree, leaves, entry.traced, entry.avals, values, entry.expect)
    except Exception as err:
        # f as the ordinary eager path runs it: its own error (a function that raised), or a
        # function this recording cannot stand in for (then the ordinary path from now on)
        if isinstance(err, (_Unreproducible, _BatchedValue)):
            _stop(entry)
        out = body(*args, **kwargs)
        _stop(entry)
        return out
    seen = rec.compiled
    if seen is None:
        key = rec.key
        seen = entry.programs.get(key)
    if type(seen) is _Compiled:
        entry.streak = 0
        entry.expect = seen
        return seen.run(*rec.consts, *leaves)  # (it takes Python scalars as arrays)
    out = _eagerly(chain, rec, entry.traced, args, kwargs)
    # (counted only once the call succeeded: an error leaves nothing behind)
    entry.streak += 1
    programs = entry.programs
    if entry.streak >= STREAK_LIMIT and not any(
        type(v) is _Compiled for v in list(programs.values())
    ):  # nothing compiled runs here: recording only costs
        _stop(entry)
    elif key[0] and seen is not _EAGER_ONLY:  # (a program never compiled keeps no key: it
        # may hold objects of this call)
        if seen is None:
            if len(programs) >= MAX_PROGRAMS:  # forget the programs still being counted
                for k, v in list(programs.items()):
                    if type(v) is int:
                        programs.pop(k, None)
            if len(programs) < MAX_PROGRAMS:
                programs[key] = 1
        elif seen + 1 < COMPILE_AT:
            programs[key] = seen + 1
        else:
            programs[key] = compiled = _compile(chain, rec, entry.traced, tree, leaves, out)
            if type(compiled) is _Compiled:
                entry.expect = compiled
    return out


def _stop(entry: _Entry) -> None:
    """This function and signature are not recorded any more (the ordinary eager path)."""
    entry.ok = False
    entry.programs.clear()
    entry.expect = None


def _eagerly(chain, rec: _Recording, traced, args, kwargs) -> Any:
    def recorded_fun(*fargs, **fkwargs):
        fleaves = tree_util.tree_flatten((fargs, fkwargs))[0]
        return rec.replay(rec.consts, [fleaves[i] for i in traced])

    return chain.rebuild(_like(chain.fun, recorded_fun))(*args, **kwargs)


def _like(fun: Callable, recorded_fun: Callable) -> Callable:
    """`recorded_fun` under `fun`'s name and signature (which error messages quote)."""
    try:
        return functools.update_wrapper(recorded_fun, fun, updated=())
    except (AttributeError, TypeError):
        return recorded_fun


def _last_uses(jaxpr: Jaxpr) -> list[list[Var]]:
    """Per equation, the variables it is the last to use (outputs are never dropped)."""
    last: dict[Var, int] = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for a in eqn.inputs:
            if type(a) is Var:
                last[a] = i
        for o in eqn.outputs:
            last.setdefault(o, i)  # an unused result goes right away
    for a in jaxpr.outvars:
        if type(a) is Var:
            last.pop(a, None)
    dead: list[list[Var]] = [[] for _ in jaxpr.eqns]
    for v, i in last.items():
        dead[i].append(v)
    return dead


def _as_input(x: Any) -> Any:
    return np.asarray(x) if type(x) in _PY_SCALARS else x


def _compile(chain, rec: _Recording, traced, tree, leaves, expected) -> Any:
    """The transformation of the recorded program, staged and compiled by jit with the
    program's constants as arguments; _EAGER_ONLY unless it reproduces `expected` bit for bit.

    The compiled program runs on NumPy arrays (never jit's Python-float variant), so NumPy's
    warnings and error state apply as eagerly. It holds no reference to the user's function
    (the cache holds that weakly) nor to this call's constants."""
    from functrans.jit import Jitted

    n = len(rec.consts)
    consts = rec.consts
    plan = _plan(rec.trace)
    rec.jaxpr  # noqa: B018 - built now: the recording trace is then no longer needed
    rec.trace = rec.consts = None
    rebuild = chain.rebuild
    fun_ref = _weak(chain.fun)

    def staged(*flat):
        cs, xs = flat[:n], flat[n:]
        args, kwargs = tree_util.tree_unflatten(tree, list(xs))

        def recorded_fun(*fargs, **fkwargs):
            fleaves = tree_util.tree_flatten((fargs, fkwargs))[0]
            return rec.replay(cs, [fleaves[i] for i in traced])

        fun = fun_ref() if fun_ref is not None else None
        return rebuild(recorded_fun if fun is None else _like(fun, recorded_fun))(*args, **kwargs)

    inputs = [*consts, *map(_as_input, leaves)]
    try:
        # the check runs the program a second time in this call: quietly
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lowered = Jitted(staged, (), ()).lower(*inputs)
            run = Jitted._runner(lowered, scalars=False)
            got = run(*inputs)
    except Exception:
        return _EAGER_ONLY
    if not _identical(got, expected):
        return _EAGER_ONLY
    return _Compiled(run, rec.key, plan)


def _plan(trace: RecordingTrace) -> tuple:
    """The recording's key items, each operation's with its output avals and whether it is
    computed as it is recorded when its operands' values are at hand (see _Compiled)."""
    plan = []
    records = iter(trace.records)
    for item in trace.keys:
        if type(item[0]) is str:  # ("const", ...)
            plan.append(item)
            continue
        prim, _, _, _, out, _, _ = next(records)
        zd = prim in ZERO_DERIVATIVE or not prim.multiple_results and out.dtype.kind not in "fc"
        plan.append((*item, out, zd))
    return tuple(plan)


def _weak(fun: Callable) -> Any:
    try:
        return weakref.ref(fun)
    except TypeError:
        return None


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


class RecordingTracer(Tracer):
    """A value of the user's function being recorded: its number in the recording and its
    abstract value."""

    __slots__ = ("idx", "aval")

    def __init__(self, trace: RecordingTrace, idx: int, aval: ShapedArray):
        self._trace = trace
        self.idx = idx
        self.aval = aval

    def to_concrete(self, what: str):
        return self._trace.value_of(self.idx, what)

    def plain_value(self) -> Any:
        return self._trace.plain_value(self.idx)

    def __array__(self, dtype=None, copy=None):
        value = self._trace.plain_value(self.idx)
        if value is None:  # eagerly a tracer too: the same error
            return Tracer.__array__(self, dtype, copy)
        if copy is False:
            return np.asarray(value, dtype)
        return np.array(value, dtype, copy=True)  # never the recording's own


class _BatchedValue(BatchingError):
    """The value of a batched argument was asked for: eagerly an error too (which lax.cond,
    for one, catches to select between its branches, as it can here)."""


_new = object.__new__
_OPAQUE = object()  # a value known only to a custom rule (what it returns eagerly)
# primitives holding Python functions whose values are nonetheless their impl's (a checkpointed
# function's output is the function's output)
_IMPL_VALUED = frozenset(("checkpoint",))


class RecordingTrace(Trace):
    """Records `f`'s operations as cheaply as it can: each value is a number (the arguments
    first, then constants and results in order of appearance), each operation a record, and the
    program's key is written as it goes. The program itself is built only when it is needed
    (`to_jaxpr`). A value is computed on demand (for bool(), int(), indexing) from the
    arguments' values where they are known."""

    __slots__ = (
        "n", "keys", "records", "consts", "const_ids", "avals", "in_avals", "in_values", "opaque",
        "kind", "values", "depends", "producers", "seen", "failed", "guarded", "reborn", "extobj",
        "filters", "n_filters", "first_filter", "checking", "expect", "kpos",
    )  # fmt: skip

    def __init__(self, parent, kind: str):
        self.parent = parent  # (Trace.__init__, inline: one is made per call)
        self.tag = next(_trace_ids)
        self.alive = True
        self.kind = kind  # what the eager transformation's own trace is called, for messages
        self.n = 0  # numbers handed out
        self.keys: list = []  # the program key: one item per constant and per operation
        self.records: list = []  # (prim, params, inputs, literals, out avals, first output)
        self.consts: list = []
        self.const_ids: dict[int, int] = {}  # id(array) -> its number
        self.avals: dict[int, ShapedArray] = {}  # of the constants
        self.opaque = False  # a param is a Python object whose behaviour is not recorded
        # computed on demand (known): values, whether each depends on an argument, and which
        # record produced each (depends and producers are made with values)
        self.values: dict[int, Any] | None = None
        self.seen = 0
        self.failed = False  # set with every _Unreproducible: f may catch the exception
        self.guarded: list[np.ndarray] = []  # arrays made read-only while f runs
        self.reborn: list[np.ndarray] = []  # views of those, made in f (so read-only too)
        # NumPy's error state and the warning filters, which the program runs under later
        self.extobj = _extobj_get()
        self.filters = warnings.filters
        self.n_filters = len(warnings.filters)
        self.first_filter = warnings.filters[0] if warnings.filters else None
        self.checking = False  # (see "Checking against a compiled program")

    def unreproducible(self, what: str) -> _Unreproducible:
        self.failed = True
        return _Unreproducible(what)

    def new_args(self, avals: list[ShapedArray], values: list) -> list[RecordingTracer]:
        """The arguments' tracers (numbered first, before anything is recorded): their avals,
        and their values, None where not known (batched)."""
        self.in_avals = avals
        self.in_values = values
        self.n = len(avals)
        tracers = []
        for i, a in enumerate(avals):
            t = _new(RecordingTracer)
            t._trace, t.idx, t.aval = self, i, a
            tracers.append(t)
        return tracers

    def _atom(self, x: Any, guard: bool = True) -> tuple[Any, Any]:
        """(key, atom) of a value this trace does not own: a constant's number, or a literal."""
        if isinstance(x, Tracer):
            self.failed = True
            self.check_foreign(x)  # a leaked tracer (nothing encloses a top-level recording)
            raise self.unreproducible("a tracer from another transformation")
        if type(x) is not np.ndarray:  # scalars are inline, by value (arrays, 0-d ones too, are
            # the program's inputs, keyed by shape and dtype: a value that changes from call to
            # call is best passed as an array)
            lit = Literal(x)
            return (x.hex() if type(x) is float and x == x else _literal_key(lit)), lit
        i = self.const_ids.get(id(x))
        if i is None:
            i = self.const_ids[id(x)] = self.n
            self.n += 1
            self.avals[i] = _shaped(x.shape, x.dtype)
            self.consts.append(x)  # also keeps x alive, so its id stays unique
            self._guard(x, guard)
            self._const_key(("const", x.shape, x.dtype, x.flags.c_contiguous))
        return i, i

    def _const_key(self, key: tuple) -> None:
        if self.checking:
            k = self.kpos
            plan = self.expect.plan
            if k < len(plan) and plan[k] == key:
                self.kpos = k + 1
                return
            self._diverge()
        self.keys.append(key)

    def _guard(self, x: np.ndarray, guard: bool) -> None:
        """Make x read-only until f returns: the program reads x then, so f must not change it
        after using it (an attempt sends the call down the ordinary path). Only arrays that own
        their memory (a view's flag could not always be restored); a view of one made inside f
        is born read-only and is made writeable again with it."""
        if x.base is None:
            if guard and x.flags.writeable:
                x.flags.writeable = False
                self.guarded.append(x)
        elif self.guarded:
            root = x
            while type(root.base) is np.ndarray:
                root = root.base
            if any(root is g for g in self.guarded):
                self.reborn.append(x)

    def process_primitive(self, prim, args, params):
        if self.checking:  # (see "Checking against a compiled program" below: inline, as the
            # hot path of eager calls)
            filters = warnings.filters
            if (
                _extobj_get() is not self.extobj
                or filters is not self.filters
                or len(filters) != self.n_filters
                or (filters and filters[0] is not self.first_filter)
                or core.output_check is not None
            ):  # (the ordinary recording tells what that means)
                return self._mismatch(prim, args, params)
            lits = None
            if len(args) == 1:
                x = args[0]
                if type(x) is RecordingTracer and x._trace is self:
                    ins = (x.idx,)
                else:  # no recorded operand: nothing is keyed
                    return self._mismatch(prim, args, params)
            else:
                ins = []
                others = None
                for x in args:
                    if type(x) is RecordingTracer and x._trace is self:
                        ins.append(x.idx)
                    else:
                        if others is None:
                            others = []
                        others.append(len(ins))
                        ins.append(None)
                if others is not None:
                    if len(others) == len(args):  # no recorded operand: nothing is keyed
                        return self._mismatch(prim, args, params)
                    for j in others:
                        ins[j], a = self._atom(args[j])  # (a new constant's key item is checked)
                        if type(a) is Literal:
                            if lits is None:
                                lits = []
                            lits.append((j, a))
                    if not self.checking:  # a constant differed
                        return self.process_primitive(prim, args, params)
                ins = tuple(ins)
            k = self.kpos
            try:
                item = self.expect.plan[k]
            except IndexError:
                item = ()
            # (an effectful primitive is never in a compiled program: it differs here)
            if not item or item[0] is not prim or item[2] != ins:
                return self._mismatch(prim, args, params)
            if item[4]:  # computed now if the operands' values are at hand (as recorded, they
                # were not; and before its params are keyed, as in the ordinary recording)
                for x in args:
                    if type(x) is RecordingTracer:
                        v = self.available(x.idx)
                        if v is None or v is _OPAQUE:
                            break
                else:
                    return self._mismatch(prim, args, params)
            if params:
                pk, opaque = self._params_key(prim, params)
                if pk != item[1]:
                    return self._mismatch(prim, args, params)
            elif item[1]:
                return self._mismatch(prim, args, params)
            else:
                opaque = False
            out = item[3]
            self.kpos = k + 1
            first = self.n
            if prim.multiple_results:
                self.n = first + len(out)
                tracers = [RecordingTracer(self, first + i, a) for i, a in enumerate(out)]
            else:
                self.n = first + 1
                tracers = _new(RecordingTracer)
                tracers._trace = self
                tracers.idx = first
                tracers.aval = out
            self.records.append((prim, params, ins, lits, out, first, opaque))
            return tracers
        if prim.effectful:  # (a debug print): it must run where f runs it, in order
            raise self.unreproducible(f"the effect of {prim.name}")
        extobj = _extobj_get()
        filters = warnings.filters
        if (
            (extobj is not self.extobj and extobj != self.extobj)
            or filters is not self.filters
            or len(filters) != self.n_filters
            or (filters and filters[0] is not self.first_filter and _first_filter_changed(self))
            or core.output_check is not None
        ):  # f changed them: the program, which runs after f, would not run under them
            raise self.unreproducible("a change of NumPy's error state or of warning filters")
        ins = []
        avals = []
        others = None  # positions of operands not recorded here
        for x in args:
            if type(x) is RecordingTracer and x._trace is self:
                ins.append(x.idx)
                avals.append(x.aval)
            else:
                if others is None:
                    others = []
                others.append(len(ins))
                ins.append(None)
                avals.append(None)
        lits = None
        if others is not None:
            if len(others) == len(args):  # no recorded operand: plain values, computed now as
                # the eager path does
                for x in args:
                    if isinstance(x, Tracer):
                        self._atom(x)  # a foreign tracer: an error
                return run_impl(prim, args, params)
            for j in others:
                k, a = self._atom(args[j])
                ins[j] = k
                if type(a) is Literal:
                    avals[j] = a.aval
                    if lits is None:
                        lits = []
                    lits.append((j, a))
                else:
                    avals[j] = self.avals[a]
        out = prim.abstract_eval(*avals, **params)
        if prim in ZERO_DERIVATIVE or not prim.multiple_results and out.dtype.kind not in "fc":
            # a piecewise-constant function (a comparison, floor, stop_gradient) or an integer
            # result: eagerly a plain value (its tangent is a symbolic zero). Computed now where
            # the operands' values are at hand (an argument's, or computed already); otherwise
            # recorded, and computed on demand if f asks for it
            values = [self.available(x.idx) if type(x) is RecordingTracer else x for x in args]
            if all(v is not None and v is not _OPAQUE for v in values):
                return run_impl(prim, values, params)
        first = self.n
        if prim.multiple_results:
            self.n = first + len(out)
            tracers = [RecordingTracer(self, first + k, a) for k, a in enumerate(out)]
        else:
            self.n = first + 1
            tracers = _new(RecordingTracer)  # (RecordingTracer(self, first, out), quicker)
            tracers._trace = self
            tracers.idx = first
            tracers.aval = out
        if params:
            pk, opaque = self._params_key(prim, params)
        else:
            pk, opaque = (), False
        self.keys.append((prim, pk, tuple(ins)))
        self.records.append((prim, params, ins, lits, out, first, opaque))
        return tracers

    def _params_key(self, prim, params: dict) -> tuple[tuple, bool]:
        """The params' key, and whether one is opaque (a Python object whose behaviour is not
        recorded: the operation's value is then a custom rule's, not the impl's)."""
        opaque = False
        pk = []
        for k, v in params.items():
            t = type(v)
            if t is int or t is bool or t is str or v is None:
                pk.append((k, t, v))
            else:
                memo = _KEY_MEMO.get(id(v))
                if memo is not None and memo[0] is v:  # (a canonical tuple, met before)
                    pk.append((k, memo[1]))
                    continue
                before, self.opaque = self.opaque, False
                key = _param_key(v, self)
                pk.append((k, key))
                opaque = opaque or self.opaque
                self.opaque = before or self.opaque
                # remembered: a nested tuple of plain values (a tuple of ints is its own key)
                if t is tuple and key is not v and _immutable(v):
                    if len(_KEY_MEMO) >= 4096:
                        _KEY_MEMO.clear()
                    _KEY_MEMO[id(v)] = (v, key)
        return tuple(pk), opaque and prim.name not in _IMPL_VALUED

    # -----------------------------------------------------------------------------------------
    # Checking against a compiled program (`checking`): `expect`, a _Compiled, is the program
    # `f` ran last. While `f`'s operations are its, key item `kpos` after item, each is checked
    # against it instead of keyed, and its outputs' avals are the program's (the same operation
    # on the same avals). At the first difference the recording goes on as an ordinary one,
    # holding the key items checked so far: it then records what it would have recorded had it
    # been ordinary from the start. (A flag, read on every call, not another class: code that
    # holds `trace.process_primitive` across a divergence calls the right one.) The checking
    # itself is process_primitive's first branch.

    def _mismatch(self, prim, args, params):
        """An operation that is not the plan's next: what the ordinary recording does with it.
        If that keys nothing (an operation it computes now, on values at hand), the recording
        checks on; otherwise it has differed from the plan."""
        kpos, n_records = self.kpos, len(self.records)
        self._diverge()
        out = self.process_primitive(prim, args, params)
        if len(self.keys) == kpos and len(self.records) == n_records:
            self.checking = True
        return out

    def _diverge(self) -> None:
        """From here on, an ordinary recording (with the key items checked so far)."""
        self.keys = list(self.expect.key[1][: self.kpos])
        self.checking = False

    def matched(self, out_keys: tuple, out_tree) -> bool:
        """Whether the recording is the expected program (`f` has returned these outputs)."""
        key = self.expect.key
        return self.kpos == len(key[1]) and out_keys == key[2] and out_tree == key[3]

    def finish(self, outs: list) -> tuple:
        """The outputs' numbers or literals, and their atoms."""
        keys, atoms = [], []
        for x in outs:
            if type(x) is RecordingTracer and x._trace is self:
                keys.append(x.idx)
                atoms.append(x.idx)
            else:
                k, a = self._atom(x, guard=False)  # (f has returned: nothing to guard against)
                keys.append(k)
                atoms.append(a)
                if type(x) is np.ndarray:
                    self._guard(x, False)  # a view of a guarded array: writeable again
        return tuple(keys), atoms

    def to_jaxpr(self, out_atoms: list) -> Jaxpr:
        """The recorded program (its constvars are this trace's constants, in order)."""
        vs: dict[int, Var] = {}
        invars = []
        for i, a in enumerate(self.in_avals):
            v = vs[i] = Var(a)
            invars.append(v)
        constvars = []
        for i in self.const_ids.values():
            v = vs[i] = Var(self.avals[i])
            constvars.append(v)
        eqns = []
        for prim, params, ins, lits, out, first, _ in self.records:
            inputs = [vs.get(k) if type(k) is int else None for k in ins]
            if lits is not None:
                for j, lit in lits:
                    inputs[j] = lit
            if prim.multiple_results:
                outputs = [Var(a) for a in out]
            else:
                outputs = [Var(out)]
            for k, v in enumerate(outputs):
                vs[first + k] = v
            eqns.append(Eqn(prim, inputs, params, outputs))
        outvars = [vs[a] if type(a) is int else a for a in out_atoms]
        return Jaxpr(constvars, invars, eqns, outvars)

    def value_of(self, idx: int, what: str) -> Any:
        if not self.alive:
            raise self.unreproducible(what)
        value = self.known(idx)
        if value is _OPAQUE:
            raise self.unreproducible(f"{what} of a custom rule's output")
        if value is None:  # it depends on a batched argument: eagerly an error too
            raise _BatchedValue(f"{what} of a batched value")
        if what in ("float()", "complex()") and self.depends[idx]:
            # eagerly, float() of a value being differentiated is an error
            raise self.unreproducible(what)
        return value

    def plain_value(self, idx: int) -> Any:
        """The value where the eager path holds it as a plain array (it does not depend on a
        differentiated or batched argument), else None."""
        if not self.alive:
            return None
        value = self.known(idx)
        if value is None or value is _OPAQUE or self.depends[idx]:
            return None
        return value

    def available(self, idx: int) -> Any:
        """An argument's value, or one computed already; None otherwise."""
        if idx < len(self.in_values):
            return self.in_values[idx]
        return None if self.values is None else self.values.get(idx)

    def known(self, idx: int) -> Any:
        """The value of a recorded value, computed on demand (quietly: the program computes it
        again, with its warnings) from the arguments' values and the constants; None where it
        depends on a batched argument, _OPAQUE where on a custom rule's output (whose value
        eagerly is what the rule returns)."""
        if self.values is None:  # the arguments' values, on first use
            self.values = dict(enumerate(self.in_values))
            self.depends: dict[int, bool] = dict.fromkeys(range(len(self.in_values)), True)
            self.producers: dict[int, int] = {}
        for i, x in zip(self.const_ids.values(), self.consts):  # the constants' so far
            if i not in self.depends:
                self.values[i] = x
                self.depends[i] = False
        for r in range(self.seen, len(self.records)):
            prim, _, _, _, out, first, _ = self.records[r]
            for k in range(len(out) if prim.multiple_results else 1):
                self.producers[first + k] = r
        self.seen = len(self.records)
        values = self.values
        stack = [idx]
        # quietly, and with NumPy below: an impl that binds (a checkpointed function, a branch)
        # computes its values, it records nothing
        token = _current_trace.set(eval_trace)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._compute(stack)
        finally:
            _current_trace.reset(token)
        return values[idx]

    def _compute(self, stack: list[int]) -> None:
        """Compute the values on `stack` and all they need, in dependency order."""
        values, depends = self.values, self.depends
        while stack:
            i = stack[-1]
            if i in depends:
                stack.pop()
                continue
            prim, params, ins, lits, out, first, opaque = self.records[self.producers[i]]
            todo = [k for k in ins if type(k) is int and k not in depends]
            if todo:
                stack.extend(todo)
                continue
            args = [values.get(k) if type(k) is int else None for k in ins]
            if lits is not None:
                for j, lit in lits:
                    args[j] = lit.val
            dep = any(depends[k] for k in ins if type(k) is int) and prim not in ZERO_DERIVATIVE
            if opaque or any(a is _OPAQUE for a in args):
                outs = _OPAQUE
            elif any(a is None for a in args):
                outs = None
            else:
                outs = run_impl(prim, args, params)
            n = len(out) if prim.multiple_results else 1
            unknown = outs is None or outs is _OPAQUE
            out_avals = out if prim.multiple_results else [out]
            for k in range(n):
                values[first + k] = outs if unknown or not prim.multiple_results else outs[k]
                # an integer or boolean result carries no derivative: eagerly a plain value
                depends[first + k] = dep and out_avals[k].dtype.kind in "fc"


_KINDS = {"vmap": "BatchTrace"}
_LEAF_TREE = tree_util.tree_flatten(0)[1]  # the others differentiate: forward mode, to the user


class _Recording:
    """One call's recording: the program key, the constants, and (built on demand) the
    program."""

    __slots__ = (
        "trace", "key", "consts", "out_tree", "out_atoms", "_jaxpr", "last_uses", "compiled",
    )  # fmt: skip

    def __init__(self, trace: RecordingTrace, outs: list, out_tree):
        out_keys, self.out_atoms = trace.finish(outs)
        self.trace = trace
        self.consts = trace.consts
        self.out_tree = out_tree
        self._jaxpr = None
        self.last_uses = None
        self.compiled = None  # the compiled program it was checked against, if it is that one
        if trace.checking:
            if trace.matched(out_keys, out_tree):
                self.compiled = trace.expect
                self.key = trace.expect.key
                return
            trace._diverge()
        self.key = (not trace.opaque, tuple(trace.keys), out_keys, out_tree)

    @property
    def jaxpr(self) -> Jaxpr:
        if self._jaxpr is None:
            self._jaxpr = self.trace.to_jaxpr(self.out_atoms)
        return self._jaxpr

    def replay(self, consts: list, inputs: list) -> Any:
        """The recorded program on `inputs`, under the current trace; each value is dropped
        after its last use, as `f`'s own locals would be (a value kept to the end would keep
        its array alive through the whole backward pass)."""
        jaxpr = self.jaxpr
        if self.last_uses is None:
            self.last_uses = _last_uses(jaxpr)
        env: dict[Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
        env.update(zip(jaxpr.invars, inputs, strict=True))
        for eqn, dead in zip(jaxpr.eqns, self.last_uses):
            ins = [env[a] if type(a) is Var else a.val for a in eqn.inputs]
            outs = bind(eqn.prim, *ins, **eqn.params)
            if eqn.prim.multiple_results:
                env.update(zip(eqn.outputs, outs, strict=True))
            else:
                env[eqn.outputs[0]] = outs
            del ins, outs
            for v in dead:
                del env[v]
        outs = [env[a] if type(a) is Var else a.val for a in jaxpr.outvars]
        return tree_util.tree_unflatten(self.out_tree, outs)


class _Matched:
    """A checked recording that is its compiled program to the end (what a call needs of it)."""

    __slots__ = ("compiled", "consts")

    def __init__(self, compiled: _Compiled, consts: list):
        self.compiled = compiled
        self.consts = consts


def _first_filter_changed(trace: RecordingTrace) -> bool:
    """Whether the first warning filter is another (filterwarnings moves a filter to the front
    of the same list; setting the first one again puts an equal tuple there, which is no
    change)."""
    if warnings.filters[0] != trace.first_filter:
        return True
    trace.first_filter = warnings.filters[0]  # equal: compare by identity from now on
    return False


def _unguard(arrays: list[np.ndarray]) -> None:
    """Make the arrays writeable again (a view only once its base is: a few passes)."""
    while arrays:
        left = []
        for x in arrays:
            try:
                x.flags.writeable = True
            except ValueError:
                left.append(x)
        if len(left) == len(arrays):
            return
        arrays = left


def _record(chain, tree, leaves, traced, avals, values, expect=None) -> _Recording | _Matched:
    """Record `f` on the leaves (the `traced` ones as tracers), checking it against the
    compiled program `expect` where one is given."""
    fun = chain.fun
    kind = chain.kind
    trace = RecordingTrace(eval_trace, kind)
    if expect is not None:
        trace.expect = expect
        trace.kpos = 0
        trace.checking = True
    tracers = trace.new_args(avals, values)
    if len(tracers) == len(leaves):  # (all of them, in order)
        flat = tracers
    else:
        flat = list(leaves)
        for i, t in zip(traced, tracers):
            flat[i] = t
    if tree is _flat_tree(len(flat)):
        fargs, fkwargs = flat, {}
    else:
        fargs, fkwargs = tree_util.tree_unflatten(tree, flat)
    token = _current_trace.set(trace)
    try:
        try:
            out = fun(*fargs, **fkwargs)
        finally:
            _current_trace.reset(token)
            trace.alive = False
        if trace.failed:  # f caught the exception: it went on with what eagerly is not so
            raise _Unreproducible("an exception of the recording, caught")
        if type(out) is RecordingTracer:  # the common case: one array
            if trace.checking and out._trace is trace:
                key = trace.expect.key
                if trace.kpos == len(key[1]) and key[3] is _LEAF_TREE and key[2] == (out.idx,):
                    return _Matched(trace.expect, trace.consts)
            return _Recording(trace, [out], _LEAF_TREE)
        outs, out_tree = tree_util.tree_flatten(out)
        return _Recording(trace, outs, out_tree)
    finally:
        if trace.guarded or trace.reborn:
            _unguard(trace.guarded + trace.reborn)  # the arrays first, then views made of them


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


# id(param) -> (param, its key): nested tuples of plain values (dot_general's canonical
# dimension numbers, one object per value) keyed once; holding the param keeps its id unique
_KEY_MEMO: dict[int, tuple] = {}
_PLAIN_LEAVES = (int, float, complex, bool, str, type(None))


def _immutable(v: tuple) -> bool:
    """Whether a tuple holds only plain values and such tuples (so its key never changes)."""
    for x in v:
        t = type(x)
        if t is tuple:
            if not _immutable(x):
                return False
        elif t not in _PLAIN_LEAVES:
            return False
    return True


def _literal_key(a: Literal) -> tuple:
    v = a.val
    return ("lit", type(v), a.aval.dtype.str, np.asarray(v).tobytes())


def _param_key(v: Any, trace: RecordingTrace | _Flag) -> Any:
    """A param by value: every value with its type (1, 1.0 and True differ), floats by their
    bits (0.0 and -0.0 differ), programs by their structure; anything else by identity, which
    marks the recording as not compilable."""
    t = type(v)
    if t is tuple:
        for x in v:
            if type(x) is not int:
                return (t, tuple([_param_key(x, trace) for x in v]))
        return v  # the common case: a tuple of ints (axes, a shape) stands for itself
    if t is float or t is complex or isinstance(v, np.generic):
        return (t, np.asarray(v).tobytes())
    if v is None or t in (bool, int, str):
        return (t, v)
    if t is list:
        return (t, tuple([_param_key(x, trace) for x in v]))
    if isinstance(v, np.dtype):
        return ("dtype", v.str)
    if t is Jaxpr:
        return ("jaxpr", _jaxpr_key(v, trace))
    if t is ClosedJaxpr:
        consts = tuple([_param_key(c, trace) for c in v.consts])
        return ("closed", _jaxpr_key(v.jaxpr, trace), consts)
    if t is np.ndarray:
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if t is dict:
        return (t, tuple(sorted((k, _param_key(x, trace)) for k, x in v.items())))
    trace.opaque = True  # a Python function or another object: what it does is not recorded
    return _Opaque(v)


def _jaxpr_key(jaxpr: Jaxpr, trace: RecordingTrace) -> tuple:
    """A program held in a param (a branch of cond, a loop body), by its structure."""
    ids: dict[Var, int] = {}
    for v in jaxpr.constvars:
        ids[v] = len(ids)
    for v in jaxpr.invars:
        ids[v] = len(ids)
    eqns = []
    for eqn in jaxpr.eqns:
        ins = tuple(ids[a] if type(a) is Var else _literal_key(a) for a in eqn.inputs)
        pk = tuple((k, _param_key(v, trace)) for k, v in eqn.params.items())
        eqns.append((eqn.prim, pk, ins))
        for o in eqn.outputs:
            ids[o] = len(ids)
    return (
        tuple((v.aval.shape, v.aval.dtype) for v in jaxpr.constvars),
        tuple((v.aval.shape, v.aval.dtype) for v in jaxpr.invars),
        tuple(eqns),
        tuple(ids[a] if type(a) is Var else _literal_key(a) for a in jaxpr.outvars),
    )


__all__ = ["RecordingTrace", "RecordingTracer", "cached"]
