"""Simplification passes over a closed Jaxpr (what jit runs before generating code).

Each pass maps a program to an equivalent one and never changes results: constant folding
(equations whose inputs are all known run once, at compile time), forwarding of algebraic
identities (x * 1, x + 0, no-op reshapes/transposes/casts/broadcasts), common-subexpression
elimination, and dead-code elimination. `simplify` runs them to a fixed point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functrans.ir import Eqn, Jaxpr, Literal, Var

Atom = Var | Literal


class _Program:
    """A mutable view of a closed program: equations plus known values for some variables."""

    def __init__(self, jaxpr: Jaxpr, consts: list[Any]):
        self.invars = list(jaxpr.invars)
        self.eqns = list(jaxpr.eqns)
        self.outvars = list(jaxpr.outvars)
        self.known: dict[Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))

    def close(self) -> tuple[Jaxpr, list[Any]]:
        used = {a for e in self.eqns for a in e.inputs if type(a) is Var}
        used.update(a for a in self.outvars if type(a) is Var)
        constvars = [v for v in self.known if v in used]
        jaxpr = Jaxpr(constvars, self.invars, self.eqns, self.outvars)
        return jaxpr, [self.known[v] for v in constvars]


def _value(p: _Program, a: Atom) -> Any:
    """The compile-time value of an atom, or `_UNKNOWN`."""
    if type(a) is Literal:
        return a.val
    return p.known.get(a, _UNKNOWN)


_UNKNOWN = object()


def _uniform(x: Any) -> Any:
    """The scalar that fills `x`, when x is a scalar or a broadcast scalar; else _UNKNOWN."""
    if x is _UNKNOWN:
        return _UNKNOWN
    if np.ndim(x) == 0:
        return x[()] if isinstance(x, np.ndarray) else x
    if not isinstance(x, np.ndarray) or x.size == 0:
        return _UNKNOWN
    if all(s == 0 for s in x.strides):
        return x.flat[0]
    if x.size <= _UNIFORM_SCAN_LIMIT:
        first = x.flat[0]
        if (x == first).all():
            return first
    return _UNKNOWN


# Materialised constants (fnp.ones(n), closed-over arrays) are scanned for uniformity at compile
# time up to this size; larger ones are not worth the scan.
_UNIFORM_SCAN_LIMIT = 1 << 16


def fold_constants(p: _Program) -> bool:
    changed = False
    eqns = []
    for eqn in p.eqns:
        vals = [_value(p, a) for a in eqn.inputs]
        if not eqn.prim.effectful and all(v is not _UNKNOWN for v in vals):
            outs = eqn.prim.impl(*vals, **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            for v, out in zip(eqn.outputs, outs, strict=True):
                p.known[v] = np.asarray(out, dtype=v.aval.dtype)
            changed = True
        else:
            eqns.append(eqn)
    p.eqns = eqns
    return changed


def _forwarded(p: _Program, eqn: Eqn) -> Atom | None:
    """An input equal to the equation's output (an algebraic identity), if any."""
    name = eqn.prim.name
    out_aval = eqn.outputs[0].aval
    ins = eqn.inputs
    if name in ("reshape", "convert_element_type", "broadcast_in_dim"):
        # same shape and dtype in and out: these move or cast nothing
        return ins[0] if ins[0].aval == out_aval else None
    if name == "transpose":
        return ins[0] if _identity_perm(eqn) else None
    if name == "integer_pow":
        return ins[0] if eqn.params["y"] == 1 else None
    if name in ("mul", "add", "sub", "div"):
        x, y = ins
        unit = 1 if name in ("mul", "div") else 0
        if x.aval == out_aval and _uniform(_value(p, y)) == unit:
            return x
        if name in ("mul", "add") and y.aval == out_aval and _uniform(_value(p, x)) == unit:
            return y
    return None


def _identity_perm(eqn: Eqn) -> bool:
    perm = eqn.params["permutation"]
    return tuple(perm) == tuple(range(len(perm)))


def forward_identities(p: _Program) -> bool:
    subst: dict[Var, Atom] = {}
    eqns = []
    for eqn in p.eqns:
        if subst:
            eqn = Eqn(eqn.prim, [subst.get(a, a) for a in eqn.inputs], eqn.params, eqn.outputs)
        src = None if eqn.prim.multiple_results else _forwarded(p, eqn)
        if src is None:
            eqns.append(eqn)
        else:
            subst[eqn.outputs[0]] = src
    return _commit(p, eqns, subst)


def _commit(p: _Program, eqns: list[Eqn], subst: dict) -> bool:
    """Install a rewritten equation list whose removed outputs map to `subst`."""
    if not subst:
        return False
    p.eqns = eqns
    p.outvars = [subst.get(a, a) if type(a) is Var else a for a in p.outvars]
    return True


def _key(a: Atom) -> Any:
    if type(a) is Var:
        return a
    return ("literal", a.aval.dtype, a.val.item() if hasattr(a.val, "item") else a.val)


def _params_key(params: dict) -> Any:
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def eliminate_common_subexpressions(p: _Program) -> bool:
    seen: dict[Any, list[Var]] = {}
    subst: dict[Var, Var] = {}
    eqns = []
    for eqn in p.eqns:
        if subst:
            eqn = Eqn(eqn.prim, [subst.get(a, a) for a in eqn.inputs], eqn.params, eqn.outputs)
        pkey = None if eqn.prim.effectful else _params_key(eqn.params)
        key = None if pkey is None else (eqn.prim, tuple(_key(a) for a in eqn.inputs), pkey)
        prev = None if key is None else seen.get(key)
        if prev is None:
            if key is not None:
                seen[key] = eqn.outputs
            eqns.append(eqn)
        else:
            subst.update(zip(eqn.outputs, prev, strict=True))
    return _commit(p, eqns, subst)


def eliminate_dead_code(p: _Program) -> bool:
    live = {a for a in p.outvars if type(a) is Var}
    kept = []
    for eqn in reversed(p.eqns):
        if eqn.prim.effectful or any(v in live for v in eqn.outputs):
            kept.append(eqn)
            live.update(a for a in eqn.inputs if type(a) is Var)
    changed = len(kept) != len(p.eqns)
    p.eqns = kept[::-1]
    return changed


def _literalize(p: _Program) -> None:
    """Known scalars become literals, so later passes and the code generator see them inline."""
    subst = {v: Literal(x) for v, x in p.known.items() if np.ndim(x) == 0}
    if not subst:
        return
    p.eqns = [
        Eqn(
            e.prim,
            [subst.get(a, a) if type(a) is Var else a for a in e.inputs],
            e.params,
            e.outputs,
        )
        for e in p.eqns
    ]
    p.outvars = [subst.get(a, a) if type(a) is Var else a for a in p.outvars]


def simplify(jaxpr: Jaxpr, consts: list[Any]) -> tuple[Jaxpr, list[Any]]:
    """An equivalent program with no foldable, redundant, identity or dead equations."""
    p = _Program(jaxpr, consts)
    for _ in range(10):  # each pass only shrinks the program; a few rounds reach a fixed point
        changed = fold_constants(p)
        changed |= forward_identities(p)
        changed |= eliminate_common_subexpressions(p)
        changed |= eliminate_dead_code(p)
        if not changed:
            break
    _literalize(p)
    return p.close()
