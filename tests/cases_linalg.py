"""Rule-check cases for the linear-algebra primitives (primitives/linalg.py); loaded by
tests/cases.py.

Operands keep away from where the rules are undefined: well-conditioned and SPD matrices,
eigenvalues and singular values kept apart, triangular matrices with a dominant diagonal. The
upper triangle of cholesky/eigh operands (which they do not read) holds unrelated numbers, so the
checks also cover "only the lower triangle is read"; complex ones also get an imaginary part on
the diagonal, which is not read either.

Complex (complex128) cases cover every primitive whose outputs are unique functions of the
input. The eigenvectors of eigh and the singular vectors of svd are not: for complex matrices each
is defined up to a phase, LAPACK fixes the phase one way and the JVP another (the standard gauge),
so a finite difference of the vectors cannot agree with the JVP; their complex rules are checked
on gauge-invariant functions in tests/test_numpy_linalg.py.
"""

from __future__ import annotations

import numpy as np
from cases import add_case


def normal(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x, dtype)


def orthogonal(rng, batch, n, dtype=np.float64):
    """Orthogonal (unitary, for a complex dtype) matrices."""
    q, r = np.linalg.qr(normal(rng, batch + (n, n), dtype))
    d = np.diagonal(r, axis1=-2, axis2=-1)
    return q * (d / np.abs(d))[..., None, :]


def spaced(rng, batch, k, lo=1.0, gap=1.0):
    """k values per batch entry, ascending, at least ~gap/2 apart."""
    base = lo + gap * np.arange(k)
    return base + rng.uniform(-0.25 * gap, 0.25 * gap, batch + (k,))


def with_junk(rng, a, *, lower=True):
    """a's lower (upper) triangle with unrelated numbers in the other one, and for a complex a
    an unrelated imaginary part on the diagonal (neither is read by the primitive)."""
    junk = normal(rng, a.shape, a.dtype)
    a = np.tril(a) + np.triu(junk, 1) if lower else np.triu(a) + np.tril(junk, -1)
    if np.iscomplexobj(a):
        a = a + 1j * np.eye(a.shape[-1]) * rng.standard_normal(a.shape[:-1])[..., None]
    return a


def hermitian(v, w):
    """V diag(w) V^H."""
    return (v * w[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))


def spd(batch, n, *, junk=True, dtype=np.float64):
    def make(rng):
        v = orthogonal(rng, batch, n, dtype)
        a = hermitian(v, spaced(rng, batch, n, lo=1.0, gap=1.0))
        return (with_junk(rng, a) if junk else a,)

    return make


def symmetric_indefinite(batch, n, *, lower=True, dtype=np.float64):
    def make(rng):
        v = orthogonal(rng, batch, n, dtype)
        a = hermitian(v, spaced(rng, batch, n, lo=-1.5 * (n // 2), gap=1.2))
        return (with_junk(rng, a, lower=lower),)

    return make


def well_conditioned(batch, n, *, negative_det=False, dtype=np.float64):
    def make(rng):
        a = normal(rng, batch + (n, n), dtype) * 0.4 + 2.0 * np.eye(n)
        if negative_det:
            a[..., 0, :] *= -1
        return (a,)

    return make


def with_rhs(make_a, k):
    def make(rng):
        (a,) = make_a(rng)
        return a, normal(rng, a.shape[:-1] + (k,), a.dtype)

    return make


def triangular(batch, n, k, dtype=np.float64):
    # the whole matrix is random: the primitive reads one triangle, and a dominant diagonal
    # keeps either triangle well conditioned (also with the diagonal replaced by ones)
    def make(rng):
        a = normal(rng, batch + (n, n), dtype) * 0.3
        a = a + np.eye(n) * rng.choice([-1.0, 1.0], batch + (n,))[..., None] * 1.5
        return a, normal(rng, batch + (n, k), dtype)

    return make


def distinct_singular_values(batch, m, n):
    def make(rng):
        k = min(m, n)
        s = spaced(rng, batch, k, lo=1.0, gap=0.8)[..., ::-1]
        u = orthogonal(rng, batch, m)[..., :k]
        v = orthogonal(rng, batch, n)[..., :k]
        return ((u * s[..., None, :]) @ np.swapaxes(v, -1, -2),)

    return make


def full_rank(batch, m, n, dtype=np.float64):
    def make(rng):
        k = min(m, n)
        a = normal(rng, batch + (m, n), dtype) * 0.3
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

C128 = np.complex128
for _lower, _transpose_a in [(True, False), (False, True)]:
    add_case(
        "triangular_solve",
        triangular((), 3, 2, C128),
        params={"lower": _lower, "transpose_a": _transpose_a, "unit_diagonal": False},
        tag="c128-" + ("lower" if _lower else "upper-T"),
        linear=(1,),
    )
add_case("solve", with_rhs(well_conditioned((2,), 3, dtype=C128), 2), tag="c128", linear=(1,))

# ---------------------------------------------------------------------------------------------
# Determinants

add_case("logabsdet", well_conditioned((), 4), tag="4x4")
add_case("logabsdet", well_conditioned((2,), 3, negative_det=True), tag="batched-negative")
add_case("det_sign", well_conditioned((), 3, negative_det=True), tag="3x3", differentiable=False)
add_case("det_sign", well_conditioned((2, 2), 2), tag="batched", differentiable=False)
# complex: log|det| is real; the sign lies on the unit circle and moves with the matrix
add_case("logabsdet", well_conditioned((), 3, dtype=C128), tag="c128")
add_case("logabsdet", well_conditioned((2,), 3, dtype=C128), tag="c128-batched")
add_case("det_sign", well_conditioned((), 3, dtype=C128), tag="c128")
add_case("det_sign", well_conditioned((2,), 2, dtype=C128), tag="c128-batched")

# ---------------------------------------------------------------------------------------------
# Factorizations and eigendecompositions

add_case("cholesky", spd((), 4), tag="4x4")
add_case("cholesky", spd((2,), 3), tag="batched")
add_case("cholesky", spd((), 1, junk=False), tag="1x1")

add_case("cholesky", spd((), 4, dtype=C128), tag="c128")
add_case("cholesky", spd((2,), 3, dtype=C128), tag="c128-batched")

add_case("eigh", spd((), 4), params={"lower": True}, tag="spd")
add_case("eigh", symmetric_indefinite((), 3), params={"lower": True}, tag="indefinite")
add_case("eigh", symmetric_indefinite((), 3, lower=False), params={"lower": False}, tag="upper")
add_case("eigh", symmetric_indefinite((2,), 3), params={"lower": True}, tag="batched")

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
    add_case(
        "qr",
        full_rank(_batch, _m, _n, C128),
        params={"full_matrices": _full},
        tag=f"c128-{_tag}",
    )
