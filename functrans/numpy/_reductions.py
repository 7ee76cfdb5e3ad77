"""Reductions of functrans.numpy: NumPy's axis (int, tuple, None, negative), keepdims and dtype
handling over the reduce_* and cumulative primitives.

Conventions (docs/numpy_coverage.md): max/min/ptp split the derivative equally among tied
extrema; median and quantile interpolate between sorted entries, so their derivative flows to the
one or two order statistics used; nan* reductions give NaN entries a zero derivative.
"""

from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from functrans.core import Tracer, aval_of
from functrans.numpy._base import (
    NO_VALUE,
    as_bool,
    asarray,
    broadcast_to_shape,
    normalize_axes,
    normalize_axis,
    numpy_scalar_result,
    promote,
)
from functrans.numpy._diagonals import diagonal
from functrans.numpy._elementwise import absolute
from functrans.numpy._shapes import broadcast_to, concatenate
from functrans.primitives import (
    broadcast_in_dim,
    full,
    gather,
    reduce_sum,
    reshape,
    slice_,
    transpose,
)
from functrans.primitives import elementwise as ew
from functrans.primitives import reductions as red
from functrans.primitives import sorting as srt


def _keepdims(out, shape, axes):
    return reshape(out, new_sizes=tuple(1 if i in axes else n for i, n in enumerate(shape)))


def _reduce(prim_fn, x, axis, keepdims, dtype=None):
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    if dtype is not None:
        x = ew.convert_element_type(x, new_dtype=dtype)
    out = prim_fn(x, axes=axes)
    if keepdims:
        out = _keepdims(out, aval.shape, axes)
    return out[()] if type(out) is np.ndarray and out.ndim == 0 else out  # (NumPy's scalar)


def _sum_dtype(dtype: np.dtype) -> np.dtype | None:
    # NumPy sums booleans and small integers in the default (64-bit) integer type
    if dtype.kind == "b" or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return None


def _inexact_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _full_like(x, value):
    aval = aval_of(x)
    return full(aval.shape, value, aval.dtype)


def _count(shape, axes) -> int:
    return math.prod([shape[a] for a in axes])


def sum(x, axis=None, dtype=None, keepdims=False, *, initial=NO_VALUE, where=True):  # noqa: A001
    """Sum of elements over the given axes (NumPy's dtype rules: small integers sum as int64).

    `initial` is added to the sum; entries where the boolean mask `where` is False count as 0.
    initial=None means no identity, as in NumPy: an empty sum or a mask is then a ValueError.
    Example: fnp.sum(x, axis=(0, -1), keepdims=True)
    """
    return _identity_reduce(reduce_sum, ew.add, "add", 0, x, axis, dtype, keepdims, initial, where)


def prod(x, axis=None, dtype=None, keepdims=False, *, initial=NO_VALUE, where=True):
    """Product of elements over the given axes; its derivative is exact where x has zeros.

    `initial` multiplies the product; entries where the boolean mask `where` is False count as
    1; initial=None as in sum.
    """
    return _identity_reduce(
        red.reduce_prod, ew.mul, "multiply", 1, x, axis, dtype, keepdims, initial, where
    )


def _identity_reduce(prim_fn, combine, name, identity, x, axis, dtype, keepdims, initial, where):
    """sum / prod: masked-out entries become the identity, and `initial` is combined with the
    result (NumPy starts the reduction from it; x + initial only rounds in another order)."""
    x = asarray(x)
    aval = aval_of(x)
    if initial is None:  # NumPy's request to reduce without the identity
        _check_without_identity(name, aval.shape, normalize_axes(axis, aval.ndim), where)
    if where is not True:
        x = ew.select_n(_where_mask(where, aval.shape), _full_like(x, identity), x)
    out = _reduce(prim_fn, x, axis, keepdims, dtype or _sum_dtype(aval.dtype))
    return out if initial is NO_VALUE or initial is None else _with_initial(combine, out, initial)


def max(x, axis=None, keepdims=False, *, initial=NO_VALUE, where=True):  # noqa: A001
    """Maximum over the given axes; tied maxima share the derivative equally.

    `initial` takes part in the maximum (and is the result of an empty one); entries where the
    boolean mask `where` is False are left out, which needs `initial`, as in NumPy. Where
    `initial` wins, x gets no derivative (a tie with it splits 1/2 : 1/2, as fnp.maximum).
    Example: fnp.max(x, axis=0, initial=0.0, where=x < 10)
    """
    if (initial is NO_VALUE or initial is None) and where is True:
        return _reduce(red.reduce_max, x, axis, keepdims)
    return _extremum(red.reduce_max, ew.max, "maximum", x, axis, keepdims, initial, where)


def min(x, axis=None, keepdims=False, *, initial=NO_VALUE, where=True):  # noqa: A001
    """Minimum over the given axes; tied minima share the derivative equally.

    `initial` and `where` as in max. Example: fnp.min(x, axis=1, initial=np.inf, where=mask)
    """
    if (initial is NO_VALUE or initial is None) and where is True:
        return _reduce(red.reduce_min, x, axis, keepdims)
    return _extremum(red.reduce_min, ew.min, "minimum", x, axis, keepdims, initial, where)


amax = max
amin = min


def _check_without_identity(name, shape, axes, where):
    if where is not True:
        raise ValueError(
            f"reduction operation '{name}' does not have an identity, so to use a where mask one "
            "has to specify 'initial'"
        )
    if _count(shape, axes) == 0:
        raise ValueError(f"zero-size array to reduction operation {name} which has no identity")


def _where_mask(where, shape):
    """`where` as a boolean mask of x's shape. As NumPy, an array must already be boolean (the
    'safe' cast), a Python sequence or scalar converts."""
    if not isinstance(where, (Tracer, np.ndarray, np.generic)):
        where = np.asarray(where, dtype=bool)
    elif (dtype := aval_of(where).dtype).kind != "b":
        raise TypeError(
            f"Cannot cast array data from {dtype!r} to dtype('bool') according to the rule 'safe'"
        )
    return broadcast_to_shape(where, shape)


def _initial(initial, dtype):
    """`initial` in the reduction's dtype. A concrete value is stored as NumPy stores it (an int
    out of range is an OverflowError, a float truncates to an integer dtype); a traced scalar is
    cast, and it gets its share of the derivative."""
    if isinstance(initial, Tracer):
        if initial.aval.ndim:
            raise ValueError(f"initial must be a scalar, got a traced {initial.aval.str_short()}")
        return ew.convert_element_type(initial, new_dtype=dtype)
    out = np.empty((), dtype)
    out[()] = initial
    return out


@numpy_scalar_result
def _with_initial(combine, out, initial):
    aval = aval_of(out)
    return combine(broadcast_to_shape(_initial(initial, aval.dtype), aval.shape), out)


def _lowest(dtype: np.dtype, for_max: bool):
    """The identity of max (the dtype's lowest value) or of min (its highest)."""
    if dtype.kind == "b":
        return not for_max
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if for_max else info.max
    inf = -np.inf if for_max else np.inf
    return complex(inf, inf) if dtype.kind == "c" else inf


@numpy_scalar_result
def _extremum(prim_fn, combine, name, x, axis, keepdims, initial, where):
    """max / min with `initial` or `where`: the masked-out entries become the identity (they
    never win, and get no derivative), then `initial` joins the reduced value. `initial` comes
    first in `combine`, so the reduced value wins exact ties (for ±0, as NumPy's reduction)."""
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    if initial is NO_VALUE or initial is None:
        _check_without_identity(name, aval.shape, axes, where)
    if where is not True:
        identity = _full_like(x, _lowest(aval.dtype, prim_fn is red.reduce_max))
        x = ew.select_n(_where_mask(where, aval.shape), identity, x)
    out_shape = tuple(n for i, n in enumerate(aval.shape) if i not in axes)
    init = broadcast_to_shape(_initial(initial, aval.dtype), out_shape)
    # an empty reduction is `initial` alone (reduce_max has no identity to start from)
    out = init if _count(aval.shape, axes) == 0 else combine(init, prim_fn(x, axes=axes))
    return _keepdims(out, aval.shape, axes) if keepdims else out


def ptp(x, axis=None, keepdims=False):
    """Peak to peak: max - min over the given axes."""
    return ew.sub(max(x, axis, keepdims), min(x, axis, keepdims))


def mean(x, axis=None, dtype=None, keepdims=False):
    """Arithmetic mean over the given axes (integers average in float64)."""
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    dtype = np.dtype(dtype) if dtype is not None else _inexact_dtype(aval.dtype)
    total = sum(x, axis=axes, dtype=dtype, keepdims=keepdims)
    return _divide_as(total, _count(aval.shape, axes))


def _divide_as(total, count):
    """total / count in total's dtype. An integer dtype divides in float64 and truncates toward
    zero, as NumPy's mean and var do when asked for an integer dtype."""
    dtype = aval_of(total).dtype
    if dtype.kind in "fc":
        return ew.div(total, _full_like(total, count))
    wide = ew.convert_element_type(total, new_dtype=np.dtype(np.float64))
    return ew.convert_element_type(ew.div(wide, _full_like(wide, count)), new_dtype=dtype)


def var(x, axis=None, dtype=None, ddof=0, keepdims=False):
    """Variance: mean of |x - mean(x)|^2 with n - ddof in the denominator (real for complex x).

    Example: fnp.var(x, axis=0, ddof=1)
    """
    x = asarray(x)
    aval = aval_of(x)
    axes = normalize_axes(axis, aval.ndim)
    dtype = np.dtype(dtype) if dtype is not None else _inexact_dtype(aval.dtype)
    x = ew.convert_element_type(x, new_dtype=dtype)
    centered = ew.sub(x, broadcast_to_shape(mean(x, axes, dtype, keepdims=True), aval.shape))
    if dtype.kind == "c":
        squared = ew.integer_pow(absolute(centered), y=2)
    else:
        squared = ew.mul(centered, centered)
    total = sum(squared, axis=axes, keepdims=keepdims)
    # n - ddof below 0 is 0, as NumPy's (a division by zero: inf, or nan for 0/0)
    return _divide_as(total, builtins.max(_count(aval.shape, axes) - ddof, 0))


def std(x, axis=None, dtype=None, ddof=0, keepdims=False):
    """Standard deviation: sqrt(var(x, axis, ddof=ddof)); its derivative is infinite where
    every element is equal (as d sqrt(v)/dv at 0)."""
    return ew.sqrt(var(x, axis, dtype, ddof, keepdims))


def average(a, axis=None, weights=None, returned=False, keepdims=False):
    """Weighted average; weights have a's shape or are 1-d along a single axis.

    Returns the average, and with returned=True also the sum of the weights (broadcast to it).
    Example: fnp.average(x, axis=1, weights=w)
    """
    a = asarray(a)
    aval = aval_of(a)
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        if not returned:
            return avg
        scale = _count(aval.shape, normalize_axes(axis, aval.ndim))
        return avg, _full_like(avg, scale)

    w = asarray(weights)
    a, w = promote(a, w, to_inexact=True)
    w_shape = aval_of(w).shape
    if w_shape != aval.shape:
        if axis is None:
            raise TypeError("average: axis must be given when the weights' shape differs from a's")
        if len(w_shape) != 1 or not isinstance(axis, (int, np.integer)):
            raise TypeError("average: 1-d weights need a single integer axis")
        ax = normalize_axis(axis, aval.ndim)
        if w_shape[0] != aval.shape[ax]:
            raise ValueError("average: length of weights differs from the length of the axis")

        w = broadcast_in_dim(w, shape=aval.shape, broadcast_dimensions=(ax,))
    axes = normalize_axes(axis, aval.ndim)
    w_sum = sum(w, axes, keepdims=keepdims)
    if not isinstance(w_sum, Tracer) and np.any(w_sum == 0):  # (known now: NumPy's error)
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    avg = ew.div(sum(ew.mul(a, w), axes, keepdims=keepdims), w_sum)
    return (avg, w_sum) if returned else avg


# ---------------------------------------------------------------------------------------------
# Order statistics: quantile, percentile, median

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


@numpy_scalar_result
def quantile(a, q, axis=None, method="linear", keepdims=False):
    """q-th quantiles (q in [0, 1], concrete) over the given axes, by sorting.

    The result has q's shape followed by the reduced shape, as in NumPy. Methods: 'linear'
    (default), 'lower', 'higher', 'midpoint', 'nearest'. The derivative flows to the sorted
    entries that are interpolated (ties in the data: to the one the stable sort puts there).
    Example: fnp.quantile(x, [0.25, 0.75], axis=0)
    """
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {_METHODS}, got {method!r}")
    q = np.asarray(q, dtype=np.float64)
    if q.size and (q.min() < 0 or q.max() > 1):
        raise ValueError("quantiles must be in the range [0, 1]")
    a = asarray(a)
    aval = aval_of(a)
    if method not in ("lower", "higher", "nearest"):  # (those select: the dtype is kept)
        a = ew.convert_element_type(a, new_dtype=_inexact_dtype(aval.dtype))
    axes = normalize_axes(axis, aval.ndim)
    kept = [i for i in range(aval.ndim) if i not in axes]
    n = _count(aval.shape, axes)
    if n == 0:  # no data: NaN, as NumPy's (which warns)
        warnings.warn("quantile of an empty slice", RuntimeWarning, stacklevel=2)
        shape = q.shape + tuple(
            (1 if keepdims else None) if i in axes else m for i, m in enumerate(aval.shape)
        )
        dtype = _inexact_dtype(aval.dtype)
        return np.full(tuple(m for m in shape if m is not None), np.nan, dtype)[()]
    # the reduced axes flattened into one leading axis of length n, then sorted along it
    flat = reshape(
        transpose(a, permutation=tuple(axes) + tuple(kept)),
        new_sizes=(n,) + tuple(aval.shape[i] for i in kept),
    )
    ordered = srt.sort(flat, axis=0)
    position = q * (n - 1)
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = position - lo
    if method == "lower":
        out = gather(ordered, lo)
    elif method == "higher":
        out = gather(ordered, np.ceil(position).astype(np.int64))
    elif method == "nearest":
        out = gather(ordered, np.around(position).astype(np.int64))
    else:
        if method == "midpoint":
            frac = np.where(frac > 0, 0.5, 0.0)
        lo_v, hi_v = gather(ordered, lo), gather(ordered, hi)
        out_aval = aval_of(lo_v)
        w = broadcast_to_shape(
            frac.reshape(frac.shape + (1,) * (out_aval.ndim - q.ndim)).astype(out_aval.dtype),
            out_aval.shape,
        )
        out = ew.add(lo_v, ew.mul(w, ew.sub(hi_v, lo_v)))
    if aval_of(out).dtype.kind in "fc":  # NaN anywhere gives NaN, as in NumPy
        has_nan = red.reduce_or(ew.isnan(flat), axes=(0,))
        has_nan = broadcast_to_shape(has_nan, aval_of(out).shape)
        out = ew.select_n(has_nan, out, _full_like(out, np.nan))
    if keepdims:
        out_shape = q.shape + tuple(1 if i in axes else m for i, m in enumerate(aval.shape))
        out = reshape(out, new_sizes=out_shape)
    return out


def percentile(a, q, axis=None, method="linear", keepdims=False):
    """q-th percentiles (q in [0, 100]); see quantile."""
    return quantile(a, np.asarray(q, dtype=np.float64) / 100, axis, method, keepdims)


def median(a, axis=None, keepdims=False):
    """Median over the given axes (the mean of the two middle entries for even counts)."""
    return quantile(a, 0.5, axis, keepdims=keepdims)


# ---------------------------------------------------------------------------------------------
# Cumulative reductions and differences


def _cumulative(prim_fn, x, axis, dtype):
    x = asarray(x)
    dtype = dtype or _sum_dtype(aval_of(x).dtype)
    if dtype is not None:
        x = ew.convert_element_type(x, new_dtype=dtype)
    if axis is None:
        x = reshape(x, new_sizes=(aval_of(x).size,))
        axis = 0
    return prim_fn(x, axis=normalize_axis(axis, aval_of(x).ndim))


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along an axis (the flattened array for axis=None)."""
    return _cumulative(srt.cumsum, x, axis, dtype)


def cumprod(x, axis=None, dtype=None):
    """Cumulative product along an axis; its derivative is exact where x has zeros."""
    return _cumulative(srt.cumprod, x, axis, dtype)


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """n-th discrete difference along an axis (booleans: not-equal, as NumPy)."""
    a = asarray(a)
    axis = normalize_axis(axis, aval_of(a).ndim)
    if prepend is not None or append is not None:
        shape = list(aval_of(a).shape)

        def edge(v):
            v = asarray(v)
            if aval_of(v).ndim == 0:
                shape[axis] = 1
                v = broadcast_to(v, tuple(shape))
            return v

        parts = ([edge(prepend)] if prepend is not None else []) + [a]
        parts += [edge(append)] if append is not None else []
        a = concatenate(parts, axis=axis)
    for _ in range(n):
        shape = aval_of(a).shape
        m = shape[axis]
        lo = [0] * len(shape)
        hi_start = list(lo)
        hi_start[axis] = 1 if m else 0
        first_limit = list(shape)
        first_limit[axis] = builtins.max(m - 1, 0)
        head = slice_(a, start_indices=lo, limit_indices=first_limit)
        tail = slice_(a, start_indices=hi_start, limit_indices=shape)
        a = ew.ne(tail, head) if aval_of(a).dtype == bool else ew.sub(tail, head)
    return a


def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    """Sum along a diagonal (see diagonal)."""
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Logical and counting reductions, arg reductions (integer or boolean results, no derivative)


def all(x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    """True where every element over the given axes is nonzero."""
    return _reduce(red.reduce_and, as_bool(x), axis, keepdims)


def any(x, axis=None, keepdims=False):  # noqa: A001 - the NumPy name
    """True where some element over the given axes is nonzero."""
    return _reduce(red.reduce_or, as_bool(x), axis, keepdims)


def count_nonzero(a, axis=None, keepdims=False):
    """Number of nonzero elements over the given axes (int64)."""
    nonzero = ew.convert_element_type(as_bool(a), new_dtype=np.int64)
    return _reduce(reduce_sum, nonzero, axis, keepdims)


def _arg(prim_fn, x, axis, keepdims):
    x = asarray(x)
    shape = aval_of(x).shape
    if axis is None:
        out = prim_fn(reshape(x, new_sizes=(aval_of(x).size,)), axis=0)
        return reshape(out, new_sizes=(1,) * len(shape)) if keepdims else out
    axis = normalize_axis(axis, len(shape))
    out = prim_fn(x, axis=axis)
    return _keepdims(out, shape, (axis,)) if keepdims else out


def argmax(x, axis=None, keepdims=False):
    """Index of the (first) maximum along an axis, or into the flattened array."""
    return _arg(red.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the (first) minimum along an axis, or into the flattened array."""
    return _arg(red.argmin, x, axis, keepdims)


# ---------------------------------------------------------------------------------------------
# NaN-ignoring reductions: NaN entries are replaced before reducing, so they get no derivative


def _replace_nan(x, value):
    x = asarray(x)
    if aval_of(x).dtype.kind not in "fc":
        return x, None
    nan = ew.isnan(x)
    return ew.select_n(nan, x, _full_like(x, value)), nan


def nansum(x, axis=None, dtype=None, keepdims=False):
    """Sum treating NaNs as zero."""
    return sum(_replace_nan(x, 0)[0], axis, dtype, keepdims)


def nanmean(x, axis=None, dtype=None, keepdims=False):
    """Mean of the non-NaN elements (NaN where there are none)."""
    x = asarray(x)
    filled, nan = _replace_nan(x, 0)
    if nan is None:
        return mean(x, axis, dtype, keepdims)
    total = sum(filled, axis, dtype, keepdims)
    count = sum(ew.logical_not(nan), axis, aval_of(total).dtype, keepdims)
    return ew.div(total, count)


def _nan_extremum(fn, fill, x, axis, keepdims):
    x = asarray(x)
    filled, nan = _replace_nan(x, fill)
    out = fn(filled, axis, keepdims)
    if nan is None:
        return out
    all_nan = all(nan, axis, keepdims)
    return ew.select_n(all_nan, out, _full_like(out, np.nan))


@numpy_scalar_result
def nanmax(x, axis=None, keepdims=False):
    """Maximum ignoring NaNs (NaN where all are NaN); tied maxima share the derivative."""
    return _nan_extremum(max, -np.inf, x, axis, keepdims)


@numpy_scalar_result
def nanmin(x, axis=None, keepdims=False):
    """Minimum ignoring NaNs (NaN where all are NaN); tied minima share the derivative."""
    return _nan_extremum(min, np.inf, x, axis, keepdims)


__all__ = [
    "all",
    "amax",
    "amin",
    "any",
    "argmax",
    "argmin",
    "average",
    "count_nonzero",
    "cumprod",
    "cumsum",
    "diff",
    "max",
    "mean",
    "median",
    "min",
    "nanmax",
    "nanmean",
    "nanmin",
    "nansum",
    "percentile",
    "prod",
    "ptp",
    "quantile",
    "std",
    "sum",
    "trace",
    "var",
]
