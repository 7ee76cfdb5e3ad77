"""Workload 5, the Hessian of a scalar function of D=200 inputs: f(x) = sum(tanh(W x)) +
x.x / 2. ft.hessian eager and jitted, autograd.hessian, jax.hessian eager and jitted and
torch.func.hessian, against the analytic NumPy Hessian W^T diag(-2 t (1 - t^2)) W + I."""

from __future__ import annotations

from functools import partial

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

D = 200


def f(w, x, m=fnp):
    return m.sum(m.tanh(m.dot(w, x))) + 0.5 * m.sum(x * x)


def analytic_hessian(w, x):
    t = np.tanh(w @ x)
    return w.T @ ((-2.0 * t * (1.0 - t * t))[:, None] * w) + np.eye(x.size)


def run(quick: bool = False) -> list[harness.Figure]:
    d = 50 if quick else D
    rng = np.random.default_rng(0)
    w = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=d)
    hess = ft.hessian(lambda x: f(w, x))
    jhess = ft.jit(hess)
    fns = {
        "numpy analytic Hessian": lambda: analytic_hessian(w, x),
        "functrans hessian (eager)": lambda: hess(x),
        "functrans hessian (eager, cache off)": harness.uncached(lambda: hess(x)),
        "functrans jit(hessian)": lambda: jhess(x),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        ag_h = ag.hessian(lambda x: f(w, x, anp))
        fns["autograd hessian"] = lambda: ag_h(x)
    fns |= peers.variants("hessian", lambda t, m: t.hessian(partial(f, m=m), argnums=1), w, x)
    harness.check_close({k: fn() for k, fn in fns.items()})
    times = harness.time_interleaved(fns, rounds=3 if quick else 7, min_time=0.01 if quick else 0.1)
    print(f"\n### 5. Hessian of a scalar function, D={d}")
    harness.print_times(times, "numpy analytic Hessian", 1e-3, "ms")
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    base = times["numpy analytic Hessian"]
    figs = [
        harness.Figure(
            "Hessian D=200: jit(hessian) / analytic",
            times["functrans jit(hessian)"] / base,
            2.0,
            peer="JAX jit 2.45, torch.func 21, JAX eager 43, autograd 135",
        ),
        harness.Figure(
            "Hessian D=200: eager hessian / analytic",
            times["functrans hessian (eager)"] / base,
            2.0,
        ),
        harness.Figure(
            "Hessian D=200: eager hessian, cache off / analytic",
            times["functrans hessian (eager, cache off)"] / base,
        ),
    ]
    if ag is not None:
        figs.append(
            harness.Figure(
                "Hessian D=200: autograd / analytic", times["autograd hessian"] / base, peer="135"
            )
        )
    quoted = {"JAX jit hessian": "2.45", "JAX eager hessian": "43", "torch.func hessian": "21"}
    return figs + peers.figures(
        "Hessian D=200", times, "numpy analytic Hessian", "analytic", quoted
    )


if __name__ == "__main__":
    run()
