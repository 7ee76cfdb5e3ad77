"""Smoke test of the benchmark suite: `bench/run.py --quick` completes, every workload runs, and
every variant's result agrees with its reference (the harness checks agreement before timing),
with the peers installed here and with them hidden (FUNCTRANS_BENCH_PEERS=none, as in CI).
Timings are not asserted: they are noise on a shared 2-core machine."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = [
    "overhead",
    "mlp",
    "per_example_gradients",
    "jacobian_table",
    "hessian",
    "third_derivative",
    "memory",
]


PEERS = {"jax": "JAX", "torch": "torch.func"}  # a peer's figures: "<workload>: <prefix>..."
INSTALLED = {p: importlib.util.find_spec(p) is not None for p in PEERS}


@pytest.mark.parametrize("hide_peers", [False, True], ids=["peers", "no-peers"])
def test_quick_benchmark_run_completes_and_results_agree(hide_peers):
    if not hide_peers and not any(INSTALLED.values()):
        pytest.skip("no peer (jax, torch) installed: the no-peers run covers this")
    env = dict(os.environ)
    env.pop("FUNCTRANS_BENCH_PEERS", None)
    if hide_peers:
        env["FUNCTRANS_BENCH_PEERS"] = "none"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    elapsed = time.perf_counter() - start
    out = proc.stdout
    assert proc.returncode == 0, f"run.py --quick failed:\n{out[-3000:]}\n{proc.stderr[-3000:]}"
    assert "disagrees" not in out and "FAILED" not in out
    # every workload checked agreement of all its variants before timing
    agreements = re.findall(r"agree: (\d+) variants match", out)
    assert len(agreements) >= len(WORKLOADS) + 2  # the Jacobian sweep checks once per row
    assert all(int(n) >= 3 for n in agreements)
    assert out.count("agree:") == len(agreements)
    summary = out.split("## Summary", 1)[1]
    for name in WORKLOADS:
        assert f"| {name} |" in summary, f"{name} missing from the summary"
    for value in re.findall(r"^\| \w+ \| [^|]+ \| ([^|]+) \|", summary, flags=re.M):
        assert value.strip() and "nan" not in value
    assert "not installed" in out or "jax" in out  # absent peers are reported, not silently dropped
    labels = {
        (name, fig.partition(": ")[2])
        for name, fig in re.findall(r"^\| (\w+) \| ([^|]+) \|", summary, flags=re.M)
    }
    for peer, prefix in PEERS.items():
        ran = {name for name, label in labels if label.startswith(prefix)}
        if hide_peers:
            assert f"{peer}: not installed (skipped)" in out and not ran
        elif INSTALLED[peer]:
            assert ran == set(WORKLOADS), f"no {peer} figure in {set(WORKLOADS) - ran}"
    assert elapsed < 60, f"the quick run took {elapsed:.0f} s"


def test_only_runs_one_workload():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick", "--only", "hessian"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = proc.stdout.split("## Summary", 1)[1]
    assert "| hessian |" in summary and "| mlp |" not in summary


def test_unknown_workload_is_an_error():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--only", "nonsense"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode != 0 and "unknown workload" in proc.stderr
