"""Per-example gradients of logistic regression: vmap(grad) vs a Python loop vs hand-written NumPy.

The loss of one example is written once, for one example. `vmap(grad(loss), in_axes=(None, 0, 0))`
shares the weights across the batch and maps over the rows of X and y: one vectorised pass, no
Python loop. The script checks it against a loop of `grad` and against the closed form
(sigmoid(x.w) - y) x, and prints how long each takes.

Run from the repository root:  python examples/per_example_gradients.py
"""

import time

import numpy as np

import functrans as ft
import functrans.numpy as fnp

N, D = 1000, 100
rng = np.random.default_rng(0)
X = rng.normal(size=(N, D)) / np.sqrt(D)
w = rng.normal(size=D)
y = (rng.random(N) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)


def loss(w, x, y):
    """Binary cross-entropy of one example, with z = x.w: log(1 + e^-z) + (1 - y) z."""
    z = fnp.dot(x, w)
    return fnp.log1p(fnp.exp(-z)) + (1.0 - y) * z


per_example_grad = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))
grad_one = ft.grad(loss)


def with_vmap():
    return per_example_grad(w, X, y)


def with_loop():
    return np.stack([grad_one(w, X[i], y[i]) for i in range(N)])


def by_hand():
    p = 1.0 / (1.0 + np.exp(-X @ w))
    return (p - y)[:, None] * X


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


g_vmap, g_loop, g_hand = with_vmap(), with_loop(), by_hand()
assert g_vmap.shape == (N, D), g_vmap.shape
err_loop = np.abs(g_vmap - g_loop).max()
err_hand = np.abs(g_vmap - g_hand).max()
print(f"per-example gradients: {g_vmap.shape}")
print(f"max |vmap(grad) - loop of grad|  = {err_loop:.2e}")
print(f"max |vmap(grad) - NumPy formula| = {err_hand:.2e}")
assert err_loop < 1e-12 and err_hand < 1e-12

t_vmap = best_time(with_vmap, 10)
t_loop = best_time(with_loop, 3)
t_hand = best_time(by_hand, 10)
print(f"\nbest of repeats (N={N}, D={D}):")
print(f"  vmap(grad(loss))      {t_vmap * 1e3:8.2f} ms")
print(f"  loop of grad(loss)    {t_loop * 1e3:8.2f} ms   ({t_loop / t_vmap:.0f}x vmap)")
print(f"  hand-written NumPy    {t_hand * 1e3:8.2f} ms")
