"""Smoke test of the benchmark suite: `bench/run.py --quick` completes, every workload runs, and
every variant's result agrees with its reference (the harness checks agreement before timing).
Timings are not asserted: they are noise on a shared 2-core machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

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


def test_quick_benchmark_run_completes_and_results_agree():
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
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
