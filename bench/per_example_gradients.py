"""Per-example gradients of logistic regression (N=1000, D=100): vmap(grad) against a Python
loop of grad and against the hand-vectorised NumPy formula (the physical limit)."""

from __future__ import annotations

import harness  # noqa: F401  (sets one BLAS thread before NumPy loads)
import numpy as np

import functrans as ft
import functrans.numpy as fnp

N, D = 1000, 100


def loss(w, x, y):
    logit = fnp.dot(x, w)
    # log(1 + exp(-y * logit)), y in {-1, +1}
    return fnp.log1p(fnp.exp(-y * logit))


def numpy_per_example(w, X, Y):
    z = X @ w
    s = -Y / (1.0 + np.exp(Y * z))  # d/dz log(1 + exp(-y z))
    return s[:, None] * X


def main():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D))
    Y = np.sign(rng.normal(size=N))
    w = rng.normal(size=D) * 0.1
    per_example = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))
    g = ft.grad(loss)
    fns = {
        "numpy (hand-vectorised)": lambda: numpy_per_example(w, X, Y),
        "functrans vmap(grad)": lambda: per_example(w, X, Y),
        "functrans loop of grad": lambda: np.stack([g(w, X[i], Y[i]) for i in range(N)]),
    }
    harness.check_close({k: f() for k, f in fns.items()})
    times = harness.time_interleaved(fns, rounds=5)
    base = times["numpy (hand-vectorised)"]
    print(f"per-example gradients, N={N}, D={D}  ({harness.machine()})")
    for name, t in times.items():
        print(f"  {name:28s} {t * 1e3:9.3f} ms   {t / base:7.2f}x numpy")
    loop, vm = times["functrans loop of grad"], times["functrans vmap(grad)"]
    print(f"  vmap(grad) is {loop / vm:.0f}x faster than the loop")
    return times


if __name__ == "__main__":
    main()
