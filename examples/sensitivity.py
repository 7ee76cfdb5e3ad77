"""Sensitivity analysis of an ODE solution with `jacfwd`, through a fixed-step RK4 solver.

The solver is plain code: classic Runge-Kutta 4 steps, looped with `functrans.lax.scan`.
Differentiating it gives the derivative of the *computed* trajectory with respect to the
parameters (discretise-then-differentiate). With few parameters (D) and a whole trajectory of
outputs (M), forward mode needs D passes and reverse mode M, so `jacfwd` is the right tool.

1. Exponential decay y' = -k y, y(0) = y0: compared with the exact sensitivities.
2. Lotka-Volterra predator-prey with 4 parameters: jacfwd vs jacrev vs finite differences, and
   which parameter moves the trajectory most.

Run from the repository root:  python examples/sensitivity.py
"""

import time

import numpy as np

import functrans as ft
import functrans.numpy as fnp
from functrans import lax


def rk4_solve(rhs, y0, theta, dt, steps):
    """Trajectory y(dt), ..., y(steps dt) of y' = rhs(y, theta), shape (steps,) + y0.shape."""

    def step(y, _):
        k1 = rhs(y, theta)
        k2 = rhs(y + 0.5 * dt * k1, theta)
        k3 = rhs(y + 0.5 * dt * k2, theta)
        k4 = rhs(y + dt * k3, theta)
        y_next = y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return y_next, y_next

    _, trajectory = lax.scan(step, y0, None, length=steps)
    return trajectory


# 1. Exponential decay: y(t) = y0 exp(-k t); dy/dk = -t y, dy/dy0 = exp(-k t).
dt, steps = 0.01, 200
t = dt * np.arange(1, steps + 1)


def decay(params):
    k, y0 = params[0], params[1]
    return rk4_solve(lambda y, k: -k * y, y0, k, dt, steps)


params = np.array([0.7, 2.0])
J = ft.jacfwd(decay)(params)  # (200 time points, 2 parameters)
y = params[1] * np.exp(-params[0] * t)
exact = np.stack([-t * y, np.exp(-params[0] * t)], axis=1)
print(f"decay: Jacobian {J.shape}, max error vs exact sensitivities {np.abs(J - exact).max():.1e}")
np.testing.assert_allclose(J, exact, rtol=1e-9, atol=1e-12)


# 2. Lotka-Volterra: prey x, predators y; theta = (alpha, beta, delta, gamma).
def lotka_volterra(state, theta):
    x, y = state[0], state[1]
    alpha, beta, delta, gamma = theta[0], theta[1], theta[2], theta[3]
    return fnp.stack([alpha * x - beta * x * y, delta * x * y - gamma * y])


y0 = np.array([10.0, 5.0])
theta = np.array([1.1, 0.4, 0.1, 0.4])
dt, steps = 0.05, 200  # t in (0, 10]


def trajectory(theta):
    return rk4_solve(lotka_volterra, y0, theta, dt, steps)  # (200, 2): M = 400 outputs


start = time.perf_counter()
J_fwd = ft.jacfwd(trajectory)(theta)
t_fwd, start = time.perf_counter() - start, time.perf_counter()
J_rev = ft.jacrev(trajectory)(theta)
t_rev = time.perf_counter() - start
print(f"\nLotka-Volterra: Jacobian {J_fwd.shape} (time, species, parameter)")
print(f"  jacfwd {t_fwd * 1e3:7.1f} ms   (D = 4 tangents)")
print(f"  jacrev {t_rev * 1e3:7.1f} ms   (M = {2 * steps} cotangents)")
np.testing.assert_allclose(J_fwd, J_rev, rtol=1e-8, atol=1e-8)

# Central differences of the same solver agree to their own accuracy.
h = 1e-6
J_fd = np.stack(
    [(trajectory(theta + h * e) - trajectory(theta - h * e)) / (2 * h) for e in np.eye(4)], axis=-1
)
rel = np.abs(J_fwd - J_fd).max() / np.abs(J_fwd).max()
print(f"  max relative difference to central differences: {rel:.1e}")
assert rel < 1e-6, rel

names = ["alpha (prey birth)", "beta (predation)", "delta (pred. birth)", "gamma (pred. death)"]
final = J_fwd[-1]  # d state(t = 10) / d theta
print("\nsensitivity of the state at t = 10 to each parameter:")
for name, column in zip(names, final.T, strict=True):
    print(f"  {name:24s} d prey = {column[0]:+9.2f}   d predators = {column[1]:+9.2f}")
overall = np.sqrt((J_fwd**2).sum(axis=(0, 1)))
print(f"most influential over the whole trajectory: {names[int(np.argmax(overall))]}")
