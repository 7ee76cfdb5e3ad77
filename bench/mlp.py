"""Workload 2, MLP loss gradient: a 784-512-512-10 tanh MLP with softmax cross-entropy, batch
256, float64. value_and_grad on functrans eager and jit, autograd, JAX eager and jit and
torch.func, against a hand-written NumPy forward + backward pass; also value_and_grad over the
forward pass alone."""

from __future__ import annotations

from functools import partial

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

SIZES = (784, 512, 512, 10)
BATCH = 256


def loss(params, x, y, m):
    """Mean softmax cross-entropy, written once against a NumPy-like module `m`."""
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = m.tanh(m.dot(x, w1) + b1)
    h2 = m.tanh(m.dot(h1, w2) + b2)
    logits = m.dot(h2, w3) + b3
    shift = logits - m.max(logits, axis=1, keepdims=True)
    lse = m.log(m.sum(m.exp(shift), axis=1))
    return m.mean(lse - m.sum(shift * y, axis=1))


def numpy_forward(params, x, y):
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    logits = h2 @ w3 + b3
    shift = logits - logits.max(axis=1, keepdims=True)
    return np.mean(np.log(np.exp(shift).sum(axis=1)) - (shift * y).sum(axis=1))


def numpy_value_and_grad(params, x, y):
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    logits = h2 @ w3 + b3
    shift = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shift)
    s = e.sum(axis=1)
    value = np.mean(np.log(s) - (shift * y).sum(axis=1))
    d3 = (e / s[:, None] - y) / x.shape[0]  # softmax - onehot (the max shift cancels)
    g3 = (h2.T @ d3, d3.sum(0))
    d2 = (d3 @ w3.T) * (1.0 - h2 * h2)
    g2 = (h1.T @ d2, d2.sum(0))
    d1 = (d2 @ w2.T) * (1.0 - h1 * h1)
    g1 = (x.T @ d1, d1.sum(0))
    return value, (g1, g2, g3)


def torch_value_and_grad(tf, m):
    """torch.func.grad_and_value, its (grad, value) turned into (value, grad)."""
    gv = tf.grad_and_value(partial(loss, m=m))
    return lambda p, x, y: gv(p, x, y)[::-1]


def _flat(result):
    value, grads = result
    return np.concatenate([np.ravel(value)] + [np.ravel(g) for g in _leaves(grads)])


def _leaves(tree):
    return ft.tree_util.tree_leaves(tree)


def run(quick: bool = False) -> list[harness.Figure]:
    rng = np.random.default_rng(0)
    batch = 32 if quick else BATCH
    params = tuple(
        (rng.normal(size=(a, b)) / np.sqrt(a), np.zeros(b)) for a, b in zip(SIZES, SIZES[1:])
    )
    x = rng.normal(size=(batch, SIZES[0]))
    y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], batch)]
    vg = ft.value_and_grad(lambda p, x, y: loss(p, x, y, fnp))
    jvg = ft.jit(vg)
    jfwd = ft.jit(lambda p, x, y: loss(p, x, y, fnp))
    fns = {
        "numpy value_and_grad (hand)": lambda: numpy_value_and_grad(params, x, y),
        "functrans value_and_grad (eager)": lambda: vg(params, x, y),
        "functrans jit(value_and_grad)": lambda: jvg(params, x, y),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        agvg = ag.value_and_grad(lambda p, x, y: loss(p, x, y, anp))
        fns["autograd value_and_grad"] = lambda: agvg(params, x, y)
    fns |= peers.jax_variants(
        "value_and_grad", lambda jax, m: jax.value_and_grad(partial(loss, m=m)), params, x, y
    )
    fns |= peers.torch_variants("grad_and_value", torch_value_and_grad, params, x, y)
    harness.check_close({k: _flat(fn()) for k, fn in fns.items()}, rtol=1e-8, atol=1e-12)
    fwd = {
        "numpy forward": lambda: numpy_forward(params, x, y),
        "functrans forward (eager)": lambda: loss(params, x, y, fnp),
        "functrans jit(forward)": lambda: jfwd(params, x, y),
    }
    harness.check_close({k: fn() for k, fn in fwd.items()}, rtol=1e-10)
    times = harness.time_interleaved(
        {**fns, **fwd}, rounds=3 if quick else 9, min_time=0.01 if quick else 0.3
    )
    print(f"\n### 2. MLP loss gradient ({'-'.join(map(str, SIZES))} tanh, batch {batch})")
    harness.print_times(times, "numpy value_and_grad (hand)", 1e-3, "ms")
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    hand = times["numpy value_and_grad (hand)"]
    figs = [
        harness.Figure(
            "MLP: jit(value_and_grad) / hand-written",
            times["functrans jit(value_and_grad)"] / hand,
            1.05,
            peer="autograd 1.16, JAX jit 1.63, JAX eager 2.75",
        ),
        harness.Figure(
            "MLP: eager value_and_grad / hand-written",
            times["functrans value_and_grad (eager)"] / hand,
            1.2,
        ),
        harness.Figure(
            "MLP: jit(value_and_grad) / numpy forward",
            times["functrans jit(value_and_grad)"] / times["numpy forward"],
            2.6,
            note="cheap gradient principle",
        ),
        harness.Figure(
            "MLP: eager value_and_grad / eager forward",
            times["functrans value_and_grad (eager)"] / times["functrans forward (eager)"],
            2.6,
        ),
        harness.Figure(
            "MLP: hand-written value_and_grad / numpy forward", hand / times["numpy forward"]
        ),
    ]
    if ag is not None:
        figs.append(
            harness.Figure(
                "MLP: autograd value_and_grad / hand-written",
                times["autograd value_and_grad"] / hand,
                peer="1.16",
            )
        )
    quoted = {"JAX jit value_and_grad": "1.63", "JAX eager value_and_grad": "2.75"}
    return figs + peers.figures("MLP", times, "numpy value_and_grad (hand)", "hand-written", quoted)


if __name__ == "__main__":
    run()
