"""Run-time configuration: `functrans.config.update(name, value)` and context managers.

Flags:
- `debug_nans` (default False): raise `NonFiniteError` at the first primitive that produces a
  NaN or inf from finite inputs, in any transformation (see functrans.debug).
- `eager_cache` (default True): eager transformations (`grad(f)(x)` outside jit) record `f`'s
  operations on each call and run a compiled transformation of a program seen before (see
  functrans.eager and docs/performance.md). Off: every call interprets the transformation anew.
Flags are process-wide (not per thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from functrans import core

_FLAGS: dict[str, Any] = {"debug_nans": False, "eager_cache": True}


def _apply() -> None:
    from functrans import debug, eager

    core.output_check = debug.check_nonfinite if _FLAGS["debug_nans"] else None
    eager._ENABLED[0] = _FLAGS["eager_cache"]


def update(name: str, value: Any) -> None:
    """Set a configuration flag, e.g. `update("debug_nans", True)`.

    Flags:
      debug_nans: raise `NonFiniteError` at the first primitive that makes a NaN or inf from
        finite inputs (default False).
      eager_cache: eager calls of transformed functions record the function and run a compiled
        transformation of a program seen three times (default True; docs/sharp_edges.md). False:
        every call interprets its transformations anew.
    """
    if name not in _FLAGS:
        raise ValueError(f"functrans.config: unknown flag {name!r}; known flags: {sorted(_FLAGS)}")
    _FLAGS[name] = bool(value)
    _apply()


def read(name: str) -> Any:
    """The current value of a flag."""
    return _FLAGS[name]


@contextlib.contextmanager
def debug_nans(enabled: bool = True) -> Iterator[None]:
    """Turn NaN/inf checking on (or off) inside a `with` block."""
    old = _FLAGS["debug_nans"]
    update("debug_nans", enabled)
    try:
        yield
    finally:
        update("debug_nans", old)


__all__ = ["debug_nans", "read", "update"]
