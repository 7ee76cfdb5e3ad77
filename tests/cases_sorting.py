"""Rule-check cases for the cumulative, sorting and searching primitives (primitives/sorting.py)
and the logical reductions (reduce_and, reduce_or); loaded by tests/cases.py."""

from __future__ import annotations

import numpy as np
from cases import add_case, booleans, distinct, fixed, normal, unary_sampler


def _signed_unit(rng, shape, dtype=np.float64):
    # magnitudes near 1 keep cumulative products O(1)
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape), dtype)


def _with_zeros(rng, shape, dtype=np.float64):
    x = _signed_unit(rng, shape, dtype)
    x.reshape(-1)[[1, 4]] = 0.0  # two zeros: the derivative of a product through both
    return x


for _shape, _axis, _reverse in [((5,), 0, False), ((3, 4), 1, True), ((2, 3, 4), 0, False)]:
    add_case(
        "cumsum",
        fixed(unary_sampler(normal), _shape),
        params={"axis": _axis, "reverse": _reverse},
        tag=f"{len(_shape)}d-axis{_axis}{'-rev' if _reverse else ''}",
        linear=(0,),
    )
add_case(
    "cumsum",
    fixed(unary_sampler(normal, np.float32), (3, 4)),
    params={"axis": 0, "reverse": False},
    tag="f32",
    linear=(0,),
)

for _shape, _axis in [((6,), 0), ((3, 5), 1), ((4, 2, 3), 0)]:
    add_case(
        "cumprod",
        fixed(unary_sampler(_signed_unit), _shape),
        params={"axis": _axis},
        tag=f"{len(_shape)}d-axis{_axis}",
    )
add_case("cumprod", fixed(unary_sampler(_with_zeros), (6,)), params={"axis": 0}, tag="zeros")
add_case("cumprod", fixed(unary_sampler(_with_zeros), (2, 5)), params={"axis": 1}, tag="zeros-2d")

for _shape, _axis in [((6,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1)]:
    _tag = f"{len(_shape)}d-axis{_axis}"
    add_case("sort", fixed(unary_sampler(distinct), _shape), params={"axis": _axis}, tag=_tag)
    add_case(
        "argsort",
        fixed(unary_sampler(distinct), _shape),
        params={"axis": _axis},
        tag=_tag,
        differentiable=False,
        float_output=False,
    )
add_case(
    "argsort",
    lambda rng: (rng.integers(0, 3, (4, 5)),),  # integer keys with ties: the sort is stable
    params={"axis": 1},
    tag="int-ties",
    differentiable=False,
    float_output=False,
)


def _searchsorted_operands(n, v_shape, *, ties=False):
    def make(rng):
        a = np.sort(rng.standard_normal(n))
        if ties:  # repeated entries and values equal to them: 'left' and 'right' differ
            a = np.sort(np.repeat(a[: n // 2], 2))
            v = rng.choice(a, v_shape)
        else:
            v = 1.5 * rng.standard_normal(v_shape)
        return a, v

    return make


for _side in ("left", "right"):
    add_case(
        "searchsorted",
        _searchsorted_operands(6, (4,)),
        params={"side": _side},
        tag=_side,
        differentiable=False,
        float_output=False,
    )
    add_case(
        "searchsorted",
        _searchsorted_operands(6, (2, 3), ties=True),
        params={"side": _side},
        tag=f"{_side}-ties",
        differentiable=False,
        float_output=False,
    )

for _name in ("reduce_and", "reduce_or"):
    for _axes in ((0,), (1, 2), (0, 1, 2)):
        add_case(
            _name,
            lambda rng: (booleans(rng, (2, 3, 4)),),
            params={"axes": _axes},
            tag="".join(map(str, _axes)),
            differentiable=False,
            float_output=False,
        )
