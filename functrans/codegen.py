"""Code generation: a closed Jaxpr becomes straight-line Python source calling NumPy.

The generated function assigns one local per equation and deletes each array as soon as its last
use has run, so peak memory matches what the program needs; an elementwise equation whose
operand is a temporary dying there (and viewed by nothing live) writes its result into that
operand's buffer (`np.multiply(v3, v4, out=v3)`), saving an allocation and its page faults. A
program whose values are all float64/bool scalars also gets a second version on Python floats
(`math.sin`, `*`, ...), which costs a fraction of a NumPy call per operation; where Python
arithmetic would raise (division by zero, log of 0, overflow) the NumPy version runs instead, so
results keep NumPy's semantics.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.ir import Jaxpr, Literal, Var
from functrans.primitives.dot import _simple_product

# Array-mode templates for primitives whose NumPy form is an operator or a method.
_ARRAY_TEMPLATES: dict[str, str] = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / {1}",
    "neg": "-{0}",
    "stop_gradient": "{0}",
}

# Scalar-mode templates (Python floats and bools); anything else calls its NumPy impl.
_SCALAR_TEMPLATES: dict[str, str] = {
    **_ARRAY_TEMPLATES,
    "sin": "_math_sin({0})",
    "cos": "_math_cos({0})",
    "tan": "_math_tan({0})",
    "tanh": "_math_tanh({0})",
    "exp": "_math_exp({0})",
    "log": "_math_log({0})",
    "log1p": "_math_log1p({0})",
    "expm1": "_math_expm1({0})",
    "sqrt": "_math_sqrt({0})",
    "abs": "abs({0})",
    "eq": "({0} == {1})",
    "ne": "({0} != {1})",
    "lt": "({0} < {1})",
    "le": "({0} <= {1})",
    "gt": "({0} > {1})",
    "ge": "({0} >= {1})",
    "and": "({0} and {1})",
    "or": "({0} or {1})",
    "not": "(not {0})",
}

_MATH_FUNCTIONS = ("sin", "cos", "tan", "tanh", "exp", "log", "log1p", "expm1", "sqrt")

_SCALAR_DTYPES = (np.dtype(np.float64), np.dtype(bool))


class Generated:
    """The generated source and the callable it defines (flat arrays in, tuple out);
    `fresh_outputs[i]` says output i is always an array the program allocated.

    A program of float64/bool scalars also has `scalar_fn`: scalars in (Python or NumPy), fresh
    NumPy scalars out (the result itself when the program has one output, else a tuple), with
    NumPy's semantics where Python arithmetic would raise.
    """

    def __init__(
        self, source: str, fn: Callable, scalar_source: str | None, scalar_fn, fresh_outputs
    ):
        self.source = source
        self.fn = fn
        self.scalar_source = scalar_source
        self.scalar_fn = scalar_fn
        self.fresh_outputs = fresh_outputs

    def __call__(self, *args):
        if self.scalar_fn is None:
            return self.fn(*args)
        out = self.scalar_fn(*args)
        return (out,) if len(self.fresh_outputs) == 1 else out


def _dot_general_expr(eqn, names_in: list[str]) -> str:
    """dot_general as the NumPy calls its impl makes, with every axis permutation and shape
    worked out here, once: each operand goes to (batch, free, contract) / (batch, contract,
    free) and one matmul (or a broadcast multiply when nothing is contracted, or an einsum for
    batched dot products) does the work. tests/test_passes_rewrites.py checks that the result
    is the impl's, bit for bit."""
    x, y = eqn.inputs
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    out_shape = eqn.outputs[0].aval.shape
    lf = tuple(i for i in range(x.aval.ndim) if i not in lc and i not in lb)
    rf = tuple(i for i in range(y.aval.ndim) if i not in rc and i not in rb)
    size = lambda aval, axes: math.prod(aval.shape[i] for i in axes)  # noqa: E731
    nb, m, c, n = size(x.aval, lb), size(x.aval, lf), size(x.aval, lc), size(y.aval, rf)

    def operand(name: str, aval, perm: tuple, shape: tuple) -> str:
        if aval.ndim == 0:
            return f"np.reshape({name}, {shape})"
        if perm != tuple(range(aval.ndim)):
            name = f"{name}.transpose({perm})"
            return f"{name}.reshape({shape})"
        return name if aval.shape == shape else f"{name}.reshape({shape})"

    fast = None if lb else _simple_product(x.aval.ndim, y.aval.ndim, lc, rc, c)
    if fast == "dot":  # the impl's calls, for the impl's bits
        xt = names_in[0] if lc[0] == x.aval.ndim - 1 else f"{names_in[0]}.T"
        yt = names_in[1] if rc[0] == 0 else f"{names_in[1]}.T"
        if x.aval.ndim + y.aval.ndim > 2:
            return f"np.dot({xt}, {yt})"
        return f"np.asarray(np.dot({xt}, {yt}))"
    if fast == "scale":
        return f"np.multiply({names_in[0]}, {names_in[1]})"
    xs, ys = (nb, m, c), (nb, c, n)
    if c == 1:  # an outer product per batch element: a broadcast multiply of the fewest axes
        body = "np.multiply({}, {})"
        if not lb:
            shape, xs, ys = (m, n), (m, 1), (1, n)
        elif m == 1:
            shape, xs, ys = (nb, n), (nb, 1), (nb, n)
        elif n == 1:
            shape, xs, ys = (nb, m), (nb, m), (nb, 1)
        else:
            shape, xs, ys = (nb, m, n), (nb, m, 1), (nb, 1, n)
    elif lb and m == 1 and n == 1:  # a dot product per batch element
        body, shape = 'np.einsum("bc,bc->b", {}, {})', (nb,)
        xs, ys = (nb, c), (nb, c)
    elif not lb:
        body, shape = "np.matmul({}, {})", (m, n)
        xs, ys = (m, c), (c, n)
    else:
        body, shape = "np.matmul({}, {})", (nb, m, n)
    expr = body.format(
        operand(names_in[0], x.aval, lb + lf + lc, xs),
        operand(names_in[1], y.aval, rb + rc + rf, ys),
    )
    return expr if shape == out_shape else f"{expr}.reshape({out_shape})"


def _is_scalar_program(jaxpr: Jaxpr) -> bool:
    avals = [v.aval for v in jaxpr.invars + jaxpr.outvars] + [
        v.aval for e in jaxpr.eqns for v in e.outputs
    ]
    return all(a.shape == () and a.dtype in _SCALAR_DTYPES for a in avals)


def _emit_call(eqn, names_in: list[str], namespace: dict, scalar: bool) -> str:
    name = eqn.prim.name
    templates = _SCALAR_TEMPLATES if scalar else _ARRAY_TEMPLATES
    if name in templates:
        return templates[name].format(*names_in)
    if name == "dot_general" and not scalar:
        return _dot_general_expr(eqn, names_in)
    if name == "integer_pow" and eqn.params["y"] in (2, 3):
        return " * ".join([names_in[0]] * eqn.params["y"])
    if scalar and name == "select_n" and len(names_in) == 3:
        return f"({names_in[2]} if {names_in[0]} else {names_in[1]})"
    if scalar and name == "convert_element_type":
        dtype = eqn.params["new_dtype"]
        return f"{'float' if dtype.kind == 'f' else 'bool'}({names_in[0]})"
    impl = eqn.prim.impl
    if isinstance(impl, np.ufunc) and not eqn.params:
        return f"np.{impl.__name__}({', '.join(names_in)})"
    fn_name = f"_{name}_{len(namespace)}"
    namespace[fn_name] = functools.partial(impl, **eqn.params) if eqn.params else impl
    return f"{fn_name}({', '.join(names_in)})"


# Elementwise primitives emitted as an operator, and the ufunc that takes an `out=` buffer.
_OPERATOR_UFUNCS = {
    "add": "np.add",
    "sub": "np.subtract",
    "mul": "np.multiply",
    "div": "np.true_divide",
    "neg": "np.negative",
}


def _ufunc_name(eqn) -> str | None:
    """The NumPy ufunc an equation is emitted as (with no extra arguments), if any."""
    name = eqn.prim.name
    if name in _OPERATOR_UFUNCS:
        return _OPERATOR_UFUNCS[name]
    impl = eqn.prim.impl
    if isinstance(impl, np.ufunc) and not eqn.params and impl.nout == 1:
        return f"np.{impl.__name__}"
    return None


def _allocates(eqn) -> bool:
    """Whether the equation's (array) result is a new buffer that nothing else refers to."""
    if eqn.prim.multiple_results or len(eqn.outputs) != 1 or not eqn.outputs[0].aval.shape:
        return False  # 0-d results may be NumPy scalars
    if eqn.prim.name == "integer_pow":
        return eqn.params["y"] in (2, 3)  # emitted as x * x (* x)
    # dot_general is emitted as a matmul/multiply/einsum (_dot_general_expr), or a reshape of one
    return eqn.prim.name == "dot_general" or _ufunc_name(eqn) is not None


def _buffers(jaxpr: Jaxpr) -> dict[Var, frozenset]:
    """For each variable, the buffers allocated by the program that it may view (an allocated
    result is its own buffer). Views are tracked conservatively: a result of any equation that
    does not allocate may view every one of its operands; inputs and constants view nothing
    the program allocated."""
    roots: dict[Var, frozenset] = {}

    def roots_of(a) -> frozenset:
        return roots.get(a, frozenset()) if type(a) is Var else frozenset()

    for eqn in jaxpr.eqns:
        if _allocates(eqn):
            (v,) = eqn.outputs
            roots[v] = frozenset((v,))
        else:
            viewed = frozenset().union(*map(roots_of, eqn.inputs))
            roots.update((v, viewed) for v in eqn.outputs)
    return roots


def fresh_outputs(jaxpr: Jaxpr) -> list[bool]:
    """Whether each output is an array the program allocated (no input, constant or view)."""
    roots = _buffers(jaxpr)
    return [type(a) is Var and roots.get(a) == frozenset((a,)) for a in jaxpr.outvars]


def _in_place_targets(jaxpr: Jaxpr, last_use: dict[Var, int]) -> dict[int, Var]:
    """For each elementwise equation that may write into a dying operand: that operand.

    An operand qualifies when it was allocated by the program, has the result's shape and dtype,
    and neither it nor any view derived from it (a reshape, transpose, ... of it) is read later
    or returned.
    """
    roots = _buffers(jaxpr)

    def roots_of(a) -> frozenset:
        return roots.get(a, frozenset()) if type(a) is Var else frozenset()

    fresh = {v for v, r in roots.items() if r == frozenset((v,))}
    # the last equation that reads each buffer, through any view; returned buffers never die
    buffer_last: dict[Var, float] = {}
    for v, i in last_use.items():
        for r in roots_of(v):
            buffer_last[r] = max(buffer_last.get(r, -1), i)
    for a in jaxpr.outvars:
        for r in roots_of(a):
            buffer_last[r] = math.inf
    targets = {}
    for i, eqn in enumerate(jaxpr.eqns):
        if _ufunc_name(eqn) is None or not _allocates(eqn):
            continue
        out_aval = eqn.outputs[0].aval
        if out_aval.dtype.kind not in "fc":
            continue  # floats only: e.g. true division of integers computes floats
        for a in eqn.inputs:
            if type(a) is Var and a in fresh and a.aval == out_aval and buffer_last[a] == i:
                targets[i] = a
                break
    return targets


def _compact_shapes(jaxpr: Jaxpr, namespace: dict, const_names: list[str]) -> dict[Var, tuple]:
    """Broadcast values (broadcast_in_dim results, constants with zero strides) and their
    compact shapes: size 1 along the broadcast axes."""
    shapes = {}
    for v, name in zip(jaxpr.constvars, const_names, strict=True):
        c = namespace[name]
        if (
            isinstance(c, np.ndarray)
            and c.size
            and any(st == 0 and n > 1 for st, n in zip(c.strides, c.shape, strict=True))
        ):
            shapes[v] = tuple(1 if st == 0 else n for st, n in zip(c.strides, c.shape, strict=True))
    for eqn in jaxpr.eqns:
        if eqn.prim.name == "broadcast_in_dim":
            (x,), (out,) = eqn.inputs, eqn.outputs
            shape = [1] * out.aval.ndim
            for n, d in zip(x.aval.shape, eqn.params["broadcast_dimensions"], strict=True):
                shape[d] = n
            shapes[out] = tuple(shape)
    return shapes


def _compact_uses(jaxpr: Jaxpr, compact: dict[Var, tuple]) -> set[tuple[int, int]]:
    """(equation, operand) pairs where a broadcast operand can be passed compact: a ufunc with
    another operand of the full result shape broadcasts it itself (NumPy's own broadcasting of
    a size-1 axis is faster than a stride-0 view)."""
    uses = set()
    for i, eqn in enumerate(jaxpr.eqns):
        if _ufunc_name(eqn) is None or eqn.prim.multiple_results:
            continue
        shape = eqn.outputs[0].aval.shape
        if any(type(a) is Var and a not in compact and a.aval.shape == shape for a in eqn.inputs):
            uses.update((i, j) for j, a in enumerate(eqn.inputs) if a in compact)
    return uses


def _source(jaxpr: Jaxpr, const_names: list[str], namespace: dict, scalar: bool) -> str:
    names: dict[Var, str] = {}
    for v, n in zip(jaxpr.constvars, const_names, strict=True):
        names[v] = n
    args = []
    for i, v in enumerate(jaxpr.invars):
        names[v] = f"a{i}"
        args.append(f"a{i}")

    def ref(a) -> str:
        if type(a) is Literal:
            val = a.val.item() if hasattr(a.val, "item") else a.val
            if scalar and (not isinstance(val, float) or math.isfinite(val)):
                return repr(val)
            if scalar:  # inf and nan have no literal spelling
                name = f"_lit{len(namespace)}"
                namespace[name] = val
                return name
            lit = f"_lit{len(namespace)}"
            namespace[lit] = np.asarray(a.val)
            return lit
        return names[a]

    # last use of every variable, to free arrays early
    last_use: dict[Var, int] = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for a in eqn.inputs:
            if type(a) is Var:
                last_use[a] = i
    keep = {a for a in jaxpr.outvars if type(a) is Var} | set(jaxpr.constvars)
    in_place = {} if scalar else _in_place_targets(jaxpr, last_use)
    compact = {} if scalar else _compact_shapes(jaxpr, namespace, const_names)
    compact_uses = _compact_uses(jaxpr, compact) if compact else set()
    uses: dict[Var, list] = {}
    for i, eqn in enumerate(jaxpr.eqns):
        for j, a in enumerate(eqn.inputs):
            if a in compact:
                uses.setdefault(a, []).append((i, j))
    # a broadcast whose every use takes it compact is emitted compact (a reshape, no stride-0
    # view); a constant gets a compact twin for the uses that take it
    compact_results = {
        v for v, where in uses.items() if v not in keep and all(u in compact_uses for u in where)
    }
    compact_consts: dict[Var, str] = {}
    for v in jaxpr.constvars:
        if any(u in compact_uses for u in uses.get(v, ())):
            compact_consts[v] = f"{names[v]}_compact"
            full = namespace[names[v]]
            index = tuple(slice(0, 1) if n == 1 else slice(None) for n in compact[v])
            namespace[compact_consts[v]] = np.ascontiguousarray(full[index])

    def ref_in(i: int, j: int, a) -> str:
        if a in compact_consts and (i, j) in compact_uses:
            return compact_consts[a]
        return ref(a)

    lines = [f"def {'program_scalars' if scalar else 'program'}({', '.join(args)}):"]
    if scalar:  # unbox NumPy scalars / 0-d arrays once: Python floats are far cheaper
        for v, a in zip(jaxpr.invars, args, strict=True):
            lines.append(f"    {a} = {'float' if v.aval.dtype.kind == 'f' else 'bool'}({a})")
    for i, eqn in enumerate(jaxpr.eqns):
        outs = []
        for v in eqn.outputs:
            names[v] = f"v{len(names)}"
            outs.append(names[v])
        names_in = [ref_in(i, j, a) for j, a in enumerate(eqn.inputs)]
        if i in in_place:
            expr = f"{_ufunc_name(eqn)}({', '.join(names_in)}, out={ref(in_place[i])})"
        elif eqn.outputs and eqn.outputs[0] in compact_results:
            x = eqn.inputs[0]
            shape = compact[eqn.outputs[0]]
            expr = names_in[0] if x.aval.ndim == 0 else f"{names_in[0]}.reshape({shape})"
        else:
            expr = _emit_call(eqn, names_in, namespace, scalar)
        lhs = ", ".join(outs) + ("," if eqn.prim.multiple_results and len(outs) == 1 else "")
        lines.append(f"    {lhs + ' = ' if outs else ''}{expr}  # {eqn.prim.name}")
        if not scalar:
            dead = [
                names[a]
                for a in dict.fromkeys(x for x in eqn.inputs if type(x) is Var)
                if last_use.get(a) == i and a not in keep
            ]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
    outs = [ref(a) for a in jaxpr.outvars]
    if not scalar:
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        return "\n".join(lines)
    # Python floats raise where NumPy gives inf or nan (1/0, log(0), ...): NumPy's version runs
    lines = [lines[0], "    try:", *("    " + line for line in lines[1:])]
    lines += [
        "    except (ArithmeticError, ValueError):",
        f"        return _numpy_program({', '.join(args)})",
    ]
    outs = [
        f"_np_{'float64' if a.aval.dtype.kind == 'f' else 'bool_'}({o})"
        for a, o in zip(jaxpr.outvars, outs, strict=True)
    ]
    result = outs[0] if len(outs) == 1 else f"({', '.join(outs)}{',' if len(outs) == 1 else ''})"
    lines.append(f"    return {result}")
    return "\n".join(lines)


def _numpy_scalars(fn: Callable, n_out: int) -> Callable:
    """The array program on scalars, returning what the Python-float program returns."""

    def program(*args):
        outs = [o[()] if type(o) is np.ndarray else o for o in fn(*map(np.asarray, args))]
        return outs[0] if n_out == 1 else tuple(outs)

    return program


def generate(jaxpr: Jaxpr, consts: list[Any]) -> Generated:
    """Compile a closed program to Python source (and a scalar version when it applies)."""
    const_names = [f"c{i}" for i in range(len(consts))]
    base = {"np": np, "math": math, "_np_float64": np.float64, "_np_bool_": np.bool_}
    # math functions bound to names, one lookup instead of two per call in scalar programs
    base.update((f"_math_{name}", getattr(math, name)) for name in _MATH_FUNCTIONS)
    base.update(zip(const_names, consts, strict=True))
    namespace = dict(base)
    source = _source(jaxpr, const_names, namespace, scalar=False)
    exec(compile(source, "<functrans.jit>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["program"]
    scalar_source = scalar_fn = None
    effects = any(e.prim.effectful for e in jaxpr.eqns)  # may not run twice (see Generated)
    if _is_scalar_program(jaxpr) and not effects and all(np.ndim(c) == 0 for c in consts):
        scalar_ns = dict(base)
        scalar_ns.update(
            (n, np.asarray(c).item()) for n, c in zip(const_names, consts, strict=True)
        )
        # (in both namespaces, so the two sources together also run on their own)
        namespace["_numpy_program"] = _numpy_scalars(fn, len(jaxpr.outvars))
        scalar_ns["_numpy_program"] = namespace["_numpy_program"]
        scalar_source = _source(jaxpr, const_names, scalar_ns, scalar=True)
        exec(compile(scalar_source, "<functrans.jit scalar>", "exec"), scalar_ns)  # noqa: S102
        scalar_fn = scalar_ns["program_scalars"]
    return Generated(source, fn, scalar_source, scalar_fn, fresh_outputs(jaxpr))
