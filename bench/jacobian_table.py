"""Workload 4, the cost of forward vs reverse mode: f: R^D -> R^M (two tanh layers), jacfwd and
jacrev time divided by one forward evaluation over a (D, M) sweep, which mode `jacobian` picked,
and at 1000x1000 both modes against the analytic Jacobian, with JAX's (jitted) and torch.func's
beside them. Writes docs/choosing_a_mode.png."""

from __future__ import annotations

import os
from functools import partial
from unittest import mock

import harness
import numpy as np
import peers

import functrans as ft
import functrans.numpy as fnp
from functrans import api_jacobians

H = 100  # hidden width
SWEEP = [(1, 1000), (10, 1000), (100, 1000), (1000, 1000), (1000, 100), (1000, 10), (1000, 1)]
QUICK_SWEEP = [(1, 100), (100, 100), (100, 1)]
PEER_ROWS = [(1000, 1000), (100, 100)]  # the peers run at these rows only (run time)
QUOTED = {  # issue 6's peer figures at 1000x1000
    "JAX jit jacfwd": "1.41",
    "JAX jit jacrev": "1.28",
    "torch.func jacfwd": "3.6",
    "torch.func jacrev": "1.9",
}
PLOT = os.path.join(os.path.dirname(__file__), "..", "docs", "choosing_a_mode.png")


def f(params, x, m=fnp):
    """Two tanh layers, written once against a NumPy-like module `m`."""
    w1, w2 = params
    return m.tanh(m.dot(w2, m.tanh(m.dot(w1, x))))


def analytic_jacobian(params, x):
    w1, w2 = params
    h = np.tanh(w1 @ x)
    y = np.tanh(w2 @ h)
    return ((1.0 - y * y)[:, None] * w2) @ ((1.0 - h * h)[:, None] * w1)


def _peer_jacobian(t, m, mode):
    """jacfwd or jacrev (`mode`) of f with respect to x, on jax or torch.func (`t`)."""
    return getattr(t, mode)(partial(f, m=m), argnums=1)


def _peer_jacobians(params, x) -> dict:
    """Timed calls of jacfwd and jacrev on JAX (jitted) and torch.func."""
    calls = {}
    for mode in ("jacfwd", "jacrev"):
        calls |= peers.variants(mode, partial(_peer_jacobian, mode=mode), params, x, eager=False)
    return calls


def _picked_mode(jac, x) -> str:
    """Which mode ft.jacobian ran, observed by spying on its two strategies."""
    seen = []
    fwd, rev = api_jacobians._forward, api_jacobians._reverse
    with (
        mock.patch.object(
            api_jacobians, "_forward", side_effect=lambda *a: (seen.append("fwd"), fwd(*a))[1]
        ),
        mock.patch.object(
            api_jacobians, "_reverse", side_effect=lambda *a: (seen.append("rev"), rev(*a))[1]
        ),
    ):  # noqa: E501
        jac(x)
    return seen[0] if seen else "?"


def run(quick: bool = False, plot: bool = True) -> list[harness.Figure]:
    rng = np.random.default_rng(0)
    rows = []
    print(
        "\n### 4. Jacobian cost table (time / one forward evaluation; two tanh layers, "
        f"hidden {H}, jit)"
    )
    print("  |    D |    M | jacfwd | jacrev | jacobian picks | faster | analytic |")
    print("  |-----:|-----:|-------:|-------:|:---------------|:-------|---------:|")
    figs, peer_figs = [], []
    for d, m in QUICK_SWEEP if quick else SWEEP:
        params = (rng.normal(size=(H, d)) / np.sqrt(d), rng.normal(size=(m, H)) / np.sqrt(H))
        x = rng.normal(size=d)
        fun = lambda x, p=params: f(p, x)  # noqa: E731
        fns = {
            "forward": ft.jit(fun),
            "jacfwd": ft.jit(ft.jacfwd(fun)),
            "jacrev": ft.jit(ft.jacrev(fun)),
            "jacobian": ft.jit(ft.jacobian(fun)),
            "analytic": lambda x, p=params: analytic_jacobian(p, x),
        }
        calls = {k: (lambda g=g, x=x: g(x)) for k, g in fns.items()}
        peer_calls = _peer_jacobians(params, x) if (d, m) in PEER_ROWS else {}
        harness.check_close(
            {k: calls[k]() for k in ("analytic", "jacfwd", "jacrev", "jacobian")}
            | {k: call() for k, call in peer_calls.items()}
        )
        picked = _picked_mode(ft.jacobian(fun), x)
        times = harness.time_interleaved(
            calls | peer_calls, rounds=3 if quick else 7, min_time=0.005 if quick else 0.05
        )
        t0 = times["forward"]
        faster = "fwd" if times["jacfwd"] <= times["jacrev"] else "rev"
        row = dict(
            D=d,
            M=m,
            fwd=times["jacfwd"] / t0,
            rev=times["jacrev"] / t0,
            picked=picked,
            faster=faster,
            analytic=times["analytic"] / t0,
            fwd_vs_analytic=times["jacfwd"] / times["analytic"],
            rev_vs_analytic=times["jacrev"] / times["analytic"],
        )
        rows.append(row)
        print(
            f"  | {d:4d} | {m:4d} | {row['fwd']:6.1f} | {row['rev']:6.1f} | {picked:14s} | "
            f"{faster:6s} | {row['analytic']:8.1f} |"
        )
        if (d, m) == (1000, 1000):
            figs += [
                harness.Figure(
                    "Jacobian 1000x1000: jacfwd / analytic",
                    row["fwd_vs_analytic"],
                    1.25,
                    peer="JAX jit 1.41, torch.func 3.6, autograd 30",
                ),
                harness.Figure(
                    "Jacobian 1000x1000: jacrev / analytic",
                    row["rev_vs_analytic"],
                    1.25,
                    peer="JAX jit 1.28, torch.func 1.9, autograd 22",
                ),
            ]
        if peer_calls:
            quoted = QUOTED if (d, m) == (1000, 1000) else {}
            peer_figs += peers.figures(f"Jacobian {d}x{m}", times, "analytic", "analytic", quoted)
    # a mode within 15% of the other is a tie: timings on 2 shared cores are that noisy
    wrong = [
        r
        for r in rows
        if r["picked"] != r["faster"] and abs(np.log(r["fwd"] / r["rev"])) > np.log(1.15)
    ]
    figs.append(
        harness.Figure(
            "Jacobian: rows where `jacobian` picked the slower mode (>15%)", len(wrong), 0, unit=""
        )
    )
    for fig in peer_figs:
        print(f"  {fig.name:48s} {fig.value_str():>7s}")
    run.ties = _ties(rng, quick)
    print("\n".join(harness.not_installed()))
    figs += peer_figs
    if plot:
        _plot(rows)
    run.rows = rows
    return figs


TIE_N = 300
TIE_FUNCTIONS = {  # at D = M no size decides: which mode wins is the function's structure
    "tanh(W2 tanh(W1 x)) (the table's f)": lambda w1, w2, x: fnp.tanh(w2 @ fnp.tanh(w1 @ x)),
    "W2 tanh(W1 x)": lambda w1, w2, x: w2 @ fnp.tanh(w1 @ x),
    "W1 tanh(x)": lambda w1, w2, x: w1 @ fnp.tanh(x),
    "sin(x) exp(x)": lambda w1, w2, x: fnp.sin(x) * fnp.exp(x),
    "cumsum(x)^2": lambda w1, w2, x: fnp.cumsum(x) ** 2,
    "softmax(x)": lambda w1, w2, x: fnp.exp(x) / fnp.sum(fnp.exp(x)),
}


def _ties(rng, quick: bool) -> list[dict]:
    """jacfwd against jacrev at D = M for functions of different structure (under jit): the
    evidence for how `jacobian` breaks a tie."""
    n = 30 if quick else TIE_N
    w1, w2 = rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=(n, n)) / np.sqrt(n)
    x = rng.normal(size=n)
    print(f"\n  Ties (D = M = {n}, jit): jacrev time / jacfwd time")
    rows = []
    for name, g in TIE_FUNCTIONS.items():
        fun = partial(g, w1, w2)
        calls = {mode: partial(ft.jit(getattr(ft, mode)(fun)), x) for mode in ("jacfwd", "jacrev")}
        harness.check_close({k: c() for k, c in calls.items()} | {"jacobian": ft.jacobian(fun)(x)})
        times = harness.time_interleaved(
            calls, rounds=3 if quick else 7, min_time=0.005 if quick else 0.05
        )
        ratio = times["jacrev"] / times["jacfwd"]
        rows.append(dict(name=name, rev_over_fwd=ratio))
        print(f"  {name:38s} {ratio:5.2f}   ({'rev' if ratio < 1 else 'fwd'} faster)")
    return rows


def _plot(rows) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  matplotlib not installed: plot skipped (pip install matplotlib)")
        return
    labels = [f"{r['D']}x{r['M']}" for r in rows]
    pos = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(pos - 0.2, [r["fwd"] for r in rows], 0.4, label="jacfwd (cost ∝ D)")
    ax.bar(pos + 0.2, [r["rev"] for r in rows], 0.4, label="jacrev (cost ∝ M)")
    for p, r in zip(pos, rows):
        ax.annotate(r["picked"], (p, max(r["fwd"], r["rev"])), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(pos, labels)
    ax.set_xlabel("D x M (input size x output size)")
    ax.set_ylabel("time / one forward evaluation")
    ax.set_title("Forward vs reverse mode (labels: mode `jacobian` picked)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)
    print(f"  plot written to {os.path.normpath(PLOT)}")


if __name__ == "__main__":
    run()
