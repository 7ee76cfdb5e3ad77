"""Shared plumbing of functrans.numpy: array conversion, dtype promotion, broadcasting, axes.

NumPy's rules are followed exactly (NumPy 2 promotion: Python scalars are "weak" and take the
array's dtype); the result feeds primitives, which need operands of one shape and dtype.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.primitives import broadcast_in_dim, convert_element_type

_PY_SCALARS = (bool, int, float, complex)


class _NoValue:
    """The default of an argument that NumPy tells apart from every value, None included."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


def is_traced(x: Any) -> bool:
    return isinstance(x, Tracer)


def asarray(x: Any, dtype: Any = None) -> Any:
    """An array (NumPy) or tracer for x; lists may contain tracers. Never copies needlessly."""
    if isinstance(x, Tracer):
        return x if dtype is None else convert_element_type(x, new_dtype=dtype)
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        from functrans.numpy._shapes import stack

        return stack([asarray(e, dtype) for e in x])
    return np.asarray(x, dtype=dtype)


def _contains_tracer(x) -> bool:
    if isinstance(x, Tracer):
        return True
    if isinstance(x, (list, tuple)):
        return any(_contains_tracer(e) for e in x)
    return False


def dtype_of(x: Any) -> np.dtype:
    return aval_of(x).dtype if not isinstance(x, (list, tuple)) else asarray(x).dtype


def result_dtype(*args: Any) -> np.dtype:
    """NumPy's result dtype; Python scalars participate as weak values (NEP 50)."""
    return np.result_type(*[a if isinstance(a, _PY_SCALARS) else dtype_of(a) for a in args])


def int_out_of_range(args: Sequence[Any]) -> tuple[int, np.dtype] | None:
    """(the int, the dtype) when a Python int among `args` does not fit the integer dtype of the
    array operands (NumPy 2's weak ints: a ufunc raises OverflowError, a comparison is exact)."""
    ints = [a for a in args if type(a) is int]
    if not ints or len(ints) == len(args):
        return None
    dtypes = [dtype_of(a) for a in args if type(a) is not int]
    if any(d.kind not in "biu" for d in dtypes):  # floating point: every int converts
        return None
    dtype = np.result_type(*dtypes)
    if dtype.kind == "b":
        dtype = np.dtype(np.int64)  # booleans meet Python ints in the default integer
    lo, hi = _INT_RANGES.get(dtype) or _INT_RANGES.setdefault(
        dtype, (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    )
    for a in ints:
        if not lo <= a <= hi:
            return a, dtype
    return None


_INT_RANGES: dict[np.dtype, tuple[int, int]] = {}


def promote(*args: Any, to_inexact: bool = False) -> list[Any]:
    """Convert operands to their common dtype (floating point if `to_inexact`)."""
    dtype = result_dtype(*args)
    if to_inexact and dtype.kind not in "fc":
        dtype = np.dtype(np.float64)
    out = []
    for a in args:
        if isinstance(a, Tracer):
            out.append(convert_element_type(a, new_dtype=dtype))
        else:
            a = np.asarray(a) if not isinstance(a, (list, tuple)) else asarray(a)
            out.append(a if a.dtype == dtype else convert_element_type(a, new_dtype=dtype))
    return out


def broadcast_to_shape(x: Any, shape: tuple[int, ...]) -> Any:
    xshape = aval_of(x).shape
    if xshape == shape:
        return x
    lead = len(shape) - len(xshape)
    if lead < 0 or any(n not in (1, m) for n, m in zip(xshape, shape[lead:])):
        raise ValueError(f"cannot broadcast an array of shape {xshape} to shape {shape}")
    # squeeze nothing: broadcast_in_dim handles size-1 axes
    return broadcast_in_dim(x, shape=shape, broadcast_dimensions=tuple(range(lead, len(shape))))


def broadcast_all(*args: Any) -> list[Any]:
    shapes = [aval_of(a).shape for a in args]
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            "operands could not be broadcast together with shapes "
            + " ".join(str(s) for s in shapes)
        ) from None
    return [broadcast_to_shape(a, shape) for a in args]


def promote_and_broadcast(*args: Any, to_inexact: bool = False) -> Sequence[Any]:
    """Operands converted to one dtype and broadcast to one shape, as NumPy would."""
    if len(args) == 2:  # the hottest case: x * y, x + 0.5 on traced floats
        x, y = args
        if isinstance(x, Tracer):
            ax = x.aval
            if ax.dtype.kind == "f":
                if isinstance(y, Tracer):
                    ay = y.aval
                    if ax.shape == ay.shape and ax.dtype == ay.dtype:
                        return (x, y)
                elif (type(y) is float or type(y) is int) and not ax.shape:
                    return (x, ax.dtype.type(y))
        elif (type(x) is float or type(x) is int) and isinstance(y, Tracer):
            ay = y.aval
            if ay.dtype.kind == "f" and not ay.shape:
                return (ay.dtype.type(x), y)
    # Fast path (the common case in numerical code): arrays of one float dtype and shape, and
    # Python int/float scalars, which NEP 50 makes take the array's dtype.
    first = None
    for a in args:
        if type(a) is float or type(a) is int:
            continue
        if not (isinstance(a, Tracer) or type(a) is np.ndarray or isinstance(a, np.generic)):
            break
        aval = aval_of(a)
        if first is None:
            first = aval
            if first.dtype.kind != "f":
                break
        elif aval.shape != first.shape or aval.dtype != first.dtype:
            break
    else:
        if first is not None:
            if not first.shape:  # scalars: a NumPy scalar of the dtype, no broadcast
                to = first.dtype.type
                return [to(a) if type(a) is float or type(a) is int else a for a in args]
            return [
                broadcast_to_shape(np.array(a, first.dtype), first.shape)
                if type(a) is float or type(a) is int
                else a
                for a in args
            ]
    if not to_inexact and (bad := int_out_of_range(args)) is not None:
        raise OverflowError(f"Python integer {bad[0]} out of bounds for {bad[1]}")
    return broadcast_all(*promote(*args, to_inexact=to_inexact))


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise np.exceptions.AxisError(
            f"{what} {axis} is out of bounds for array of dimension {ndim}"
        )
    return axis % ndim if ndim else 0


def normalize_axes(axis: None | int | Sequence[int], ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    axes = tuple(normalize_axis(int(a), ndim) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {tuple(axis)}")
    return axes


def as_bool(x: Any) -> Any:
    """x as a boolean array (nonzero is True), as NumPy's logical functions see it."""
    from functrans.primitives import elementwise as ew
    from functrans.primitives import full_like

    x = asarray(x)
    return x if aval_of(x).dtype == bool else ew.ne(x, full_like(x, 0))


def numpy_scalar_result(fn):
    """`fn` returning a NumPy scalar where it would return a concrete 0-d array, as NumPy's
    reductions and products do (np.dot of two vectors is an np.float64, not a 0-d array)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        return out[()] if type(out) is np.ndarray and out.ndim == 0 else out

    return wrapped
