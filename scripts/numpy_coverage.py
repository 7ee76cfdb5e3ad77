"""Generate docs/numpy_coverage.md from the code: every public function of functrans.numpy,
functrans.numpy.linalg, functrans.numpy.fft, functrans.scipy.special and functrans.scipy.linalg,
with the transformations it supports and its conventions.

Support is measured, not declared: each function is called on a sample input (a table below for
functions that need particular arguments, otherwise the first of a few generic probes that
works), then differentiated with jvp and vjp, batched with vmap (compared with a loop) and staged
with jit (compared with the eager result). Conventions come from a small table, else from the
first line of the docstring.

Usage: python scripts/numpy_coverage.py [--check]   (--check: exit 1 if the doc is stale)
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import warnings
from collections.abc import Callable

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "numpy_coverage.md"
sys.path.insert(0, str(ROOT))

import functrans as ft  # noqa: E402
import functrans.numpy as fnp  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Sample inputs

_RNG = np.random.default_rng(0)
MAT = np.array([[1.3, -0.4, 0.7, 0.2], [0.1, 2.1, -0.6, 0.9], [0.5, 0.3, 1.7, -1.1]])
VEC = np.array([0.3, 0.8, 0.55, 0.1])  # in (0, 1): logs, logits, arcsin, ... are defined
SQUARE = np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.2]])  # SPD


def _probes(x_mat, x_vec, x_sq):
    """Generic calls tried in order on an unknown function f: (description, args)."""
    return [
        ("f(v)", (x_vec,)),
        ("f(v, v)", (x_vec, x_vec)),
        ("f(A)", (x_sq,)),
        ("f(A, A)", (x_sq, x_sq)),
        ("f(M)", (x_mat,)),
    ]


# functions that need particular arguments: name -> function of float arrays, its arguments
S = {
    "full": (lambda s: fnp.full((2,), s), (0.5,)),
    "full_like": (lambda s: fnp.full_like(VEC, s), (0.5,)),
    "linspace": (lambda a, b: fnp.linspace(a, b, 4), (0.5, 2.0)),
    "logspace": (lambda a, b: fnp.logspace(a, b, 4), (0.5, 2.0)),
    "meshgrid": (lambda x, y: fnp.meshgrid(x, y), (VEC, VEC[:3])),
    "array": (lambda s: fnp.array([s, 2.0 * s]), (0.5,)),
    "asarray": (lambda s: fnp.asarray([s, 2.0 * s]), (0.5,)),
    "reshape": (lambda x: fnp.reshape(x, (2, -1)), (MAT,)),
    "broadcast_to": (lambda x: fnp.broadcast_to(x, (2, 4)), (VEC,)),
    "split": (lambda x: fnp.split(x, 2), (VEC,)),
    "array_split": (lambda x: fnp.array_split(x, 3), (VEC,)),
    "hsplit": (lambda x: fnp.hsplit(x, 2), (MAT,)),
    "vsplit": (lambda x: fnp.vsplit(x, [1]), (MAT,)),
    "dsplit": (lambda x: fnp.dsplit(x[..., None], [0]), (MAT,)),
    "tile": (lambda x: fnp.tile(x, 2), (VEC,)),
    "repeat": (lambda x: fnp.repeat(x, 2), (VEC,)),
    "pad": (lambda x: fnp.pad(x, 1, mode="reflect"), (MAT,)),
    "roll": (lambda x: fnp.roll(x, 1), (VEC,)),
    "swapaxes": (lambda x: fnp.swapaxes(x, 0, 1), (MAT,)),
    "moveaxis": (lambda x: fnp.moveaxis(x, 0, 1), (MAT,)),
    "rollaxis": (lambda x: fnp.rollaxis(x, 1), (MAT,)),
    "expand_dims": (lambda x: fnp.expand_dims(x, 0), (VEC,)),
    "take": (lambda x: fnp.take(x, np.array([2, 0])), (VEC,)),
    "take_along_axis": (lambda x: fnp.take_along_axis(x, np.array([2, 0]), 0), (VEC,)),
    "where": (lambda x: fnp.where(x > 0.5, x, 2 * x), (VEC,)),
    "select": (lambda x: fnp.select([x > 0.5], [x], 0.0), (VEC,)),
    "searchsorted": (lambda a, v: fnp.searchsorted(a, v), (np.sort(VEC), VEC)),
    "quantile": (lambda x: fnp.quantile(x, 0.3), (VEC,)),
    "percentile": (lambda x: fnp.percentile(x, 30.0), (VEC,)),
    "average": (lambda x, w: fnp.average(x, weights=w), (VEC, VEC)),
    "clip": (lambda x: fnp.clip(x, 0.2, 0.6), (VEC,)),
    "astype": (lambda x: fnp.astype(x, np.float32), (VEC,)),
    "power": (lambda x, y: fnp.power(x, y), (VEC, VEC)),
    "einsum": (lambda a, b: fnp.einsum("ij,jk->ik", a, b), (MAT, MAT.T)),
    "tensordot": (lambda a, b: fnp.tensordot(a, b, 1), (MAT, MAT.T)),
    "cross": (lambda a, b: fnp.cross(a, b), (VEC[:3], SQUARE[0])),
    "matrix_power": (lambda a: fnp.linalg.matrix_power(a, 3), (SQUARE,)),
    "multi_dot": (lambda a, b: fnp.linalg.multi_dot([a, b, a]), (SQUARE, SQUARE)),
    "lstsq": (lambda a, b: fnp.linalg.lstsq(a, b)[0], (MAT.T, VEC)),
    "solve_triangular": (
        lambda a, b: importlib.import_module("functrans.scipy.linalg").solve_triangular(
            a, b, lower=True
        ),
        (np.tril(SQUARE), SQUARE[0]),
    ),
    "polygamma": (
        lambda x: importlib.import_module("functrans.scipy.special").polygamma(1, x),
        (VEC + 1,),
    ),
    "at": (lambda x: fnp.at(x)[1].set(2.0 * x[0]), (VEC,)),
    "fftfreq": (lambda: fnp.fft.fftfreq(4), ()),
    "rfftfreq": (lambda: fnp.fft.rfftfreq(4), ()),
}

# constructors of constants: they take shapes or integers and carry no derivative by design
CONSTANTS = {
    "arange", "empty", "empty_like", "eye", "identity", "ones", "ones_like", "tri", "zeros",
    "zeros_like", "shape", "ndim", "size",
}  # fmt: skip
# value-dependent result shapes: concrete arrays only (ConcretizationError under tracing)
EAGER_ONLY = {"unique", "nonzero", "flatnonzero", "argwhere"}

CONVENTIONS = {
    "max": "ties split the derivative equally",
    "min": "ties split the derivative equally",
    "amax": "ties split the derivative equally",
    "amin": "ties split the derivative equally",
    "nanmax": "ties split equally; NaN entries get zero derivative; all-NaN gives NaN",
    "nanmin": "ties split equally; NaN entries get zero derivative; all-NaN gives NaN",
    "ptp": "max - min; ties split equally",
    "nansum": "NaN entries get zero derivative",
    "nanmean": "NaN entries get zero derivative",
    "prod": "exact derivative with zeros in the input (no division)",
    "cumprod": "exact derivative with zeros in the input (no division)",
    "std": "infinite derivative where all entries are equal (sqrt at 0)",
    "median": "derivative to the middle order statistic(s); NaN anywhere gives NaN",
    "quantile": "methods linear/lower/higher/midpoint/nearest; concrete q; derivative to the "
    "interpolated order statistics",
    "percentile": "as quantile, q in [0, 100]",
    "sort": "stable; derivative follows each element to its sorted place",
    "argsort": "stable (equals NumPy's kind='stable')",
    "where": "derivative only to the chosen operand; 1-arg form: concrete only",
    "repeat": "counts must be concrete",
    "pad": "modes constant (traced constants ok), edge, reflect, symmetric, wrap",
    "unique": "concrete arrays only",
    "maximum": "ties split the derivative 0.5/0.5",
    "minimum": "ties split the derivative 0.5/0.5",
    "abs": "d|x|/dx at 0 is 0",
    "absolute": "d|x|/dx at 0 is 0",
}

NAMESPACES = [
    ("functrans.numpy", "fnp"),
    ("functrans.numpy.linalg", "fnp.linalg"),
    ("functrans.numpy.fft", "fnp.fft"),
    ("functrans.scipy.special", "functrans.scipy.special"),
    ("functrans.scipy.linalg", "functrans.scipy.linalg"),
]


def public_names(module_name: str) -> list[str]:
    """Public callables: the union of the `__all__` of functrans.numpy's private modules, or
    the module's own `__all__`."""
    module = importlib.import_module(module_name)
    if module_name == "functrans.numpy":
        names = set()
        for path in sorted(pathlib.Path(module.__file__).parent.glob("_*.py")):
            sub = importlib.import_module(f"functrans.numpy.{path.stem}")
            names.update(getattr(sub, "__all__", ()) if path.stem != "__init__" else ())
    else:
        names = set(getattr(module, "__all__", ()))
    return sorted(
        n
        for n in names
        if callable(getattr(module, n, None)) and not isinstance(getattr(module, n), type)
    )


# ---------------------------------------------------------------------------------------------
# Measuring support


def _leaves(out):
    return [np.asarray(x) for x in ft.tree_util.tree_leaves(out)]


def _is_float(out) -> bool:
    leaves = _leaves(out)
    return bool(leaves) and all(x.dtype.kind in "fc" for x in leaves)


def _close(a, b) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(
        x.shape == y.shape and np.allclose(x, y, rtol=1e-6, atol=1e-8, equal_nan=True)
        for x, y in zip(la, lb)
    )


def _sample(name: str, fn: Callable):
    """(callable of float args, args) that runs, or None."""
    if name in S:
        return S[name]
    for _, args in _probes(MAT, VEC, SQUARE):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(*args)
            _leaves(out)
            return fn, args
        except Exception:  # noqa: BLE001 - a probe that does not fit this function
            continue
    return None


def _try(check: Callable) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "yes" if check() else "WRONG"
    except Exception as e:  # noqa: BLE001 - the report names the failure
        return f"no ({type(e).__name__})"


def measure(name: str, fn: Callable) -> dict[str, str]:
    if name in CONSTANTS:
        return dict(grad="constant", vmap="constant", jit="constant")
    if name in EAGER_ONLY:
        return dict(grad="eager only", vmap="eager only", jit="eager only")
    sample = _sample(name, fn)
    if sample is None:
        return dict(grad="not probed", vmap="not probed", jit="not probed")
    f, args = sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(*args)
    float_args = [i for i, a in enumerate(args) if np.asarray(a).dtype.kind in "fc"]

    def partial(*xs):
        full = list(args)
        for i, x in zip(float_args, xs):
            full[i] = x
        return f(*full)

    diff_args = [args[i] for i in float_args]

    def differentiates():
        tangents = [np.ones_like(np.asarray(a, dtype=float)) for a in diff_args]
        ft.jvp(partial, diff_args, tangents)
        _, pullback = ft.vjp(partial, *diff_args)
        pullback(ft.tree_util.tree_map(lambda y: np.ones_like(np.asarray(y)), out))
        return True

    if not args:
        grad = "constant"
    elif not _is_float(out):
        grad = "no derivative (integer/boolean result)"
    else:
        grad = _try(differentiates)
        grad = "jvp, vjp" if grad == "yes" else grad

    def batches():
        batched = [np.stack([np.asarray(a), np.asarray(a) * 0.9]) for a in args]
        got = ft.vmap(f)(*batched)
        want = [f(*[b[k] for b in batched]) for k in range(2)]
        stacked = ft.tree_util.tree_map(lambda *ys: np.stack([np.asarray(y) for y in ys]), *want)
        return _close(got, stacked)

    vmap = _try(batches) if args else "constant"
    jit = _try(lambda: _close(ft.jit(f)(*args), out))
    return dict(grad=grad, vmap=vmap, jit=jit)


def convention(name: str, fn: Callable) -> str:
    if name in CONVENTIONS:
        text = CONVENTIONS[name]
    elif name in CONSTANTS:
        text = "returns a NumPy constant"
    elif name in EAGER_ONLY:
        text = "concrete arrays only (ConcretizationError under jit/vmap)"
    else:
        doc = (getattr(fn, "__doc__", None) or "").strip().splitlines()
        text = doc[0].strip().rstrip(".") if doc else ""
    return text.replace("|", "\\|")


def generate() -> str:
    lines = [
        "# NumPy coverage",
        "",
        "Generated by `python scripts/numpy_coverage.py` from the code; do not edit by hand "
        "(tests/test_numpy_coverage.py fails when this page is stale).",
        "",
        "Each function was called on a sample input, then differentiated (`jvp` and `vjp`), "
        "batched (`vmap`, compared with a loop) and staged (`jit`, compared with eager). "
        "*constant*: builds a NumPy constant (no derivative by design); *eager only*: the "
        "result's shape depends on values, so it works on concrete arrays and raises "
        "`ConcretizationError` under tracing; *no (Error)*: the transformation failed with that "
        "error; *WRONG*: it ran but disagreed with the reference.",
        "",
    ]
    for module_name, short in NAMESPACES:
        module = importlib.import_module(module_name)
        names = public_names(module_name)
        lines += [f"## {short}", "", f"{len(names)} functions.", ""]
        lines += ["| function | derivatives | vmap | jit | conventions |", "|---|---|---|---|---|"]
        for name in names:
            fn = getattr(module, name)
            m = measure(name, fn)
            lines.append(
                f"| `{name}` | {m['grad']} | {m['vmap']} | {m['jit']} | {convention(name, fn)} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is stale")
    text = generate()
    if parser.parse_args().check:
        stale = not DOC.exists() or DOC.read_text() != text
        print(f"{DOC} is {'stale' if stale else 'up to date'}")
        return int(stale)
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
