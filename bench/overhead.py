"""Workload 1, per-primitive overhead: grad of a scalar function of one float built from 60
elementary ops, on functrans eager and jit, autograd, JAX eager and jit and torch.func (on a 0-d
float64 array), and a hand-written NumPy gradient; each time is divided by the number of
primitives in the forward pass."""

from __future__ import annotations

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

LAYERS = 10  # 6 primitives each
N_OPS = 6 * LAYERS
NUMPY_REFERENCE = 0.36  # µs per primitive of the hand-written gradient on the machine
PEER_FIGURES = [  # timing key, figure label, issue 6's figure
    ("JAX eager grad", "JAX eager", "440"),
    ("JAX jit grad", "JAX jit", "0.25"),
    ("torch.func grad", "torch.func", "30"),
]


def f(x, m):
    """The workload, written once against a NumPy-like module `m` (fnp, autograd.numpy,
    jax.numpy, peers.torch_numpy)."""
    y = x
    for _ in range(LAYERS):
        y = m.tanh(m.sin(y) * m.cos(y)) + y * 0.5
    return y


def numpy_grad(x):
    """The hand-written reverse pass on NumPy scalars: the physical limit."""
    y = np.float64(x)
    saved = []
    for _ in range(LAYERS):
        a, b = np.sin(y), np.cos(y)
        d = np.tanh(a * b)
        saved.append((a, b, d))
        y = d + y * 0.5
    g = np.float64(1.0)
    for a, b, d in reversed(saved):
        dc = g * (1.0 - d * d)
        g = g * 0.5 + dc * (b * b - a * a)  # d(sin y cos y)/dy = cos^2 - sin^2
    return g


def run(quick: bool = False) -> list[harness.Figure]:
    x = 0.3
    fns = {
        "numpy (hand-written grad)": lambda: numpy_grad(x),
        "functrans grad (eager)": lambda g=ft.grad(lambda x: f(x, fnp)): g(x),
        "functrans grad (eager, cache off)": harness.uncached(
            lambda g=ft.grad(lambda x: f(x, fnp)): g(x)
        ),
        "functrans jit(grad)": lambda g=ft.jit(ft.grad(lambda x: f(x, fnp))): g(x),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        fns["autograd grad"] = lambda g=ag.grad(lambda x: f(x, anp)): g(x)
    fns |= peers.variants("grad", lambda t, m: t.grad(lambda x: f(x, m)), x)
    harness.check_close({k: fn() for k, fn in fns.items()}, rtol=1e-10)
    times = harness.time_interleaved(fns, rounds=3 if quick else 9, min_time=0.01 if quick else 0.1)
    print(f"\n### 1. Per-primitive overhead (grad of a {N_OPS}-op scalar function)")
    for name, t in times.items():
        print(f"  {name:34s} {t * 1e6:9.1f} µs/call  {t / N_OPS * 1e6:8.3f} µs/primitive")
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    per = {k: v / N_OPS * 1e6 for k, v in times.items()}
    return [
        harness.Figure(
            "overhead: eager grad, µs/primitive",
            per["functrans grad (eager)"],
            10,
            unit=" µs",
            peer="numpy 0.36, autograd 25, torch.func 30, JAX eager 440",
        ),
        harness.Figure(
            # the container's speed changes from run to run; this row puts the eager figure at
            # the speed of the machine the peer figures come from (NumPy 0.36 µs)
            "overhead: eager grad at the issue's NumPy speed, µs/primitive",
            per["functrans grad (eager)"] * NUMPY_REFERENCE / per["numpy (hand-written grad)"],
            10,
            unit=" µs",
            note="eager time x 0.36 µs / this run's NumPy time",
        ),
        harness.Figure(
            "overhead: eager grad, cache off (every call interpreted), µs/primitive",
            per["functrans grad (eager, cache off)"],
            unit=" µs",
        ),
        harness.Figure(
            "overhead: jit(grad), µs/primitive",
            per["functrans jit(grad)"],
            0.25,
            unit=" µs",
            peer="JAX jit 0.25",
        ),
        harness.Figure(
            "overhead: hand-written NumPy, µs/primitive",
            per["numpy (hand-written grad)"],
            unit=" µs",
            peer="0.36",
        ),
        *(
            [
                harness.Figure(
                    "overhead: autograd, µs/primitive", per["autograd grad"], unit=" µs", peer="25"
                )
            ]
            if ag is not None
            else []
        ),
        *(
            harness.Figure(f"overhead: {label}, µs/primitive", per[k], unit=" µs", peer=quoted)
            for k, label, quoted in PEER_FIGURES
            if k in per
        ),
    ]


if __name__ == "__main__":
    run()
