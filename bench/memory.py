"""Workload 7, reverse-mode memory: grad of a 200-layer elementwise chain (y <- sin(y) per
layer) on 10^5 float64s. Peak traced memory during the gradient (tracemalloc: NumPy reports its
allocations to it) divided by the size of all activations (layers x n x 8 bytes). JAX (eager and
jit, plain and checkpointed) and torch.func are timed only: tracemalloc does not see the memory
XLA and torch allocate."""

from __future__ import annotations

import functools
import tracemalloc
from functools import partial

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

LAYERS, N = 200, 10**5


def chain(x, m=fnp, layers=LAYERS):
    y = x
    for _ in range(layers):
        y = m.sin(y)
    return m.sum(y)


def chain_checkpointed(x, layers=LAYERS, m=fnp, checkpoint=ft.checkpoint):
    """The same chain in segments of about sqrt(layers) layers, each under ft.checkpoint (or
    jax.checkpoint): the backward pass keeps one input per segment and recomputes one segment at
    a time."""
    segment = max(1, round(layers**0.5))
    y = x
    done = 0
    while done < layers:
        k = min(segment, layers - done)
        y = checkpoint(functools.partial(chain_segment, k=k, m=m))(y)
        done += k
    return m.sum(y)


def chain_segment(y, k, m=fnp):
    for _ in range(k):
        y = m.sin(y)
    return y


def numpy_grad(x, layers=LAYERS):
    saved = []
    y = x
    for _ in range(layers):
        saved.append(np.cos(y))
        y = np.sin(y)
    g = np.ones_like(x)
    for c in reversed(saved):
        g *= c
    return g


def peak_bytes(fn) -> int:
    """Peak bytes allocated (above the starting point) while `fn` runs, and its result dropped."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return peak - base


def run(quick: bool = False) -> list[harness.Figure]:
    layers, n = (20, 10**4) if quick else (LAYERS, N)
    x = np.random.default_rng(0).uniform(0.5, 1.5, n)
    grad = ft.grad(lambda x: chain(x, fnp, layers))
    jgrad = ft.jit(grad)
    cgrad = ft.grad(lambda x: chain_checkpointed(x, layers))
    fns = {
        "numpy hand-written grad": lambda: numpy_grad(x, layers),
        "functrans grad (eager)": lambda: grad(x),
        "functrans jit(grad)": lambda: jgrad(x),
        "functrans grad, checkpointed": lambda: cgrad(x),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        ag_g = ag.grad(lambda x: chain(x, anp, layers))
        fns["autograd grad"] = lambda: ag_g(x)
    peer_fns = peers.variants("grad", lambda t, m: t.grad(partial(chain, m=m, layers=layers)), x)
    peer_fns |= peers.jax_variants(
        "grad, checkpointed",
        lambda jax, m: jax.grad(
            partial(chain_checkpointed, layers=layers, m=m, checkpoint=jax.checkpoint)
        ),
        x,
    )
    harness.check_close({k: fn() for k, fn in (fns | peer_fns).items()}, rtol=1e-10)  # warms jit
    activations = layers * n * x.itemsize
    ratios = {k: peak_bytes(fn) / activations for k, fn in fns.items()}
    times = harness.time_interleaved(fns | peer_fns, rounds=3, min_time=0.01 if quick else 0.2)
    print(
        f"\n### 7. Reverse-mode memory ({layers}-layer sin chain on {n} floats; activations "
        f"{activations / 2**20:.0f} MiB)"
    )
    for k in fns:
        print(f"  {k:34s} peak {ratios[k]:5.2f}x activations   {times[k] * 1e3:8.1f} ms")
    for k in peer_fns:
        print(f"  {k:34s} peak   (not seen)        {times[k] * 1e3:8.1f} ms")
    if peer_fns:
        print(
            "  (tracemalloc sees NumPy's allocations, not XLA's or torch's: peers are timed only)"
        )
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    figs = [
        harness.Figure(
            "memory: grad peak / activations",
            ratios["functrans grad (eager)"],
            1.05,
            peer="JAX/autograd about 1.0, torch.func 3.0",
        ),
        harness.Figure("memory: jit(grad) peak / activations", ratios["functrans jit(grad)"], 1.05),
        harness.Figure(
            "memory: checkpointed grad peak / activations",
            ratios["functrans grad, checkpointed"],
            0.17,
            peer="JAX 0.17 at 1.23x the time; autograd's checkpoint saves nothing",
        ),
        harness.Figure(
            "memory: checkpointed grad time / plain grad time",
            times["functrans grad, checkpointed"] / times["functrans grad (eager)"],
            1.3,
        ),
        harness.Figure(
            "memory: hand-written NumPy peak / activations", ratios["numpy hand-written grad"]
        ),
    ]
    if ag is not None:
        figs.append(
            harness.Figure(
                "memory: autograd peak / activations", ratios["autograd grad"], peer="about 1.0"
            )
        )
    for mode in ("eager", "jit"):
        if f"JAX {mode} grad" in times:
            figs.append(
                harness.Figure(
                    f"memory: JAX {mode} checkpointed grad time / plain grad time",
                    times[f"JAX {mode} grad, checkpointed"] / times[f"JAX {mode} grad"],
                    peer="1.23" if mode == "jit" else "",
                )
            )
    plain = {k: t for k, t in times.items() if "checkpointed" not in k}
    return figs + peers.figures("memory", plain, "numpy hand-written grad", "hand-written time")


if __name__ == "__main__":
    run()
