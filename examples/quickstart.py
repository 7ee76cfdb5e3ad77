"""A two-minute tour of functrans; every result is checked against its closed form.

Run from the repository root:  python examples/quickstart.py
"""

import numpy as np

import functrans as ft
import functrans.numpy as fnp


def check(name, got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)
    text = np.array2string(np.asarray(got), precision=4, suppress_small=True)
    print(f"{name:<28} {text}".replace("\n", "\n" + " " * 29))


# grad and its higher orders: f(x) = x sin(x)
def f(x):
    return x * fnp.sin(x)


x = 0.5
check("grad(f)(0.5)", ft.grad(f)(x), np.sin(x) + x * np.cos(x))
check("grad(grad(f))(0.5)", ft.grad(ft.grad(f))(x), 2 * np.cos(x) - x * np.sin(x))
value, slope = ft.value_and_grad(f)(x)
check("value_and_grad(f)(0.5)", (value, slope), (x * np.sin(x), np.sin(x) + x * np.cos(x)))

# jvp (forward, one column of J) and vjp (reverse, one row of J) of g: R^3 -> R^2
A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])


def g(v):
    return fnp.tanh(A @ v)


v = np.array([0.1, 0.2, 0.3])
J = (1 - np.tanh(A @ v) ** 2)[:, None] * A  # closed form, shape (2, 3)
_, column = ft.jvp(g, (v,), (np.array([1.0, 0.0, 0.0]),))
check("jvp(g) along e_0", column, J[:, 0])
_, vjp_fn = ft.vjp(g, v)
(row,) = vjp_fn(np.array([0.0, 1.0]))
check("vjp(g) along e_1", row, J[1])

# Whole Jacobians: shape out.shape + in.shape
for jac in (ft.jacfwd, ft.jacrev, ft.jacobian):
    got = jac(g)(v)
    assert got.shape == (2, 3), got.shape
    check(f"{jac.__name__}(g) {got.shape}", got, J)

# Hessian of a scalar function: h(v) = sum(v^3), H = diag(6 v)
H = ft.hessian(lambda v: fnp.sum(v**3))(v)
check("hessian(sum(v**3))", H, np.diag(6 * v))

# vmap: batch a function written for one example; here a per-row dot product
rows = np.arange(12.0).reshape(4, 3)
check("vmap(dot)(rows, v)", ft.vmap(fnp.dot, in_axes=(0, None))(rows, v), rows @ v)


# Per-example gradients of a squared error, one call, no Python loop
def loss(w, xi, yi):
    return (fnp.dot(xi, w) - yi) ** 2


targets = np.array([1.0, 0.0, -1.0, 2.0])
per_example = ft.vmap(ft.grad(loss), in_axes=(None, 0, 0))(v, rows, targets)
check("per-example grads (4, 3)", per_example, 2 * (rows @ v - targets)[:, None] * rows)

# make_jaxpr: the staged program of f, and of its gradient
print("\nmake_jaxpr(f):")
print(ft.make_jaxpr(f)(x))
print("make_jaxpr(grad(f)):")
print(ft.make_jaxpr(ft.grad(f))(x))
print("\nAll checks passed.")
