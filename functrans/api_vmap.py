"""vmap: the user-facing batching transformation (in_axes/out_axes plumbing and its errors).

`vmap_flat` runs a function once under a `BatchTrace`; every primitive's batch rule vectorises
it, so nothing loops over the batch in Python (unless the user asks for `chunk_size`, which maps
chunk by chunk to bound memory and concatenates the results).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import eager, tree_util
from functrans.api import _as_array, _finish
from functrans.core import Tracer, _current_trace, aval_of, transform_scope
from functrans.errors import BatchingError, TreeStructureError
from functrans.interpreters.batching import BatchTrace, BatchTracer
from functrans.primitives import bdim_to, concatenate, slice_


def vmap_flat(
    fun: Callable[..., Sequence[Any]],
    args: Sequence[Any],
    in_dims: Sequence[int | None],
    axis_size: int,
) -> tuple[list[Any], list[int | None]]:
    """Run `fun` (flat in, flat out) batched: returns outputs and their batch axes."""
    trace = BatchTrace(_current_trace.get(), axis_size)
    token = _current_trace.set(trace)
    try:
        with transform_scope("vmap"):
            outs = fun(
                *[x if d is None else BatchTracer(trace, x, d) for x, d in zip(args, in_dims)]
            )
            pairs = [trace.lower(o) for o in outs]
    finally:
        _current_trace.reset(token)
        trace.alive = False
    return [v for v, _ in pairs], [d for _, d in pairs]


def _axes_error(what: str, axes: Any, tree: Any, err: TreeStructureError) -> TreeStructureError:
    return TreeStructureError(
        f"vmap: {what}={axes!r} does not match the structure of the "
        f"{'arguments' if what == 'in_axes' else 'outputs'}: {err}. {what} must be an int, None, "
        "or a pytree prefix of them (a tuple with one entry per positional argument)."
    )


_LEAVES = frozenset((np.ndarray, np.float64, np.float32, float, int, complex, np.complex128))


_ARRAYS = (np.ndarray, np.generic, Tracer)


def _flat_in_axes(in_axes: Any, args: tuple, leaves: bool) -> list[int | None]:
    """One axis (or None) per leaf of args; `leaves`: every argument is an array."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)  # JAX accepts lists at the top level, like tuples
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
        raise TreeStructureError(
            f"vmap: in_axes is a tuple of length {len(in_axes)} but the function was called "
            f"with {len(args)} positional arguments; give one entry per argument."
        )
    if leaves:  # the common case: one axis per array argument
        if in_axes is None or type(in_axes) is int:
            return [in_axes] * len(args)
        if type(in_axes) is tuple and all(a is None or type(a) is int for a in in_axes):
            return list(in_axes)
    try:
        return tree_util.broadcast_prefix(in_axes, args, what="in_axes")
    except TreeStructureError as err:
        raise _axes_error("in_axes", in_axes, args, err) from None


def _leaf_key(tree: Any, i: int) -> str:
    """The key path of leaf i of `tree`, for error messages (computed only when one is raised)."""
    return tree_util.keystr(tree_util.tree_flatten_with_path(tree)[0][i][0])


def _check_axis(axis: Any, tree: Any, i: int, x, what: str) -> int | None:
    if axis is None:
        return None
    aval = aval_of(x)
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"vmap: {what}{_leaf_key(tree, i)} must be an int or None, got {axis!r}")
    if not -aval.ndim <= axis < aval.ndim:
        raise BatchingError(
            f"vmap: {what}{_leaf_key(tree, i)} is {axis} but the "
            f"{'argument' if what == 'in_axes' else 'output'} has shape {aval.shape} (rank "
            f"{aval.ndim}); use an axis in [{-aval.ndim}, {aval.ndim}) or None for unbatched "
            "values."
        )
    return int(axis) % aval.ndim


def vmap(
    fun: Callable,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_size: int | None = None,
    chunk_size: int | None = None,
) -> Callable:
    """Vectorise `fun` over an axis of its inputs, as if it were mapped over each slice.

    Args:
      fun: function of arrays or pytrees of arrays.
      in_axes: int, None, or a pytree prefix of the positional arguments giving, for each leaf,
        the axis to map over (None: the same value for every batch element). Negative axes count
        from the end. Keyword arguments are mapped over axis 0.
      out_axes: int, None, or a pytree prefix of the output: where the batch axis goes.
      axis_size: the batch size, needed only when no input is mapped.
      chunk_size: process at most this many batch elements at a time (bounded memory, same
        result).

    Returns:
      The batched function.

    Raises:
      BatchingError: inconsistent sizes, axes out of range, out_axes=None for a batched output,
        or a batched value converted to a Python scalar.
      TreeStructureError: in_axes/out_axes do not match the arguments/outputs.

    Example:
      >>> vmap(lambda x, y: x @ y, in_axes=(0, None))(np.ones((5, 3)), np.ones(3)).shape
      (5,)
    """
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be a positive int or None, got {chunk_size!r}")

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if kwargs:
            kw_names = sorted(kwargs)
            n = len(args)
            full_axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * n
            return vmap(
                lambda *a: fun(*a[:n], **dict(zip(kw_names, a[n:]))),
                in_axes=tuple(full_axes) + (0,) * len(kw_names),
                out_axes=out_axes,
                axis_size=axis_size,
                chunk_size=chunk_size,
            )(*args, *[kwargs[k] for k in kw_names])
        leaves = all(type(a) in _LEAVES for a in args)  # the common case: array arguments
        if leaves:
            flat_args, in_tree = list(args), None
        else:
            flat_args, in_tree = tree_util.tree_flatten(args)
        axes = _flat_in_axes(in_axes, args, leaves)
        # unmapped leaves that are not arrays (functions, strings, Python scalars) reach the
        # function as they are, as in JAX (a Python scalar stays weak); the others enter as arrays
        held = [a is None and not isinstance(x, _ARRAYS) for x, a in zip(flat_args, axes)]
        flat_args = [x if h else _as_array(x) for x, h in zip(flat_args, held)]
        dims = [
            _check_axis(a, args, i, x, "in_axes") for i, (a, x) in enumerate(zip(axes, flat_args))
        ]
        size = _batch_size(flat_args, dims, args, axis_size)
        if chunk_size is not None and size > chunk_size:
            # each chunk is a vmap of its own, of the chunk's size (axis_size included)
            def one_chunk(n, *chunk):
                sized = None if axis_size is None else n
                return vmap(fun, in_axes=in_axes, out_axes=out_axes, axis_size=sized)(*chunk)

            return _chunked(one_chunk, args, flat_args, dims, in_tree, size, chunk_size, out_axes)
        if any(held):
            mapped = [x for x, h in zip(flat_args, held) if not h]
            mapped_dims = [d for d, h in zip(dims, held) if not h]
        else:
            mapped, mapped_dims, held = flat_args, dims, None
        store: dict = {}

        def flat_fun(*flat):
            if held is not None:  # the held leaves go back in their places
                it = iter(flat)
                flat = [x if h else next(it) for x, h in zip(flat_args, held)]
            out = fun(*(flat if leaves else tree_util.tree_unflatten(in_tree, flat)))
            if isinstance(out, (np.ndarray, np.generic, Tracer)):  # one array: no tree
                store["out_tree"] = None
                return [out]
            out_flat, store["out_tree"] = tree_util.tree_flatten(out)
            return [_as_array(o) for o in out_flat]

        outs, out_dims = vmap_flat(flat_fun, mapped, mapped_dims, size)
        out_tree = store["out_tree"]
        out_example = (
            0 if out_tree is None else tree_util.tree_unflatten(out_tree, list(range(len(outs))))
        )
        try:
            flat_out_axes = (
                [out_axes] * len(outs)  # the common case: one axis for every output
                if out_axes is None or type(out_axes) is int
                else tree_util.broadcast_prefix(out_axes, out_example, what="out_axes")
            )
        except TreeStructureError as err:
            raise _axes_error("out_axes", out_axes, out_example, err) from None
        inputs = mapped  # what no result may share memory with (every input array)
        results = [
            _place_output(o, d, a, size, out_example, i, inputs)
            for i, (o, d, a) in enumerate(zip(outs, out_dims, flat_out_axes))
        ]
        if out_tree is None:
            return results[0]
        seen: set[int] = set()
        for i, r in enumerate(results):  # one value returned twice: two independent arrays
            if type(r) is np.ndarray:
                if id(r) in seen:
                    results[i] = r.copy(order="K")
                seen.add(id(r))
        return tree_util.tree_unflatten(out_tree, results)

    return eager.cached(
        batched,
        fun,
        "vmap",
        (in_axes, out_axes, axis_size, chunk_size),
        lambda g: vmap(g, in_axes, out_axes, axis_size, chunk_size),
    )


def _batch_size(flat_args, dims, args, axis_size) -> int:
    sizes = {aval_of(x).shape[d] for x, d in zip(flat_args, dims) if d is not None}
    if axis_size is not None:
        sizes.add(int(axis_size))
    if len(sizes) == 1:
        return next(iter(sizes))
    return _batch_size_error(flat_args, dims, args, axis_size)


def _batch_size_error(flat_args, dims, args, axis_size):
    sizes: dict[int, list[str]] = {}
    for i, (x, d) in enumerate(zip(flat_args, dims)):
        if d is not None:
            sizes.setdefault(aval_of(x).shape[d], []).append(
                f"args{_leaf_key(args, i)} (axis {d}, shape {aval_of(x).shape})"
            )
    if axis_size is not None:
        sizes.setdefault(int(axis_size), []).append(f"axis_size={axis_size}")
    if not sizes:
        raise BatchingError(
            "vmap: no argument is mapped (every in_axes entry is None), so the batch size is "
            "unknown; pass axis_size=N, or map at least one argument."
        )
    if len(sizes) > 1:
        detail = "; ".join(f"size {n}: " + ", ".join(where) for n, where in sizes.items())
        raise BatchingError(
            f"vmap: the mapped axes have different sizes ({detail}). Every mapped argument must "
            "have the same size along its mapped axis."
        )
    return next(iter(sizes))


def _place_output(out, dim, axis, size, out_example, i, inputs) -> Any:
    if axis is None:
        if dim is not None:
            raise BatchingError(
                f"vmap: out_axes{_leaf_key(out_example, i)} is None but that output differs "
                "across the batch "
                f"({aval_of(out).str_short()} with batch axis {dim}); use an integer out_axes "
                "for it, or make it independent of the mapped inputs."
            )
        return _finish(out, inputs)
    ndim = aval_of(out).ndim + (dim is None)
    if not -ndim <= axis < ndim:
        raise BatchingError(
            f"vmap: out_axes{_leaf_key(out_example, i)} is {axis} but the batched output has "
            f"rank {ndim}; use an axis "
            f"in [{-ndim}, {ndim})."
        )
    return _finish(bdim_to(out, dim, axis % ndim, size), inputs)


def _chunked(one_chunk, args, flat_args, dims, in_tree, size, chunk_size, out_axes):
    """Map `chunk_size` elements at a time and concatenate (for memory, not speed)."""
    pieces = []
    for start in range(0, size, chunk_size):
        stop = min(start + chunk_size, size)
        chunk_flat = [x if d is None else _take(x, d, start, stop) for x, d in zip(flat_args, dims)]
        chunk = chunk_flat if in_tree is None else tree_util.tree_unflatten(in_tree, chunk_flat)
        pieces.append(one_chunk(stop - start, *chunk))
    out_tree = tree_util.tree_structure(pieces[0])
    example = tree_util.tree_unflatten(out_tree, list(range(out_tree.num_leaves)))
    flat_axes = tree_util.broadcast_prefix(out_axes, example, what="out_axes")
    columns = zip(*[tree_util.tree_leaves(p) for p in pieces])
    results = []
    for axis, column in zip(flat_axes, columns):
        if axis is None:
            results.append(column[0])
        else:
            nd = aval_of(column[0]).ndim
            results.append(_finish(concatenate(list(column), dimension=axis % nd)))
    return tree_util.tree_unflatten(out_tree, results)


def _take(x, d, start, stop):
    shape = aval_of(x).shape
    lo = tuple(start if i == d else 0 for i in range(len(shape)))
    hi = tuple(stop if i == d else n for i, n in enumerate(shape))
    return slice_(x, start_indices=lo, limit_indices=hi)
