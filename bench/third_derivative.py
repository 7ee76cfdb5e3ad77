"""Workload 6, grad(grad(grad(f))) of a 20-op scalar function f(x) = sum_k c_k sin(b_k x) (4
primitives per term, 5 terms), eager and jitted, autograd, JAX eager and jitted and torch.func
(on a 0-d float64 array), against the hand-written third derivative -sum_k c_k b_k^3 cos(b_k x)
on NumPy scalars."""

from __future__ import annotations

from functools import partial

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp

B = (0.5, 1.0, 1.5, 2.0, 2.5)
C = (1.0, -0.5, 0.25, 0.75, -1.25)


def f(x, m=fnp):
    y = 0.0
    for b, c in zip(B, C):
        y = y + c * m.sin(b * x)
    return y


def numpy_third(x):
    x = np.float64(x)
    y = np.float64(0.0)
    for b, c in zip(B, C):
        y = y - c * b**3 * np.cos(b * x)
    return y


def run(quick: bool = False) -> list[harness.Figure]:
    x = 0.7
    d3 = ft.grad(ft.grad(ft.grad(f)))
    jd3 = ft.jit(d3)
    fns = {
        "numpy hand-written f'''": lambda: numpy_third(x),
        "functrans grad(grad(grad)) (eager)": lambda: d3(x),
        "functrans grad(grad(grad)) (eager, cache off)": harness.uncached(lambda: d3(x)),
        "functrans jit(grad(grad(grad)))": lambda: jd3(x),
    }
    ag = harness.optional("autograd")
    if ag is not None:
        import autograd.numpy as anp

        ag3 = ag.grad(ag.grad(ag.grad(lambda x: f(x, anp))))
        fns["autograd grad(grad(grad))"] = lambda: ag3(x)
    fns |= peers.variants(
        "grad(grad(grad))", lambda t, m: t.grad(t.grad(t.grad(partial(f, m=m)))), x
    )
    harness.check_close({k: fn() for k, fn in fns.items()}, rtol=1e-10)
    times = harness.time_interleaved(fns, rounds=3 if quick else 9, min_time=0.01 if quick else 0.1)
    print("\n### 6. Third derivative of a 20-op scalar function")
    harness.print_times(times, "numpy hand-written f'''")
    if ag is None:
        print("  autograd: not installed (skipped)")
    print("\n".join(harness.not_installed()))
    base = times["numpy hand-written f'''"]
    figs = [
        harness.Figure(
            "third derivative: eager / hand-written",
            times["functrans grad(grad(grad)) (eager)"] / base,
            50,
            peer="torch.func 164, autograd 210",
        ),
        harness.Figure(
            "third derivative: eager, cache off / hand-written",
            times["functrans grad(grad(grad)) (eager, cache off)"] / base,
        ),
        harness.Figure(
            "third derivative: jit / hand-written",
            times["functrans jit(grad(grad(grad)))"] / base,
            0.37,
            peer="JAX jit 0.37",
        ),
    ]
    if ag is not None:
        figs.append(
            harness.Figure(
                "third derivative: autograd / hand-written",
                times["autograd grad(grad(grad))"] / base,
                peer="210",
            )
        )
    quoted = {"JAX jit grad(grad(grad))": "0.37", "torch.func grad(grad(grad))": "164"}
    return figs + peers.figures(
        "third derivative", times, "numpy hand-written f'''", "hand-written", quoted
    )


if __name__ == "__main__":
    run()
