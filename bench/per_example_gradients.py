"""Workload 3, per-example gradients of logistic regression (N=1000, D=100): vmap(grad), eager
and jitted, on functrans, JAX and torch.func, against a Python loop of grad and against the
hand-vectorised NumPy formula (the physical limit). autograd has no vmap: its figure is a loop of
grad."""

from __future__ import annotations

from functools import partial

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

N, D = 1000, 100


def loss(w, x, y, m=fnp):
    logit = m.dot(x, w)
    # log(1 + exp(-y * logit)), y in {-1, +1}
    return m.log1p(m.exp(-y * logit))


def numpy_per_example(w, X, Y):
    z = X @ w
    s = -Y / (1.0 + np.exp(Y * z))  # d/dz log(1 + exp(-y z))
    return s[:, None] * X


def run(quick: bool = False) -> list[harness.Figure]:
    n = 100 if quick else N
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, D))
    Y = np.sign(rng.normal(size=n))
    w = rng.normal(size=D) * 0.1
    per_example = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))
    jit_per_example = ft.jit(per_example)
    g = ft.grad(loss)
    fns = {
        "numpy (hand-vectorised)": lambda: numpy_per_example(w, X, Y),
        "functrans vmap(grad)": lambda: per_example(w, X, Y),
        "functrans vmap(grad) (cache off)": harness.uncached(lambda: per_example(w, X, Y)),
        "functrans jit(vmap(grad))": lambda: jit_per_example(w, X, Y),
        "functrans loop of grad": lambda: np.stack([g(w, X[i], Y[i]) for i in range(n)]),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        ag_g = ag.grad(lambda w, x, y: loss(w, x, y, anp))
        fns["autograd loop of grad"] = lambda: np.stack([ag_g(w, X[i], Y[i]) for i in range(n)])
    fns |= peers.jax_variants(
        "vmap(grad)",
        lambda jax, m: jax.vmap(jax.grad(partial(loss, m=m)), in_axes=(None, 0, 0)),
        w,
        X,
        Y,
    )
    fns |= peers.torch_variants(
        "vmap(grad)",
        lambda tf, m: tf.vmap(tf.grad(partial(loss, m=m)), in_dims=(None, 0, 0)),
        w,
        X,
        Y,
    )
    harness.check_close({k: f() for k, f in fns.items()})
    times = harness.time_interleaved(fns, rounds=3 if quick else 7, min_time=0.01 if quick else 0.1)
    print(f"\n### 3. Per-example gradients (logistic regression, N={n}, D={D})")
    harness.print_times(times, "numpy (hand-vectorised)", 1e-3, "ms")
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    base = times["numpy (hand-vectorised)"]
    loop = times["functrans loop of grad"]
    quoted = {
        "JAX jit vmap(grad)": "1.65",
        "JAX eager vmap(grad)": "27",
        "torch.func vmap(grad)": "6.0",
    }
    return [
        harness.Figure(
            "per-example: jit(vmap(grad)) / hand-vectorised",
            times["functrans jit(vmap(grad))"] / base,
            1.5,
            peer="JAX jit 1.65, torch.func 6.0, JAX eager 27",
        ),
        harness.Figure(
            "per-example: eager vmap(grad) / hand-vectorised",
            times["functrans vmap(grad)"] / base,
            1.5,
        ),
        harness.Figure(
            "per-example: eager vmap(grad), cache off / hand-vectorised",
            times["functrans vmap(grad) (cache off)"] / base,
        ),
        harness.Figure(
            "per-example: loop of grad / eager vmap(grad)",
            loop / times["functrans vmap(grad)"],
            30,
            at_least=True,
        ),
        harness.Figure(
            "per-example: loop of grad / jit(vmap(grad))",
            loop / times["functrans jit(vmap(grad))"],
            30,
            at_least=True,
        ),
        *peers.figures("per-example", times, "numpy (hand-vectorised)", "hand-vectorised", quoted),
    ]


def main():
    return run()


if __name__ == "__main__":
    main()
