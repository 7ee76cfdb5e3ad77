"""Rule-check cases for the elementwise primitives added with the NumPy coverage (issue 4):
more transcendental functions, complex parts, smooth binary functions, rounding division and the
special functions of primitives/special.py. Each domain keeps away from the points where the
function is not smooth (or not finite)."""

from __future__ import annotations

import numpy as np
from cases import (
    add_case,
    add_elementwise,
    away_from_integers,
    away_from_zero,
    binary_sampler,
    fixed,
    normal,
    pair_sampler,
    unary_sampler,
    uniform,
)


def _in_unit_interval(rng, shape, dtype=np.float64):
    return np.asarray(rng.uniform(-0.8, 0.8, shape), dtype)


def _quotient_pair(rng, shape, dtype=np.float64):
    """(x, y) with x / y at least 0.1 away from an integer (fmod and floor_divide are smooth)."""
    y = away_from_zero(rng, shape)
    q = away_from_integers(rng, shape)
    return np.asarray(q * y, dtype), np.asarray(y, dtype)


# ---------------------------------------------------------------------------------------------
# Smooth unary functions

for _name, _draw in [
    ("exp2", normal),
    ("log2", uniform(0.5, 2.0)),
    ("log10", uniform(0.5, 2.0)),
    ("sinh", normal),
    ("cosh", normal),
    ("asin", _in_unit_interval),
    ("acos", _in_unit_interval),
    ("atan", normal),
    ("asinh", normal),
    ("acosh", uniform(1.2, 3.0)),
    ("atanh", _in_unit_interval),
    ("cbrt", away_from_zero),
    ("logistic", normal),
]:
    add_elementwise(_name, unary_sampler(_draw))

add_elementwise("trunc", unary_sampler(away_from_integers), differentiable=False)
add_elementwise("signbit", unary_sampler(away_from_zero), differentiable=False, float_output=False)

for _name, _draw in [("logistic", normal), ("cbrt", away_from_zero), ("atan", normal)]:
    add_elementwise(_name, unary_sampler(_draw, np.float32), tag="f32", shapes=((3, 4),))

# ---------------------------------------------------------------------------------------------
# Complex values: holomorphic functions, |z| (not holomorphic), and the real-linear parts


def _right_half_plane(rng, shape, dtype=np.complex128):
    """Complex values with real part in [0.5, 1.5] and |imag| < 0.5: away from the branch
    points and poles of log (0) and atan (+-i)."""
    return np.asarray(rng.uniform(0.5, 1.5, shape) + 1j * rng.uniform(-0.5, 0.5, shape), dtype)


for _name in ("sinh", "cosh", "atan", "exp2", "log2"):
    add_elementwise(
        _name, unary_sampler(_right_half_plane, np.complex128), tag="c128", shapes=((3, 4),)
    )
add_elementwise("abs", unary_sampler(normal, np.complex128), tag="c128", shapes=((3, 4), ()))
add_elementwise("abs", unary_sampler(normal, np.complex64), tag="c64", shapes=((3, 4),))
for _name in ("real", "imag", "conj"):
    add_elementwise(_name, unary_sampler(normal, np.complex128), tag="c128", linear=(0,))
add_elementwise("conj", unary_sampler(normal), tag="f64", linear=(0,), shapes=((3,),))
add_elementwise(
    "div",
    binary_sampler(normal, away_from_zero, np.complex128),
    tag="c128",
    shapes=((3, 4),),
    linear=(0,),
    jointly=False,
)
add_elementwise(
    "pow",
    binary_sampler(
        lambda rng, shape, dtype: normal(rng, shape, dtype) + 2.0, normal, np.complex128
    ),
    tag="c128",
    shapes=((3, 4),),
)

# ---------------------------------------------------------------------------------------------
# Smooth binary functions


def _finite_pair(rng, shape, dtype=np.float64):
    return normal(rng, shape, dtype), normal(rng, shape, dtype)


add_elementwise("atan2", binary_sampler(away_from_zero, away_from_zero))
add_elementwise("hypot", binary_sampler(away_from_zero, normal))
add_elementwise("logaddexp", pair_sampler(_finite_pair))
add_elementwise("logaddexp2", pair_sampler(_finite_pair))
add_elementwise(
    "logaddexp", binary_sampler(normal, normal, np.float32), tag="f32", shapes=((3, 4),)
)
add_elementwise("rem", pair_sampler(_quotient_pair))
add_elementwise(
    "pow", binary_sampler(uniform(0.5, 2.0), normal, np.float32), tag="f32", shapes=((3, 4),)
)
add_elementwise("floor_divide", pair_sampler(_quotient_pair), differentiable=False)
add_case(
    "floor_divide",
    lambda rng: (rng.integers(-9, 9, (3, 4)), rng.integers(1, 4, (3, 4))),
    tag="int",
    differentiable=False,
    float_output=False,
)

# ---------------------------------------------------------------------------------------------
# Special functions (values from SciPy)

add_elementwise("erf", unary_sampler(normal))
add_elementwise("erfc", unary_sampler(normal))
add_elementwise("lgamma", unary_sampler(uniform(0.5, 4.0)))
add_elementwise("lgamma", unary_sampler(uniform(-1.8, -1.2)), tag="negative", shapes=((5,),))
add_elementwise("digamma", unary_sampler(uniform(0.5, 4.0)))
for _n in (1, 2):
    add_elementwise(
        "polygamma",
        unary_sampler(uniform(0.8, 4.0)),
        params={"n": _n},
        tag=f"n{_n}",
        shapes=((2, 3),),
    )
add_elementwise("erf", unary_sampler(normal, np.float32), tag="f32", shapes=((3, 4),))
add_case(
    "lgamma",
    fixed(unary_sampler(uniform(0.5, 4.0), np.float32), (4,)),
    tag="f32",
    sample=unary_sampler(uniform(0.5, 4.0), np.float32),
)
