"""The common ground of the checks: functions of the float leaves of pytree arguments, and reports.

`_Flat` turns `f(*args)` into a function of the floating-point leaves alone (integer and boolean
leaves held fixed) and names every leaf by its key path, which is how every failure report says
where; `_Options` holds the per-dtype default steps and tolerances that keep float32 checks from
being flaky; `_mismatch` and `_fail` word the reports. Nothing here differentiates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from functrans import tree_util
from functrans.core import aval_of

# ---------------------------------------------------------------------------------------------
# Per-dtype defaults. Central differences have truncation error ~eps^2 and rounding error
# ~machine_eps / eps, so eps is near machine_eps^(1/3); tolerances sit well above both.

_DEFAULTS = {
    np.dtype(np.float64): (1e-4, 1e-5, 1e-5),  # (eps, atol, rtol)
    np.dtype(np.float32): (1e-2, 1e-2, 1e-2),
    np.dtype(np.float16): (1e-1, 5e-2, 5e-2),
}


# Two exact computations of the same quantity (a JVP and a complex-step derivative, jacfwd and
# jacrev, vmap and a loop) differ only by rounding, a few ulps times the conditioning: (atol, rtol)
_EXACT = {
    np.dtype(np.float64): (1e-9, 1e-9),
    np.dtype(np.float32): (1e-4, 1e-4),
    np.dtype(np.float16): (2e-2, 2e-2),
}


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.finfo(dtype).dtype


def _defaults(dtype: np.dtype) -> tuple[float, float, float]:
    return _DEFAULTS.get(_real_dtype(dtype), _DEFAULTS[np.dtype(np.float32)])


def _lowest_precision(dtypes: Sequence[np.dtype]) -> np.dtype:
    floats = [np.dtype(d) for d in dtypes if np.issubdtype(d, np.inexact)]
    if not floats:
        return np.dtype(np.float64)
    return max(floats, key=lambda d: np.finfo(d).eps)


def _wide(dtype: np.dtype) -> np.dtype:
    """The float64 (or complex128) counterpart of a floating dtype."""
    return np.dtype(np.complex128 if np.issubdtype(dtype, np.complexfloating) else np.float64)


@dataclass(frozen=True)
class _Options:
    atol: float | None
    rtol: float | None
    eps: float | None

    def tolerances(self, dtypes: Sequence[np.dtype]) -> tuple[float, float]:
        _, atol, rtol = _defaults(_lowest_precision(dtypes))
        return (atol if self.atol is None else self.atol, rtol if self.rtol is None else self.rtol)

    def exact_tolerances(self, dtypes: Sequence[np.dtype]) -> tuple[float, float]:
        atol, rtol = _EXACT.get(
            _real_dtype(_lowest_precision(dtypes)), _EXACT[np.dtype(np.float32)]
        )
        return (atol if self.atol is None else self.atol, rtol if self.rtol is None else self.rtol)

    def step(self, dtypes: Sequence[np.dtype]) -> float:
        return _defaults(_lowest_precision(dtypes))[0] if self.eps is None else self.eps


@dataclass(frozen=True)
class _Where:
    """Where in a check_grads recursion a check runs: its order and the modes that led there."""

    order: int = 1
    modes: tuple[str, ...] = ()
    described: str = "f"

    def mode_str(self) -> str:
        return " over ".join(reversed(self.modes))

    def header(self, check: str) -> str:
        return f"{check} failed (order {self.order}, mode {self.mode_str()}) for {self.described}"


# ---------------------------------------------------------------------------------------------
# Functions of the floating-point leaves of their arguments


def _is_float(x: Any) -> bool:
    return np.issubdtype(aval_of(x).dtype, np.inexact)


def _as_leaf(x: Any) -> Any:
    return np.asarray(x) if isinstance(x, (bool, int, float, complex, np.generic)) else x


class _Flat:
    """`f(*args)` as a function of the float leaves of `args`, the other leaves held fixed."""

    def __init__(self, f: Callable, args: tuple):
        pairs, self.tree = tree_util.tree_flatten_with_path(tuple(args))
        self.f = f
        self.leaves = [_as_leaf(x) for _, x in pairs]
        self.names = ["args" + tree_util.keystr(p) for p, _ in pairs]
        self.diff = [i for i, x in enumerate(self.leaves) if _is_float(x)]

    @property
    def diff_leaves(self) -> list[Any]:
        return [self.leaves[i] for i in self.diff]

    @property
    def diff_names(self) -> list[str]:
        return [self.names[i] for i in self.diff]

    def call(self, *diff_leaves: Any) -> Any:
        leaves = list(self.leaves)
        for i, x in zip(self.diff, diff_leaves, strict=True):
            leaves[i] = x
        return self.f(*tree_util.tree_unflatten(self.tree, leaves))

    def describe(self) -> str:
        """The avals of all leaves, e.g. "args[0] float64[3,4], args[1]['n'] int64[]"."""
        return ", ".join(f"{name} {_aval_str(x)}" for name, x in zip(self.names, self.leaves))

    def diff_part(self, tree: Any, what: str) -> list[np.ndarray]:
        """The leaves of `tree` (structured like args) at the float leaves, in their dtypes."""
        try:
            leaves = self.tree.flatten_up_to(tuple(tree))
        except Exception as err:  # noqa: BLE001 - any mismatch is reported the same way
            raise ValueError(f"{what} must have the structure of args: {err}") from None
        out = []
        for i in self.diff:
            x, t = self.leaves[i], np.asarray(leaves[i])
            if t.shape != np.shape(x):
                raise ValueError(
                    f"{what}{self.names[i][4:]} has shape {t.shape} but {self.names[i]} has "
                    f"shape {np.shape(x)}"
                )
            out.append(t.astype(aval_of(x).dtype))
        return out

    def like_args(self, diff_values: Sequence[Any]) -> tuple:
        """A pytree shaped like `args` holding `diff_values` at the float leaves, None elsewhere."""
        leaves: list[Any] = [None] * len(self.leaves)
        for i, x in zip(self.diff, diff_values, strict=True):
            leaves[i] = x
        return tree_util.tree_unflatten(self.tree, leaves)


def _leaves_with_names(tree: Any, prefix: str) -> tuple[list[str], list[Any]]:
    pairs = tree_util.tree_flatten_with_path(tree)[0]
    return [prefix + tree_util.keystr(p) for p, _ in pairs], [_as_leaf(x) for _, x in pairs]


def _random_like(rng: np.random.Generator, x: Any) -> np.ndarray:
    aval = aval_of(x)
    if not np.issubdtype(aval.dtype, np.inexact):
        return np.zeros(aval.shape, aval.dtype)
    r = rng.standard_normal(aval.shape)
    if np.issubdtype(aval.dtype, np.complexfloating):
        r = r + 1j * rng.standard_normal(aval.shape)
    return np.asarray(r, aval.dtype)


def _require_float_args(flat: _Flat, check: str) -> None:
    if not flat.diff:
        raise ValueError(
            f"{check}: no argument has a floating-point leaf, so there is nothing to "
            "differentiate; pass float (or complex) arrays."
        )


def _aval_str(x: Any) -> str:
    """`float64[3,4]`: dtype and shape, never the values."""
    aval = aval_of(x)
    return f"{aval.dtype.name}[{','.join(map(str, aval.shape))}]"


def _describe_args(args: tuple) -> str:
    """The avals of the leaves of positional arguments, by key path; never their values."""
    pairs = tree_util.tree_flatten_with_path(tuple(args))[0]
    return ", ".join(f"args{tree_util.keystr(p)} {_aval_str(_as_leaf(x))}" for p, x in pairs)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _wide_array(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(_wide(x.dtype)) if np.issubdtype(x.dtype, np.inexact) else x


# ---------------------------------------------------------------------------------------------
# Comparing two computations of one array, and reporting


def _index_str(index: tuple) -> str:
    return "[" + ", ".join(map(str, index)) + "]" if index else ""


def _mismatch(
    got: Any,
    want: Any,
    atol: float,
    rtol: float,
    labels: tuple[str, str],
    where: Callable[[tuple], str] = _index_str,
    check_dtype: bool = True,
) -> str | None:
    """Why `got` differs from `want`, or None if they agree within `atol * scale + rtol * |want|`
    (scale: the larger of 1 and the rms of `want`; NaN agrees only with NaN)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{labels[0]} is {_aval_str(got)} but {labels[1]} is {_aval_str(want)}"
    if check_dtype and got.dtype != want.dtype:
        return f"{labels[0]} has dtype {got.dtype} but {labels[1]} has dtype {want.dtype}"
    if not (_is_float(got) and _is_float(want)):
        differ = got != want
        if not np.any(differ):
            return None
        i = tuple(int(k) for k in np.argwhere(differ)[0])
        return (
            f"{int(np.sum(differ))} of {want.size} values differ; first at {where(i)}: "
            f"{labels[0]} {got[i]!r} vs {labels[1]} {want[i]!r}"
        )
    g, w = _wide_array(got), _wide_array(want)
    err = np.abs(g - w)
    scale = max(1.0, float(np.sqrt(np.nanmean(np.abs(w) ** 2)))) if w.size else 1.0
    bound = atol * scale + rtol * np.abs(w)
    ok = (err <= bound) | (np.isnan(g) & np.isnan(w))
    if np.all(ok):
        return None
    badness = np.where(ok, -np.inf, np.nan_to_num(err / bound, nan=np.inf, posinf=np.inf))
    i = np.unravel_index(int(np.argmax(badness)), w.shape) if w.ndim else ()
    i = tuple(int(k) for k in i)
    rel = float(np.nanmax(np.where(ok, 0.0, err / np.maximum(np.abs(w), np.finfo(float).tiny))))
    return (
        f"max abs error {_fmt(float(np.nanmax(np.where(ok, 0.0, err))))}, max rel error "
        f"{_fmt(rel)} (tolerance atol={atol:g} x scale {_fmt(scale)}, rtol={rtol:g}); "
        f"{int(np.sum(~ok))} of {w.size} values differ, worst at {where(i) or 'the scalar'}: "
        f"{labels[0]} {complex(g[i]) if np.iscomplexobj(g) else float(g[i]):.6g} vs "
        f"{labels[1]} {complex(w[i]) if np.iscomplexobj(w) else float(w[i]):.6g}"
    )


def _fail(title: str, problems: Sequence[str], args: tuple, *extra: str) -> None:
    lines = [title] + [f"  {p}" for p in problems] + [f"  {e}" for e in extra]
    lines.append(f"  inputs: {_describe_args(args)}")
    raise AssertionError("\n".join(lines))


def _dtypes(*trees: Any) -> list[np.dtype]:
    return [np.asarray(_as_leaf(x)).dtype for t in trees for x in tree_util.tree_leaves(t)]
