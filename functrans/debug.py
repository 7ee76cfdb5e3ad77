"""Debugging tools: NaN/inf provenance and printing from inside transformations.

- With `functrans.config.update("debug_nans", True)` (or `with functrans.config.debug_nans():`)
  every concrete primitive result is checked; the first one that turns finite inputs into a NaN
  or inf raises `NonFiniteError` naming the primitive, the transformations it ran under, whether
  it ran in the forward computation or in reverse mode's backward pass, and the user's source line
  that created it. (Under jit the staged program is interpreted instead of compiled while the
  check is on.)
- `functrans.debug.print(fmt, *args)` prints concrete values from inside any transformation: the
  primal values under differentiation, one line per batch element under vmap, and at run time
  (not trace time) under jit.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans import core
from functrans.core import Primitive, aval_of
from functrans.errors import NonFiniteError

# ---------------------------------------------------------------------------------------------
# debug_nans


def _non_finite(x: Any) -> str | None:
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or np.all(np.isfinite(x)):
        return None
    return "NaN" if np.any(np.isnan(x)) else "inf"


def check_nonfinite(prim: Primitive, args: Sequence[Any], out: Any) -> None:
    """Raise at the first primitive that turns finite inputs into a NaN or inf."""
    outs = out if prim.multiple_results else (out,)
    kinds = [k for k in map(_non_finite, outs) if k is not None]
    if not kinds or any(_non_finite(a) for a in args):
        return  # all finite, or propagated from an input (reported where it was created)
    eqn = core.debug_eqn.get()
    avals = ", ".join(aval_of(a).str_short() for a in args)
    transforms = core.active_transforms.get()
    where = "under " + " > ".join(transforms) if transforms else "outside any transformation"
    if transforms and transforms[-1] == "recomputation" and eqn is not None:
        where += f" (recomputing '{eqn.prim.name}' for a checkpoint)"
    elif "backward pass" in transforms and eqn is not None:
        where += f" (transposing '{eqn.prim.name}')"
    if eqn is not None:
        line = eqn.source or "unknown (turn debug_nans on before tracing to record it)"
    else:
        line = core.user_location()
    raise NonFiniteError(
        f"debug_nans: primitive '{prim.name}' produced {kinds[0]} from finite inputs ({avals}) "
        f"{where}; created at {line}. Typical causes: log/sqrt/division at 0, overflow in "
        "exp; see docs/sharp_edges.md for the where-NaN pitfall."
    )


# ---------------------------------------------------------------------------------------------
# debug.print


debug_print_p = Primitive("debug_print", multiple_results=True, effectful=True)


def _print_impl(*args, fmt, kwarg_names):
    n = len(args) - len(kwarg_names)
    builtins.print(fmt.format(*args[:n], **dict(zip(kwarg_names, args[n:], strict=True))))
    return []


def _print_batch(vals, dims, *, fmt, kwarg_names):
    size = next(aval_of(v).shape[d] for v, d in zip(vals, dims, strict=True) if d is not None)
    from functrans.primitives import slice_
    from functrans.primitives.structural import reshape

    for b in range(size):
        row = []
        for v, d in zip(vals, dims, strict=True):
            if d is None:
                row.append(v)
                continue
            shape = aval_of(v).shape
            lo = tuple(b if i == d else 0 for i in range(len(shape)))
            hi = tuple(b + 1 if i == d else n for i, n in enumerate(shape))
            piece = slice_(v, start_indices=lo, limit_indices=hi)
            row.append(reshape(piece, new_sizes=shape[:d] + shape[d + 1 :]))
        debug_print_p.bind(*row, fmt=fmt, kwarg_names=kwarg_names)
    return [], []


debug_print_p.impl = _print_impl
debug_print_p.abstract_eval = lambda *avals, fmt, kwarg_names: []
debug_print_p.jvp = lambda primals, tangents, **params: (debug_print_p.bind(*primals, **params), [])
debug_print_p.batch = _print_batch


def print(fmt: str, *args: Any, **kwargs: Any) -> None:  # noqa: A001 - JAX's name
    """Print `fmt.format(*args, **kwargs)` with concrete values, from inside any transformation.

    Example:
      >>> grad(lambda x: (debug.print("x = {}", x), x ** 2)[1])(3.0)
      x = 3.0
      6.0
    """
    from functrans.api import _as_array

    names = tuple(sorted(kwargs))
    values = [_as_array(a) for a in args] + [_as_array(kwargs[k]) for k in names]
    debug_print_p.bind(*values, fmt=fmt, kwarg_names=names)


__all__ = ["check_nonfinite", "print"]
