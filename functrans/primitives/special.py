"""Special functions as primitives (erf, erfc, lgamma, digamma, polygamma) where no composition
of elementary primitives is accurate or fast enough.

Their values come from scipy.special (an optional dependency: `pip install functrans[scipy]`),
imported on first use; their derivative rules are ours, written with primitives, so they
differentiate again: erf' = 2/sqrt(pi) exp(-x^2), lgamma' = digamma, digamma' = polygamma(1, .),
polygamma(n, .)' = polygamma(n + 1, .). Results keep the operand's dtype.
"""

from __future__ import annotations

import math

import numpy as np

from functrans.primitives.elementwise import exp, mul, neg, unary
from functrans.primitives.structural import full_like


def scipy_special(what: str):
    """scipy.special, or an ImportError that names the function and the fix."""
    try:
        import scipy.special
    except ImportError as err:
        raise ImportError(
            f"functrans: {what} needs SciPy for its values, which is an optional dependency; "
            "install it with `pip install functrans[scipy]` (or `pip install scipy`)."
        ) from err
    return scipy.special


def _scipy_impl(name: str):
    def impl(x, **params):
        fn = getattr(scipy_special(name), name)
        x = np.asarray(x)
        out = fn(params["n"], x) if "n" in params else fn(x)
        return np.asarray(out).astype(x.dtype, copy=False)

    impl.__name__ = f"_{name}_impl"
    return impl


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_deriv(x, y):
    return mul(full_like(x, _TWO_OVER_SQRT_PI), exp(neg(mul(x, x))))


erf_p = unary("erf", _scipy_impl("erf"), deriv=_erf_deriv)
erfc_p = unary("erfc", _scipy_impl("erfc"), deriv=lambda x, y: neg(_erf_deriv(x, y)))
# log|Gamma(x)|: its derivative is digamma(x) for negative non-integer x as well
lgamma_p = unary("lgamma", _scipy_impl("gammaln"), deriv=lambda x, y: digamma(x))
digamma_p = unary("digamma", _scipy_impl("digamma"), deriv=lambda x, y: polygamma(x, n=1))
polygamma_p = unary(
    "polygamma", _scipy_impl("polygamma"), deriv=lambda x, y, *, n: polygamma(x, n=n + 1)
)


def erf(x):
    return erf_p.bind(x)


def erfc(x):
    return erfc_p.bind(x)


def lgamma(x):
    return lgamma_p.bind(x)


def digamma(x):
    return digamma_p.bind(x)


def polygamma(x, *, n: int):
    return polygamma_p.bind(x, n=int(n))
