"""Run the benchmark suite of issue 6 and print a Markdown summary of every figure against its
target. Each workload module prints its own table and returns its figures (harness.Figure).

    python bench/run.py               # everything (a few minutes)
    python bench/run.py --quick       # small sizes, few rounds: a smoke run of a few seconds
    python bench/run.py --only mlp    # one workload (repeat --only, or comma-separate)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402  (one BLAS thread, before NumPy loads)

WORKLOADS = [
    "overhead",
    "mlp",
    "per_example_gradients",
    "jacobian_table",
    "hessian",
    "third_derivative",
    "memory",
]


def _run_one(name: str, quick: bool):
    module = __import__(name)
    if name == "jacobian_table":
        return module.run(quick=quick, plot=not quick)  # the docs plot comes from a full run
    return module.run(quick=quick)


def summary(results: dict[str, list[harness.Figure]], failures: dict[str, str]) -> str:
    lines = [
        "| workload | figure | value | target | verdict | peers (issue 6) |",
        "|---|---|---:|---:|---|---|",
    ]
    for name, figs in results.items():
        for fig in figs:
            lines.append(
                f"| {name} | {fig.name} | {fig.value_str()} | {fig.target_str()} | "
                f"{fig.verdict()} | {fig.peer} |"
            )
    for name, err in failures.items():
        lines.append(f"| {name} | FAILED: {err} | | | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only these workloads: {', '.join(WORKLOADS)}",
    )
    args = parser.parse_args(argv)
    only = [w for spec in args.only for w in spec.split(",") if w]
    aliases = {
        "per_example": "per_example_gradients",
        "jacobian": "jacobian_table",
        "third": "third_derivative",
    }
    only = [aliases.get(w, w) for w in only]
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {WORKLOADS}")
    selected = only or WORKLOADS

    start = time.perf_counter()
    print(f"# functrans benchmarks{' (quick)' if args.quick else ''}")
    print(f"machine: {harness.machine()}")
    print(f"versions: {harness.versions()}")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    results: dict[str, list[harness.Figure]] = {}
    failures: dict[str, str] = {}
    for name in selected:
        try:
            results[name] = _run_one(name, args.quick)
        except Exception as e:  # report every workload, then fail
            traceback.print_exc()
            failures[name] = f"{type(e).__name__}: {e}"
    elapsed = time.perf_counter() - start
    note = ", quick sizes: not the issue-6 figures" if args.quick else ""
    print(f"\n## Summary ({elapsed:.0f} s{note})\n")
    print(summary(results, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
