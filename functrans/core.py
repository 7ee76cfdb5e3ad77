"""The core: abstract values, primitives, `bind`, and the interpreter (trace) stack.

Every operation on arrays is a `Primitive` applied with `bind`, which hands it to the *current*
trace. The current trace lives in a ContextVar (thread- and exception-safe); each trace has a
parent and is a fresh object per transformation, and a tracer belongs to exactly one trace. A
trace handles the tracers it owns and treats everything else as a constant from further out, so
nested transformations never confuse their perturbations. The bottom of the stack is `EvalTrace`,
which runs NumPy.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from functrans.errors import (
    ConcretizationError,
    LeakedTracerError,
    MissingRuleError,
    TracerArrayConversionError,
    nonlinear_error,
)

# ---------------------------------------------------------------------------------------------
# Abstract values


class ShapedArray:
    """The abstract value of an array: its shape and dtype, nothing else."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __eq__(self, other):
        return (
            type(other) is ShapedArray and self.shape == other.shape and self.dtype == other.dtype
        )

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def str_short(self) -> str:
        return f"{dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    __str__ = str_short

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"


_DTYPE_SHORT = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "complex128": "c128",
    "complex64": "c64",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "uint32": "u32",
    "uint64": "u64",
    "bool": "bool",
}


def dtype_name(dtype: np.dtype) -> str:
    return _DTYPE_SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)


def _shaped(shape: tuple[int, ...], dtype: np.dtype) -> ShapedArray:
    """A ShapedArray from a shape tuple and a dtype object, skipping conversions (hot path)."""
    aval = object.__new__(ShapedArray)
    aval.shape = shape
    aval.dtype = dtype
    return aval


def aval_of(x: Any) -> ShapedArray:
    """The abstract value of a tracer, a NumPy array or scalar, or a Python scalar."""
    if type(x) is np.ndarray or isinstance(x, np.generic):
        return _shaped(x.shape, x.dtype)
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, np.ndarray):
        return _shaped(x.shape, x.dtype)
    if isinstance(x, (bool, int, float, complex)):
        return ShapedArray((), np.asarray(x).dtype)
    raise TypeError(
        f"functrans: a value of type {type(x).__name__} is not an array; pass NumPy arrays, "
        "Python/NumPy scalars, or pytrees (tuple/list/dict) of them."
    )


def is_float_dtype(dtype: np.dtype) -> bool:
    """True for dtypes that carry derivatives (real and complex floating point)."""
    return np.dtype(dtype).kind in "fc"


# ---------------------------------------------------------------------------------------------
# Symbolic zeros and undefined primals


class Zero:
    """A tangent or cotangent known to be zero: costs no work and no memory."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


def instantiate(t: Any) -> Any:
    """A symbolic zero as a real array of zeros; anything else unchanged."""
    if type(t) is Zero:
        return np.zeros(t.aval.shape, t.aval.dtype)
    return t


def zeros_like_aval(aval: ShapedArray) -> np.ndarray:
    return np.zeros(aval.shape, aval.dtype)


class UndefPrimal:
    """Stands for the linear input of an operation during transposition."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"UndefPrimal({self.aval.str_short()})"


def is_undefined(x: Any) -> bool:
    return type(x) is UndefPrimal


# ---------------------------------------------------------------------------------------------
# Primitives


class Primitive:
    """A named operation and all of its rules, as fields.

    impl(*vals, **params)                   -> NumPy result(s)
    abstract_eval(*avals, **params)         -> ShapedArray (or list, if multiple_results)
    jvp(primals, tangents, **params)        -> (primal_out, tangent_out); tangents may be Zero
    transpose(ct, *args, **params)          -> one cotangent (or None) per arg; linear args are
                                               UndefPrimal, ct is never Zero
    batch(vals, dims, **params)             -> (out, out_dim); dims entries are int or None
    partial_eval(trace, args, **params)     -> outputs (optional; higher-order primitives)
    """

    __slots__ = (
        "name",
        "multiple_results",
        "effectful",
        "impl",
        "abstract_eval",
        "jvp",
        "transpose",
        "batch",
        "partial_eval",
    )

    def __init__(self, name: str, *, multiple_results: bool = False, effectful: bool = False):
        self.name = name
        self.multiple_results = multiple_results
        self.effectful = effectful  # has an effect (printing): never removed, merged or folded
        self.impl = self._missing_rule("evaluation (impl)")
        self.abstract_eval = self._missing_rule("abstract evaluation")
        self.jvp = self._missing_rule("differentiation (jvp)")
        self.transpose = self._missing_transpose()
        self.batch = self._missing_rule("batching (vmap)")
        # Higher-order primitives may split themselves into a part computed now and a staged
        # part: (trace, args, params) -> outputs. None: stage the whole equation when any input
        # is unknown.
        self.partial_eval: Callable | None = None

    def _missing_rule(self, what: str) -> Callable:
        def missing(*args, **params):
            raise MissingRuleError(
                f"primitive '{self.name}' has no rule for {what}; this transformation cannot be "
                f"applied through '{self.name}'. Use a differentiable alternative or wrap the "
                "computation with functrans.stop_gradient."
            )

        missing.missing = True
        return missing

    def _missing_transpose(self) -> Callable:
        # Transposition only meets a primitive applied to a linear value, so a primitive without
        # the rule was applied to one in a non-linear way.
        def missing(*args, **params):
            raise nonlinear_error(self.name)

        missing.missing = True
        return missing

    def has_rule(self, rule: str) -> bool:
        return not getattr(getattr(self, rule), "missing", False)

    def bind(self, *args, **params):
        return _current_trace.get().process_primitive(self, args, params)

    def __repr__(self):
        return self.name


def bind(prim: Primitive, *args, **params):
    """Apply `prim` to `args` under the current trace: the single dispatch point."""
    return _current_trace.get().process_primitive(prim, args, params)


# ---------------------------------------------------------------------------------------------
# Traces and tracers

_trace_ids = itertools.count()


class Trace:
    """One interpreter instance. Subclasses implement `process_primitive`."""

    __slots__ = ("parent", "tag", "alive")
    kind = "Trace"  # the interpreter's name in error messages

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = cls.__name__

    def __init__(self, parent: Trace | None):
        self.parent = parent
        self.tag = next(_trace_ids)
        self.alive = True

    def process_primitive(self, prim: Primitive, args: Sequence[Any], params: dict):
        raise NotImplementedError  # abstract: every concrete trace overrides this

    def forward(self, prim: Primitive, args: Sequence[Any], params: dict):
        """Apply `prim` one level down (the parent trace), as if bound there."""
        parent = self.parent
        if parent is eval_trace:  # callers have checked args for dead tracers
            if output_check is None:
                return prim.impl(*args, **params)
            return run_impl(prim, args, params)
        token = _current_trace.set(parent)
        try:
            return parent.process_primitive(prim, args, params)
        finally:
            _current_trace.reset(token)

    def check_foreign(self, x: Tracer) -> None:
        """A tracer this trace does not own must come from a live trace further out."""
        if not x._trace.alive:
            raise leaked_tracer_error(x)

    def __repr__(self):
        return f"{type(self).__name__}#{self.tag}"


class EvalTrace(Trace):
    """The bottom of every stack: run the primitive's NumPy implementation."""

    __slots__ = ()

    def process_primitive(self, prim, args, params):
        for x in args:
            if isinstance(x, Tracer):
                raise leaked_tracer_error(x)
        return run_impl(prim, args, params)


def run_impl(prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    """Run a primitive's NumPy implementation (the one place concrete values are computed)."""
    out = prim.impl(*args, **params)
    if output_check is not None:
        output_check(prim, args, out)
    return out


# A hook called on every concrete primitive result (functrans.config's debug_nans sets it).
output_check: Callable[[Primitive, Sequence[Any], Any], None] | None = None

# For error reports only: the transformations the current computation runs under, outermost
# first, and the staged equation being evaluated or transposed (set while debugging).
active_transforms: ContextVar[tuple[str, ...]] = ContextVar("functrans_transforms", default=())
debug_eqn: ContextVar[Any] = ContextVar("functrans_debug_eqn", default=None)


class transform_scope:  # noqa: N801 - used like a function: `with transform_scope("vmap"):`
    """Within the block, `active_transforms` ends with `name` (a class: cheaper than a
    generator-based context manager on the eager hot path)."""

    __slots__ = ("name", "token")

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self.token = active_transforms.set(active_transforms.get() + (self.name,))

    def __exit__(self, *exc) -> None:
        active_transforms.reset(self.token)


eval_trace = EvalTrace(None)
_current_trace: ContextVar[Trace] = ContextVar("functrans_current_trace", default=eval_trace)


def current_trace() -> Trace:
    return _current_trace.get()


@contextlib.contextmanager
def set_current_trace(trace: Trace) -> Iterator[None]:
    """Make `trace` current for the duration of the block, whatever happens inside it."""
    token = _current_trace.set(trace)
    try:
        yield
    finally:
        _current_trace.reset(token)


@contextlib.contextmanager
def new_trace(trace_type: type, *args) -> Iterator[Trace]:
    """A fresh trace on top of the current one, killed when the block ends.

    Killing it is what turns later use of its tracers into a LeakedTracerError instead of a
    silently wrong number.
    """
    trace = trace_type(_current_trace.get(), *args)
    try:
        yield trace
    finally:
        trace.alive = False


def leaked_tracer_error(x: Tracer) -> LeakedTracerError:
    return LeakedTracerError(
        f"a traced value {x.aval.str_short()} from {x._trace.kind} was used after the "
        "transformation that created it returned (a leaked tracer). This happens when a traced "
        "value is stored in a global, a closure or an object attribute and used later. Return "
        "it from the transformed function instead."
    )


class Tracer:
    """A value being traced by one trace. Supports the NumPy array protocol of operators.

    The operators and array methods are attached by `functrans.numpy` (which composes them from
    primitives); the core only knows about avals.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError  # abstract: every concrete tracer overrides this

    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        return len(self.aval.shape)

    @property
    def size(self) -> int:
        return self.aval.size

    def __len__(self):
        if not self.aval.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.aval.shape[0]

    def __iter__(self):
        if not self.aval.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.aval.shape[0]))

    def to_concrete(self, what: str):
        """The concrete value behind this tracer, for bool()/int()/float(); traces that do not
        know it raise ConcretizationError."""
        raise ConcretizationError(
            f"{what} of a traced value {self.aval.str_short()} inside {self._trace.kind}"
            f" at {user_location()}"
            ": its value is not known while tracing. Use functrans.numpy.where for "
            "value-dependent choices, functrans.lax.cond / lax.while_loop for value-dependent "
            "branches and loops, or pass the value as a static argument."
        )

    def plain_value(self) -> Any:
        """The value, where the eager path would hold it as a plain array rather than a tracer
        (functrans.eager's recording); None for every other tracer."""
        return None

    def __bool__(self):
        return bool(self.to_concrete("bool()"))

    def item(self, *args):
        return np.asarray(self.to_concrete(".item()")).item(*args)

    def tolist(self):
        return np.asarray(self.to_concrete(".tolist()")).tolist()

    def __float__(self):
        return float(self.to_concrete("float()"))

    def __int__(self):
        return int(self.to_concrete("int()"))

    def __complex__(self):
        return complex(self.to_concrete("complex()"))

    def __index__(self):
        return operator_index(self.to_concrete("use as an index"))

    def __array__(self, dtype=None, copy=None):
        raise TracerArrayConversionError(
            f"a traced value {self.aval.str_short()} inside {self._trace.kind} was "
            "converted to a NumPy array, which would silently drop the transformation. Use "
            "functrans.numpy (import functrans.numpy as fnp) instead of numpy for this operation; "
            "to index a NumPy array with a traced index, use fnp.take(a, i, axis=0)."
        )

    def __hash__(self):
        raise TypeError(f"traced value {self.aval.str_short()} is unhashable, like an ndarray")

    def __repr__(self):
        return f"{type(self).__name__}<{self.aval.str_short()}>"


def user_location() -> str:
    """'file:line' of the innermost stack frame outside functrans (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# frames skipped on the way to the user's line: functrans's, and NumPy's (fnp.linspace calls
# np.linspace, which asks a traced size for its value)
_LIBRARY_DIRS = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(np.__file__)) + os.sep)


def operator_index(x) -> int:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer) or x.ndim:
        raise TypeError(f"only integer scalars can be used as an index, got {x.dtype}{x.shape}")
    return int(x)
