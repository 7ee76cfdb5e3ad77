"""Simplification passes over a closed Jaxpr (what jit runs before generating code).

Each pass maps a program to an equivalent one and never changes finite results: constant
folding (equations whose inputs are all known run once, at compile time), forwarding of algebraic
identities (x * 1, x + 0, no-op reshapes/transposes/casts/broadcasts), local rewrites (a product
with a diagonal matrix becomes a scaling; transposes and reshapes compose), common-subexpression
elimination, and dead-code elimination. `simplify` runs them to a fixed point. Nothing that would
change rounding (reassociation, constant-chain fusion) is done.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functrans.core import ShapedArray
from functrans.ir import Eqn, Jaxpr, Literal, Var, has_effects
from functrans.primitives import broadcast_in_dim_p, mul_p, pad_p, reshape_p, transpose_p

Atom = Var | Literal


class _Program:
    """A mutable view of a closed program: equations plus known values for some variables."""

    def __init__(self, jaxpr: Jaxpr, consts: list[Any]):
        self.invars = list(jaxpr.invars)
        self.eqns = list(jaxpr.eqns)
        self.outvars = list(jaxpr.outvars)
        self.known: dict[Var, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
        self.diagonals: dict[Var, Any] = {}  # known square matrices: diagonal, or None

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
        if all(v is not _UNKNOWN for v in vals) and not has_effects(eqn):
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
        kind = out_aval.dtype.kind
        if x.aval == out_aval and _is_unit(name, _broadcast_scalar(p, y), kind):
            return x
        if name in ("mul", "add") and y.aval == out_aval:
            if _is_unit(name, _broadcast_scalar(p, x), kind):
                return y
    return None


def _broadcast_scalar(p: _Program, a: Atom) -> Any:
    """The scalar `a` is, or is broadcast from (a view, no memory of its own); else _UNKNOWN.
    A materialised uniform array of two or more dimensions (fnp.ones((n, n))) does not count:
    the eager product with it is a new C-ordered array, so forwarding a Fortran-ordered operand
    in its place would change the order a later reduction sums in."""
    v = _value(p, a)
    if isinstance(v, np.ndarray) and v.ndim > 1 and any(v.strides):
        return _UNKNOWN
    return _uniform(v)


def _is_unit(name: str, v: Any, kind: str) -> bool:
    """Whether combining any x of dtype kind `kind` with the scalar v by `name` gives exactly x,
    signed zeros, infinities and NaNs included: 1 for mul and div on real dtypes (a complex
    product with 1 + 0j can turn -0.0 into 0.0, and inf into nan); -0.0 for add, and +0.0 for
    sub, on floating dtypes (-0.0 + 0.0 is +0.0); 0 on integers and booleans."""
    if v is _UNKNOWN:
        return False
    if name in ("mul", "div"):
        return kind != "c" and v == 1
    if v != 0:
        return False
    if kind not in "fc":
        return True
    negative = name == "add"
    parts = (np.real(v), np.imag(v)) if kind == "c" else (v,)
    return all(bool(np.signbit(part)) == negative for part in parts)


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


# ---------------------------------------------------------------------------------------------
# Local rewrites: an equation is replaced by cheaper ones computing the same value.
#
# jacrev and jacfwd push an identity basis through the program, so a Jacobian program contains
# diag(s) = eye * broadcast(s) contracted with a matrix: O(n^2 k) multiply-adds for what is an
# O(n k) scaling. `dot(diag(s), b)` becomes `s[:, None] * b` (and `dot(b, diag(s))` becomes
# `b * s`). Each element of the dense product is its one nonzero term plus exact zeros, so for
# finite values the result is the same number (a zero may change sign). Where the dense product
# would form 0 * inf = nan from the zeros of the diagonal matrix, the scaling does not: it gives
# the derivative the user's program means, as the analytic Jacobian does.


def _new_var(shape: tuple[int, ...], dtype) -> Var:
    return Var(ShapedArray(shape, dtype))


def _known_const(p: _Program, value: np.ndarray) -> Var:
    v = _new_var(value.shape, value.dtype)
    p.known[v] = value
    return v


def _matrix_side(aval) -> int | None:
    """n when the shape is (n, n) up to axes of size 1 (n > 1, or n = 1 for a 2-d shape)."""
    big = [s for s in aval.shape if s != 1]
    if len(big) == 2 and big[0] == big[1]:
        return big[0]
    return 1 if aval.shape == (1, 1) else None


def _known_diagonal(p: _Program, a: Atom) -> np.ndarray | None:
    """The diagonal of `a` when it is a known square matrix (up to unit axes) that is zero off
    its diagonal."""
    n = None if type(a) is not Var else _matrix_side(a.aval)
    if n is None:
        return None
    if a not in p.diagonals:
        x = p.known.get(a)
        diag = None
        if isinstance(x, np.ndarray) and x.size and x.dtype.kind in "iufc":
            x = x.reshape(n, n)
            d = np.diagonal(x)
            # nan counts as nonzero; a zero matrix is not taken as diag(0): its dense product
            # is +0.0 where the scaling would give -0.0 (zero cotangents are common)
            if np.count_nonzero(x) == np.count_nonzero(d) != 0:
                diag = d.copy()
        p.diagonals[a] = diag
    return p.diagonals[a]


_ONES = object()  # the scale of an identity matrix


def _diagonal_scale(p: _Program, producers: dict, a: Atom, pre: list[Eqn]) -> Any:
    """An atom s with a == diag(s) by the program's structure (or `_ONES`), else None; equations
    computing s are appended to `pre`. Recognised: a known diagonal matrix, a known diagonal
    matrix times a vector broadcast along either axis (what the identity basis of jacrev/jacfwd
    becomes), fnp.diag(v) (v padded with n zeros between elements, reshaped to n x n), and the
    transpose of any of these."""
    d = _known_diagonal(p, a)
    if d is not None:
        return _ONES if (d == 1).all() else _known_const(p, d)
    eqn = producers.get(a)
    if eqn is None:
        return None
    n = _matrix_side(a.aval)
    if a.aval.ndim != 2:  # unit axes added to a matrix (as matmul does under vmap)
        if eqn.prim is not reshape_p or _matrix_side(eqn.inputs[0].aval) != n:
            return None
        return _diagonal_scale(p, producers, eqn.inputs[0], pre)
    if eqn.prim is transpose_p:  # a diagonal matrix is its own transpose
        return _diagonal_scale(p, producers, eqn.inputs[0], pre)
    if eqn.prim is reshape_p:
        src = producers.get(eqn.inputs[0])
        if (
            src is not None
            and src.prim is pad_p
            and src.inputs[0].aval.shape == (n,)
            and src.params["padding_config"] == ((0, 0, n),)
            and src.params["value"] == 0
        ):
            return src.inputs[0]
        return None
    if eqn.prim is not mul_p:
        return None
    for e, s in (eqn.inputs, eqn.inputs[::-1]):
        d = _known_diagonal(p, e)
        v = None if d is None else _broadcast_vector(producers.get(s), n, pre)
        if v is None:
            continue
        # eye * broadcast(v) along either axis is diag(v): only the diagonal survives
        if (d == 1).all():
            return v
        scale = _new_var((n,), a.aval.dtype)
        pre.append(Eqn(mul_p, [_known_const(p, d), v], {}, [scale]))
        return scale
    return None


def _broadcast_vector(eqn: Eqn | None, n: int, pre: list[Eqn]) -> Atom | None:
    """v of shape (n,) when `eqn` broadcasts v to (n, n) along one axis (v may be (n,), (n, 1)
    or (1, n)); a reshape to (n,) is appended to `pre` when needed."""
    if eqn is None or eqn.prim is not broadcast_in_dim_p:
        return None
    (x,), dims = eqn.inputs, eqn.params["broadcast_dimensions"]
    if x.aval.shape == (n,) and dims in ((0,), (1,)):
        return x
    if x.aval.shape in ((n, 1), (1, n)) and dims == (0, 1):
        v = _new_var((n,), x.aval.dtype)
        pre.append(Eqn(reshape_p, [x], {"new_sizes": (n,)}, [v]))
        return v
    return None


def _scaled_dot(p: _Program, producers: dict, eqn: Eqn) -> list[Eqn] | Atom | None:
    """A dot_general with a diagonal matrix operand (possibly with unit axes) as a transpose, a
    reshape and a broadcast multiply."""
    (lc, rc), (lb, _) = eqn.params["dimension_numbers"]
    if lb or len(lc) != 1:
        return None
    out = eqn.outputs[0]
    shape = out.aval.shape
    for side in (0, 1):
        a, b = eqn.inputs if side == 0 else eqn.inputs[::-1]
        (ka,), (kb,) = (lc, rc) if side == 0 else (rc, lc)
        n = _matrix_side(a.aval)
        # the contraction must run over one of the matrix's two axes
        if n is None or a.aval.shape[ka] != n or (n == 1 and a.aval.ndim != 2):
            continue
        pre: list[Eqn] = []
        scale = _diagonal_scale(p, producers, a, pre)
        if scale is None:
            continue
        # out[.., i, ..] = scale[i] * b[.., i, ..]: move b's contracted axis to where a's free
        # matrix axis lands in the result (a's free axes come first when a is on the left)
        others = tuple(i for i in range(b.aval.ndim) if i != kb)
        a_free = [s for i, s in enumerate(a.aval.shape) if i != ka]
        axis = a_free.index(n) + (0 if side == 0 else len(others))
        perm = (kb, *others) if side == 0 else (*others, kb)
        if perm != tuple(range(len(perm))):
            moved = _new_var(tuple(b.aval.shape[i] for i in perm), b.aval.dtype)
            pre.append(Eqn(transpose_p, [b], {"permutation": perm}, [moved]))
            b = moved
        if b.aval.shape != shape:  # only unit axes differ
            moved = _new_var(shape, b.aval.dtype)
            pre.append(Eqn(reshape_p, [b], {"new_sizes": shape}, [moved]))
            b = moved
        if scale is _ONES:
            if not pre:
                return b
            pre[-1].outputs = [out]
            return pre
        wide = _new_var(shape, out.aval.dtype)
        params = {"shape": shape, "broadcast_dimensions": (axis,)}
        pre.append(Eqn(broadcast_in_dim_p, [scale], params, [wide]))
        pre.append(Eqn(mul_p, [wide, b], {}, [out]))
        return pre
    return None


def _transposed_operands(p: _Program, producers: dict, eqn: Eqn) -> list[Eqn] | None:
    """A dot_general of a transposed operand reads the operand itself, with its axes renamed in
    the dimension numbers, when that keeps the order of the operand's free axes (which is their
    order in the result): no transposed copy is made for the product."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    ops, dims, changed = list(eqn.inputs), [[lc, lb], [rc, rb]], False
    for k in (0, 1):
        src = producers.get(ops[k]) if type(ops[k]) is Var else None
        if src is None or src.prim is not transpose_p:
            continue
        perm = src.params["permutation"]
        contract, batch = dims[k]
        free = [perm[i] for i in range(len(perm)) if i not in contract and i not in batch]
        if free != sorted(free):
            continue
        ops[k] = src.inputs[0]
        dims[k] = [tuple(perm[i] for i in contract), tuple(perm[i] for i in batch)]
        changed = True
    if not changed:
        return None
    numbers = ((dims[0][0], dims[1][0]), (dims[0][1], dims[1][1]))
    return [Eqn(eqn.prim, ops, {"dimension_numbers": numbers}, eqn.outputs)]


def _dot_general(p: _Program, producers: dict, eqn: Eqn) -> list[Eqn] | Atom | None:
    new = _scaled_dot(p, producers, eqn)
    return new if new is not None else _transposed_operands(p, producers, eqn)


def _fused_transpose(p: _Program, producers: dict, eqn: Eqn) -> list[Eqn] | None:
    """transpose(transpose(x, p1), p2) is one transpose of x, by p1[p2]; a transpose that keeps
    the order of the axes longer than 1 only moves unit axes: it is a reshape."""
    (x,), perm = eqn.inputs, eqn.params["permutation"]
    long_axes = [i for i in perm if x.aval.shape[i] != 1]
    if long_axes == sorted(long_axes):
        return [Eqn(reshape_p, [x], {"new_sizes": eqn.outputs[0].aval.shape}, eqn.outputs)]
    src = producers.get(eqn.inputs[0])
    if src is None or src.prim is not transpose_p:
        return None
    outer, inner = eqn.params["permutation"], src.params["permutation"]
    perm = tuple(inner[i] for i in outer)
    return [Eqn(transpose_p, [src.inputs[0]], {"permutation": perm}, eqn.outputs)]


def _fused_reshape(p: _Program, producers: dict, eqn: Eqn) -> list[Eqn] | None:
    """reshape(reshape(x)) is one reshape of x (both read and write in C order)."""
    src = producers.get(eqn.inputs[0])
    if src is None or src.prim is not reshape_p:
        return None
    return [Eqn(reshape_p, [src.inputs[0]], eqn.params, eqn.outputs)]


_REWRITES = {
    "dot_general": _dot_general,
    "transpose": _fused_transpose,
    "reshape": _fused_reshape,
}


def rewrite_locally(p: _Program) -> bool:
    subst: dict[Var, Atom] = {}
    producers: dict[Var, Eqn] = {}
    eqns = []
    changed = False
    for eqn in p.eqns:
        if subst:
            eqn = Eqn(eqn.prim, [subst.get(a, a) for a in eqn.inputs], eqn.params, eqn.outputs)
        rule = _REWRITES.get(eqn.prim.name)
        new = None if rule is None else rule(p, producers, eqn)
        if new is None:
            new = [eqn]
        elif isinstance(new, list):
            changed = True
        else:  # the equation computes an existing value
            subst[eqn.outputs[0]] = new
            continue
        for e in new:
            producers.update((v, e) for v in e.outputs)
        eqns.extend(new)
    if not changed and not subst:
        return False
    p.eqns = eqns
    p.outvars = [subst.get(a, a) if type(a) is Var else a for a in p.outvars]
    return True


def _key(a: Atom) -> Any:
    if type(a) is Var:
        return a
    # by bits: 0.0 and -0.0 (equal numbers, different products) are different literals
    return ("literal", a.aval.dtype, np.asarray(a.val, a.aval.dtype).tobytes())


def _params_key(params: dict) -> Any:
    """Params as a hashable key, floats by their bits (pad with 0.0 or -0.0 differ), or None."""
    try:
        key = tuple(sorted((k, _bits(v)) for k, v in params.items()))
        hash(key)
        return key
    except TypeError:
        return None


def _bits(v: Any) -> Any:
    t = type(v)
    if t is float or t is complex or isinstance(v, np.inexact):
        return (t, np.asarray(v).tobytes())
    if t is tuple:
        return tuple(map(_bits, v))
    return v


def eliminate_common_subexpressions(p: _Program) -> bool:
    seen: dict[Any, list[Var]] = {}
    subst: dict[Var, Var] = {}
    eqns = []
    for eqn in p.eqns:
        if subst:
            eqn = Eqn(eqn.prim, [subst.get(a, a) for a in eqn.inputs], eqn.params, eqn.outputs)
        pkey = None if has_effects(eqn) else _params_key(eqn.params)
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
        if any(v in live for v in eqn.outputs) or has_effects(eqn):
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
        changed |= rewrite_locally(p)
        changed |= eliminate_common_subexpressions(p)
        changed |= eliminate_dead_code(p)
        if not changed:
            break
    _literalize(p)
    return p.close()
