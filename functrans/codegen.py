"""Code generation: a closed Jaxpr becomes straight-line Python source calling NumPy, whose
results are the impls' (eager's) bit for bit, memory layout included.

The generated function deletes each array after its last use, so peak memory matches what the
program needs; an elementwise equation whose operand is a temporary dying there (viewed by nothing
live) writes into its buffer (`np.multiply(v3, v4, out=v3)`) when that keeps the layout NumPy
would allocate. A program of float64/bool scalars also gets a version on Python floats (`*`,
`math.sin`, ...: a fraction of a NumPy call each), using a `math` function or `**` only where it
gives NumPy's bits on this machine; where Python arithmetic raises (1/0, log(0), overflow) the
NumPy version runs instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from functrans.ir import Jaxpr, Literal, Var, has_effects
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

# Scalar-mode templates (Python floats and bools); anything else calls its NumPy impl. + - * /
# and abs are correctly rounded (or exact) IEEE operations in Python as in NumPy, so they give
# the impls' bits everywhere; comparisons and logic are exact.
_SCALAR_TEMPLATES: dict[str, str] = {
    **_ARRAY_TEMPLATES,
    "abs": "abs({0})",
    "reciprocal": "(1.0 / {0})",  # np.reciprocal of a real is the correctly rounded 1 / x
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

# Primitives the scalar program computes with the `math` function of the same name, where that
# function gives the impl's bits (_math_agrees).
_MATH_FUNCTIONS = ("sin", "cos", "tan", "tanh", "exp", "log", "log1p", "expm1", "sqrt")

_SCALAR_DTYPES = (np.dtype(np.float64), np.dtype(bool))


# Whether a `math` function (or Python's `**`) gives the bits of the NumPy impl it stands for
# depends on the machine: NumPy picks its own SIMD loop per CPU (np.tanh differs from math.tanh
# in a third of inputs on an AVX2 machine; sin, exp, log, ... agree there) while `math` calls
# the C library. So each one is compared with the impl on float64 scalars, once per process
# when a scalar program first needs it, over a fixed sample (about 1 ms per function, 5 per
# exponent: np.power is slower on scalars); one that differs anywhere is left to NumPy. Inputs
# where the Python spelling raises are skipped: the scalar program runs NumPy there.


@functools.cache
def _agreement_sample() -> np.ndarray:
    """About 2,600 float64 values, the same on every run: magnitudes from subnormal to near the
    largest float, both signs; a dense stretch of [-10, 10] and a sparser one of [-800, 800];
    3 ulps either side of special points, both signs (0; 1/2, 1 and 2; multiples of pi/4; log 2;
    where tanh rounds to 1; where exp overflows and underflows); the infinities and nan."""
    weyl = (np.arange(1, 1025) * 0.6180339887498949) % 1.0  # evenly spread over [0, 1)
    magnitudes = np.geomspace(1e-310, 1e308, 512)
    special = np.array([0.0, 0.5, 1.0, 2.0, math.log(2), 19.0, 22.0, 709.78, 745.13])
    special = np.concatenate([special, np.pi / 4 * np.arange(1, 13)])
    special = np.concatenate([special, -special])
    ulps = special[:, None] + np.spacing(special)[:, None] * np.arange(-3, 4)
    return np.concatenate(
        [
            magnitudes,
            -magnitudes,
            20 * weyl - 10,
            1600 * weyl[::4] - 800,
            ulps.ravel(),
            [np.inf, -np.inf, np.nan],
        ]
    )


def _same_bits(py_fn: Callable, impl: Callable) -> bool:
    """Whether py_fn on Python floats gives impl's bits on float64 scalars over the sample
    (any two nans agree)."""
    xs = _agreement_sample()
    got, want = [], []
    with np.errstate(all="ignore"):
        for x, x_np in zip(xs.tolist(), xs, strict=True):
            try:
                got.append(py_fn(x))
            except (ArithmeticError, ValueError):
                continue
            want.append(impl(x_np))
    got, want = np.array(got, np.float64), np.array(want, np.float64)
    same = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
    return bool(same.all())


@functools.cache
def _math_agrees(name: str, impl: Callable) -> bool:
    return _same_bits(getattr(math, name), impl)


def _pow_spelling(y: int) -> tuple[str, Callable]:
    """integer_pow on a Python float: x ** y, but x * x and 1.0 / x where NumPy computes those
    (it squares and takes reciprocals for y = 2 and -1; the C library's pow rounds otherwise)."""
    if y == 2:
        return "{0} * {0}", lambda x: x * x
    if y == -1:
        return "1.0 / {0}", lambda x: 1.0 / x
    return f"{{0}} ** {y}", lambda x: x**y


@functools.cache
def _pow_agrees(y: int, impl: Callable) -> bool:
    return _same_bits(_pow_spelling(y)[1], lambda x: impl(x, y=y))


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
    impl = eqn.prim.impl
    templates = _SCALAR_TEMPLATES if scalar else _ARRAY_TEMPLATES
    if name in templates and not _complex_scalar_product(eqn):
        return templates[name].format(*names_in)
    if name == "dot_general" and not scalar:
        return _dot_general_expr(eqn, names_in)
    if scalar and name in _MATH_FUNCTIONS and _math_agrees(name, impl):
        return f"_math_{name}({names_in[0]})"
    if scalar and name == "integer_pow" and _pow_agrees(int(eqn.params["y"]), impl):
        return _pow_spelling(int(eqn.params["y"]))[0].format(names_in[0])
    if scalar and name == "select_n" and len(names_in) == 3:
        return f"({names_in[2]} if {names_in[0]} else {names_in[1]})"
    if scalar and name == "convert_element_type":
        return f"{_python_type(eqn.params['new_dtype'])}({names_in[0]})"
    ufunc = _ufunc_name(eqn)
    if ufunc is not None:
        call = f"{ufunc}({', '.join(names_in + _ufunc_extra_args(eqn))})"
    else:
        if scalar:  # impls take NumPy values, as they do eagerly (a Python float has no .dtype)
            names_in = [
                f"{_numpy_scalar(a.aval.dtype, namespace)}({n})"
                for a, n in zip(eqn.inputs, names_in, strict=True)
            ]
        fn_name = f"_{name}_{len(namespace)}"
        namespace[fn_name] = functools.partial(impl, **eqn.params) if eqn.params else impl
        call = f"{fn_name}({', '.join(names_in)})"
    if scalar and not eqn.prim.multiple_results:
        # back to a Python float: the operators that follow are 3x slower on NumPy scalars
        return f"{_python_type(eqn.outputs[0].aval.dtype)}({call})"
    return call


def _complex_scalar_product(eqn) -> bool:
    """A complex 0-d product: NumPy's scalar `*` rounds otherwise than its ufunc loop (which the
    impl runs eagerly on 0-d arrays), so it is emitted as the ufunc call."""
    return (
        eqn.prim.name == "mul"
        and eqn.outputs[0].aval.dtype.kind == "c"
        and eqn.outputs[0].aval.shape == ()
    )


def _python_type(dtype: np.dtype) -> str:
    """The Python type standing for a scalar program's dtype (float64 or bool)."""
    return "float" if dtype.kind == "f" else "bool"


def _numpy_scalar(dtype: np.dtype, namespace: dict) -> str:
    """The name of dtype's NumPy scalar type in the generated code."""
    name = f"_np_{dtype.name}"
    namespace[name] = dtype.type
    return name


# Elementwise primitives emitted as an operator, and the ufunc that takes an `out=` buffer.
_OPERATOR_UFUNCS = {
    "add": "np.add",
    "sub": "np.subtract",
    "mul": "np.multiply",
    "div": "np.true_divide",
    "neg": "np.negative",
}


def _ufunc_name(eqn) -> str | None:
    """The NumPy ufunc an equation is emitted as (its operands, then _ufunc_extra_args), if any."""
    name = eqn.prim.name
    if name in _OPERATOR_UFUNCS:
        return _OPERATOR_UFUNCS[name]
    if name == "integer_pow":  # _integer_pow_impl's np.power(x, y), unless it casts x first
        return "np.power" if eqn.inputs[0].aval.dtype == eqn.outputs[0].aval.dtype else None
    impl = eqn.prim.impl
    if isinstance(impl, np.ufunc) and not eqn.params and impl.nout == 1:
        return f"np.{impl.__name__}"
    return None


def _ufunc_extra_args(eqn) -> list[str]:
    return [str(int(eqn.params["y"]))] if eqn.prim.name == "integer_pow" else []


def _allocates(eqn) -> bool:
    """Whether the equation's (array) result is a new buffer that nothing else refers to."""
    if eqn.prim.multiple_results or len(eqn.outputs) != 1 or not eqn.outputs[0].aval.shape:
        return False  # 0-d results may be NumPy scalars
    if eqn.prim.name == "integer_pow":
        return True  # np.power, of x or of x cast to float
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


def _layout_guard(target: str, shape: tuple, others: list[tuple[str, tuple]]) -> str | None:
    """The condition under which a ufunc writing into `target` (a dense buffer of its result's
    shape) gives the layout it would allocate, or None where it always does. `others`: the
    other operands' names and the shapes they are passed in (compact for a broadcast).

    NumPy allocates in the operands' memory order (order='K'): it orders each pair of axes by
    the operands' strides there, an operand in C order winning any disagreement, and an operand
    broadcast along an axis (stride 0) having no say about it. So the target's layout is kept
    when it is C-contiguous, or when every other operand with a say has its strides; and always
    when the result has at most one axis longer than 1, or no other operand has two.
    """
    long_axes = lambda shape: sum(n > 1 for n in shape)  # noqa: E731
    sayers = [(name, s) for name, s in others if long_axes(s) > 1]
    if long_axes(shape) < 2 or not sayers:
        return None
    guard = f"{target}.flags.c_contiguous"
    if all(s == shape for _, s in sayers):
        guard += f" or {target}.strides == " + " == ".join(f"{n}.strides" for n, _ in sayers)
    return guard


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

    compact_emitted = compact_results | compact_consts.keys()

    def ref_in(i: int, j: int, a) -> str:
        if a in compact_consts and (i, j) in compact_uses:
            return compact_consts[a]
        return ref(a)

    lines = [f"def {'program_scalars' if scalar else 'program'}({', '.join(args)}):"]
    if scalar:  # unbox NumPy scalars / 0-d arrays once: Python floats are far cheaper
        for v, a in zip(jaxpr.invars, args, strict=True):
            lines.append(f"    {a} = {_python_type(v.aval.dtype)}({a})")
    for i, eqn in enumerate(jaxpr.eqns):
        outs = []
        for v in eqn.outputs:
            names[v] = f"v{len(names)}"
            outs.append(names[v])
        names_in = [ref_in(i, j, a) for j, a in enumerate(eqn.inputs)]
        if i in in_place:
            target = ref(in_place[i])
            others = [  # the other operands, and the shapes they are passed in
                (n, compact[a] if (i, j) in compact_uses and a in compact_emitted else a.aval.shape)
                for j, (a, n) in enumerate(zip(eqn.inputs, names_in, strict=True))
                if n != target
            ]
            guard = _layout_guard(target, eqn.outputs[0].aval.shape, others)
            out = target if guard is None else f"{target} if {guard} else None"
            args_in = ", ".join(names_in + _ufunc_extra_args(eqn))
            expr = f"{_ufunc_name(eqn)}({args_in}, out={out})"
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
    if len(lines) > 1:  # (a program of constants computes nothing)
        # Python floats raise where NumPy gives inf or nan (1/0, log(0), overflow): then NumPy's
        # version runs. Only those errors: anything else (a bug) is raised, not run twice.
        lines = [lines[0], "    try:", *("    " + line for line in lines[1:])]
        lines += [
            "    except (ArithmeticError, ValueError):",
            f"        return _numpy_program({', '.join(args)})",
        ]
    outs = [
        f"{_numpy_scalar(a.aval.dtype, namespace)}({o})"
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
    namespace = {"np": np, "math": math, "_np_float64": np.float64, "_np_bool": np.bool_}
    # math functions bound to names, one lookup instead of two per call in scalar programs
    namespace.update((f"_math_{name}", getattr(math, name)) for name in _MATH_FUNCTIONS)
    namespace.update(zip(const_names, consts, strict=True))
    source = _source(jaxpr, const_names, namespace, scalar=False)
    exec(compile(source, "<functrans.jit>", "exec"), namespace)  # noqa: S102 - our own source
    fn = namespace["program"]
    scalar_source = scalar_fn = None
    effects = any(has_effects(e) for e in jaxpr.eqns)  # may not run twice (see Generated)
    if _is_scalar_program(jaxpr) and not effects and all(np.ndim(c) == 0 for c in consts):
        # one namespace for both programs (helpers are numbered by its size, so names never
        # clash), so that the two sources together run on their own; constants as Python values
        scalar_const_names = [f"{n}_scalar" for n in const_names]
        namespace.update(
            (n, np.asarray(c).item()) for n, c in zip(scalar_const_names, consts, strict=True)
        )
        namespace["_numpy_program"] = _numpy_scalars(fn, len(jaxpr.outvars))
        scalar_source = _source(jaxpr, scalar_const_names, namespace, scalar=True)
        exec(compile(scalar_source, "<functrans.jit scalar>", "exec"), namespace)  # noqa: S102
        scalar_fn = namespace["program_scalars"]
    return Generated(source, fn, scalar_source, scalar_fn, fresh_outputs(jaxpr))
