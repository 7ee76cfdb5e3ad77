"""More rule-check cases of dot_general (declared in tests/cases.py): complex operands, whose
transpose pairs the cotangent with the other operand without conjugation (JAX's convention for
linear maps), and single-precision complex."""

from __future__ import annotations

import numpy as np
from cases import add_case, normal

for _tag, _shapes, _dn, _dtype in [
    ("matmul-c128", ((3, 4), (4, 2)), (((1,), (0,)), ((), ())), np.complex128),
    ("two-contract-c128", ((2, 3, 4), (4, 3, 5)), (((1, 2), (1, 0)), ((), ())), np.complex128),
    ("outer-c128", ((3,), (2, 2)), (((), ()), ((), ())), np.complex128),
    ("batch-not-leading-c128", ((4, 2, 3), (2, 5, 4)), (((0,), (2,)), ((1,), (0,))), np.complex128),
    ("vector-c64", ((5,), (5,)), (((0,), (0,)), ((), ())), np.complex64),
]:
    add_case(
        "dot_general",
        lambda rng, _shapes=_shapes, _dtype=_dtype: tuple(normal(rng, s, _dtype) for s in _shapes),
        params={"dimension_numbers": _dn},
        tag=_tag,
        linear=(0, 1),
        jointly=False,
    )
