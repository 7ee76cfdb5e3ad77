"""Array creation in functrans.numpy.

asarray/array accept (nested) lists holding traced values, which are stacked. Constructors of
constants (zeros, ones, eye, arange, tri, the *_like functions, ...) return plain NumPy arrays:
they carry no derivative and, under vmap, are the same for every example. Where a traced value
flows into the result (full with a traced fill value, linspace/logspace with traced end points,
meshgrid of traced vectors) the result is traced and differentiable in it.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import _contains_tracer, asarray, broadcast_all, promote
from functrans.numpy._elementwise import power
from functrans.numpy._shapes import broadcast_arrays, broadcast_to, moveaxis, reshape
from functrans.primitives import concatenate, slice_
from functrans.primitives import elementwise as ew
from functrans.primitives import reshape as _reshape


def array(x, dtype=None, copy=True, ndmin=0):
    """Like numpy.array; (nested) lists may contain traced values, which are stacked.

    Example: fnp.array([[x, 0.0], [0.0, x]]) with a traced scalar x.
    """
    out = asarray(x, dtype)
    if isinstance(out, np.ndarray) and copy and not isinstance(x, (list, tuple)):
        out = out.copy()
    nd = aval_of(out).ndim
    if nd < ndmin:
        out = _reshape(out, new_sizes=(1,) * (ndmin - nd) + aval_of(out).shape)
    return out


def _concrete(x, name: str):
    """`x` with traced values replaced by their values, which an eager transformation knows;
    under jit (or make_jaxpr) a ConcretizationError that names the user's line."""
    if isinstance(x, Tracer):
        return x.to_concrete(f"the shape or size given to fnp.{name}")
    if isinstance(x, (list, tuple)):
        return type(x)(_concrete(v, name) for v in x)
    return x


def _constant(fn):
    """NumPy's constructor `fn`, its sizes and shapes known while tracing (static)."""

    @functools.wraps(fn)
    def make(*args, **kwargs):
        args = [_concrete(a, fn.__name__) for a in args]
        return fn(*args, **{k: _concrete(v, fn.__name__) for k, v in kwargs.items()})

    return make


arange = _constant(np.arange)
eye = _constant(np.eye)
identity = _constant(np.identity)
ones = _constant(np.ones)
zeros = _constant(np.zeros)
empty = _constant(np.empty)
tri = _constant(np.tri)


def full(shape, fill_value, dtype=None):
    """An array of fill_value (traced fill values give a traced, broadcast result)."""
    shape = _concrete(shape, "full")
    if isinstance(fill_value, Tracer) or (
        isinstance(fill_value, (list, tuple)) and _contains_tracer(fill_value)
    ):
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return broadcast_to(asarray(fill_value, dtype), shape)
    return np.full(shape, fill_value, dtype)


def _like(a, dtype, shape):
    aval = aval_of(asarray(a))
    return (aval.shape if shape is None else shape), (dtype or aval.dtype)


def zeros_like(a, dtype=None, shape=None):
    return np.zeros(*_like(a, dtype, shape))


def ones_like(a, dtype=None, shape=None):
    return np.ones(*_like(a, dtype, shape))


def empty_like(a, dtype=None, shape=None):
    return np.empty(*_like(a, dtype, shape))


def full_like(a, fill_value, dtype=None, shape=None):
    """An array of fill_value shaped like a (traced fill values give a traced result)."""
    return full(*_like(a, dtype, shape)[:1], fill_value, _like(a, dtype, shape)[1])


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """num evenly spaced samples from start to stop (stop excluded if not endpoint).

    With traced end points the samples are traced: start + i * step, the last one exactly stop.
    Example: fnp.linspace(0.0, x, 5)
    """
    num = _concrete(num, "linspace")
    if not (_contains_tracer(start) or _contains_tracer(stop)):
        return np.linspace(start, stop, num, endpoint, retstep, dtype, axis)
    num = operator.index(num)  # as NumPy: 5.0 is a TypeError
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    start, stop = promote(asarray(start), asarray(stop), to_inexact=True)
    start, stop = broadcast_all(start, stop)
    s = aval_of(start).shape
    ftype = aval_of(start).dtype
    div = (num - 1) if endpoint else num
    delta = ew.sub(stop, start)
    iota = np.arange(num, dtype=ftype).reshape((num,) + (1,) * len(s))
    full_shape = (num,) + s
    iota = np.broadcast_to(iota, full_shape)
    wide_delta = broadcast_to(delta, full_shape)
    if div > 0:
        step = ew.div(delta, np.full(s, div, ftype))
        # NumPy's two formulas: i * step, or (i / div) * delta for every sample once any step
        # is zero (a denormal delta); both are computed and one is selected
        by_step = ew.mul(iota, broadcast_to(step, full_shape))
        by_delta = ew.mul(np.broadcast_to(iota / np.asarray(div, ftype), full_shape), wide_delta)
        any_zero = _any(ew.eq(step, np.zeros(s, ftype)))
        offsets = ew.select_n(broadcast_to(any_zero, full_shape), by_step, by_delta)
    else:  # zero samples, or one with the end point: no step (NaN, a Python float, as NumPy)
        step = float("nan")
        offsets = ew.mul(iota, wide_delta)
    y = ew.add(broadcast_to(start, full_shape), offsets)
    if endpoint and num > 1:  # the last sample is stop itself, as in NumPy
        head = slice_(y, start_indices=(0,) * len(full_shape), limit_indices=(num - 1,) + s)
        y = concatenate([head, reshape(stop, (1,) + s)], dimension=0)
    if dtype is not None:
        if np.dtype(dtype).kind in "iu":  # NumPy rounds down before casting to integers
            y = ew.floor(y)
        y = ew.convert_element_type(y, new_dtype=np.dtype(dtype))
    y = moveaxis(y, 0, axis)
    return (y, step) if retstep else y


def _any(x):
    from functrans.numpy._reductions import any as any_

    return any_(x)


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """base ** linspace(start, stop, num): samples evenly spaced on a log scale."""
    num = _concrete(num, "logspace")
    if not (_contains_tracer(start) or _contains_tracer(stop) or _contains_tracer(base)):
        return np.logspace(start, stop, num, endpoint, base, dtype, axis)
    y = linspace(start, stop, num, endpoint, axis=axis)
    out = power(base, y) if isinstance(base, Tracer) else power(asarray(base, aval_of(y).dtype), y)
    return out if dtype is None else ew.convert_element_type(out, new_dtype=np.dtype(dtype))


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate arrays from 1-d coordinate vectors (a tuple, as in NumPy 2); traced vectors
    give traced grids."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    if not any(_contains_tracer(x) for x in xi):
        return np.meshgrid(*xi, copy=copy, sparse=sparse, indexing=indexing)
    nd = len(xi)
    out = []
    for i, x in enumerate(xi):
        x = reshape(asarray(x), (-1,))
        shape = [1] * nd
        shape[i] = -1
        if indexing == "xy" and nd > 1 and i < 2:
            shape[0], shape[1] = shape[1], shape[0]
        out.append(reshape(x, shape))
    if not sparse:
        out = list(broadcast_arrays(*out))
    return tuple(out)


__all__ = [
    "arange",
    "array",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "identity",
    "linspace",
    "logspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tri",
    "zeros",
    "zeros_like",
]
