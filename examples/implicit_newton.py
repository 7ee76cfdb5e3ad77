"""Implicit differentiation of a root found by Newton's method (while_loop + custom_vjp).

x*(theta) solves g(x, theta) = x^3 + theta_0 x - theta_1 = 0. Newton's method finds it with a
`lax.while_loop` whose number of iterations depends on theta. Differentiating through the loop
works (functrans records the iterations that ran), but the implicit function theorem gives the
derivative without it: dx*/dtheta = -(dg/dx)^-1 dg/dtheta at the root. `custom_vjp` installs that
rule for reverse mode; forward mode (jacfwd, hessian) still differentiates the loop itself.
Everything is checked against central differences.
"""

import numpy as np

import functrans as ft
import functrans.numpy as fnp
from functrans import lax


def g(x, theta):
    return x**3 + theta[0] * x - theta[1]


def newton(theta):
    def step(state):
        x, _ = state
        x_new = x - g(x, theta) / (3 * x**2 + theta[0])
        return x_new, fnp.abs(x_new - x)

    x, _ = lax.while_loop(lambda s: s[1] > 1e-13, step, (fnp.asarray(1.0), fnp.asarray(1.0)))
    return x


@ft.custom_vjp
def root(theta):
    return newton(theta)


def root_fwd(theta):
    x = newton(theta)
    return x, (x, theta)


def root_bwd(residuals, ct):
    x, theta = residuals
    dg_dx = ft.grad(g, argnums=0)(x, theta)
    dg_dtheta = ft.grad(g, argnums=1)(x, theta)
    return (-ct / dg_dx * dg_dtheta,)


root.defvjp(root_fwd, root_bwd)


def main():
    theta = np.array([2.0, 5.0])
    x = root(theta)
    assert abs(g(x, theta)) < 1e-12
    eps = 1e-6
    fd = np.array([(root(theta + e) - root(theta - e)) / (2 * eps) for e in np.eye(2) * eps])

    implicit = ft.grad(root)(theta)  # the custom VJP: no differentiation of the loop
    unrolled = ft.grad(newton)(theta)  # reverse mode through the while_loop itself
    forward = ft.jacfwd(root)(theta)  # forward mode differentiates the loop
    np.testing.assert_allclose(implicit, fd, rtol=1e-7)
    np.testing.assert_allclose(unrolled, implicit, rtol=1e-10)
    np.testing.assert_allclose(forward, implicit, rtol=1e-10)
    print(f"root x* = {x:.12f}")
    print(f"dx*/dtheta  implicit (custom_vjp) {implicit}")
    print(f"            through the loop      {unrolled}")
    print(f"            forward mode          {forward}")
    print(f"            central differences   {fd}")

    # second order works through the custom VJP too (forward over reverse)
    h = ft.hessian(root)(theta)
    h_fd = np.array(
        [
            (ft.grad(root)(theta + e) - ft.grad(root)(theta - e)) / (2 * 1e-5)
            for e in np.eye(2) * 1e-5
        ]
    )
    np.testing.assert_allclose(h, h_fd, rtol=1e-5, atol=1e-9)
    print(f"Hessian of x*(theta):\n{h}")


if __name__ == "__main__":
    main()
