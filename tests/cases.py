"""Test cases for the rule checks: at least one per registered primitive.

A `Case` names a primitive, builds its operands from a seeded Generator (inside the domain where
the primitive is smooth: logs of positive numbers, extrema with operands kept apart, floors away
from integers, ...), and carries its params, tolerance and flags: differentiable or not, which
operands it is linear in (for transpose checks), whether its output is floating point.
Elementwise and reduction cases also carry `sample(rng, shape)` for shape-generic checks.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functrans.core import Primitive
from functrans.primitives import ALL_PRIMITIVES

Operands = tuple[Any, ...]


@dataclass(frozen=True)
class Case:
    prim: str
    make: Callable[[np.random.Generator], Operands]
    params: dict = field(default_factory=dict)
    tag: str = ""
    differentiable: bool = True
    linear: tuple[int, ...] = ()  # operands the primitive is linear in
    # True: linear in all `linear` operands together (add, concatenate); False: in each one with
    # the others held fixed (mul, dot_general: bilinear)
    jointly: bool = True
    float_output: bool = True
    fd_check: bool = True  # False: the JVP is zero by definition (stop_gradient), not the slope
    atol: float | None = None
    rtol: float | None = None
    # shape-generic operand sampler, for hypothesis (elementwise primitives and reductions)
    sample: Callable[[np.random.Generator, tuple[int, ...]], Operands] | None = None

    @property
    def id(self) -> str:
        return f"{self.prim}-{self.tag}" if self.tag else self.prim

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    @property
    def primitive(self) -> Primitive:
        return ALL_PRIMITIVES[self.prim]

    def operands(self, offset: int = 0) -> Operands:
        """The case's operands; `offset` gives further independent draws (batch examples)."""
        return self.make(np.random.default_rng(self.seed + offset))

    def fn(self) -> Callable:
        prim, params = self.primitive, dict(self.params)
        return lambda *xs: prim.bind(*xs, **params)

    def __repr__(self) -> str:
        return f"Case({self.id})"


# ---------------------------------------------------------------------------------------------
# Operand samplers (shape -> operands), each keeping away from where the primitive is not smooth


def normal(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x, dtype)


def uniform(lo, hi):
    return lambda rng, shape, dtype=np.float64: np.asarray(rng.uniform(lo, hi, shape), dtype)


def away_from_zero(rng, shape, dtype=np.float64):
    sign = rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(sign * rng.uniform(0.3, 2.0, shape), dtype)


def away_from_integers(rng, shape, dtype=np.float64):
    # floor/ceil jump at integers
    return np.asarray(rng.integers(-3, 3, shape) + rng.uniform(0.15, 0.85, shape), dtype)


def away_from_half_integers(rng, shape, dtype=np.float64):
    # round jumps at k + 1/2
    return np.asarray(rng.integers(-3, 3, shape) + rng.uniform(-0.35, 0.35, shape), dtype)


def distinct(rng, shape, dtype=np.float64):
    """Values at least ~0.4 apart, so extrema are unique and ties never happen."""
    n = int(np.prod(shape, dtype=np.int64))
    x = rng.permutation(n) * 0.5 - n * 0.25 + rng.uniform(-0.05, 0.05, n)
    return np.asarray(x.reshape(shape), dtype)


def kept_apart(rng, shape, dtype=np.float64):
    """A pair (x, y) with |x - y| >= 0.3 everywhere (max/min are smooth there)."""
    x = normal(rng, shape)
    gap = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.0, shape)
    return np.asarray(x, dtype), np.asarray(x + gap, dtype)


def sometimes_equal(rng, shape, dtype=np.float64):
    """A pair for comparisons: some entries equal, the others at least 0.3 apart."""
    x, y = kept_apart(rng, shape, dtype)
    return x, np.where(rng.random(shape) < 0.4, x, y).astype(dtype)


def booleans(rng, shape):
    return rng.random(shape) < 0.5


def unary_sampler(draw, dtype=np.float64):
    return lambda rng, shape: (draw(rng, shape, dtype),)


def binary_sampler(draw_x, draw_y, dtype=np.float64):
    return lambda rng, shape: (draw_x(rng, shape, dtype), draw_y(rng, shape, dtype))


def pair_sampler(draw_pair, dtype=np.float64):
    return lambda rng, shape: draw_pair(rng, shape, dtype)


def fixed(sample, shape):
    return lambda rng: sample(rng, shape)


def with_nonfinite(rng, shape, dtype=np.float64):
    x = normal(rng, shape, dtype)
    flat = x.reshape(-1)
    flat[::3] = np.nan
    flat[1::5] = np.inf
    return x


CASES: list[Case] = []


def add_case(prim: str, make, **kw) -> None:
    CASES.append(Case(prim, make, **kw))


def add_elementwise(prim: str, sample, *, shapes=((3, 4), ()), **kw) -> None:
    """Cases at a few fixed shapes; the sampler is kept for shape-generic checks."""
    tag = kw.pop("tag", "")
    for shape in shapes:
        shape_tag = "x".join(map(str, shape)) or "scalar"
        add_case(
            prim,
            fixed(sample, shape),
            tag="-".join(filter(None, [tag, shape_tag])),
            sample=sample,
            **kw,
        )


# ---------------------------------------------------------------------------------------------
# Elementwise: unary

for _name, _draw in [
    ("exp", normal),
    ("log", uniform(0.5, 2.0)),
    ("log1p", uniform(-0.5, 2.0)),
    ("expm1", normal),
    ("sin", normal),
    ("cos", normal),
    ("tan", uniform(-1.0, 1.0)),
    ("tanh", normal),
    ("sqrt", uniform(0.5, 2.0)),
    ("reciprocal", away_from_zero),
    ("abs", away_from_zero),
]:
    add_elementwise(_name, unary_sampler(_draw))

add_elementwise("neg", unary_sampler(normal), linear=(0,))
for _name, _draw in [
    ("sign", away_from_zero),
    ("floor", away_from_integers),
    ("ceil", away_from_integers),
    ("round", away_from_half_integers),
]:
    add_elementwise(_name, unary_sampler(_draw), differentiable=False)

for _y in (3, 2, 1, 0, -2):
    add_elementwise(
        "integer_pow",
        unary_sampler(away_from_zero),
        params={"y": _y},
        tag=f"y{_y}",
        shapes=((2, 3),),
    )

for _name in ("isnan", "isfinite"):
    add_elementwise(_name, unary_sampler(normal), differentiable=False, float_output=False)
    add_case(
        _name,
        fixed(unary_sampler(with_nonfinite), (4, 5)),
        tag="nonfinite",
        differentiable=False,
        float_output=False,
    )

add_elementwise(
    "not", lambda rng, shape: (booleans(rng, shape),), differentiable=False, float_output=False
)
add_elementwise("stop_gradient", unary_sampler(normal), differentiable=False, fd_check=False)

# ---------------------------------------------------------------------------------------------
# Elementwise: binary

add_elementwise("add", binary_sampler(normal, normal), linear=(0, 1))
add_elementwise("sub", binary_sampler(normal, normal), linear=(0, 1))
add_elementwise("mul", binary_sampler(normal, normal), linear=(0, 1), jointly=False)
add_elementwise("div", binary_sampler(normal, away_from_zero), linear=(0,), jointly=False)
add_elementwise("pow", binary_sampler(uniform(0.5, 2.0), uniform(-2.0, 2.0)))
add_elementwise("max", pair_sampler(kept_apart))
add_elementwise("min", pair_sampler(kept_apart))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    add_elementwise(_name, pair_sampler(sometimes_equal), differentiable=False, float_output=False)
for _name in ("and", "or"):
    add_elementwise(
        _name,
        lambda rng, shape: (booleans(rng, shape), booleans(rng, shape)),
        differentiable=False,
        float_output=False,
    )

for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    add_elementwise(
        _name,
        lambda rng, shape: (rng.integers(-20, 20, shape), rng.integers(-20, 20, shape)),
        differentiable=False,
        float_output=False,
    )
add_elementwise(
    "bitwise_not",
    lambda rng, shape: (rng.integers(-20, 20, shape).astype(np.int32),),
    differentiable=False,
    float_output=False,
)

# float32 variants: tolerances and steps come from the dtype defaults of functrans.testing
for _name, _sample in [
    ("sin", unary_sampler(normal, np.float32)),
    ("exp", unary_sampler(normal, np.float32)),
    ("log", unary_sampler(uniform(0.5, 2.0), np.float32)),
    ("mul", binary_sampler(normal, normal, np.float32)),
    ("div", binary_sampler(normal, away_from_zero, np.float32)),
    ("max", pair_sampler(kept_apart, np.float32)),
]:
    add_elementwise(
        _name,
        _sample,
        tag="f32",
        shapes=((3, 4),),
        linear={"mul": (0, 1), "div": (0,)}.get(_name, ()),
        jointly=False,
    )

# complex128 variants of holomorphic primitives
for _name, _sample, _linear, _jointly in [
    ("sin", unary_sampler(normal, np.complex128), (), True),
    ("exp", unary_sampler(normal, np.complex128), (), True),
    ("add", binary_sampler(normal, normal, np.complex128), (0, 1), True),
    ("mul", binary_sampler(normal, normal, np.complex128), (0, 1), False),
]:
    add_elementwise(_name, _sample, tag="c128", shapes=((3, 4),), linear=_linear, jointly=_jointly)

# ---------------------------------------------------------------------------------------------
# select_n: a boolean or integer predicate picks among cases; linear in the cases


def _select_bool(rng, shape, dtype=np.float64):
    return booleans(rng, shape), normal(rng, shape, dtype), normal(rng, shape, dtype)


def _select_int(rng, shape, dtype=np.float64):
    which = rng.integers(0, 3, shape).astype(np.int32)
    return (which,) + tuple(normal(rng, shape, dtype) for _ in range(3))


add_elementwise("select_n", _select_bool, tag="bool", linear=(1, 2))
add_elementwise("select_n", _select_int, tag="int", linear=(1, 2, 3), shapes=((3, 4),))

# ---------------------------------------------------------------------------------------------
# convert_element_type: linear between float dtypes; no tangent into integers

add_case(
    "convert_element_type",
    fixed(unary_sampler(normal), (3, 4)),
    tag="f64-f32",
    params={"new_dtype": np.dtype(np.float32)},
    linear=(0,),
)
add_case(
    "convert_element_type",
    fixed(unary_sampler(normal, np.float32), (3, 4)),
    tag="f32-f64",
    params={"new_dtype": np.dtype(np.float64)},
    linear=(0,),
)
add_case(
    "convert_element_type",
    fixed(unary_sampler(away_from_integers), (3, 4)),
    tag="f64-i32",
    params={"new_dtype": np.dtype(np.int32)},
    differentiable=False,
    float_output=False,
)
add_case(
    "convert_element_type",
    fixed(unary_sampler(normal, np.complex128), (3, 4)),
    tag="c128-c64",
    params={"new_dtype": np.dtype(np.complex64)},
    linear=(0,),
)
add_case(
    "convert_element_type",
    lambda rng: (booleans(rng, (5,)),),
    tag="bool-f64",
    params={"new_dtype": np.dtype(np.float64)},
    differentiable=False,
)

# ---------------------------------------------------------------------------------------------
# Structural primitives (all linear)


def _normals(*shapes, dtype=np.float64):
    return lambda rng: tuple(normal(rng, s, dtype) for s in shapes)


for _tag, _shape, _params in [
    ("new-leading", (3,), {"shape": (2, 3), "broadcast_dimensions": (1,)}),
    ("new-trailing", (3,), {"shape": (3, 4), "broadcast_dimensions": (0,)}),
    ("size1", (3, 1), {"shape": (3, 4), "broadcast_dimensions": (0, 1)}),
    ("size1-and-new", (2, 1, 3), {"shape": (4, 2, 5, 3), "broadcast_dimensions": (1, 2, 3)}),
    ("scalar", (), {"shape": (2, 3), "broadcast_dimensions": ()}),
]:
    add_case("broadcast_in_dim", _normals(_shape), params=_params, tag=_tag, linear=(0,))

for _tag, _shape, _new in [
    ("merge", (2, 3, 4), (6, 4)),
    ("split", (6,), (2, 3)),
    ("scalar", (), (1, 1)),
    ("to-scalar", (1, 1), ()),
]:
    add_case("reshape", _normals(_shape), params={"new_sizes": _new}, tag=_tag, linear=(0,))

for _shape, _perm in [((2, 3), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 2, 0))]:
    add_case(
        "transpose",
        _normals(_shape),
        params={"permutation": _perm},
        tag="".join(map(str, _perm)),
        linear=(0,),
    )

for _tag, _shape, _params in [
    ("contiguous", (5, 6), {"start_indices": (1, 0), "limit_indices": (4, 6), "strides": (1, 1)}),
    ("strided", (5, 6), {"start_indices": (0, 1), "limit_indices": (5, 6), "strides": (2, 3)}),
    (
        "3d",
        (3, 4, 5),
        {"start_indices": (1, 1, 0), "limit_indices": (3, 4, 5), "strides": (1, 2, 2)},
    ),
]:
    add_case("slice", _normals(_shape), params=_params, tag=_tag, linear=(0,))

for _tag, _shape, _config, _value, _linear in [
    ("edges", (3, 4), ((1, 2, 0), (0, 1, 0)), 0.0, (0,)),
    ("interior", (3, 4), ((0, 0, 1), (2, 1, 2)), 0.0, (0,)),
    ("value", (2, 3), ((1, 1, 1), (0, 2, 0)), 1.5, ()),  # affine, not linear
    ("1d", (4,), ((2, 0, 3),), 0.0, (0,)),
]:
    add_case(
        "pad",
        _normals(_shape),
        params={"padding_config": _config, "value": _value},
        tag=_tag,
        linear=_linear,
    )

add_case(
    "concatenate",
    _normals((2, 3), (2, 1), (2, 4)),
    params={"dimension": 1},
    tag="axis1",
    linear=(0, 1, 2),
)
add_case(
    "concatenate", _normals((1, 3), (2, 3)), params={"dimension": 0}, tag="axis0", linear=(0, 1)
)

for _dims in ((0,), (0, 2), (1,)):
    add_case(
        "rev",
        _normals((2, 3, 4)),
        params={"dimensions": _dims},
        tag="".join(map(str, _dims)),
        linear=(0,),
    )

# ---------------------------------------------------------------------------------------------
# Reductions


def _signed_unit(rng, shape, dtype=np.float64):
    # for products: magnitudes near 1 keep the product and its derivatives O(1)
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape), dtype)


def _with_a_zero(rng, shape, dtype=np.float64):
    x = _signed_unit(rng, shape, dtype)
    x.reshape(-1)[1] = 0.0
    return x


for _name, _draw, _linear in [
    ("reduce_sum", normal, (0,)),
    ("reduce_max", distinct, ()),
    ("reduce_min", distinct, ()),
    ("reduce_prod", _signed_unit, ()),
]:
    for _axes in ((0,), (1,), (0, 2), (0, 1, 2)):
        add_case(
            _name,
            fixed(unary_sampler(_draw), (2, 3, 4)),
            params={"axes": _axes},
            tag="".join(map(str, _axes)),
            linear=_linear,
            sample=unary_sampler(_draw),
        )

add_case(
    "reduce_prod",
    fixed(unary_sampler(_with_a_zero), (3, 4)),
    params={"axes": (1,)},
    tag="with-zero",
)
add_case(
    "reduce_sum",
    fixed(unary_sampler(normal, np.float32), (3, 4)),
    params={"axes": (0,)},
    tag="f32",
    linear=(0,),
)
add_case(
    "reduce_sum",
    fixed(unary_sampler(normal, np.complex128), (3, 4)),
    params={"axes": (1,)},
    tag="c128",
    linear=(0,),
)

add_case(
    "check_index",
    lambda rng: (rng.integers(-4, 4, size=(3, 2)),),
    params={"size": 4},
    differentiable=False,
    float_output=False,
)

for _name in ("argmax", "argmin"):
    for _axis, _index_dtype in ((0, np.int64), (1, np.int32), (2, np.int64)):
        add_case(
            _name,
            fixed(unary_sampler(distinct), (2, 3, 4)),
            params={"axis": _axis, "index_dtype": np.dtype(_index_dtype)},
            tag=f"axis{_axis}",
            differentiable=False,
            float_output=False,
            sample=unary_sampler(distinct),
        )

# ---------------------------------------------------------------------------------------------
# dot_general: ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch)); bilinear

for _tag, _shapes, _dn, _dtype in [
    ("matmul", ((3, 4), (4, 5)), (((1,), (0,)), ((), ())), np.float64),
    ("vector", ((4,), (4,)), (((0,), (0,)), ((), ())), np.float64),
    ("outer", ((3,), (2,)), (((), ()), ((), ())), np.float64),
    ("batched", ((2, 3, 4), (2, 4, 5)), (((2,), (1,)), ((0,), (0,))), np.float64),
    ("batch-not-leading", ((4, 2, 3), (2, 5, 4)), (((0,), (2,)), ((1,), (0,))), np.float64),
    ("two-contract", ((2, 3, 4), (4, 3, 5)), (((1, 2), (1, 0)), ((), ())), np.float64),
    ("matvec", ((3, 4), (4,)), (((1,), (0,)), ((), ())), np.float64),
    ("matmul-f32", ((3, 4), (4, 5)), (((1,), (0,)), ((), ())), np.float32),
    ("batched-c128", ((2, 3, 4), (2, 4, 5)), (((2,), (1,)), ((0,), (0,))), np.complex128),
]:
    add_case(
        "dot_general",
        _normals(*_shapes, dtype=_dtype),
        params={"dimension_numbers": _dn},
        tag=_tag,
        linear=(0, 1),
        jointly=False,
    )

# ---------------------------------------------------------------------------------------------
# gather / scatter_add along the leading axis (repeated indices accumulate in scatter_add)


def _indices(n: int, shape, *, negative: bool = False, dtype=np.int64):
    def draw(rng):
        idx = rng.integers(0, n, shape)
        if negative:  # the same rows, counted from the end (np.take semantics)
            idx = np.where(rng.random(shape) < 0.5, idx - n, idx)
        return idx.astype(dtype)

    return draw


def _gather_operands(x_shape, idx_draw):
    return lambda rng: (normal(rng, x_shape), idx_draw(rng))


def _scatter_operands(idx_shape, rest, idx_draw):
    return lambda rng: (normal(rng, tuple(idx_shape) + tuple(rest)), idx_draw(rng))


add_case("gather", _gather_operands((5, 3), _indices(5, (4,))), tag="rows", linear=(0,))
add_case(
    "gather",
    _gather_operands((5,), _indices(5, (2, 3), dtype=np.int32)),
    tag="2d-index",
    linear=(0,),
)
add_case(
    "gather",
    _gather_operands((4, 2), _indices(4, (5,), negative=True)),
    tag="negative",
    linear=(0,),
)
add_case(
    "scatter_add",
    _scatter_operands((6,), (3,), _indices(4, (6,))),
    params={"size": 4},
    tag="rows",
    linear=(0,),
)
add_case(
    "scatter_add",
    _scatter_operands((2, 3), (), _indices(4, (2, 3), dtype=np.int32)),
    params={"size": 4},
    tag="2d-index",
    linear=(0,),
)
add_case(
    "scatter_add",
    _scatter_operands((5,), (2,), _indices(3, (5,), negative=True)),
    params={"size": 3},
    tag="negative",
    linear=(0,),
)


# ---------------------------------------------------------------------------------------------
# Cases of further primitive modules live beside this file, one file per area (cases_<area>.py,
# e.g. cases_linalg.py); each imports the helpers above and calls add_case. Loaded last, so the
# helpers exist when they run.


def _load_area_cases() -> None:
    import importlib
    import pathlib

    for path in sorted(pathlib.Path(__file__).parent.glob("cases_*.py")):
        importlib.import_module(path.stem)


_load_area_cases()
