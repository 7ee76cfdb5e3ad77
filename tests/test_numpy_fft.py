"""functrans.numpy.fft against numpy.fft: values and dtypes for every transform with n/axis/axes/
s/norm arguments; derivatives (complex in and out) against central differences in both modes to
second order; jacfwd == jacrev; vmap equals a loop; jit equals eager; np.fft dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import functrans as ft
import functrans.numpy as fnp
from functrans.testing import check_grads

NORMS = [None, "backward", "ortho", "forward"]


def _real(rng, shape, dtype=np.float64):
    return np.asarray(rng.standard_normal(shape), dtype)


def _complex(rng, shape, dtype=np.complex128):
    return np.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), dtype)


def _same(got, want, tol=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# Values

ONE_AXIS = [
    ("fft", {}),
    ("fft", {"n": 7}),
    ("fft", {"n": 3, "axis": 0}),
    ("ifft", {"axis": 1}),
    ("ifft", {"n": 8, "axis": -2}),
    ("rfft", {}),
    ("rfft", {"n": 4, "axis": 0}),
    ("rfft", {"n": 9}),
    ("irfft", {}),
    ("irfft", {"n": 5}),
    ("irfft", {"n": 10, "axis": 1}),
    ("irfft", {"n": 1}),
]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name,kw", ONE_AXIS, ids=[f"{n}{k}" for n, k in ONE_AXIS])
def test_one_axis_transforms_match_numpy(name, kw, norm):
    rng = np.random.default_rng(0)
    x = _real(rng, (3, 4, 5)) if name == "rfft" else _complex(rng, (3, 4, 5))
    _same(getattr(fnp.fft, name)(x, norm=norm, **kw), getattr(np.fft, name)(x, norm=norm, **kw))


SEVERAL_AXES = [
    ("fft2", {}),
    ("ifft2", {"s": (2, 6)}),
    ("fft2", {"axes": (0, 2)}),
    ("fftn", {}),
    ("fftn", {"axes": (2, 0)}),
    ("ifftn", {"s": (3, 2), "axes": (0, 2)}),
    ("ifftn", {"s": (2, -1, 4), "axes": (0, 1, 2)}),  # -1 keeps the input length (NumPy 2)
    ("fftn", {"axes": (1, 1)}),  # a repeated axis is transformed twice
    ("rfft2", {}),
    ("rfft2", {"s": (3, 7)}),
    ("irfft2", {}),
    ("irfft2", {"s": (5, 7), "axes": (0, 1)}),
    ("rfftn", {}),
    ("rfftn", {"axes": (2, 0)}),
    ("irfftn", {}),
    ("irfftn", {"s": (4, 6), "axes": (1, 0)}),
]


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("name,kw", SEVERAL_AXES, ids=[f"{n}{k}" for n, k in SEVERAL_AXES])
def test_several_axes_transforms_match_numpy(name, kw, norm):
    rng = np.random.default_rng(1)
    x = _real(rng, (3, 4, 5)) if name.startswith("rfft") else _complex(rng, (3, 4, 5))
    _same(getattr(fnp.fft, name)(x, norm=norm, **kw), getattr(np.fft, name)(x, norm=norm, **kw))


def test_dtypes_follow_numpy():
    rng = np.random.default_rng(2)
    x32, x64 = _real(rng, (6,), np.float32), _real(rng, (6,))
    ints = np.arange(6)
    for name, x in [
        ("fft", x32),
        ("fft", x64),
        ("fft", ints),
        ("rfft", x32),
        ("rfft", ints),
        ("ifft", _complex(rng, (4,), np.complex64)),
        ("irfft", _complex(rng, (4,), np.complex64)),
        ("irfft", x64),
    ]:
        got, want = getattr(fnp.fft, name)(x), getattr(np.fft, name)(x)
        _same(got, want, 1e-5 if want.dtype in (np.complex64, np.float32) else 1e-12)


def test_shifts_and_frequencies_match_numpy():
    rng = np.random.default_rng(3)
    x = _real(rng, (4, 5, 3))
    for axes in (None, 0, 1, (0, 2), (-1,)):
        _same(fnp.fft.fftshift(x, axes=axes), np.fft.fftshift(x, axes=axes))
        _same(fnp.fft.ifftshift(x, axes=axes), np.fft.ifftshift(x, axes=axes))
    _same(fnp.fft.ifftshift(fnp.fft.fftshift(x)), x)
    _same(fnp.fft.fftfreq(5, d=0.1), np.fft.fftfreq(5, d=0.1))
    _same(fnp.fft.rfftfreq(6), np.fft.rfftfreq(6))


def test_argument_errors():
    with pytest.raises(TypeError, match="complex"):
        fnp.fft.rfft(np.ones(4, complex))
    with pytest.raises(ValueError, match="norm"):
        fnp.fft.fft(np.ones(4), norm="twice")
    with pytest.raises(ValueError, match="data points"):
        fnp.fft.fft(np.ones(4), n=0)
    with pytest.raises(ValueError, match="different lengths"):
        fnp.fft.fftn(np.ones((2, 2)), s=(2, 2), axes=(0,))


@given(
    shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_axes_and_lengths_match_numpy(shape, data, seed):
    rng = np.random.default_rng(seed)
    nd = len(shape)
    axes = data.draw(
        st.lists(st.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda a: a % nd)
    )
    s = data.draw(st.none() | st.lists(st.integers(1, 6), min_size=len(axes), max_size=len(axes)))
    norm = data.draw(st.sampled_from(NORMS))
    name = data.draw(st.sampled_from(["fftn", "ifftn", "rfftn", "irfftn"]))
    x = _real(rng, shape) if name == "rfftn" else _complex(rng, shape)
    if name == "irfftn" and s is None and shape[axes[-1] % nd] == 1:
        s = [shape[a % nd] for a in axes[:-1]] + [1]  # the default length 2 * (1 - 1) is invalid
    _same(
        getattr(fnp.fft, name)(x, s=s, axes=axes, norm=norm),
        getattr(np.fft, name)(x, s=s, axes=axes, norm=norm),
        1e-10,
    )


# ---------------------------------------------------------------------------------------------
# Derivatives, vmap, jit

DIFF = [
    ("fft", lambda x: fnp.fft.fft(x, n=6, axis=0, norm="ortho"), "complex"),
    ("ifft", lambda x: fnp.fft.ifft(x, axis=1), "complex"),
    ("fft-of-real", lambda x: fnp.fft.fft(x, n=3), "real"),
    ("rfft", lambda x: fnp.fft.rfft(x, norm="forward"), "real"),
    ("rfft-odd", lambda x: fnp.fft.rfft(x, n=5, axis=0), "real"),
    ("irfft", lambda x: fnp.fft.irfft(x), "complex"),
    ("irfft-odd", lambda x: fnp.fft.irfft(x, n=7, axis=0, norm="ortho"), "complex"),
    ("fft2", lambda x: fnp.fft.fft2(x, s=(3, 5)), "complex"),
    ("ifftn", lambda x: fnp.fft.ifftn(x, axes=(1, 0)), "complex"),
    ("rfft2", lambda x: fnp.fft.rfft2(x), "real"),
    ("irfftn", lambda x: fnp.fft.irfftn(x, s=(4, 5)), "complex"),
    ("shifts", lambda x: fnp.fft.fftshift(fnp.fft.ifftshift(x, axes=0) * 2.0), "real"),
]


@pytest.mark.parametrize("name,f,kind", DIFF, ids=[d[0] for d in DIFF])
def test_derivatives_both_modes_to_second_order(name, f, kind):
    rng = np.random.default_rng(4)
    x = _real(rng, (4, 3)) if kind == "real" else _complex(rng, (4, 3))
    check_grads(f, (x,), order=2)
    _same(ft.jit(f)(x), f(x))


@pytest.mark.parametrize("name,f,kind", DIFF, ids=[d[0] for d in DIFF])
def test_vmap_matches_loop(name, f, kind):
    rng = np.random.default_rng(5)
    xs = [_real(rng, (4, 3)) if kind == "real" else _complex(rng, (4, 3)) for _ in range(3)]
    want = np.stack([np.asarray(f(x)) for x in xs])
    _same(ft.vmap(f)(np.stack(xs)), want)
    _same(ft.vmap(f, in_axes=2)(np.stack(xs, axis=2)), want)
    _same(ft.vmap(f, in_axes=1, out_axes=-1)(np.stack(xs, axis=1)), np.moveaxis(want, 0, -1))


def test_real_pipeline_jacobians_and_hessian():
    """A real-to-real spectral filter: jacfwd == jacrev, equal to the explicit matrix."""
    rng = np.random.default_rng(6)
    h = _complex(rng, (4,))

    def smooth(x):
        return fnp.fft.irfft(fnp.fft.rfft(x, axis=0) * h[:, None], n=6, axis=0)

    x = _real(rng, (6, 2))
    jf, jr = ft.jacfwd(smooth)(x), ft.jacrev(smooth)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
    basis = np.eye(12).reshape(12, 6, 2)
    explicit = np.stack(
        [np.fft.irfft(np.fft.rfft(e, axis=0) * h[:, None], n=6, axis=0) for e in basis]
    )
    np.testing.assert_allclose(
        jf.reshape(12, 12), explicit.reshape(12, 12).T, rtol=1e-12, atol=1e-12
    )

    def energy(x):  # Parseval: sum |X|^2 = N sum x^2, through the complex spectrum
        spec = fnp.fft.fft(x)
        return fnp.sum(fnp.real(spec * fnp.conj(spec)))

    y = _real(rng, (5,))
    np.testing.assert_allclose(ft.grad(energy)(y), 2 * 5 * y, rtol=1e-12)
    np.testing.assert_allclose(ft.hessian(energy)(y), 10 * np.eye(5), rtol=1e-12, atol=1e-12)


def test_irfft_ignores_imaginary_parts_of_zero_and_nyquist_bins():
    rng = np.random.default_rng(7)
    z = _complex(rng, (4,))
    u = _real(rng, (6,))
    (ct,) = ft.vjp(fnp.fft.irfft, z)[1](u)
    assert ct[0].imag == 0 and ct[-1].imag == 0
    # and the forward derivative along those directions is zero
    t = np.zeros(4, complex)
    t[[0, 3]] = 1j
    assert np.all(ft.jvp(fnp.fft.irfft, (z,), (t,))[1] == 0)


def test_numpy_fft_calls_are_traced():
    rng = np.random.default_rng(8)
    x = _real(rng, (8,))

    def f(x):
        return np.sum(np.fft.irfft(np.fft.rfft(x) * 0.5, n=8) ** 2)

    np.testing.assert_allclose(ft.grad(f)(x), 0.5 * x, rtol=1e-12)
    z = _complex(rng, (3, 4))
    _same(ft.jit(lambda z: np.fft.fftn(np.fft.fftshift(z)))(z), np.fft.fftn(np.fft.fftshift(z)))
