"""The staged program (Jaxpr): typed, first-order, in A-normal form.

A `Jaxpr` has constvars, invars, a list of `Eqn`s and outvars. Every variable is assigned exactly
once and carries its abstract value; an equation's inputs are `Var`s or `Literal` scalars. The
type checker verifies this against each primitive's abstract_eval. `eval_jaxpr` runs a program
through `bind`, so a staged program can itself be transformed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans import core
from functrans.core import Primitive, ShapedArray, aval_of, bind, dtype_name
from functrans.errors import JaxprTypeError


class Var:
    """A program variable; identity is the object itself."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Var<{self.aval.str_short()}>"


class Literal:
    """A scalar constant written inline in the program."""

    __slots__ = ("val", "aval")

    def __init__(self, val: Any, aval: ShapedArray | None = None):
        self.val = val
        self.aval = aval_of(val) if aval is None else aval

    def __repr__(self):
        return f"Literal({self.val!r})"


Atom = Var | Literal


class Eqn:
    __slots__ = ("prim", "inputs", "params", "outputs", "source")

    def __init__(self, prim: Primitive, inputs: list, params: dict, outputs: list[Var]):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.source: str | None = None  # the user's 'file:line', recorded under debug_nans

    def __repr__(self):
        return f"Eqn({self.prim.name}, {len(self.inputs)} in, {len(self.outputs)} out)"


class Jaxpr:
    """A first-order program: `outvars = f(constvars, invars)`."""

    __slots__ = ("constvars", "invars", "eqns", "outvars")

    def __init__(self, constvars: list[Var], invars: list[Var], eqns: list[Eqn], outvars: list):
        self.constvars = constvars
        self.invars = invars
        self.eqns = eqns
        self.outvars = outvars

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outvars]

    def __str__(self):
        return pretty_print(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A Jaxpr together with the values of its constvars; what `make_jaxpr` returns."""

    __slots__ = ("jaxpr", "consts", "in_tree", "out_tree")

    def __init__(self, jaxpr: Jaxpr, consts: Sequence[Any], in_tree=None, out_tree=None):
        self.jaxpr = jaxpr
        self.consts = list(consts)
        self.in_tree = in_tree
        self.out_tree = out_tree

    @property
    def eqns(self) -> list[Eqn]:
        return self.jaxpr.eqns

    @property
    def in_avals(self) -> list[ShapedArray]:
        return self.jaxpr.in_avals

    @property
    def out_avals(self) -> list[ShapedArray]:
        return self.jaxpr.out_avals

    def __call__(self, *args):
        return eval_jaxpr(self.jaxpr, self.consts, *args)

    def __str__(self):
        return pretty_print(self.jaxpr)

    __repr__ = __str__


def has_effects(eqn: Eqn) -> bool:
    """Whether an equation has an effect (a debug print), itself or in a program it holds (a
    branch, a loop body): it must then run where, and as often as, it is written (never
    removed, merged, folded or moved out of a loop)."""
    if eqn.prim.effectful:
        return True
    for v in eqn.params.values():
        for p in v if type(v) is tuple else (v,):
            jaxpr = p.jaxpr if type(p) is ClosedJaxpr else p if type(p) is Jaxpr else None
            if jaxpr is not None and any(has_effects(e) for e in jaxpr.eqns):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Evaluation


def eval_jaxpr(jaxpr: Jaxpr, consts: Sequence[Any], *args: Any) -> list[Any]:
    """Run `jaxpr` on `args` by binding each equation under the current trace."""
    env: dict[Var, Any] = {}
    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x in zip(jaxpr.invars, args, strict=True):
        env[v] = x
    debugging = core.output_check is not None
    for eqn in jaxpr.eqns:
        ins = [env[a] if type(a) is Var else a.val for a in eqn.inputs]
        if debugging:  # errors name the staged equation's source line
            token = core.debug_eqn.set(eqn)
            try:
                outs = bind(eqn.prim, *ins, **eqn.params)
            finally:
                core.debug_eqn.reset(token)
        else:
            outs = bind(eqn.prim, *ins, **eqn.params)
        if eqn.prim.multiple_results:
            for v, x in zip(eqn.outputs, outs, strict=True):
                env[v] = x
        else:
            env[eqn.outputs[0]] = outs
    return [env[a] if type(a) is Var else a.val for a in jaxpr.outvars]


# ---------------------------------------------------------------------------------------------
# Type checking


def typecheck(jaxpr: Jaxpr) -> None:
    """Check single assignment, definition before use and every equation's output types."""
    defined: set[Var] = set()

    def define(v, where):
        if type(v) is not Var:
            raise JaxprTypeError(f"{where}: expected a variable, got {v!r}")
        if v in defined:
            raise JaxprTypeError(f"{where}: variable {v!r} is assigned twice")
        defined.add(v)

    def use(a, where):
        if type(a) is Var and a not in defined:
            raise JaxprTypeError(f"{where}: variable {a!r} is used before it is defined")

    for v in jaxpr.constvars:
        define(v, "constvars")
    for v in jaxpr.invars:
        define(v, "invars")
    for i, eqn in enumerate(jaxpr.eqns):
        where = f"equation {i} ({eqn.prim.name})"
        for a in eqn.inputs:
            use(a, where)
        out = eqn.prim.abstract_eval(*[a.aval for a in eqn.inputs], **eqn.params)
        out_avals = out if eqn.prim.multiple_results else [out]
        got = [v.aval for v in eqn.outputs]
        if list(out_avals) != got:
            raise JaxprTypeError(
                f"{where}: outputs are typed {_avals_str(got)} but the primitive produces "
                f"{_avals_str(out_avals)}"
            )
        for v in eqn.outputs:
            define(v, where)
    for a in jaxpr.outvars:
        use(a, "outvars")


def _avals_str(avals) -> str:
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


# ---------------------------------------------------------------------------------------------
# Pretty-printing


def _var_names():
    letters = "abcdefghijklmnopqrstuvwxyz"
    n = 0
    while True:
        q, r = divmod(n, 26)
        yield letters[r] * (q + 1)
        n += 1


def _format_param(v: Any) -> str:
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return dtype_name(np.dtype(v))
    if isinstance(v, (Jaxpr, ClosedJaxpr)):
        inner = pretty_print(v.jaxpr if isinstance(v, ClosedJaxpr) else v)
        return "\n      " + inner.replace("\n", "\n      ")
    if callable(v) and not isinstance(v, type):
        return getattr(v, "__name__", type(v).__name__)
    if isinstance(v, tuple):
        return "(" + ",".join(_format_param(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v) if isinstance(v, str) else str(v)


def pretty_print(jaxpr: Jaxpr) -> str:
    names: dict[Var, str] = {}
    fresh = _var_names()

    def name(a) -> str:
        if type(a) is Literal:
            val = a.val.item() if isinstance(a.val, (np.ndarray, np.generic)) else a.val
            return f"{val}"
        if a not in names:
            names[a] = next(fresh)
        return names[a]

    def binder(v: Var) -> str:
        return f"{name(v)}:{v.aval.str_short()}"

    consts = " ".join(binder(v) for v in jaxpr.constvars)
    ins = " ".join(binder(v) for v in jaxpr.invars)
    lines = [f"{{ lambda {consts}; {ins}. let"]
    for eqn in jaxpr.eqns:
        lhs = " ".join(binder(v) for v in eqn.outputs)
        params = ""
        if eqn.params:
            params = "[" + " ".join(f"{k}={_format_param(v)}" for k, v in eqn.params.items()) + "]"
        args = " ".join(name(a) for a in eqn.inputs)
        lines.append(f"    {lhs} = {eqn.prim.name}{params} {args}".rstrip())
    outs = ", ".join(name(a) for a in jaxpr.outvars) + ("," if len(jaxpr.outvars) == 1 else "")
    lines.append(f"  in ({outs}) }}")
    return "\n".join(lines)
