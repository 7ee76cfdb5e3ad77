"""Rule-check cases for the linear-algebra primitives (primitives/linalg.py); loaded by
tests/cases.py.

Operands keep away from where the rules are undefined: well-conditioned and SPD matrices,
eigenvalues and singular values kept apart, triangular matrices with a dominant diagonal. The
upper triangle of cholesky/eigh operands (which they do not read) holds unrelated numbers, so the
checks also cover "only the lower triangle is read".
"""

from __future__ import annotations

import numpy as np
from cases import add_case


def orthogonal(rng, batch, n):
    q, r = np.linalg.qr(rng.standard_normal(batch + (n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def spaced(rng, batch, k, lo=1.0, gap=1.0):
    """k values per batch entry, ascending, at least ~gap/2 apart."""
    base = lo + gap * np.arange(k)
    return base + rng.uniform(-0.25 * gap, 0.25 * gap, batch + (k,))


def with_upper_junk(rng, a):
    """a's lower triangle with unrelated numbers above the diagonal (ignored by the primitive)."""
    return np.tril(a) + np.triu(rng.standard_normal(a.shape), 1)


def spd(batch, n, *, junk=True):
    def make(rng):
        v = orthogonal(rng, batch, n)
        w = spaced(rng, batch, n, lo=1.0, gap=1.0)
        a = (v * w[..., None, :]) @ np.swapaxes(v, -1, -2)
        return (with_upper_junk(rng, a) if junk else a,)

    return make


def symmetric_indefinite(batch, n):
    def make(rng):
        v = orthogonal(rng, batch, n)
        w = spaced(rng, batch, n, lo=-1.5 * (n // 2), gap=1.2)
        a = (v * w[..., None, :]) @ np.swapaxes(v, -1, -2)
        return (with_upper_junk(rng, a),)

    return make


def well_conditioned(batch, n, *, negative_det=False):
    def make(rng):
        a = rng.standard_normal(batch + (n, n)) * 0.4 + 2.0 * np.eye(n)
        if negative_det:
            a[..., 0, :] *= -1
        return (a,)

    return make


def with_rhs(make_a, k):
    def make(rng):
        (a,) = make_a(rng)
        return a, rng.standard_normal(a.shape[:-1] + (k,))

    return make


def triangular(batch, n, k):
    # the whole matrix is random: the primitive reads one triangle, and a dominant diagonal
    # keeps either triangle well conditioned (also with the diagonal replaced by ones)
    def make(rng):
        a = rng.standard_normal(batch + (n, n)) * 0.3
        a = a + np.eye(n) * rng.choice([-1.0, 1.0], batch + (n,))[..., None] * 1.5
        return a, rng.standard_normal(batch + (n, k))

    return make


def distinct_singular_values(batch, m, n):
    def make(rng):
        k = min(m, n)
        s = spaced(rng, batch, k, lo=1.0, gap=0.8)[..., ::-1]
        u = orthogonal(rng, batch, m)[..., :k]
        v = orthogonal(rng, batch, n)[..., :k]
        return ((u * s[..., None, :]) @ np.swapaxes(v, -1, -2),)

    return make


def full_rank(batch, m, n):
    def make(rng):
        k = min(m, n)
        a = rng.standard_normal(batch + (m, n)) * 0.3
        a[..., range(k), range(k)] += 2.0
        return (a,)

    return make


# ---------------------------------------------------------------------------------------------
# Solves: linear in the right-hand side

for _lower in (True, False):
    for _transpose_a in (False, True):
        for _unit in (False, True):
            add_case(
                "triangular_solve",
                triangular((), 4, 2),
                params={"lower": _lower, "transpose_a": _transpose_a, "unit_diagonal": _unit},
                tag="-".join(
                    ["lower" if _lower else "upper"] + ["T"] * _transpose_a + ["unit"] * _unit
                ),
                linear=(1,),
            )
add_case(
    "triangular_solve",
    triangular((2,), 3, 1),
    params={"lower": True, "transpose_a": False, "unit_diagonal": False},
    tag="batched",
    linear=(1,),
)

add_case("solve", with_rhs(well_conditioned((), 4), 3), tag="4x4", linear=(1,))
add_case("solve", with_rhs(well_conditioned((2,), 3), 1), tag="batched", linear=(1,))

# ---------------------------------------------------------------------------------------------
# Determinants

add_case("logabsdet", well_conditioned((), 4), tag="4x4")
add_case("logabsdet", well_conditioned((2,), 3, negative_det=True), tag="batched-negative")
add_case("det_sign", well_conditioned((), 3, negative_det=True), tag="3x3", differentiable=False)
add_case("det_sign", well_conditioned((2, 2), 2), tag="batched", differentiable=False)

# ---------------------------------------------------------------------------------------------
# Factorizations and eigendecompositions

add_case("cholesky", spd((), 4), tag="4x4")
add_case("cholesky", spd((2,), 3), tag="batched")
add_case("cholesky", spd((), 1, junk=False), tag="1x1")

add_case("eigh", spd((), 4), tag="spd")
add_case("eigh", symmetric_indefinite((), 3), tag="indefinite")
add_case("eigh", symmetric_indefinite((2,), 3), tag="batched")

for _tag, _batch, _m, _n in [
    ("tall", (), 5, 3),
    ("wide", (), 3, 4),
    ("square", (), 3, 3),
    ("batched", (2,), 4, 3),
]:
    add_case(
        "svd",
        distinct_singular_values(_batch, _m, _n),
        params={"full_matrices": False},
        tag=_tag,
    )
add_case(
    "svd", distinct_singular_values((), 3, 3), params={"full_matrices": True}, tag="square-full"
)

for _tag, _batch, _m, _n, _full in [
    ("tall", (), 5, 3, False),
    ("wide", (), 3, 5, False),
    ("square", (), 4, 4, False),
    ("batched", (2,), 4, 3, False),
    ("wide-complete", (), 2, 4, True),
]:
    add_case("qr", full_rank(_batch, _m, _n), params={"full_matrices": _full}, tag=_tag)
