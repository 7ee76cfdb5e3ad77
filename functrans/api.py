"""The user-facing transformations: argument plumbing, pytrees and user errors live here.

Everything below reduces to three flat primitives of the interpreters: `jvp_flat` (forward
mode), `linearize_flat` (forward mode staged into a linear program, whose transpose is reverse
mode) and `vmap_flat` (batching). Names, argument order and Jacobian shapes follow JAX.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import eager, tree_util
from functrans.core import (
    Tracer,
    Zero,
    _current_trace,
    aval_of,
    instantiate,
    is_float_dtype,
    transform_scope,
)
from functrans.errors import (
    ArgnumsError,
    NonDifferentiableInputError,
    NonScalarOutputError,
    ShapeDtypeMismatchError,
    TreeStructureError,
)
from functrans.interpreters.jvp import JVPTrace, JVPTracer
from functrans.interpreters.partial_eval import (
    LinearFunction,
    PartialEvalTrace,
    linearize_flat,
    stage_linear,
    strip_tangents,
)
from functrans.interpreters.staging import trace_to_jaxpr
from functrans.ir import ClosedJaxpr
from functrans.primitives import elementwise

Argnums = int | Sequence[int]

# ---------------------------------------------------------------------------------------------
# Argument plumbing


def _as_array(x: Any) -> Any:
    """Leaves enter transformations as arrays; NumPy arrays and tracers pass through untouched."""
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind in "biufc":
            # a subclass (np.matrix, whose * is a matrix product) enters as its plain array
            return x if type(x) is np.ndarray or not isinstance(x, np.ndarray) else np.asarray(x)
        raise TypeError(
            f"functrans: expected numeric arrays, got a leaf of dtype {x.dtype} "
            f"({type(x).__name__}). Only boolean, integer, floating-point and complex arrays "
            "can enter a transformation; close over other values or mark them static."
        )
    if isinstance(x, Tracer):
        return x
    if isinstance(x, (bool, int, float, complex)):
        a = np.asarray(x)
        if a.dtype.kind == "O":
            raise TypeError(
                f"functrans: the Python int {x} does not fit a 64-bit integer; pass it as a "
                "float (or close over it)."
            )
        return a
    raise TypeError(
        f"functrans: expected arrays (or pytrees of arrays), got a leaf of type "
        f"{type(x).__name__}. Pass numpy arrays or scalars; non-array arguments can be excluded "
        "(argnums in grad, static_argnums in jit, in_axes None in vmap) or closed over."
    )


def _normalize_argnums(argnums: Argnums, nargs: int, transform: str) -> tuple[int, ...]:
    if type(argnums) is int and 0 <= argnums < nargs:  # the common case
        return (argnums,)
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    out = []
    for a in nums:
        if not isinstance(a, (int, np.integer)) or not -nargs <= a < nargs:
            raise ArgnumsError(
                f"{transform}: argnums={argnums!r} is out of range for a function called with "
                f"{nargs} positional argument{'s' if nargs != 1 else ''}; use an index in "
                f"[0, {nargs}) (keyword arguments are never differentiated)."
            )
        out.append(int(a) % nargs)
    if len(set(out)) != len(out):
        raise ArgnumsError(f"{transform}: argnums={argnums!r} names an argument twice.")
    return tuple(out)


def _arg_name(fun: Callable, i: int) -> str:
    try:
        params = list(inspect.signature(fun).parameters.values())
        if i < len(params) and params[i].kind in (
            params[i].POSITIONAL_ONLY,
            params[i].POSITIONAL_OR_KEYWORD,
        ):
            return f"argument '{params[i].name}' (position {i})"
    except (TypeError, ValueError):
        pass
    return f"argument {i}"


def _check_differentiable(fun, transform, argnums, dyn_args, flat) -> None:
    if all(aval_of(x).dtype.kind in "fc" for x in flat):
        return
    for i, arg in zip(argnums, dyn_args):
        for path, leaf in tree_util.tree_flatten_with_path(arg)[0]:
            aval = aval_of(leaf)
            if not is_float_dtype(aval.dtype):
                where = _arg_name(fun, i) + tree_util.keystr(path)
                raise NonDifferentiableInputError(
                    f"{transform}: {where} is {aval.str_short()}; only floating-point (or "
                    "complex) inputs can be differentiated. Convert it with .astype(float), or "
                    "leave it out of argnums (or close over it)."
                )


class _Partial:
    """`fun` as a function of the argnums-selected positional arguments only."""

    def __init__(self, fun, transform, argnums, args, kwargs, check=True):
        self.fun = fun
        self.argnums = _normalize_argnums(argnums, len(args), transform)
        self.args = list(args)
        self.kwargs = kwargs
        # Fast path (the common case): every differentiated argument is a single array.
        self.leaves = all(
            type(args[i]) in _LEAF_TYPES or isinstance(args[i], Tracer) for i in self.argnums
        )
        if self.leaves:
            dyn = self.flat = [_as_array(args[i]) for i in self.argnums]
            self.in_tree = _leaf_tuple_tree(len(dyn))
        else:
            dyn = [tree_util.tree_map(_as_array, args[i]) for i in self.argnums]
            self.flat, self.in_tree = tree_util.tree_flatten(tuple(dyn))
        if check:
            _check_differentiable(fun, transform, self.argnums, dyn, self.flat)

    def inputs(self) -> list[Any]:
        """Every array the call received: the differentiated leaves and the others (what no
        result handed back may share memory with)."""
        others = [a for i, a in enumerate(self.args) if i not in self.argnums]
        return self.flat + tree_util.tree_leaves((others, self.kwargs))

    def call_flat(self, *flat):
        dyn = flat if self.leaves else tree_util.tree_unflatten(self.in_tree, flat)
        args = list(self.args)
        for i, a in zip(self.argnums, dyn):
            args[i] = a
        return self.fun(*args, **self.kwargs)

    def unflatten_inputs(self, flat: Sequence[Any], single: bool):
        dyn = flat if self.leaves else tree_util.tree_unflatten(self.in_tree, flat)
        return dyn[0] if single else tuple(dyn)


_LEAF_TYPES = frozenset((np.ndarray, np.float64, np.float32, float, int, complex, np.complex128))


@functools.lru_cache(maxsize=64)
def _leaf_tuple_tree(n: int):
    """The tree of a tuple of n leaves."""
    return tree_util.tree_flatten(tuple(range(n)))[1]


def _split_aux(out: Any, has_aux: bool, transform: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(
            f"{transform} with has_aux=True needs the function to return a pair (output, aux), "
            f"got {_describe(out)}"
            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        )
    return out[0], out[1]


def _flat_fun(partial: _Partial, has_aux: bool, transform: str, store: dict) -> Callable:
    """Wrap a _Partial as flat-in, (flat-out, aux)-out, remembering the output tree."""

    def flat_fun(*flat):
        out, aux = _split_aux(partial.call_flat(*flat), has_aux, transform)
        out_flat, store["out_tree"] = tree_util.tree_flatten(out)
        return [_as_array(o) for o in out_flat], aux

    return flat_fun


def _owned_outputs(outs: Sequence[Any], lin: LinearFunction) -> list[Any]:
    """Primal outputs the user may update in place: an output that is (or views) a residual of
    the linear map is copied, or updating it would change what the returned f_jvp/vjp_fn
    compute (the residual of exp is its output)."""
    residuals = [c for c in lin.consts if type(c) is np.ndarray and c.ndim]
    if not residuals:
        return list(outs)
    return [
        o.copy()
        if type(o) is np.ndarray and any(np.may_share_memory(o, c) for c in residuals)
        else o
        for o in outs
    ]


def _owned_aux(aux: Any, inputs: Sequence[Any], lin: LinearFunction | None = None) -> Any:
    """Auxiliary outputs owned by the user: array leaves that share memory with an input or a
    residual of `lin` (the returned map's) are copied, as primal outputs are."""
    if aux is None:
        return None
    kept = [a for a in inputs if type(a) is np.ndarray]
    if lin is not None:
        kept += [c for c in lin.consts if type(c) is np.ndarray and c.ndim]

    def own(leaf):
        if type(leaf) is np.ndarray and any(np.may_share_memory(leaf, a) for a in kept):
            return leaf.copy(order="K")  # in its own memory order, as _finish copies
        return leaf

    return tree_util.tree_map(own, aux)


def _unflattener(partial: _Partial) -> Callable:
    """partial.unflatten_inputs(flat, single=False) without keeping `partial` (and the caller's
    arguments it holds) alive in a returned function."""
    leaves, in_tree = partial.leaves, partial.in_tree
    return lambda flat: tuple(flat if leaves else tree_util.tree_unflatten(in_tree, flat))


def _finish(x: Any, inputs: Sequence[Any] = ()) -> Any:
    """A value leaving a transformation, owned by the user: symbolic zeros become arrays, 0-d
    arrays NumPy scalars (as NumPy's own scalar results are), and read-only views or views of
    the user's `inputs` (e.g. the cotangent of an identity) become copies, so updating a
    result in place can never change an input."""
    x = instantiate(x)
    if type(x) is np.ndarray:
        if not x.ndim:
            return x[()]
        if not x.flags.writeable or any(
            type(i) is np.ndarray and np.may_share_memory(x, i) for i in inputs
        ):
            return x.copy(order="K")  # in the view's memory order, as the value it stands for
    return x


def _describe(x: Any) -> str:
    try:
        return f"an array {aval_of(x).str_short()}"
    except TypeError:
        return f"a {type(x).__name__}"


def _check_matching(transform, what, expected_tree, expected_avals, got, *, against) -> list[Any]:
    """Flatten `got` and check it has `expected_tree` and the expected shapes and dtypes."""
    flat, tree = tree_util.tree_flatten(got)
    if tree != expected_tree:
        raise TreeStructureError(
            f"{transform}: {what} has structure {tree} but {against} has structure "
            f"{expected_tree}; pass a {what} with the same structure."
        )
    out = []
    for (path, leaf), aval in zip(
        tree_util.tree_flatten_with_path(got)[0], expected_avals, strict=True
    ):
        leaf = _as_array(leaf)
        got_aval = aval_of(leaf)
        if got_aval.shape != aval.shape or (
            got_aval.dtype != aval.dtype and is_float_dtype(aval.dtype)
        ):
            raise ShapeDtypeMismatchError(
                f"{transform}: {what}{tree_util.keystr(path)} is {got_aval.str_short()} but "
                f"{against}{tree_util.keystr(path)} is {aval.str_short()}; give every leaf of "
                f"the {what} the shape and dtype of the matching leaf of {against}."
            )
        out.append(leaf)
    return out


# ---------------------------------------------------------------------------------------------
# Forward mode


def jvp_flat(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any]):
    """Forward mode on flat lists: (primals_out, tangents_out, aux); zero tangents are Zero."""
    trace = JVPTrace(_current_trace.get())
    token = _current_trace.set(trace)
    try:
        with transform_scope("jvp"):
            outs, aux = fun(*[JVPTracer(trace, p, t) for p, t in zip(primals, tangents)])
            pairs = [trace.lower(o) for o in outs]
            aux = strip_tangents(trace, aux)
    finally:
        _current_trace.reset(token)
        trace.alive = False
    return [p for p, _ in pairs], [t for _, t in pairs], aux


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """Jacobian-vector product: evaluate `fun` and its derivative along `tangents`.

    Args:
      fun: function of arrays (or pytrees of arrays).
      primals: tuple or list of positional arguments at which to differentiate.
      tangents: tuple or list with the same structure, shapes and dtypes as `primals`.
      has_aux: `fun` returns `(output, aux)`; aux is returned undifferentiated.

    Returns:
      `(primals_out, tangents_out)`, or `(primals_out, tangents_out, aux)` with has_aux.

    Raises:
      TreeStructureError, ShapeDtypeMismatchError: tangents do not match primals.

    Example:
      >>> jvp(fnp.sin, (0.0,), (2.0,))
      (0.0, 2.0)
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            "jvp: primals and tangents must be tuples or lists of positional arguments, got "
            f"{type(primals).__name__} and {type(tangents).__name__}; write jvp(f, (x,), (t,))."
        )
    if len(primals) != len(tangents):
        raise TreeStructureError(
            f"jvp: got {len(primals)} primals but {len(tangents)} tangents; pass one tangent per "
            "primal argument."
        )
    partial = _Partial(fun, "jvp", tuple(range(len(primals))), primals, {})
    in_avals = [aval_of(p) for p in partial.flat]
    flat_t = _check_matching(
        "jvp", "tangents", partial.in_tree, in_avals, tuple(tangents), against="primals"
    )
    store: dict = {}
    outs, t_outs, aux = jvp_flat(_flat_fun(partial, has_aux, "jvp", store), partial.flat, flat_t)
    out_tree = store["out_tree"]
    ins = partial.flat + flat_t
    primals_out = tree_util.tree_unflatten(out_tree, [_finish(o, ins) for o in outs])
    tangents_out = tree_util.tree_unflatten(out_tree, [_finish(t, ins) for t in t_outs])
    if has_aux:
        return primals_out, tangents_out, _owned_aux(aux, partial.inputs())
    return primals_out, tangents_out


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """Evaluate `fun` and stage its JVP at `primals` as a linear function of the tangents.

    Returns:
      `(primals_out, f_jvp)` where `f_jvp(*tangents)` gives the output tangents; with has_aux,
      `(primals_out, f_jvp, aux)`. Evaluating `f_jvp` repeats none of the primal work.

    Example:
      >>> y, f_jvp = linearize(fnp.sin, 0.0)
      >>> f_jvp(2.0)
      2.0
    """
    partial = _Partial(fun, "linearize", tuple(range(len(primals))), primals, {})
    store: dict = {}
    outs, lin, aux = linearize_flat(_flat_fun(partial, has_aux, "linearize", store), partial.flat)
    lin.detach(partial.flat)
    out_tree = store["out_tree"]
    in_tree, in_avals = partial.in_tree, lin.in_avals

    def f_jvp(*tangents):
        flat_t = _check_matching(
            "linearize", "tangents", in_tree, in_avals, tangents, against="primals"
        )
        return tree_util.tree_unflatten(out_tree, [_finish(t, flat_t) for t in lin(flat_t)])

    outs = _owned_outputs(outs, lin)
    primals_out = tree_util.tree_unflatten(out_tree, [_finish(o, partial.flat) for o in outs])
    if has_aux:
        return primals_out, f_jvp, _owned_aux(aux, partial.inputs(), lin)
    return primals_out, f_jvp


# ---------------------------------------------------------------------------------------------
# Reverse mode: linearize, then transpose


def _make_pullback(transform, lin: LinearFunction, out_tree, out_avals, unflatten_inputs):
    def pullback(cotangents):
        flat_ct = _check_matching(
            transform, "cotangent", out_tree, out_avals, cotangents, against="the output"
        )
        cts_in = lin.transpose(flat_ct)
        return unflatten_inputs([_finish(ct, flat_ct) for ct in cts_in])

    return pullback


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """Vector-Jacobian product: evaluate `fun` and return a function that pulls back cotangents.

    Reverse mode is derived: `fun`'s JVP is linearized at `primals` and the linear program is
    transposed.

    Returns:
      `(primals_out, vjp_fn)` where `vjp_fn(ct)` returns a tuple with one cotangent per primal;
      with has_aux, `(primals_out, vjp_fn, aux)`.

    Raises:
      NonDifferentiableInputError: an integer or boolean primal.
      TreeStructureError, ShapeDtypeMismatchError: `ct` does not match the output.

    Example:
      >>> y, vjp_fn = vjp(fnp.sin, 0.0)
      >>> vjp_fn(1.0)
      (1.0,)
    """
    partial = _Partial(fun, "vjp", tuple(range(len(primals))), primals, {})
    store: dict = {}
    outs, lin, aux = linearize_flat(
        _flat_fun(partial, has_aux, "vjp", store), partial.flat, compiled=True
    )
    lin.detach(partial.flat)
    out_tree = store["out_tree"]
    pullback = _make_pullback(
        "vjp", lin, out_tree, [aval_of(o) for o in outs], _unflattener(partial)
    )
    outs = _owned_outputs(outs, lin)
    primals_out = tree_util.tree_unflatten(out_tree, [_finish(o, partial.flat) for o in outs])
    if has_aux:
        return primals_out, pullback, _owned_aux(aux, partial.inputs(), lin)
    return primals_out, pullback


def value_and_grad(fun: Callable, argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """Like `grad`, but the returned function gives `(value, gradient)` from one pass.

    Example:
      >>> value_and_grad(lambda x: x ** 2)(3.0)
      (9.0, 6.0)
    """
    return eager.cached(
        _value_and_grad(fun, argnums, has_aux),
        fun,
        "value_and_grad",
        (argnums, has_aux),
        lambda g: value_and_grad(g, argnums, has_aux),
    )


def _value_and_grad(fun: Callable, argnums: Argnums, has_aux: bool) -> Callable:
    single = isinstance(argnums, int)

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        partial = _Partial(fun, "grad", argnums, args, kwargs)
        store: dict = {}
        (out,), lin, aux = _linearize_scalar(partial, has_aux, store)
        ct = aval_of(out).dtype.type(1)  # the seed, a NumPy scalar
        grads = partial.unflatten_inputs([_finish(g) for g in lin.transpose([ct])], single)
        value = _finish(out, partial.flat)
        if has_aux:
            return (value, _owned_aux(aux, partial.inputs())), grads
        return value, grads

    return value_and_grad_fun


def _linearize_scalar(partial: _Partial, has_aux: bool, store: dict):
    def flat_fun(*flat):
        out, aux = _split_aux(partial.call_flat(*flat), has_aux, "grad")
        _check_scalar_output(out, has_aux)
        return [out], aux

    return linearize_flat(flat_fun, partial.flat, compiled=True)


def _check_scalar_output(out: Any, has_aux: bool) -> None:
    if isinstance(out, (tuple, list, dict)) or out is None:
        hint = "" if has_aux else " If it returns (loss, aux), pass has_aux=True."
        raise NonScalarOutputError(
            f"grad: the function must return a real scalar, got a {type(out).__name__}.{hint} "
            "Use jacrev for several outputs."
        )
    aval = aval_of(out)
    if aval.shape != () or aval.dtype.kind != "f":
        raise NonScalarOutputError(
            f"grad: the function must return a real floating-point scalar, got "
            f"{aval.str_short()}. Use jacrev (or jacobian) for a non-scalar output, vjp to pull "
            "back a cotangent of your choice, or reduce the output (e.g. .sum())."
        )


def grad(fun: Callable, argnums: Argnums = 0, has_aux: bool = False) -> Callable:
    """The gradient of a real scalar-valued function, by reverse mode.

    Args:
      fun: function returning a real scalar (or `(scalar, aux)` with has_aux).
      argnums: which positional argument(s) to differentiate: an int, or a tuple for a tuple of
        gradients.
      has_aux: `fun` returns `(output, aux)`; the gradient function then returns `(grad, aux)`.

    Returns:
      A function with `fun`'s signature returning the gradient, shaped like the argument(s).

    Raises:
      NonScalarOutputError: the output is not a real scalar.
      NonDifferentiableInputError: a differentiated argument has an integer or boolean leaf.
      ArgnumsError: argnums out of range.

    Example:
      >>> grad(lambda x: fnp.sin(x) * x)(0.5)   # cos(0.5) * 0.5 + sin(0.5)
      0.9182...
    """
    value_and_grad_fun = _value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        if has_aux:
            (_, aux), g = value_and_grad_fun(*args, **kwargs)
            return g, aux
        return value_and_grad_fun(*args, **kwargs)[1]

    return eager.cached(
        grad_fun, fun, "grad", (argnums, has_aux), lambda g: grad(g, argnums, has_aux)
    )


def linear_transpose(fun: Callable, *primals: Any) -> Callable:
    """The transpose of a linear function, at the shapes and dtypes of `primals`.

    Returns:
      `f_t(ct)` returning a tuple with one cotangent per primal (as `vjp_fn` does).

    Raises:
      NonLinearError (when called): `fun` is not linear in its inputs.

    Example:
      >>> f_t = linear_transpose(lambda x: 2.0 * x, 1.0)
      >>> f_t(1.0)
      (2.0,)
    """
    partial = _Partial(fun, "linear_transpose", tuple(range(len(primals))), primals, {})
    pe = PartialEvalTrace(_current_trace.get())
    in_avals = [aval_of(p) for p in partial.flat]
    token = _current_trace.set(pe)
    try:
        out = partial.call_flat(*[pe.new_arg(a) for a in in_avals])
    finally:
        _current_trace.reset(token)
        pe.alive = False
    out_flat, out_tree = tree_util.tree_flatten(out)
    out_flat = [_as_array(o) for o in out_flat]
    # outputs that do not depend on the inputs are constants: their cotangents go nowhere
    staged = [o if getattr(o, "_trace", None) is pe else Zero(aval_of(o)) for o in out_flat]
    lin = stage_linear(pe, in_avals, staged)
    return _make_pullback(
        "linear_transpose",
        lin,
        out_tree,
        [aval_of(o) for o in out_flat],
        lambda flat: partial.unflatten_inputs(flat, single=False),
    )


# ---------------------------------------------------------------------------------------------
# Staging


def make_jaxpr(
    fun: Callable, static_argnums: Argnums = (), static_argnames: str | Sequence[str] = ()
) -> Callable[..., ClosedJaxpr]:
    """A function that stages `fun` on its arguments' shapes and dtypes and returns the program.
    Positional, then keyword, arguments are its inputs; static ones (by position or name, as in
    `jit`) are fixed values.

    Example:
      >>> print(make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0))
      { lambda ; a:f64[]. let
          b:f64[] = sin a
          c:f64[] = mul b 2.0
        in (c,) }
    """
    from functrans.jit import static_arguments

    nums, names = static_arguments(fun, static_argnums, static_argnames, "make_jaxpr")

    @functools.wraps(fun)
    def make(*args, **kwargs):
        n = len(args)
        fixed = {i % n for i in nums if -n <= i < n}
        static_kw = {k: v for k, v in kwargs.items() if k in names}
        dynamic = tuple(a for i, a in enumerate(args) if i not in fixed)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in names}
        flat, in_tree = tree_util.tree_flatten((dynamic, dyn_kwargs))
        flat = [_as_array(x) for x in flat]
        store: dict = {}

        def flat_fun(*leaves):
            dyn, kw = tree_util.tree_unflatten(in_tree, leaves)
            it = iter(dyn)
            full = [a if i in fixed else next(it) for i, a in enumerate(args)]
            out_flat, store["out_tree"] = tree_util.tree_flatten(fun(*full, **kw, **static_kw))
            return [_as_array(o) for o in out_flat]

        jaxpr, consts = trace_to_jaxpr(flat_fun, [aval_of(x) for x in flat])
        return ClosedJaxpr(jaxpr, consts, in_tree, store["out_tree"])

    return make


# ---------------------------------------------------------------------------------------------
# Non-differentiable marker


def stop_gradient(x: Any) -> Any:
    """The identity on values, with zero derivative in every transformation (pytrees allowed).

    Example:
      >>> grad(lambda x: x * stop_gradient(x))(3.0)
      3.0
    """

    def stop(leaf):
        leaf = _as_array(leaf)
        if is_float_dtype(aval_of(leaf).dtype):
            return elementwise.stop_gradient(leaf)
        return leaf

    return tree_util.tree_map(stop, x)
