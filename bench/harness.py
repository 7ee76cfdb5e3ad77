"""Benchmark harness: one BLAS thread, agreement checked before timing, interleaved rounds,
medians, and every figure reported as a ratio against a baseline measured in the same run."""

from __future__ import annotations

import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: ratios on 2 cores are noise otherwise
# XLA too, before JAX loads: its CPU thread pool takes its size from PJRT_NPROC (the XLA flag
# alone leaves a jitted matmul on 2 threads in jaxlib 0.10); torch is set in peers.py
os.environ.setdefault("PJRT_NPROC", "1")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# FUNCTRANS_BENCH_PEERS=jax,torch runs only those peers, =none none of them: a hidden peer fails
# to import, so the run takes the path of a machine without it (as in CI)
PEERS = ("autograd", "jax", "torch")
HIDDEN = [
    p for p in PEERS if p not in os.environ.get("FUNCTRANS_BENCH_PEERS", ",".join(PEERS)).split(",")
]
for _name in HIDDEN:
    sys.modules[_name] = None

import ctypes  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402


def _steady_state_allocator() -> bool:
    """Keep freed memory in the process (glibc): large arrays are then reused, not returned to
    the OS and faulted in again. Without this, a variant that runs after one freeing a lot of
    memory pays ~2000 page faults per call (+15-20% on the MLP), so a figure depended on the
    order of the variants; with it, every variant (the hand-written baseline included) runs
    in the steady state a long-running program reaches."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc: keep the platform's allocator
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) and libc.mallopt(m_trim_threshold, 1 << 30)
    )


STEADY_ALLOCATOR = _steady_state_allocator()


def optional(name: str):
    """Import a peer library if it is installed (autograd, jax, torch), else None."""
    try:
        return __import__(name)
    except ImportError:
        return None


def uncached(fn):
    """`fn` with functrans's eager cache off (functrans/eager.py): every eager call interprets
    its transformations anew, as a first call does. For the figures of the cache's effect."""
    import functrans as ft

    def call():
        ft.config.update("eager_cache", False)
        try:
            return fn()
        finally:
            ft.config.update("eager_cache", True)

    return call


def check_close(results: dict[str, object], rtol=1e-6, atol=1e-8) -> None:
    names = list(results)
    ref = np.asarray(results[names[0]])
    for name in names[1:]:
        got = np.asarray(results[name])
        if not np.allclose(got, ref, rtol=rtol, atol=atol):
            raise AssertionError(
                f"{name} disagrees with {names[0]}: max abs diff {np.max(np.abs(got - ref))}"
            )
    print(f"  agree: {len(names)} variants match {names[0]} (rtol={rtol:g}, atol={atol:g})")


WARM_UP = 4


def time_interleaved(
    fns: dict[str, Callable[[], object]], rounds: int = 7, min_time: float = 0.05
) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds: the steady
    state. Each is called WARM_UP times first (functrans's eager cache compiles a program the
    third time it sees it; jit and the peers' jit compile on their first call)."""
    loops = {}
    for name, fn in fns.items():
        for _ in range(WARM_UP):
            fn()
        n, t = 1, 0.0
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            t = time.perf_counter() - start
            if t >= min_time / 5:
                break
            n *= 2
        loops[name] = max(1, int(n * (min_time / 5) / max(t, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = loops[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, BLAS threads "
        f"{os.environ.get('OPENBLAS_NUM_THREADS')}, XLA threads {os.environ.get('PJRT_NPROC')}, "
        f"steady-state allocator "
        f"{'on' if STEADY_ALLOCATOR else 'off'}"
    )


# ---------------------------------------------------------------------------------------------
# Reporting: each workload returns a list of Figures; run.py prints them against their targets


class Figure:
    """One measured ratio and its target from issue 6 (`limit` is an upper bound unless
    `at_least`); `peer` quotes the peer figures for reference."""

    def __init__(
        self,
        name: str,
        value: float,
        limit: float | None = None,
        *,
        at_least: bool = False,
        unit: str = "x",
        peer: str = "",
        note: str = "",
    ):
        self.name, self.value, self.limit, self.at_least = name, value, limit, at_least
        self.unit, self.peer, self.note = unit, peer, note

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def verdict(self) -> str:
        if self.met is None:
            return "(no target)"
        if self.met:
            return "met"
        if (self.value if self.at_least else self.limit) == 0:
            return f"missed ({fmt(self.value)}{self.unit})"
        by = self.limit / self.value if self.at_least else self.value / self.limit
        return f"missed by {(by - 1) * 100:.0f}%" if by < 2 else f"missed by {by:.1f}x"

    def target_str(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'≥' if self.at_least else '≤'} {fmt(self.limit)}{self.unit}"

    def value_str(self) -> str:
        return f"{fmt(self.value)}{self.unit}"


def fmt(v: float) -> str:
    if v != v:
        return "nan"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def not_installed(names=("jax", "torch")) -> list[str]:
    """'not installed' lines for peers that are absent (their figures from issue 6 stay the
    reference in docs/performance.md)."""
    return [f"  {n}: not installed (skipped)" for n in names if optional(n) is None]


def versions() -> str:
    parts = [f"numpy {np.__version__}"]
    for name in ("functrans", *PEERS):
        mod = optional(name)
        if mod is not None:
            parts.append(f"{name} {_version(name, mod)}")
    if HIDDEN:
        parts.append(f"hidden by FUNCTRANS_BENCH_PEERS: {', '.join(HIDDEN)}")
    return ", ".join(parts)


def _version(name: str, mod) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return getattr(mod, "__version__", "?")


def print_times(times: dict[str, float], base: str, unit: float = 1e-6, label: str = "µs") -> None:
    """One line per variant: time and ratio against `base`."""
    for name, t in times.items():
        print(f"  {name:34s} {t / unit:11.3f} {label}   {t / times[base]:8.2f}x {base}")
