"""The optional peers of issue 6 beside autograd: JAX (eager and jit) and torch.func. Each
workload's function, written once against a NumPy-like module `m`, runs on jax.numpy and on
`torch_numpy`; inputs are converted to the peer's arrays once, outside the timed calls; float64
and one thread (XLA's thread environment is set in harness.py, before JAX loads)."""

from __future__ import annotations

import types
from collections.abc import Callable

import harness

PREFIXES = ("JAX ", "torch.func ")  # the timing keys of peer variants start with these


def load_jax():
    """jax with float64 enabled, or None if it is not installed."""
    jax = harness.optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
    return jax


def load_torch():
    """torch on one thread, or None if it is not installed."""
    torch = harness.optional("torch")
    if torch is not None:
        torch.set_num_threads(1)
        if torch.get_num_interop_threads() != 1:
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # settable only before torch's first parallel work
                pass
    return torch


def torch_numpy(torch) -> types.SimpleNamespace:
    """The NumPy functions the workloads call, over torch tensors."""
    return types.SimpleNamespace(
        sin=torch.sin,
        cos=torch.cos,
        tanh=torch.tanh,
        exp=torch.exp,
        log=torch.log,
        log1p=torch.log1p,
        dot=torch.matmul,  # the workloads' dot is a matrix or vector product
        sum=lambda x, axis=None: torch.sum(x) if axis is None else torch.sum(x, dim=axis),
        mean=torch.mean,
        max=lambda x, axis=(), keepdims=False: torch.amax(x, dim=axis, keepdim=keepdims),
    )


def jax_variants(
    name: str, make: Callable, *args, eager: bool = True, jit: bool = True
) -> dict[str, Callable[[], object]]:
    """Timed calls 'JAX eager <name>' and 'JAX jit <name>' of `make(jax, jax.numpy)` (the
    transformed function) on `args` converted to jax arrays; each call waits for its result
    (JAX dispatches asynchronously). Empty if JAX is not installed."""
    jax = load_jax()
    if jax is None:
        return {}
    fn = make(jax, jax.numpy)
    args = jax.tree_util.tree_map(jax.numpy.asarray, args)
    calls = {}
    if eager:
        calls[f"JAX eager {name}"] = lambda: jax.block_until_ready(fn(*args))
    if jit:
        jfn = jax.jit(fn)
        calls[f"JAX jit {name}"] = lambda: jax.block_until_ready(jfn(*args))
    return calls


def torch_variants(name: str, make: Callable, *args) -> dict[str, Callable[[], object]]:
    """The timed call 'torch.func <name>' of `make(torch.func, torch_numpy(torch))` on `args`
    converted to float64 tensors. Empty if torch is not installed."""
    torch = load_torch()
    if torch is None:
        return {}
    fn = make(torch.func, torch_numpy(torch))

    def convert(a):
        if isinstance(a, (tuple, list)):
            return type(a)(convert(b) for b in a)
        return torch.as_tensor(a, dtype=torch.float64)

    args = convert(args)
    return {f"torch.func {name}": lambda: fn(*args)}


def variants(name: str, make: Callable, *args, **jax_options) -> dict[str, Callable[[], object]]:
    """The JAX and torch.func variants of `make(transforms, m)`: `transforms` is jax or
    torch.func (the transforms the workloads use have the same names in both)."""
    return {
        **jax_variants(name, make, *args, **jax_options),
        **torch_variants(name, make, *args),
    }


def figures(
    title: str, times: dict[str, float], base: str, base_name: str, quoted: dict | None = None
) -> list[harness.Figure]:
    """A Figure with no target for each peer variant timed: '<title>: <variant> / <base_name>',
    its time over `base`'s; `quoted` maps a variant to its figure in issue 6."""
    quoted = quoted or {}
    return [
        harness.Figure(f"{title}: {k} / {base_name}", t / times[base], peer=quoted.get(k, ""))
        for k, t in times.items()
        if k.startswith(PREFIXES)
    ]
