"""docs/errors.md and the real error messages agree.

The page has one `## \\`ErrorClass\\`` section per class of functrans/errors.py, each with a
table of situations and the key phrase of their message. Every row is triggered here and the
phrase must appear in the real message; every error class needs a section with at least one row
(FunctransError, the base, excepted); every trigger below must be a row of the page.
"""

from __future__ import annotations

import builtins
import inspect
import pathlib
import re

import numpy as np
import pytest

import functrans as ft
import functrans.numpy as fnp
from functrans import errors, ir
from functrans.core import Primitive

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def _doc_rows() -> list[tuple[str, str, str]]:
    """(error class name, situation, key phrase) for every table row of docs/errors.md."""
    rows = []
    for section in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        heading = section.splitlines()[0]
        m = re.match(r"`(\w+)`", heading)
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|") or set(cells[0]) <= set("-") or cells[-1] == "key phrase":
                continue
            if m:  # a class section: | situation | `phrase` |
                cls, situation, phrase = m.group(1), cells[0], cells[1]
            else:  # "Other exceptions": | `Error` | situation | `phrase` |
                cls, situation, phrase = cells[0].strip("`"), cells[1], cells[2]
            rows.append((cls, situation, phrase.strip("`")))
    return rows


def _doc_sections() -> set[str]:
    return set(re.findall(r"^## `(\w+)`", DOC.read_text(), flags=re.M))


def _error_classes() -> list[str]:
    return [
        n
        for n, o in vars(errors).items()
        if inspect.isclass(o) and issubclass(o, errors.FunctransError)
    ]


# --- triggers: (class, situation) -> a call that must raise it ----------------------------------


def _leak():
    stash = []
    ft.grad(lambda x: stash.append(x) or x * x)(3.0)
    return stash[0] + 1.0


def _nonlinear_custom_jvp():
    @ft.custom_jvp
    def square(x):
        return x * x

    @square.defjvp
    def _(primals, tangents):
        return primals[0] * primals[0], tangents[0] * tangents[0]

    return ft.grad(square)(3.0)


def _missing_jvp():
    cube_p = Primitive("cube")
    cube_p.impl = lambda x: x**3
    cube_p.abstract_eval = lambda aval: aval
    return ft.grad(cube_p.bind)(2.0)


def _debug_nans_log():
    with np.errstate(all="ignore"), ft.config.debug_nans():
        return ft.grad(lambda x: fnp.sum(fnp.log(x)))(np.array([1.0, 0.0]))


def _reordered_program():
    program = ft.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0).jaxpr
    ir.typecheck(ir.Jaxpr(program.constvars, program.invars, program.eqns[::-1], program.outvars))


def _in_place(x):
    x[0] = 0.0
    return fnp.sum(x)


TABLE = np.array([10.0, 20.0, 30.0])

TRIGGERS = {
    ("NonDifferentiableInputError", "`grad` of an integer argument"): lambda: ft.grad(
        lambda x: x**2
    )(3),
    ("NonDifferentiableInputError", "integer leaf inside a differentiated dict"): lambda: ft.grad(
        lambda p: p["w"] * 2.0
    )({"w": 1.0, "n": 3}),
    ("NonScalarOutputError", "`grad` of a function returning an array"): lambda: ft.grad(
        lambda x: x**2
    )(np.ones(3)),
    ("NonScalarOutputError", "`grad` of a function returning a tuple"): lambda: ft.grad(
        lambda x: (x**2, "aux")
    )(1.0),
    ("NonScalarOutputError", "`grad` of a complex output"): lambda: ft.grad(lambda x: x * 1j)(1.0),
    ("ArgnumsError", "`argnums` out of range"): lambda: ft.grad(lambda x: x**2, argnums=1)(1.0),
    ("ArgnumsError", "`argnums` repeated"): lambda: ft.grad(lambda x, y: x * y, argnums=(0, 0))(
        1.0, 2.0
    ),
    ("TreeStructureError", "`jvp` with fewer tangents than primals"): lambda: ft.jvp(
        lambda x, y: x * y, (1.0, 2.0), (1.0,)
    ),
    ("TreeStructureError", "`vjp` cotangent with the wrong structure"): lambda: ft.vjp(
        lambda x: (x, 2.0 * x), 1.0
    )[1](1.0),
    ("TreeStructureError", "`vmap` `in_axes` longer than the arguments"): lambda: ft.vmap(
        lambda x, y: x * y, in_axes=(0, 0, 0)
    )(np.ones(2), np.ones(2)),
    ("ShapeDtypeMismatchError", "`jvp` tangent of the wrong shape"): lambda: ft.jvp(
        fnp.sin, (np.ones(3),), (np.ones(2),)
    ),
    ("ShapeDtypeMismatchError", "`jvp` float32 tangent for a float64 primal"): lambda: ft.jvp(
        fnp.sin, (np.ones(3),), (np.ones(3, np.float32),)
    ),
    ("ShapeDtypeMismatchError", "`vjp` cotangent of the wrong shape"): lambda: ft.vjp(
        fnp.sin, np.ones(3)
    )[1](np.ones(2)),
    ("BatchingError", "mapped arguments of different sizes"): lambda: ft.vmap(lambda a, b: a + b)(
        np.ones(3), np.ones(4)
    ),
    ("BatchingError", "`in_axes` beyond the argument's rank"): lambda: ft.vmap(
        lambda a: a, in_axes=1
    )(np.ones(3)),
    ("BatchingError", "`out_axes=None` on a batched output"): lambda: ft.vmap(
        lambda a: a, out_axes=None
    )(np.ones(3)),
    ("BatchingError", "no mapped argument and no `axis_size`"): lambda: ft.vmap(
        lambda a: a, in_axes=None
    )(np.ones(3)),
    ("BatchingError", "Python `if` on a batched value"): lambda: ft.vmap(
        lambda a: a if a > 0 else -a
    )(np.ones(3)),
    ("ConcretizationError", "`if x > 0:` under `jit`"): lambda: ft.jit(
        lambda x: x if x > 0 else -x
    )(1.0),
    ("ConcretizationError", "`float(x)` of the value being differentiated"): lambda: ft.grad(
        lambda x: float(x) * x
    )(2.0),
    ("TracerArrayConversionError", "`np.asarray` of a traced value"): lambda: ft.grad(
        lambda x: np.asarray(x).sum()
    )(np.ones(2)),
    ("TracerArrayConversionError", "NumPy array indexed by a traced index"): lambda: ft.vmap(
        lambda i: TABLE[i]
    )(np.array([0, 2])),
    ("LeakedTracerError", "a tracer stashed under `grad` and used afterwards"): _leak,
    (
        "NonLinearError",
        "`grad` through a `custom_jvp` rule that squares its tangent",
    ): _nonlinear_custom_jvp,
    ("NonLinearError", "`linear_transpose` of a non-linear function"): lambda: ft.linear_transpose(
        lambda x: x * x, 1.0
    )(1.0),
    ("MissingRuleError", "`grad` through a primitive with no JVP rule"): _missing_jvp,
    ("NotSupportedError", "the gradient through the full U of a non-square `svd`"): lambda: ft.grad(
        lambda a: fnp.linalg.svd(a)[1].sum()
    )(np.ones((3, 2))),
    ("NonFiniteError", "`log(0)` inside `grad` with `debug_nans` on"): _debug_nans_log,
    ("JaxprTypeError", "equations of a traced program put in the wrong order"): _reordered_program,
    ("TypeError", "in-place assignment into a traced array"): lambda: ft.grad(_in_place)(
        np.ones(3)
    ),
}

ROWS = _doc_rows()


@pytest.mark.parametrize("cls_name, situation, phrase", ROWS, ids=[f"{c}: {s}" for c, s, _ in ROWS])
def test_documented_message_is_real(cls_name, situation, phrase):
    trigger = TRIGGERS.get((cls_name, situation))
    assert trigger is not None, (
        f"docs/errors.md documents {cls_name} for {situation!r}; add a trigger to TRIGGERS"
    )
    cls = getattr(errors, cls_name, None) or getattr(builtins, cls_name)
    with pytest.raises(cls) as info:
        trigger()
    if cls.__module__ == "builtins":  # not a subclass of it: exactly the documented class
        assert type(info.value) is cls, f"expected {cls_name}, got {type(info.value).__name__}"
    message = str(info.value)
    assert phrase in message, f"key phrase {phrase!r} not in the real message:\n{message}"


def test_every_error_class_is_documented():
    missing = [n for n in _error_classes() if n not in _doc_sections()]
    assert not missing, f"error classes without a section in docs/errors.md: {missing}"
    rowless = {n for n in _error_classes() if n != "FunctransError"} - {c for c, _, _ in ROWS}
    assert not rowless, f"error classes without a situation/key-phrase row: {sorted(rowless)}"


def test_every_trigger_is_documented():
    stale = set(TRIGGERS) - {(c, s) for c, s, _ in ROWS}
    assert not stale, f"triggers whose row is no longer in docs/errors.md: {sorted(stale)}"


def test_documented_bases_are_real():
    """The '*A `TypeError`.*' line of each section names a real base class."""
    text = DOC.read_text()
    for name in _error_classes():
        m = re.search(rf"^## `{name}`\n\n\*A `(\w+)`", text, flags=re.M)
        if m:
            assert issubclass(getattr(errors, name), getattr(builtins, m.group(1))), name
