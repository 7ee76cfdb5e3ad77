"""jit's local rewrites and in-place code generation: each fires on the pattern it targets, stays
away from near misses, and leaves results unchanged.

Rewrites (functrans.passes.rewrite_locally): a dot_general with a diagonal matrix operand becomes
a broadcast multiply, transpose(transpose(x)) and reshape(reshape(x)) become one equation. Code
generation (functrans.codegen) writes an elementwise result into a dying temporary's buffer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import functrans as ft
import functrans.numpy as fnp
from functrans.primitives.dot import _dot_general_impl

RNG = np.random.default_rng(7)


def _rand(*shape):
    return RNG.standard_normal(shape)


def _lowered(f, *args):
    return ft.jit(f).lower(*args)


def _prims(f, *args):
    return [e.prim.name for e in _lowered(f, *args).jaxpr.eqns]


def _dense_dots(f, *args) -> list:
    """The dot_generals of the simplified program with a square operand of side > 1."""
    return [
        e
        for e in _lowered(f, *args).jaxpr.eqns
        if e.prim.name == "dot_general"
        and any(a.aval.ndim == 2 and a.aval.shape[0] == a.aval.shape[1] > 1 for a in e.inputs)
    ]


def _check_same(f, *args):
    """jit(f) computes exactly what f computes (finite inputs: the rewrites only drop exact
    zeros)."""
    want = f(*args)
    got = ft.jit(f)(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# Products with a diagonal matrix become scalings

N = 4
EYE = np.eye(N)
D2 = np.diag(np.array([2.0, -1.0, 0.5, 3.0]))
V = _rand(N)
B = _rand(N, 3)
B3 = _rand(2, N, 3)

DIAGONAL_CASES = {
    # the identity basis of jacrev: eye * broadcast(v) along either axis, then a product
    "eye*v @ B": (lambda v, b: fnp.dot(EYE * v, b), (V, B)),
    "v*eye @ B": (lambda v, b: fnp.dot(v * EYE, b), (V, B)),
    "eye*v[:,None] @ B": (lambda v, b: fnp.dot(EYE * v[:, None], b), (V, B)),
    "B.T @ (eye*v)": (lambda v, b: fnp.dot(b.T, EYE * v), (V, B)),
    "(eye*v).T @ B": (lambda v, b: fnp.dot((EYE * v).T, b), (V, B)),
    "scaled diagonal": (lambda v, b: fnp.dot(D2 * v, b), (V, B)),
    "fnp.diag(v) @ B": (lambda v, b: fnp.dot(fnp.diag(v), b), (V, B)),
    "B.T @ fnp.diag(v)": (lambda v, b: b.T @ fnp.diag(v), (V, B)),
    "known diagonal @ B": (lambda b: fnp.dot(D2, b), (B,)),
    "identity @ B": (lambda b: fnp.dot(EYE, b) + 1.0, (B,)),
    "B.T @ identity": (lambda b: fnp.dot(b.T, EYE), (B,)),
    "3-d operand": (lambda v, b: fnp.tensordot(EYE * v, b, axes=([1], [1])), (V, B3)),
    "3-d operand on the left": (lambda v, b: fnp.tensordot(b, EYE * v, axes=([1], [0])), (V, B3)),
    "zeros on the diagonal": (lambda v, b: fnp.dot(EYE * (v * 0.0), b), (V, B)),
}


@pytest.mark.parametrize("name", list(DIAGONAL_CASES))
def test_product_with_a_diagonal_becomes_a_scaling(name):
    f, args = DIAGONAL_CASES[name]
    assert _dense_dots(f, *args) == [], _lowered(f, *args).as_text()
    _check_same(f, *args)


def test_product_with_the_identity_is_forwarded():
    assert _prims(lambda b: fnp.dot(EYE, b), B) == []
    assert _prims(lambda b: fnp.dot(b.T, EYE), B) == ["transpose"]


def _off_diagonal():
    e = EYE.copy()
    e[0, 2] = 1e-300
    return e


NEAR_MISS_CASES = {
    # one tiny off-diagonal entry: not diagonal
    "almost the identity": (lambda v, b: fnp.dot(_off_diagonal() * v, b), (V, B)),
    # a nan off the diagonal is not a zero
    "nan off the diagonal": (lambda v, b: fnp.dot(np.where(EYE == 1, 1.0, np.nan) * v, b), (V, B)),
    # the matrix times a full (n, n) array is not diagonal in a known way
    "eye * matrix": (lambda m, b: fnp.dot(EYE * m, b), (_rand(N, N), B)),
    # the identity is an argument, not a known constant
    "unknown identity": (lambda e, v, b: fnp.dot(e * v, b), (EYE, V, B)),
    # a diagonal contracted over a batch dimension is not a plain product
    "batched": (
        lambda v, b: fnp.einsum("ij,ij->i", EYE * v, b),
        (V, _rand(N, N)),
    ),
}


@pytest.mark.parametrize("name", list(NEAR_MISS_CASES))
def test_near_misses_keep_the_dense_product(name):
    f, args = NEAR_MISS_CASES[name]
    lowered = _lowered(f, *args)
    assert "dot_general" in [e.prim.name for e in lowered.jaxpr.eqns], lowered.as_text()
    np.testing.assert_allclose(ft.jit(f)(*args), f(*args), rtol=1e-14, atol=1e-300)


def test_a_diagonal_with_a_second_use_is_kept_for_it():
    f = lambda v, b: (fnp.dot(EYE * v, b), EYE * v)  # noqa: E731
    got = ft.jit(f)(V, B)
    want = f(V, B)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert _dense_dots(f, V, B) == []


def test_jacobian_programs_do_no_dense_identity_products():
    w1, w2 = _rand(5, 6), _rand(7, 5)

    def f(x):
        return fnp.tanh(w2 @ fnp.tanh(w1 @ x))

    x = _rand(6)
    for jac in (ft.jacrev, ft.jacfwd):
        assert _dense_dots(jac(f), x) == []
        np.testing.assert_allclose(ft.jit(jac(f))(x), jac(f)(x), rtol=1e-13, atol=1e-15)
    # the 7 x 7 identity basis of jacrev became a row scaling of w2
    prims = _prims(ft.jacrev(f), x)
    assert prims.count("dot_general") == 3


@given(
    n=st.integers(1, 5),
    k=st.integers(1, 4),
    left=st.booleans(),
    contract_first=st.booleans(),
    axis=st.sampled_from([0, 1]),
    data=st.data(),
)
def test_diagonal_scaling_is_exact_on_random_shapes(n, k, left, contract_first, axis, data):
    finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    v = np.array(data.draw(st.lists(finite, min_size=n, max_size=n)))
    diag = np.diag(np.array(data.draw(st.lists(finite, min_size=n, max_size=n))))
    shape = (n, k) if contract_first else (k, n)
    b = np.array(data.draw(st.lists(finite, min_size=n * k, max_size=n * k))).reshape(shape)

    def f(v, b):
        d = diag * (v if axis == 1 else v[:, None])
        b = b if contract_first else b.T
        return fnp.dot(d, b) if left else fnp.dot(b.T, d)

    # a zero matrix keeps its dense product (+0.0 where a scaling would give -0.0)
    assert _dense_dots(f, v, b) == [] or n == 1 or not diag.any()
    got, want = ft.jit(f)(v, b), f(v, b)
    np.testing.assert_array_equal(got, want)  # equal as numbers (0.0 == -0.0)


# ---------------------------------------------------------------------------------------------
# Transposes and reshapes compose


def test_transpose_of_a_transpose_is_one_transpose():
    x = _rand(2, 3, 4)
    f = lambda x: fnp.sin(fnp.transpose(fnp.transpose(x, (1, 0, 2)), (2, 0, 1)))  # noqa: E731
    assert _prims(f, x) == ["transpose", "sin"]
    _check_same(f, x)
    g = lambda x: fnp.sin(fnp.transpose(fnp.transpose(x, (1, 2, 0)), (2, 0, 1)))  # noqa: E731
    assert _prims(g, x) == ["sin"]  # the permutations cancel
    _check_same(g, x)


def test_transpose_of_another_equation_is_kept():
    x = _rand(2, 3)
    f = lambda x: fnp.transpose(fnp.sin(x)) * 2.0  # noqa: E731
    assert _prims(f, x) == ["sin", "transpose", "mul"]


TRANSPOSED_OPERANDS = {  # f(a, b) -> (folded?): a dot_general reading a transposed operand
    "right, 2-D": (lambda a, b: a @ b.T, (3, 4), (5, 4), True),
    "left, 2-D": (lambda a, b: a.T @ b, (4, 3), (4, 5), True),
    "both": (lambda a, b: a.T @ b.T, (4, 3), (5, 4), True),
    "matrix-vector": (lambda a, b: a.T @ b, (4, 3), (4,), True),
    "batched, free axes kept": (
        lambda a, b: fnp.einsum("bij,bjk->bik", a, fnp.transpose(b, (0, 2, 1))),
        (2, 3, 4),
        (2, 5, 4),
        True,
    ),
    "free axes reordered": (
        lambda a, b: fnp.tensordot(a, fnp.transpose(b, (2, 1, 0)), axes=1),
        (3, 4),
        (5, 6, 4),
        False,
    ),
}


@pytest.mark.parametrize("name", list(TRANSPOSED_OPERANDS))
def test_a_transposed_operand_is_read_in_place_by_the_product(name):
    f, xs, ys, folded = TRANSPOSED_OPERANDS[name]
    a, b = _rand(*xs), _rand(*ys)
    np.testing.assert_allclose(ft.jit(f)(a, b), f(a, b), rtol=1e-13)
    assert ("transpose" not in _prims(f, a, b)) == folded


def test_reshape_of_a_reshape_is_one_reshape():
    x = _rand(2, 6)
    f = lambda x: fnp.sin(fnp.reshape(fnp.reshape(x, (3, 4)), (4, 3)))  # noqa: E731
    assert _prims(f, x) == ["reshape", "sin"]
    _check_same(f, x)
    g = lambda x: fnp.sin(fnp.reshape(fnp.reshape(x, (3, 4)), (2, 6)))  # noqa: E731
    assert _prims(g, x) == ["sin"]


def test_reshape_of_a_transpose_is_kept():
    x = _rand(2, 6)
    f = lambda x: fnp.sin(fnp.reshape(fnp.transpose(x), (3, 4)))  # noqa: E731
    assert _prims(f, x) == ["transpose", "reshape", "sin"]
    _check_same(f, x)


# ---------------------------------------------------------------------------------------------
# In-place code generation


def _source(f, *args) -> str:
    return _lowered(f, *args).compiled.source


def test_elementwise_result_reuses_a_dying_temporary():
    x = _rand(3, 4)
    f = lambda x: fnp.tanh(fnp.sin(x) * 2.0) + 1.0  # noqa: E731
    src = _source(f, x)
    assert "out=" in src, src
    _check_same(f, x)


def test_no_in_place_write_into_inputs_outputs_or_constants():
    x, c = _rand(3), _rand(3)
    f = lambda x: (fnp.sin(x), fnp.sin(x) * c, x * 2.0)  # noqa: E731
    src = _source(f, x)
    for line in src.splitlines():
        if "out=" in line:
            target = line.split("out=")[1].rstrip(")").split(")")[0]
            assert target.startswith("v"), line  # a temporary, never a0 or c0
    x0 = x.copy()
    got = ft.jit(f)(x)
    np.testing.assert_array_equal(x, x0)
    for g, w in zip(got, f(x), strict=True):
        np.testing.assert_array_equal(g, w)


def _line(source: str, prim: str) -> str:
    (line,) = [line for line in source.splitlines() if line.endswith(f"# {prim}")]
    return line


def test_no_in_place_write_into_a_buffer_a_live_view_reads():
    x = _rand(2, 3)

    def f(x):
        y = fnp.sin(x)
        view = fnp.reshape(y, (3, 2))  # a view of y, read after y's last direct use
        z = y * 2.0
        return fnp.sum(z) + fnp.cos(view)

    assert "out=" not in _line(_source(f, x), "mul")
    _check_same(f, x)


def test_no_in_place_write_into_a_returned_view():
    x = _rand(2, 3)
    f = lambda x: (fnp.sin(x).T, fnp.sin(x) * 2.0)  # noqa: E731
    got = ft.jit(f)(x)
    want = f(x)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_no_in_place_write_when_the_result_is_broadcast_larger():
    x, y = _rand(3, 1), _rand(3, 4)
    f = lambda x, y: fnp.sin(x) * fnp.cos(y)  # noqa: E731
    source = _source(f, x, y)
    full = _line(source, "cos").split("=")[0].strip()  # sin(x) is (3, 1), broadcast to (3, 4)
    assert _line(source, "mul").endswith(f"out={full})  # mul"), source
    _check_same(f, x, y)


def test_integer_division_is_rejected_by_the_primitive():
    # true division of integers makes floats, so div's type would lie: fnp promotes first
    from functrans.primitives import elementwise as ew

    x, y = np.arange(3), np.arange(1, 4)
    with pytest.raises(TypeError, match="floating-point operands"):
        ft.jit(lambda x, y: ew.div(x * 2, y))(x, y)
    np.testing.assert_array_equal(ft.jit(lambda x, y: (x * 2) / y)(x, y), (x * 2) / y)


def test_in_place_program_is_rerunnable_and_leaves_inputs_alone():
    w, x = _rand(4, 3), _rand(5, 4)
    g = ft.jit(ft.value_and_grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)))
    w0, x0 = w.copy(), x.copy()
    first = g(w, x)
    second = g(w, x)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(x, x0)


DOT_CASES = {  # dimension_numbers and operand shapes: every branch of the impl
    "matmul": ((((1,), (0,)), ((), ())), (3, 4), (4, 2)),
    "lhs transposed": ((((0,), (0,)), ((), ())), (4, 3), (4, 2)),
    "rhs transposed": ((((1,), (1,)), ((), ())), (3, 4), (2, 4)),
    "matrix-vector": ((((1,), (0,)), ((), ())), (3, 4), (4,)),
    "long matrix-vector": ((((1,), (0,)), ((), ())), (40, 300), (300,)),
    "long transposed matrix-vector": ((((0,), (0,)), ((), ())), (300, 40), (300,)),
    "both transposed": ((((0,), (1,)), ((), ())), (4, 3), (2, 4)),
    "vector-matrix": ((((0,), (0,)), ((), ())), (4,), (4, 3)),
    "vector-vector": ((((0,), (0,)), ((), ())), (4,), (4,)),
    "long vector-vector": ((((0,), (0,)), ((), ())), (300,), (300,)),
    "vector times scalar": ((((), ()), ((), ())), (3,), ()),
    "scalar times scalar": ((((), ()), ((), ())), (), ()),
    "outer": ((((), ()), ((), ())), (3,), (4,)),
    "scalar times matrix": ((((), ()), ((), ())), (), (3, 4)),
    "batched outer, one row": ((((), ()), ((0,), (0,))), (3,), (3, 4)),
    "batched outer, one column": ((((), ()), ((0,), (0,))), (3, 4), (3,)),
    "batched outer": ((((), ()), ((0,), (0,))), (3, 2), (3, 4)),
    "batched dots": ((((1,), (1,)), ((0,), (0,))), (3, 4), (3, 4)),
    "batched matmul": ((((2,), (1,)), ((0,), (0,))), (2, 3, 4), (2, 4, 5)),
    "batch axis last": ((((0,), (1,)), ((2,), (0,))), (4, 3, 2), (2, 4, 5)),
    "two contracted axes": ((((0, 2), (1, 0)), ((), ())), (4, 3, 5), (5, 4, 2)),
    "3-D times a vector": ((((2,), (0,)), ((), ())), (6, 5, 300), (300,)),
    "a vector times 3-D": ((((0,), (1,)), ((), ())), (300,), (6, 300, 5)),
    "1x1": ((((1,), (0,)), ((), ())), (1, 1), (1, 1)),
    "empty contraction": ((((1,), (0,)), ((), ())), (3, 0), (0, 2)),
}


ONE_BLAS_CALL = {
    "matmul",
    "lhs transposed",
    "rhs transposed",
    "both transposed",
    "matrix-vector",
    "long matrix-vector",
    "long transposed matrix-vector",
    "vector-matrix",
    "vector-vector",
    "long vector-vector",
}


@pytest.mark.parametrize("name", list(DOT_CASES))
def test_generated_dot_general_is_the_impl_bit_for_bit(name):
    """codegen emits dot_general's NumPy calls itself; they must be the impl's, and their result
    a fresh buffer (later equations may write into it)."""
    from functrans.primitives import dot_general

    dims, xs, ys = DOT_CASES[name]
    x, y = _rand(*xs), _rand(*ys)
    want = _dot_general_impl(x, y, dimension_numbers=dims)
    f = ft.jit(lambda x, y: dot_general(x, y, dimension_numbers=dims))
    got = f(x, y)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert f.lower(x, y).compiled.fresh_outputs == [bool(want.ndim)]
    if name in ONE_BLAS_CALL:  # as the impl makes it
        assert "np.dot(" in f.lower(x, y).source
    out = f.lower(x, y).compiled.fn(x, y)[0]
    assert not np.may_share_memory(out, x) and not np.may_share_memory(out, y)


# ---------------------------------------------------------------------------------------------
# Broadcast operands of elementwise equations are passed compact


def test_broadcast_read_only_by_elementwise_equations_is_a_reshape():
    x, v = _rand(3, 4), _rand(4)
    f = lambda x, v: fnp.sin(x) * v + fnp.cos(x)  # noqa: E731
    source = _source(f, x, v)
    assert ".reshape((1, 4))" in _line(source, "broadcast_in_dim"), source
    _check_same(f, x, v)


def test_broadcast_with_another_reader_stays_a_broadcast():
    x, v = _rand(4, 4), _rand(4)

    def returned(x, v):
        b = fnp.broadcast_to(v, (4, 4))
        return b * x, b

    def contracted(x, v):
        b = fnp.broadcast_to(v, (4, 4))
        return fnp.dot(b, x) + b * x

    for fun in (returned, contracted):
        assert ".reshape(" not in _line(_source(fun, x, v), "broadcast_in_dim")
        got, want = ft.jit(fun)(x, v), fun(x, v)
        for a, b in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(want)):
            np.testing.assert_array_equal(a, b)


def test_broadcast_operands_of_a_broadcast_result_stay_full():
    # both operands broadcast: neither has the result's shape, so NumPy must not shrink it
    v, w = _rand(3, 1), _rand(1, 4)
    f = lambda v, w: fnp.broadcast_to(v, (3, 4)) + fnp.broadcast_to(w, (3, 4))  # noqa: E731
    _check_same(f, v, w)


def test_stride_zero_constant_gets_a_compact_twin():
    x = _rand(3, 4)
    f = lambda x: 1.0 - fnp.tanh(x) ** 2  # the 1.0 is a broadcast constant  # noqa: E731
    lowered = _lowered(f, x)
    if lowered.consts:  # folded to a broadcast constant: the source reads its compact twin
        assert "_compact" in lowered.compiled.source
    _check_same(f, x)


# ---------------------------------------------------------------------------------------------
# The call path


def test_scalar_arguments_are_keyed_by_type():
    f = ft.jit(lambda x, y: fnp.sin(x) * y)
    assert type(f(0.5, 2.0)) is np.float64
    assert type(f(np.float64(0.5), 2.0)) is np.float64
    assert type(f(np.float32(0.5), np.float32(2.0))) is np.float32
    assert f.cache_size == 2  # a Python float and a float64 share one program
    np.testing.assert_allclose(f(np.float32(0.5), np.float32(2.0)), np.sin(0.5) * 2.0, rtol=1e-6)
    g = ft.jit(lambda x: fnp.where(x, 1.0, 2.0))
    assert g(True) == 1.0 and g(np.bool_(False)) == 2.0


def test_scalar_program_falls_back_to_numpy_semantics_on_the_fast_path():
    f = ft.jit(lambda x: 1.0 / x)
    assert f(2.0) == 0.5
    with np.errstate(divide="ignore"):
        assert f(0.0) == np.inf  # Python would raise ZeroDivisionError
    assert f(4.0) == 0.25


def test_fresh_outputs_skip_the_aliasing_checks_but_views_do_not():
    x = _rand(3)
    lowered = _lowered(lambda x: (fnp.sin(x), x, x.T, fnp.sum(x)), x)
    assert lowered.compiled.fresh_outputs == [True, False, False, False]
    s, same, t, total = ft.jit(lambda x: (fnp.sin(x), x, x.T, fnp.sum(x)))(x)
    assert not np.shares_memory(same, x) and not np.shares_memory(t, x)
    assert type(total) is np.float64


def test_results_merged_by_cse_are_independent_arrays():
    x = _rand(3)
    a, b = ft.jit(lambda x: (fnp.sin(x), fnp.sin(x)))(x)
    assert not np.shares_memory(a, b)
    a[0] = 42.0
    assert b[0] == np.sin(x[0])


def _assert_same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), (got, want)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: x + 0.0,
        lambda x: 0.0 + x,
        lambda x: x + fnp.zeros(2),
        lambda x: x - (-0.0),
        lambda x: x + (-0.0),  # forwarded: exact for every x
        lambda x: x - 0.0,  # forwarded: exact for every x
        lambda x: x * 1.0,
        lambda x: (x * 0.0, x * -0.0),  # equal numbers, different literals: not merged
        lambda x: (fnp.pad(x, 1, constant_values=0.0), fnp.pad(x, 1, constant_values=-0.0)),
        lambda x: fnp.dot(fnp.zeros((2, 2)), x - 1.0),  # a zero matrix is not diag(0)
    ],
)
def test_simplification_keeps_signed_zeros(f):
    x = np.array([-0.0, 0.5])
    for got, want in zip(ft.tree_util.tree_leaves(ft.jit(f)(x)), ft.tree_util.tree_leaves(f(x))):
        _assert_same_bits(got, want)


@pytest.mark.parametrize("f", [lambda z: z * 1.0, lambda z: z / 1.0, lambda z: z + 0.0])
def test_complex_identities_are_not_forwarded(f):
    z = np.array([complex(-0.0, -0.0), complex(np.inf, 0.0), 1 + 2j])
    with np.errstate(invalid="ignore"):
        _assert_same_bits(ft.jit(f)(z), f(z))


def test_materialised_uniform_operand_keeps_the_eager_memory_order():
    # x * ones((n, n)) is a new C-ordered array eagerly: a Fortran-ordered x forwarded in its
    # place would be summed in another order
    x = np.asfortranarray(RNG.standard_normal((64, 64)))

    def f(x):
        return fnp.sum(x * fnp.ones((64, 64)), axis=1)

    _assert_same_bits(ft.jit(f)(x), f(x))
