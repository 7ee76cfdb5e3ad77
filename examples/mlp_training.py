"""Train a small MLP classifier with SGD and `jit(value_and_grad(loss))`.

The data are two interleaved half-moons in 2-D (synthetic, with noise). The parameters are a
pytree (a list of dicts of arrays); `value_and_grad` returns the loss and a gradient with the same
structure, and `jit` traces the whole forward-and-backward pass once, on the first step, then
runs it as generated NumPy code. The script prints the loss as it trains and checks that the
classifier learned the moons.

Run from the repository root:  python examples/mlp_training.py
"""

import time

import numpy as np

import functrans as ft
import functrans.numpy as fnp
from functrans.tree_util import tree_map

rng = np.random.default_rng(0)


def make_moons(n, noise=0.1):
    t = rng.uniform(0, np.pi, size=n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    points = np.stack([x, y], axis=1) + noise * rng.normal(size=(n, 2))
    return points, upper.astype(np.float64)


def init_params(sizes):
    return [
        {"w": rng.normal(size=(m, n)) * np.sqrt(2.0 / m), "b": np.zeros(n)}
        for m, n in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def logits(params, x):
    for layer in params[:-1]:
        x = fnp.tanh(x @ layer["w"] + layer["b"])
    return (x @ params[-1]["w"] + params[-1]["b"])[..., 0]


def loss(params, x, y):
    """Mean binary cross-entropy, written stably: log(1 + e^z) - y z."""
    z = logits(params, x)
    return fnp.mean(fnp.logaddexp(0.0, z) - y * z)


@ft.jit
def sgd_step(params, x, y, lr):
    value, grads = ft.value_and_grad(loss)(params, x, y)
    return value, tree_map(lambda p, g: p - lr * g, params, grads)


def accuracy(params, x, y):
    return float(np.mean((logits(params, x) > 0) == (y > 0.5)))


x_train, y_train = make_moons(512)
x_test, y_test = make_moons(512)
params = init_params([2, 32, 32, 1])
batch, lr, epochs = 64, 0.3, 60

start = time.perf_counter()
losses = []
for epoch in range(epochs):
    order = rng.permutation(len(x_train))
    for i in range(0, len(x_train), batch):
        idx = order[i : i + batch]
        value, params = sgd_step(params, x_train[idx], y_train[idx], lr)
        losses.append(float(value))
    if epoch % 10 == 0 or epoch == epochs - 1:
        print(
            f"epoch {epoch:3d}  train loss {np.mean(losses[-8:]):.4f}  "
            f"test accuracy {accuracy(params, x_test, y_test):.3f}"
        )
elapsed = time.perf_counter() - start

test_acc = accuracy(params, x_test, y_test)
print(
    f"\n{len(losses)} SGD steps in {elapsed:.2f} s ({sgd_step.trace_count} trace); "
    f"test accuracy {test_acc:.3f}"
)
assert sgd_step.trace_count == 1  # one signature (batch 64): traced once, replayed afterwards
assert np.mean(losses[-8:]) < 0.25 * np.mean(losses[:8]), (losses[:8], losses[-8:])
assert test_acc > 0.95, test_acc

# The jitted gradient is the plain gradient.
g_jit = ft.jit(ft.grad(loss))(params, x_test, y_test)
g_eager = ft.grad(loss)(params, x_test, y_test)
for a, b in zip(g_jit, g_eager, strict=True):
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-10, atol=1e-14)
