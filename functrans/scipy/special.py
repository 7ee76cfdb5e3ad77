"""functrans.scipy.special: stable special functions (logsumexp, softmax, xlogy, erf, ...).

Values follow scipy.special (integers are computed in float64, float32 stays float32); every
function is composed from functrans primitives, so it differentiates to any order and batches.
The compositions are chosen so derivatives stay finite where the math is: logsumexp and softmax
shift by a stop_gradient maximum and give an all -inf slice a zero derivative; xlogy and xlog1py
are 0 with derivative 0 in y wherever x == 0. erf, erfc, gammaln, digamma and polygamma take
their values from SciPy (`pip install functrans[scipy]`); their derivative rules are ours.
See docs/conventions.md.
"""

from __future__ import annotations

import numpy as np

from functrans.core import aval_of
from functrans.numpy import _reductions as red
from functrans.numpy._base import (
    asarray,
    broadcast_to_shape,
    normalize_axes,
    promote,
    promote_and_broadcast,
)
from functrans.numpy._shapes import reshape
from functrans.primitives import elementwise as ew
from functrans.primitives import full
from functrans.primitives import special as sp
from functrans.primitives import transcendental as tr


def _float(x):
    (x,) = promote(asarray(x), to_inexact=True)
    return x


def _floats(*args):
    return promote_and_broadcast(*args, to_inexact=True)


def _const(x, value):
    aval = aval_of(x)
    return full(aval.shape, value, aval.dtype)


def _where(cond, x, y):
    return ew.select_n(cond, y, x)


def _stable_shift(x, axes):
    """The maximum over `axes` (kept as size-1 axes), 0 where it is not finite, as a constant.

    Subtracting it keeps exp from overflowing; as a constant it adds nothing to derivatives
    (the exact derivative of the shift cancels anyway), so ties in the maximum do not matter.
    """
    m = red.max(x, axis=axes, keepdims=True)
    return ew.stop_gradient(_where(ew.isfinite(m), m, _const(m, 0)))


def _broadcast_like(m, x):
    return broadcast_to_shape(m, aval_of(x).shape)


# ---------------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) over `axis`, computed without overflow.

    Args:
      a: the exponents.
      axis: int, tuple of ints or None (all axes).
      b: optional scale factors, broadcast against `a` (may be negative with return_sign).
      keepdims: keep the reduced axes with size 1.
      return_sign: also return the sign of the sum; otherwise a negative sum gives NaN.

    Returns:
      The log of the (absolute) sum, and its sign if `return_sign`.

    A slice whose terms are all 0 (all a == -inf) gives -inf with a zero derivative, not NaN.

    Example:
      >>> float(logsumexp(np.array([1000.0, 1000.0])))
      1000.6931471805599
    """
    a = _float(a)
    if b is not None:
        a, b = _floats(a, b)
    shape = aval_of(a).shape
    axes = normalize_axes(axis, len(shape))
    m = _stable_shift(a, axes)
    terms = ew.exp(ew.sub(a, _broadcast_like(m, a)))
    if b is not None:
        terms = ew.mul(b, terms)
    s = red.sum(terms, axis=axes, keepdims=True)
    if return_sign:
        sign = ew.sign(s)
        s = ew.abs(s)
    empty = ew.eq(s, _const(s, 0))
    log_s = _where(empty, _const(s, -np.inf), ew.log(_where(empty, _const(s, 1), s)))
    out = ew.add(log_s, m)
    if not keepdims:
        reduced = tuple(n for i, n in enumerate(shape) if i not in axes)
        out = reshape(out, reduced)
        if return_sign:
            sign = reshape(sign, reduced)
    return (out, sign) if return_sign else out


def softmax(x, axis=None):
    """exp(x) / sum(exp(x)) over `axis` (all axes if None), computed without overflow.

    A slice that is all -inf gives 0 (SciPy gives NaN) with a zero derivative.

    Example:
      >>> softmax(np.array([0.0, np.log(3.0)]))
      array([0.25, 0.75])
    """
    x = _float(x)
    axes = normalize_axes(axis, aval_of(x).ndim)
    e = ew.exp(ew.sub(x, _broadcast_like(_stable_shift(x, axes), x)))
    s = _broadcast_like(red.sum(e, axis=axes, keepdims=True), e)
    return ew.div(e, _where(ew.eq(s, _const(s, 0)), _const(s, 1), s))


def log_softmax(x, axis=None):
    """x - logsumexp(x) over `axis`, computed without overflow or cancellation.

    A slice that is all -inf gives -inf (SciPy gives NaN), and its derivative is that of x.

    Example:
      >>> log_softmax(np.array([0.0, 0.0]))
      array([-0.69314718, -0.69314718])
    """
    x = _float(x)
    axes = normalize_axes(axis, aval_of(x).ndim)
    shifted = ew.sub(x, _broadcast_like(_stable_shift(x, axes), x))
    s = _broadcast_like(red.sum(ew.exp(shifted), axis=axes, keepdims=True), x)
    return ew.sub(shifted, ew.log(_where(ew.eq(s, _const(s, 0)), _const(s, 1), s)))


def softplus(x):
    """log(1 + exp(x)) = logaddexp(x, 0): no overflow, derivative expit(x) in [0, 1].

    Example:
      >>> float(softplus(1000.0))
      1000.0
    """
    x = _float(x)
    return tr.logaddexp(x, _const(x, 0))


# ---------------------------------------------------------------------------------------------
# Logistic function and its inverse


def expit(x):
    """The logistic sigmoid 1 / (1 + exp(-x)), without overflow for any x.

    Example:
      >>> float(expit(0.0))
      0.5
    """
    return tr.logistic(_float(x))


def logit(p):
    """log(p / (1 - p)), the inverse of expit.

    Example:
      >>> float(logit(0.5))
      0.0
    """
    p = _float(p)
    return ew.log(ew.div(p, ew.sub(_const(p, 1), p)))


# ---------------------------------------------------------------------------------------------
# x log y, x log(1 + y), entropy: 0 wherever x == 0


def xlogy(x, y):
    """x * log(y), and 0 where x == 0 (whatever y is, unless NaN).

    Derivatives where x == 0: d/dy is 0; d/dx is log(y) for finite y > 0 and 0 otherwise.

    Example:
      >>> float(xlogy(0.0, 0.0)), float(xlogy(2.0, np.e))
      (0.0, 2.0)
    """
    x, y = _floats(x, y)
    bad = ew.logical_not(ew.logical_and(ew.isfinite(y), ew.gt(y, _const(y, 0))))
    use_one = ew.logical_and(
        ew.eq(x, _const(x, 0)), ew.logical_and(bad, ew.logical_not(ew.isnan(y)))
    )
    return ew.mul(x, ew.log(_where(use_one, _const(y, 1), y)))


def xlog1py(x, y):
    """x * log1p(y), and 0 where x == 0 (whatever y is, unless NaN).

    Derivatives where x == 0: d/dy is 0; d/dx is log1p(y) for finite y > -1 and 0 otherwise.

    Example:
      >>> float(xlog1py(0.0, -1.0))
      0.0
    """
    x, y = _floats(x, y)
    bad = ew.logical_not(ew.logical_and(ew.isfinite(y), ew.gt(y, _const(y, -1))))
    use_zero = ew.logical_and(
        ew.eq(x, _const(x, 0)), ew.logical_and(bad, ew.logical_not(ew.isnan(y)))
    )
    return ew.mul(x, ew.log1p(_where(use_zero, _const(y, 0), y)))


def entr(x):
    """-x log(x) for x > 0, 0 at 0, -inf for x < 0; its derivative at 0 is taken as 0.

    Example:
      >>> float(entr(1.0)), float(entr(0.0))
      (0.0, 0.0)
    """
    x = _float(x)
    positive = ew.gt(x, _const(x, 0))
    value = ew.neg(ew.mul(x, ew.log(_where(positive, x, _const(x, 1)))))
    return _where(ew.lt(x, _const(x, 0)), _const(x, -np.inf), ew.add(value, _const(x, 0)))


# ---------------------------------------------------------------------------------------------
# Error and gamma functions (values from SciPy)


def erf(x):
    """The error function; erf'(x) = 2/sqrt(pi) exp(-x^2). Needs SciPy.

    Example:
      >>> float(erf(0.0))
      0.0
    """
    return sp.erf(_float(x))


def erfc(x):
    """The complementary error function 1 - erf(x), accurate for large x. Needs SciPy.

    Example:
      >>> float(erfc(0.0))
      1.0
    """
    return sp.erfc(_float(x))


def gammaln(x):
    """log|Gamma(x)|; its derivative is digamma(x). Needs SciPy.

    Example:
      >>> float(gammaln(1.0))
      0.0
    """
    return sp.lgamma(_float(x))


def digamma(x):
    """The digamma function Gamma'(x)/Gamma(x); its derivative is polygamma(1, x). Needs SciPy.

    Example:
      >>> round(float(digamma(1.0)), 6)
      -0.577216
    """
    return sp.digamma(_float(x))


psi = digamma


def polygamma(n, x):
    """The n-th derivative of digamma; `n` is a (static) non-negative integer. Needs SciPy.

    Example:
      >>> round(float(polygamma(1, 1.0)), 6)
      1.644934
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n}")
    x = _float(x)
    return sp.digamma(x) if n == 0 else sp.polygamma(x, n=n)


__all__ = [
    "digamma",
    "entr",
    "erf",
    "erfc",
    "expit",
    "gammaln",
    "log_softmax",
    "logit",
    "logsumexp",
    "polygamma",
    "psi",
    "softmax",
    "softplus",
    "xlog1py",
    "xlogy",
]
