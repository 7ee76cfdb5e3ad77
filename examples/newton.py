"""Newton's method for minimisation, with `hessian` (forward over reverse) and `grad`.

Each step solves H(x) p = -g(x) and moves along p, halving the step until the function
decreases (a backtracking line search). Near the minimum the step is the full Newton step and
convergence is quadratic: the number of correct digits doubles every iteration. Two problems:
the Rosenbrock function from its classic start, and L2-regularised logistic regression on
synthetic data (convex, 20 parameters).

Run from the repository root:  python examples/newton.py
"""

import numpy as np

import functrans as ft
import functrans.numpy as fnp


def newton_minimize(f, x, tol=1e-10, max_iter=50, verbose=True):
    grad_f, hess_f = ft.jit(ft.grad(f)), ft.jit(ft.hessian(f))
    for it in range(max_iter):
        g = grad_f(x)
        if verbose:
            print(f"  iter {it:2d}  f = {float(f(x)):.12e}  |grad| = {np.linalg.norm(g):.2e}")
        if np.linalg.norm(g) < tol:
            return x, it
        step = np.linalg.solve(hess_f(x), -g)
        t = 1.0
        while f(x + t * step) > f(x) and t > 1e-8:
            t /= 2
        x = x + t * step
    raise RuntimeError("Newton's method did not converge")


def rosenbrock(v):
    x, y = v[0], v[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


# The Hessian from functrans equals the one derived by hand.
v0 = np.array([-1.2, 1.0])
x, y = v0
by_hand = np.array([[2 - 400 * (y - 3 * x**2), -400 * x], [-400 * x, 200.0]])
np.testing.assert_allclose(ft.hessian(rosenbrock)(v0), by_hand, rtol=1e-12)

print("Rosenbrock from (-1.2, 1):")
v_min, iters = newton_minimize(rosenbrock, v0)
print(f"minimum at {v_min} after {iters} iterations")
np.testing.assert_allclose(v_min, [1.0, 1.0], atol=1e-8)
assert iters < 30

# L2-regularised logistic regression: the Newton iteration is the classic IRLS.
rng = np.random.default_rng(0)
N, D, lam = 200, 20, 1e-2
X = rng.normal(size=(N, D))
w_true = rng.normal(size=D)
labels = (rng.random(N) < 1 / (1 + np.exp(-X @ w_true))).astype(float)


def logistic_loss(w):
    z = X @ w
    return fnp.mean(fnp.logaddexp(0.0, z) - labels * z) + 0.5 * lam * fnp.sum(w**2)


print(f"\nlogistic regression, N={N}, D={D}:")
w_min, iters = newton_minimize(logistic_loss, np.zeros(D))
print(f"converged after {iters} iterations")
assert iters <= 10

# Optimality, checked without functrans: the hand-written gradient vanishes at w_min.
p = 1 / (1 + np.exp(-X @ w_min))
grad_by_hand = X.T @ (p - labels) / N + lam * w_min
assert np.linalg.norm(grad_by_hand) < 1e-10, np.linalg.norm(grad_by_hand)
# ... and the Hessian there is the hand-written X^T diag(p(1-p)) X / N + lam I.
H_by_hand = (X * (p * (1 - p))[:, None]).T @ X / N + lam * np.eye(D)
np.testing.assert_allclose(ft.hessian(logistic_loss)(w_min), H_by_hand, rtol=1e-10, atol=1e-14)
print("gradient and Hessian agree with the hand-written formulas")
