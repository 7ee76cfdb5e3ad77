"""Taylor coefficients by differentiating repeatedly: grad of grad of grad ...

The k-th Taylor coefficient of f at a is f^(k)(a) / k!. `functrans.grad` returns an ordinary
function, so it can be differentiated again; nesting it k times gives the k-th derivative. The
script computes the first coefficients of a few functions, compares them with their closed forms,
and uses them to approximate f near a.

Run from the repository root:  python examples/taylor.py
"""

import math

import numpy as np

import functrans as ft
import functrans.numpy as fnp

ORDER = 6


def derivatives(f, order):
    """[f, f', f'', ...] up to `order`, each one the grad of the previous."""
    fs = [f]
    for _ in range(order):
        fs.append(ft.grad(fs[-1]))
    return fs


def taylor_coefficients(f, a, order=ORDER):
    return np.array([float(d(a)) / math.factorial(k) for k, d in enumerate(derivatives(f, order))])


# (name, function, expansion point, closed-form coefficient k -> c_k)
CASES = [
    ("exp(x) at 0", fnp.exp, 0.0, lambda k: 1 / math.factorial(k)),
    (
        "sin(x) at 0",
        fnp.sin,
        0.0,
        lambda k: 0.0 if k % 2 == 0 else (-1) ** (k // 2) / math.factorial(k),
    ),
    ("log(1 + x) at 0", fnp.log1p, 0.0, lambda k: 0.0 if k == 0 else (-1) ** (k + 1) / k),
    ("1 / (1 - x) at 0", lambda x: 1.0 / (1.0 - x), 0.0, lambda k: 1.0),
    (
        "sqrt(x) at 1",
        fnp.sqrt,
        1.0,
        lambda k: math.comb(2 * k, k) * (-1) ** (k + 1) / ((2 * k - 1) * 4**k),
    ),  # binomial series of (1 + h)^(1/2)
    (
        "x exp(x) at 1",
        lambda x: x * fnp.exp(x),
        1.0,
        lambda k: math.e * (1 / math.factorial(k) + (1 / math.factorial(k - 1) if k else 0.0)),
    ),
]

for name, f, a, closed_form in CASES:
    coefs = taylor_coefficients(f, a)
    expected = np.array([closed_form(k) for k in range(ORDER + 1)])
    print(f"{name:18s}", " ".join(f"{c:+.5f}" for c in coefs))
    np.testing.assert_allclose(coefs, expected, rtol=1e-12, atol=1e-12)

# The coefficients are exact, so the error of the Taylor polynomial shrinks like h^(ORDER + 1)
# (the first neglected term; here it is below 2 c_ORDER h^(ORDER + 1)).
f, a = (lambda x: x * fnp.exp(x)), 1.0
coefs = taylor_coefficients(f, a)
print(f"\nTaylor polynomial of degree {ORDER} of x exp(x) around 1:")
for h in (0.5, 0.1, 0.01):
    approx = np.polynomial.polynomial.polyval(h, coefs)
    exact = (a + h) * math.exp(a + h)
    error = abs(approx - exact)
    print(f"  h = {h:<5} polynomial {approx:.12f}   exact {exact:.12f}   error {error:.1e}")
    assert error < 2 * abs(coefs[-1]) * h ** (ORDER + 1) + 1e-13

# Derivatives of every order at many points at once: vmap the 4th derivative of sin over a grid.
xs = np.linspace(0.0, np.pi, 5)
d4 = ft.vmap(derivatives(fnp.sin, 4)[4])(xs)
print("\nsin''''(x) on a grid:", np.round(d4, 6))
np.testing.assert_allclose(d4, np.sin(xs), atol=1e-12)
print("all Taylor coefficients match their closed forms")
