"""jit: stage a function once per input signature, simplify it, and run generated NumPy code.

The signature is the pytree structure of the dynamic arguments, each leaf's shape and dtype, and
the values of the static arguments. On a cache miss the function is traced to a Jaxpr, simplified
(functrans.passes) and compiled to straight-line Python (functrans.codegen). Called under another
transformation (grad(jit(f)), vmap(jit(f))), the cached program is replayed through `bind`, so
every transformation applies to it without tracing the Python function again.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import core, tree_util
from functrans.api import _as_array, _finish
from functrans.codegen import Generated, generate
from functrans.core import _current_trace, aval_of, eval_trace
from functrans.interpreters.staging import trace_to_jaxpr
from functrans.ir import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from functrans.passes import simplify


class Lowered:
    """What jit runs for one signature: the staged program, its simplified form and the
    generated source."""

    def __init__(self, traced: ClosedJaxpr, jaxpr: Jaxpr, consts: list, out_tree):
        self.traced = traced
        self.jaxpr = jaxpr
        self.consts = consts
        self.out_tree = out_tree
        self._compiled: Generated | None = None

    @property
    def compiled(self) -> Generated:
        if self._compiled is None:
            self._compiled = generate(self.jaxpr, self.consts)
        return self._compiled

    @property
    def source(self) -> str:
        """The generated NumPy source (and its Python-float variant for scalar programs)."""
        c = self.compiled
        return c.source if c.scalar_source is None else c.source + "\n\n" + c.scalar_source

    @property
    def namespace(self) -> dict[str, Any]:
        """What the source refers to besides its own definitions: `np`, the constants (`c0`,
        ...), literals and helper functions. `exec(lowered.source, lowered.namespace)` defines
        `program` (and `program_scalars`), which run on their own."""
        names = self.compiled.fn.__globals__
        return {  # arrays copied: updating one must not change what jit runs
            k: np.array(v) if type(v) is np.ndarray else v
            for k, v in names.items()
            if k not in ("program", "program_scalars")
        }

    def as_text(self) -> str:
        return str(ClosedJaxpr(self.jaxpr, self.consts))

    def __str__(self):
        return self.as_text()


class Jitted:
    """A function staged once per input signature; call it like the original."""

    def __init__(
        self, fun: Callable, static_argnums: Sequence[int], static_argnames: Sequence[str]
    ):
        self.fun = fun
        self._static_argnums = tuple(static_argnums)
        self._static_argnames = tuple(static_argnames)
        self._cache: dict[Any, Lowered] = {}
        self._fast: dict[Any, Callable] = {}  # positional arrays and scalars: signature -> run
        self._by_type: dict[Any, Callable] = {}  # scalars only: their types are the signature
        self.trace_count = 0
        functools.update_wrapper(self, fun, updated=())  # never copy fun.__dict__ over ours

    def _split(self, args: tuple, kwargs: dict):
        if not kwargs and not self._static_argnums:  # the common case, kept cheap
            leaves, in_tree = tree_util.tree_flatten((args, {}))
            leaves = [_as_jit_leaf(x, self.fun) for x in leaves]
            key = (in_tree, tuple([(x.shape, x.dtype) for x in map(aval_of, leaves)]), (), ())
            return key, leaves, in_tree, (), (), ()
        n = len(args)
        statics = tuple(i % n if n else i for i in self._static_argnums if -n <= i < n)
        static_pos = tuple((i, args[i]) for i in sorted(statics))
        static_kw = tuple(sorted((k, v) for k, v in kwargs.items() if k in self._static_argnames))
        dyn_args = tuple(a for i, a in enumerate(args) if i not in statics)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self._static_argnames}
        leaves, in_tree = tree_util.tree_flatten((dyn_args, dyn_kwargs))
        leaves = [_as_jit_leaf(x, self.fun) for x in leaves]
        for where, v in static_pos + static_kw:
            try:
                hash(v)
            except TypeError:
                what = f"argument {where}" if type(where) is int else f"argument '{where}'"
                raise TypeError(
                    f"jit({_name(self.fun)}): static {what} must be hashable, got a "
                    f"{type(v).__name__}. Pass a tuple instead of a list, or pass arrays as "
                    "dynamic arguments."
                ) from None
        key = (
            in_tree,
            tuple((x.shape, x.dtype) for x in map(aval_of, leaves)),
            tuple((i, _static_key(v)) for i, v in static_pos),
            tuple((k, _static_key(v)) for k, v in static_kw),
        )
        return key, leaves, in_tree, statics, static_pos, static_kw

    def _lower(self, args, kwargs) -> tuple[Lowered, list]:
        key, leaves, in_tree, statics, static_pos, static_kw = self._split(args, kwargs)
        lowered = self._cache.get(key)
        if lowered is None:
            lowered = self._trace(leaves, in_tree, len(args), statics, static_pos, static_kw)
            self._cache[key] = lowered
        return lowered, leaves

    def _trace(self, leaves, in_tree, nargs, statics, static_pos, static_kw) -> Lowered:
        self.trace_count += 1
        store: dict = {}

        def flat_fun(*flat):
            dyn_args, dyn_kwargs = tree_util.tree_unflatten(in_tree, flat)
            it = iter(dyn_args)
            statics_by_pos = dict(static_pos)
            args = [statics_by_pos[i] if i in statics else next(it) for i in range(nargs)]
            out = self.fun(*args, **dyn_kwargs, **dict(static_kw))
            out_flat, store["out_tree"] = tree_util.tree_flatten(out)
            return [_as_array(o) for o in out_flat]

        jaxpr, consts = trace_to_jaxpr(flat_fun, [aval_of(x) for x in leaves])
        # Arrays the function closes over are captured at trace time, as values: mutating them
        # later does not change the staged program (whether or not a pass folded them).
        consts = [np.array(c) if isinstance(c, np.ndarray) else c for c in consts]
        traced = ClosedJaxpr(jaxpr, consts)
        simple, simple_consts = simplify(jaxpr, consts)
        return Lowered(traced, simple, simple_consts, store["out_tree"])

    def __call__(self, *args, **kwargs):
        if not kwargs and _trace() is eval_trace and core.output_check is None:
            # Fast paths: positional arrays and scalars only, no static arguments. The signature
            # is then each argument's type (and shape and dtype for arrays); for scalars alone
            # the types say everything, so their tuple (one argument: its type) is the key.
            run = self._by_type.get(type(args[0]) if len(args) == 1 else tuple(map(type, args)))
            if run is not None:
                return run(*args)
            sig = _fast_signature(args)
            run = self._fast.get(sig) if sig is not None else None
            if run is not None:
                return run(*args)
        else:
            sig = None
        lowered, leaves = self._lower(args, kwargs)
        if _trace() is eval_trace and core.output_check is None:
            run = self._runner(lowered)
            if not kwargs and not self._static_argnums and sig is not None:
                self._fast[sig] = run
                # one type alone is its own key (not int: its dtype depends on its value)
                if all(type(s) is type and s is not int for s in sig):
                    self._by_type[sig[0] if len(sig) == 1 else sig] = run
            return run(*leaves)
        with core.transform_scope("jit"):
            outs = eval_jaxpr(lowered.jaxpr, lowered.consts, *leaves)
        return tree_util.tree_unflatten(lowered.out_tree, outs)

    @staticmethod
    def _runner(lowered: Lowered, scalars: bool = True) -> Callable:
        """run(*args): the program on positional arrays and scalars (the flat leaves). With
        `scalars` False, never the Python-float variant (NumPy's warnings and error state)."""
        program = lowered.compiled
        consts = lowered.consts
        out_tree = lowered.out_tree
        single = tree_util.treedef_is_leaf(out_tree)
        fn, scalar_fn = program.fn, program.scalar_fn
        fresh = program.fresh_outputs
        # an output that is the same value as an earlier one (equal results merged by CSE) is
        # copied, so results stay independent as they are eagerly
        outvars = lowered.jaxpr.outvars
        repeated = [type(a) is Var and a in outvars[:i] for i, a in enumerate(outvars)]

        def run_arrays(*args):
            leaves = [np.asarray(a) if type(a) in _PY_SCALARS else a for a in args]
            outs = fn(*leaves)
            # results are the caller's: never the cached constants, never views of the inputs
            # (an array the program allocated is neither)
            ins = (*leaves, *consts)
            if single:
                return outs[0] if fresh[0] else _finish(outs[0], ins)
            finished = []
            for o, f, r in zip(outs, fresh, repeated, strict=True):
                if r and type(o) is np.ndarray:
                    o = o.copy()
                finished.append(o if f else _finish(o, ins))
            return tree_util.tree_unflatten(out_tree, finished)

        if scalar_fn is None or not scalars:
            return run_arrays
        # the Python-float program takes scalars as given and returns fresh NumPy scalars
        if single:
            return scalar_fn

        def run_scalars(*args):
            outs = scalar_fn(*args)
            return tree_util.tree_unflatten(out_tree, [outs] if len(fresh) == 1 else list(outs))

        return run_scalars

    def __get__(self, obj, objtype=None):
        """As a method (`@jit` on a `def` in a class body) the instance is the first argument,
        as in JAX: mark it static (`static_argnums=0`; it must then be hashable) or make its
        class a pytree node."""
        return self if obj is None else _BoundJitted(self, obj)

    def lower(self, *args, **kwargs) -> Lowered:
        """The staged, simplified program for these arguments' signature, and its source."""
        return self._lower(args, kwargs)[0]

    def clear_cache(self) -> None:
        """Forget every staged program (the next call traces again)."""
        self._cache.clear()
        self._fast.clear()
        self._by_type.clear()

    @property
    def cache_size(self) -> int:
        """How many input signatures have a staged program."""
        return len(self._cache)


class _BoundJitted:
    """A jitted function bound to an instance, like a bound method: calls and `lower` take the
    instance first, its signature drops that parameter, and two bindings of one function to one
    instance are equal (so a bound method passed as a static argument keeps its cache entry)."""

    __slots__ = ("jitted", "obj")

    def __init__(self, jitted: Jitted, obj: Any):
        self.jitted, self.obj = jitted, obj

    def __call__(self, *args, **kwargs):
        return self.jitted(self.obj, *args, **kwargs)

    def lower(self, *args, **kwargs) -> Lowered:
        return self.jitted.lower(self.obj, *args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        sig = inspect.signature(self.jitted.fun)
        params = list(sig.parameters.values())
        if params and params[0].kind in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            params = params[1:]  # the instance's parameter (*args keeps taking it)
        return sig.replace(parameters=params)

    @property
    def __doc__(self):  # noqa: D105 - the function's, as for a bound method
        return self.jitted.__doc__

    def __eq__(self, other):
        return type(other) is _BoundJitted and other.jitted is self.jitted and other.obj is self.obj

    def __hash__(self):
        return hash((id(self.jitted), id(self.obj)))

    def __getattr__(self, name):  # trace_count, cache_size, clear_cache, __name__, ...
        if name in _BoundJitted.__slots__:  # not set yet (copy builds an empty object first)
            raise AttributeError(name)
        return getattr(self.jitted, name)


def _static_key(v: Any) -> Any:
    """A static value in a cache key: equal values of different types (1, 1.0, True), floats
    with different bits (0.0 and -0.0) and tuples of those are different keys, and NaN equals
    itself; tuples (namedtuples too) are keyed element by element, with their type."""
    t = type(v)
    if t is float or t is complex or isinstance(v, np.generic):
        return (t, np.asarray(v).tobytes())
    if t is tuple or (_is_namedtuple(t) and t.__eq__ is tuple.__eq__):
        return (t, tuple(map(_static_key, v)))
    return (t, v)  # anything else by its own equality


def _is_namedtuple(t: type) -> bool:
    return issubclass(t, tuple) and hasattr(t, "_fields")


_PY_SCALARS = (float, int, bool, complex)
_trace = _current_trace.get  # the current interpreter (bound once: __call__ is the hot path)


def _fast_signature(args: tuple) -> tuple | None:
    """Each argument's type, with its shape and dtype for arrays; None for anything else. A
    Python or NumPy number's type fixes its shape and dtype, so it stands alone."""
    sig = []
    for a in args:
        t = type(a)
        if t is int and not _INT64_MIN <= a <= _INT64_MAX:
            return None  # uint64 or no NumPy integer at all: the general path decides
        if t in _PY_SCALARS or t in _NUMPY_SCALARS:
            sig.append(t)
        elif t is np.ndarray or isinstance(a, np.generic):
            sig.append((t, a.shape, a.dtype))
        else:
            return None
    return tuple(sig)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NUMPY_SCALARS = frozenset(np.dtype(c).type for c in "?bhilqBHILQefdgFDG")


def _name(fun) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _as_jit_leaf(x: Any, fun) -> Any:
    try:
        return _as_array(x)
    except TypeError as e:
        reason = str(e).removeprefix("functrans: ").split(". ")[0].rstrip(".")
        raise TypeError(
            f"jit({_name(fun)}): an argument leaf is not a numeric array ({reason}). Mark "
            "non-array arguments static with static_argnums/static_argnames."
        ) from None


def jit(
    fun: Callable,
    static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (),
) -> Jitted:
    """Stage `fun` once per input signature and run the simplified program as generated NumPy.

    Args:
      fun: a pure function of arrays (pytrees allowed).
      static_argnums: positions of arguments treated as compile-time constants (hashable values:
        ints, strings, tuples, callables); a new value triggers a new trace.
      static_argnames: the same, by keyword name.

    Returns:
      A `Jitted` function; `.lower(*args)` exposes the program and its generated source.

    Raises:
      ConcretizationError: Python control flow on a traced value (use fnp.where, or make the
        argument static).

    Example:
      >>> fast_grad = jit(grad(lambda x: fnp.sum(fnp.sin(x) ** 2)))
      >>> fast_grad(np.ones(3))   # traced on the first call, cached afterwards
      array([0.90929743, 0.90929743, 0.90929743])
    """
    nums, names = static_arguments(fun, static_argnums, static_argnames, "jit")
    return Jitted(fun, nums, names)


def static_arguments(fun: Callable, static_argnums, static_argnames, transform: str):
    """(positions, names) of the static arguments, each naming the same arguments both ways
    (as in JAX), negative positions counted in the signature; a spec that names no parameter is
    an error."""
    nums, names = _as_tuple(static_argnums, int), _as_tuple(static_argnames, str)
    if not all(type(i) is int for i in nums) or not all(type(n) is str for n in names):
        raise TypeError(
            f"{transform}({_name(fun)}): static_argnums takes ints and static_argnames strings; "
            f"got static_argnums={static_argnums!r}, static_argnames={static_argnames!r}"
        )
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: statics stay as given
        return tuple(dict.fromkeys(nums)), tuple(dict.fromkeys(names))
    kinds = {p.kind for p in params}
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    n = len(positional)
    # out of range (without *args) or unknown (without **kwargs): a mistake, not a no-op
    bad_nums = [i for i in nums if i < -n or (i >= n and _VAR_POSITIONAL not in kinds)]
    bad_names = [k for k in names if k not in {p.name for p in params}]
    where = f"{_name(fun)}{inspect.signature(fun)}"
    if bad_nums:
        raise ValueError(
            f"{transform}({_name(fun)}): static_argnums {bad_nums} name no parameter of {where}: "
            f"positions run from {-n} to {n - 1} (negative ones count back from the last "
            "positional parameter)"
        )
    if bad_names and _VAR_KEYWORD not in kinds:
        raise ValueError(
            f"{transform}({_name(fun)}): static_argnames {bad_names} name no parameter of {where}"
        )
    nums = tuple(i % n if i < 0 else i for i in nums)  # negative: counted in the signature
    names = names + tuple(positional[i] for i in nums if i < n)
    nums = nums + tuple(positional.index(k) for k in names if k in positional)
    return tuple(dict.fromkeys(nums)), tuple(dict.fromkeys(names))


def _as_tuple(spec: Any, kind: type) -> tuple:
    """static_argnums / static_argnames as a tuple: None is none, one value (a NumPy integer
    too) is a 1-tuple."""
    if spec is None:
        return ()
    if isinstance(spec, (kind, np.integer)):
        return (int(spec) if isinstance(spec, np.integer) else spec,)
    try:
        return tuple(int(i) if isinstance(i, np.integer) else i for i in spec)
    except TypeError:
        return (spec,)  # not iterable: reported as the wrong type


_VAR_POSITIONAL = inspect.Parameter.VAR_POSITIONAL
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


__all__ = ["Jitted", "Lowered", "jit"]
