"""Benchmark harness: one BLAS thread, agreement checked before timing, interleaved rounds,
medians, and every figure reported as a ratio against a baseline measured in the same run."""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: ratios on 2 cores are noise otherwise

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402


def optional(name: str):
    """Import a peer library if it is installed (autograd, jax, torch), else None."""
    try:
        return __import__(name)
    except ImportError:
        return None


def check_close(results: dict[str, object], rtol=1e-6, atol=1e-8) -> None:
    names = list(results)
    ref = np.asarray(results[names[0]])
    for name in names[1:]:
        got = np.asarray(results[name])
        if not np.allclose(got, ref, rtol=rtol, atol=atol):
            raise AssertionError(
                f"{name} disagrees with {names[0]}: max abs diff {np.max(np.abs(got - ref))}"
            )


def time_interleaved(
    fns: dict[str, Callable[[], object]], rounds: int = 7, min_time: float = 0.05
) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds."""
    loops = {}
    for name, fn in fns.items():
        fn()  # warm up
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
        f"{os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
