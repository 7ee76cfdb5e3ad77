"""Sensitivity of an ODE solution, integrated with lax.scan, in both modes.

A chain of N masses joined by springs, x'' = -k^2 (L x) - c x' + a u(t) e_0 (L: the chain's
Laplacian), is integrated with RK4 steps in `lax.scan`. Two questions, two modes:
- how the observed motion of the last mass (T outputs) depends on 3 parameters (k, c, a): few
  inputs, many outputs, so forward mode (jacfwd: 3 JVPs) beats reverse mode (jacrev: T VJPs);
- how a scalar loss depends on the T-sample drive u(t): many inputs, one output, so reverse mode
  (grad: one VJP) beats forward mode (jacfwd: T JVPs).
Both are checked against central differences; the timings show the selection rule.
"""

import time

import numpy as np

import functrans as ft
import functrans.numpy as fnp
from functrans import lax

N, STEPS, DT = 1000, 40, 0.05


def laplacian(x):
    # (L x)_i = 2 x_i - x_{i-1} - x_{i+1}, with free ends
    left = fnp.concatenate([x[:1], x[:-1]])
    right = fnp.concatenate([x[1:], x[-1:]])
    return 2.0 * x - left - right


def simulate(params, drive):
    k, c, a = params[0], params[1], params[2]
    kick = np.zeros(N)
    kick[0] = 1.0

    def field(x, v, u):
        return v, -(k**2) * laplacian(x) - c * v + a * u * kick

    def rk4(state, u):
        x, v = state
        k1x, k1v = field(x, v, u)
        k2x, k2v = field(x + 0.5 * DT * k1x, v + 0.5 * DT * k1v, u)
        k3x, k3v = field(x + 0.5 * DT * k2x, v + 0.5 * DT * k2v, u)
        k4x, k4v = field(x + DT * k3x, v + DT * k3v, u)
        x = x + DT / 6.0 * (k1x + 2 * k2x + 2 * k3x + k4x)
        v = v + DT / 6.0 * (k1v + 2 * k2v + 2 * k3v + k4v)
        return (x, v), x[-1]

    start = (np.zeros(N), np.zeros(N))
    _, last_mass = lax.scan(rk4, start, drive)
    return last_mass  # (STEPS,)


def loss(drive, params):
    return fnp.sum(simulate(params, drive) ** 2) + 1e-3 * fnp.sum(drive**2)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def central_difference(f, x, eps=1e-5):
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1)


def main():
    params = np.array([2.0, 0.3, 1.0])
    drive = np.sin(np.linspace(0.0, 6.0, STEPS))

    # 1. the observed motion's sensitivity to 3 parameters: forward mode wins
    jf, t_fwd = timed(ft.jacfwd(lambda p: simulate(p, drive)), params)
    jr, t_rev = timed(ft.jacrev(lambda p: simulate(p, drive)), params)
    assert jf.shape == (STEPS, 3)
    np.testing.assert_allclose(jf, jr, rtol=1e-9, atol=1e-12)
    fd = central_difference(lambda p: simulate(p, drive), params)
    np.testing.assert_allclose(jf, fd, rtol=1e-4, atol=1e-9)
    print(
        f"d motion / d params {jf.shape}: jacfwd {t_fwd:.2f} s, jacrev {t_rev:.2f} s "
        f"(3 inputs, {STEPS} outputs: forward mode does 3 passes, reverse {STEPS})"
    )

    # 2. the gradient of a scalar loss with respect to the drive: reverse mode wins
    g, t_grad = timed(ft.grad(loss), drive, params)
    gf, t_jacfwd = timed(ft.jacfwd(loss), drive, params)
    np.testing.assert_allclose(g, gf, rtol=1e-9, atol=1e-12)
    probe = np.zeros(STEPS)
    probe[::7] = 1.0  # a directional finite difference along a few drive samples
    fd_dir = (loss(drive + 1e-5 * probe, params) - loss(drive - 1e-5 * probe, params)) / 2e-5
    np.testing.assert_allclose(g @ probe, fd_dir, rtol=1e-5)
    print(
        f"d loss / d drive {g.shape}: grad {t_grad:.2f} s, jacfwd {t_jacfwd:.2f} s "
        f"({STEPS} inputs, 1 output: reverse mode does 1 pass, forward {STEPS})"
    )
    print("derivatives agree between modes and with central differences")


if __name__ == "__main__":
    main()
