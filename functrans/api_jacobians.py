"""Jacobians and Hessians: one vectorised JVP or VJP over a standard basis.

jacfwd pushes the input basis forward (cost grows with the input size D), jacrev pulls the output
basis back (cost grows with the output size M); both are a single vmap, never a Python loop over
basis vectors. `jacobian` linearizes once and applies the linear map in whichever direction is
cheaper (forward when D <= M). Blocks have shape `out.shape + in.shape`, nested as
`output tree -> argument tree`, as in JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from functrans import eager, tree_util
from functrans.api import (
    Argnums,
    _finish,
    _flat_fun,
    _owned_aux,
    _Partial,
    grad,
    jvp,
    jvp_flat,
)
from functrans.api_vmap import vmap_flat
from functrans.core import ShapedArray, aval_of, instantiate
from functrans.errors import NonDifferentiableInputError
from functrans.interpreters.partial_eval import linearize_flat
from functrans.primitives import bdim_to, concatenate, reshape, slice_, transpose


def _standard_basis(avals: Sequence[ShapedArray]) -> tuple[list[np.ndarray], int]:
    """For leaves of sizes n_i (total K): leaf i's slice of the K x K identity, (K,) + shape_i."""
    total = sum(a.size for a in avals)
    basis, offset = [], 0
    for a in avals:
        b = np.zeros((total, a.size), a.dtype)
        b[np.arange(offset, offset + a.size), np.arange(a.size)] = 1
        basis.append(b.reshape((total,) + a.shape))
        offset += a.size
    return basis, total


def _map_basis(fn: Callable, basis: list, size: int, chunk_size: int | None) -> list[Any]:
    """vmap `fn` (flat in, flat out) over axis 0 of `basis`; results have the batch axis first."""
    if size == 1:  # one basis vector (a scalar input or output): nothing to batch
        outs = fn(*[b[0] for b in basis])
        return [reshape(o, new_sizes=(1,) + aval_of(o).shape) for o in outs]
    if chunk_size is None or chunk_size >= size:
        outs, dims = vmap_flat(fn, basis, [0] * len(basis), size)
        return [bdim_to(o, d, 0, size) for o, d in zip(outs, dims)]
    pieces = []
    for start in range(0, size, chunk_size):
        stop = min(start + chunk_size, size)
        chunk = [b[start:stop] for b in basis]
        outs, dims = vmap_flat(fn, chunk, [0] * len(chunk), stop - start)
        pieces.append([bdim_to(o, d, 0, stop - start) for o, d in zip(outs, dims)])
    return [concatenate(list(col), dimension=0) for col in zip(*pieces)]


def _rows(x, start: int, stop: int):
    shape = aval_of(x).shape
    return slice_(
        x, start_indices=(start,) + (0,) * (len(shape) - 1), limit_indices=(stop,) + shape[1:]
    )


def _assemble(mapped, mapped_avals, other_avals, forward: bool):
    """Blocks [out j][in i] of shape out_j.shape + in_i.shape from basis-mapped results.

    forward: mapped[j] is (D,) + out_j.shape, rows running over the inputs (`other_avals`);
    reverse: mapped[i] is (M,) + in_i.shape, rows running over the outputs (`other_avals`).
    """
    offsets = np.cumsum([0] + [a.size for a in other_avals])
    blocks = []
    if forward:
        for m, out_aval in zip(mapped, mapped_avals):
            row = []
            for k, in_aval in enumerate(other_avals):
                b = reshape(
                    _rows(m, offsets[k], offsets[k + 1]), new_sizes=in_aval.shape + out_aval.shape
                )
                n_in, n_out = in_aval.ndim, out_aval.ndim
                perm = tuple(range(n_in, n_in + n_out)) + tuple(range(n_in))
                row.append(_finish(transpose(b, permutation=perm)))
            blocks.append(row)
        return blocks
    for k, out_aval in enumerate(other_avals):
        row = []
        for m, in_aval in zip(mapped, mapped_avals):
            b = reshape(
                _rows(m, offsets[k], offsets[k + 1]), new_sizes=out_aval.shape + in_aval.shape
            )
            row.append(_finish(b))
        blocks.append(row)
    return blocks


def _nest(blocks, partial: _Partial, out_tree, single: bool):
    per_output = [partial.unflatten_inputs(row, single) for row in blocks]
    return tree_util.tree_unflatten(out_tree, per_output)


def jacfwd(
    fun: Callable,
    argnums: Argnums = 0,
    has_aux: bool = False,
    chunk_size: int | None = None,
    holomorphic: bool = False,
) -> Callable:
    """The Jacobian by forward mode: one vectorised JVP over the input basis.

    Complex inputs need `holomorphic=True`: pushing the real basis forward gives the complex
    derivative only for holomorphic functions (for a real-valued function of complex inputs use
    grad or jacrev, which follow the convention of docs/conventions.md).

    Returns:
      A function giving blocks of shape `out.shape + in.shape` (nested output tree -> argument
      tree); with has_aux, `(jacobian, aux)`.

    Example:
      >>> jacfwd(lambda x: x ** 2)(np.array([1.0, 2.0]))
      array([[2., 0.],
             [0., 4.]])
    """
    single = isinstance(argnums, int)

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        partial = _Partial(fun, "jacfwd", argnums, args, kwargs)
        store: dict = {}
        flat_fun = _flat_fun(partial, has_aux, "jacfwd", store)
        in_avals = [aval_of(x) for x in partial.flat]
        _check_holomorphic("jacfwd", in_avals, holomorphic)
        basis, size = _standard_basis(in_avals)

        def push(*tangents):
            outs, t_outs, aux = jvp_flat(flat_fun, partial.flat, tangents)
            store["aux"] = aux
            store["out_avals"] = [aval_of(o) for o in outs]
            return [instantiate(t) for t in t_outs]

        mapped = _map_basis(push, basis, size, chunk_size)
        blocks = _assemble(mapped, store["out_avals"], in_avals, forward=True)
        jac = _nest(blocks, partial, store["out_tree"], single)
        return (jac, _owned_aux(store["aux"], partial.inputs())) if has_aux else jac

    return eager.cached(
        jacfun,
        fun,
        "jacfwd",
        (argnums, has_aux, chunk_size, holomorphic),
        lambda g: jacfwd(g, argnums, has_aux, chunk_size, holomorphic),
    )


def jacrev(
    fun: Callable,
    argnums: Argnums = 0,
    has_aux: bool = False,
    chunk_size: int | None = None,
    holomorphic: bool = False,
) -> Callable:
    """The Jacobian by reverse mode: linearize once, then one vectorised pullback of the
    output basis.

    `holomorphic` is accepted for JAX's signature and changes nothing: pulling back the real
    output basis gives f'(z) for a holomorphic function, and for complex inputs otherwise the
    convention of docs/conventions.md.

    Returns:
      A function giving blocks of shape `out.shape + in.shape` (nested output tree -> argument
      tree); with has_aux, `(jacobian, aux)`.

    Example:
      >>> jacrev(lambda x: x ** 2)(np.array([1.0, 2.0]))
      array([[2., 0.],
             [0., 4.]])
    """
    single = isinstance(argnums, int)

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        partial = _Partial(fun, "jacrev", argnums, args, kwargs)
        store: dict = {}
        outs, lin, aux = linearize_flat(
            _flat_fun(partial, has_aux, "jacrev", store), partial.flat, compiled=True
        )
        jac = _reverse(lin, partial, store["out_tree"], single, chunk_size)
        return (jac, _owned_aux(aux, partial.inputs(), lin)) if has_aux else jac

    return eager.cached(
        jacfun,
        fun,
        "jacrev",
        (argnums, has_aux, chunk_size, holomorphic),
        lambda g: jacrev(g, argnums, has_aux, chunk_size, holomorphic),
    )


def _reverse(lin, partial, out_tree, single, chunk_size):
    basis, size = _standard_basis(lin.out_avals)

    def pull(*cts):
        return [instantiate(c) for c in lin.transpose(cts)]

    mapped = _map_basis(pull, basis, size, chunk_size)
    blocks = _assemble(mapped, lin.in_avals, lin.out_avals, forward=False)
    return _nest(blocks, partial, out_tree, single)


def _forward(lin, partial, out_tree, single, chunk_size):
    basis, size = _standard_basis(lin.in_avals)

    def push(*tangents):
        return [instantiate(t) for t in lin(tangents)]

    mapped = _map_basis(push, basis, size, chunk_size)
    blocks = _assemble(mapped, lin.out_avals, lin.in_avals, forward=True)
    return _nest(blocks, partial, out_tree, single)


def jacobian(
    fun: Callable, argnums: Argnums = 0, has_aux: bool = False, chunk_size: int | None = None
) -> Callable:
    """The Jacobian, in whichever mode is cheaper for the sizes at hand.

    `fun` is linearized once; the linear map is then pushed forward over the input basis when
    the input size D is at most the output size M (cost ~ D), and pulled back over the output
    basis otherwise (cost ~ M). Same result and layout as jacfwd/jacrev.

    Example:
      >>> jacobian(lambda x: fnp.sum(x ** 2))(np.array([1.0, 2.0]))   # D=2 > M=1: reverse
      array([2., 4.])
    """
    single = isinstance(argnums, int)

    @functools.wraps(fun)
    def jacfun(*args, **kwargs):
        partial = _Partial(fun, "jacobian", argnums, args, kwargs)
        store: dict = {}
        outs, lin, aux = linearize_flat(
            _flat_fun(partial, has_aux, "jacobian", store), partial.flat
        )
        d = sum(a.size for a in lin.in_avals)
        m = sum(a.size for a in lin.out_avals)
        mode = _forward if d <= m and not _complex(lin.in_avals) else _reverse
        jac = mode(lin, partial, store["out_tree"], single, chunk_size)
        return (jac, _owned_aux(aux, partial.inputs(), lin)) if has_aux else jac

    return eager.cached(
        jacfun,
        fun,
        "jacobian",
        (argnums, has_aux, chunk_size),
        lambda g: jacobian(g, argnums, has_aux, chunk_size),
    )


def _complex(avals) -> bool:
    return any(a.dtype.kind == "c" for a in avals)


def _check_holomorphic(transform: str, avals, holomorphic: bool) -> None:
    if _complex(avals) and not holomorphic:
        raise NonDifferentiableInputError(
            f"{transform}: an input is complex; forward mode gives the complex derivative only "
            "for holomorphic functions. Pass holomorphic=True if the function is holomorphic, or "
            "use jacrev/grad for a real-valued function of complex inputs."
        )


def hessian(
    fun: Callable, argnums: Argnums = 0, has_aux: bool = False, holomorphic: bool = False
) -> Callable:
    """The Hessian of a scalar function: forward over reverse (jacfwd of jacrev). For complex
    inputs pass `holomorphic=True` (a holomorphic function: the complex second derivative), as
    jacfwd needs.

    Example:
      >>> hessian(lambda x: fnp.sum(x ** 3))(np.array([1.0, 2.0]))
      array([[ 6.,  0.],
             [ 0., 12.]])
    """
    inner = jacrev(fun, argnums, has_aux, holomorphic=holomorphic)
    return jacfwd(inner, argnums, has_aux, holomorphic=holomorphic)


def hvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """Hessian-vector product of a scalar function, forward over reverse, without the Hessian.

    Computes `jvp(grad(fun), primals, tangents)[1]`: the derivative of the gradient with respect
    to the first argument along `tangents`.

    Example:
      >>> hvp(lambda x: fnp.sum(x ** 3), (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
      array([6., 0.])
    """
    return jvp(grad(fun), tuple(primals), tuple(tangents))[1]
