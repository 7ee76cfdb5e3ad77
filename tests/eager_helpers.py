"""Helpers shared by the eager cache's tests (tests/test_eager_cache*.py): the reference path,
bit-for-bit comparison, and a look at which programs were compiled."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import functrans as ft
from functrans import eager

# first sighting, second sighting, the compiling call, and two calls of the compiled program
CALLS = eager.COMPILE_AT + 2


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test counts its own programs (the cache is kept per code object, and the lambdas
    of a parametrized test share theirs)."""
    eager._ENTRIES.clear()


@contextlib.contextmanager
def uncached():
    """The reference path: every call interprets its transformations."""
    ft.config.update("eager_cache", False)
    try:
        yield
    finally:
        ft.config.update("eager_cache", True)


def bits(x):
    """A result's tree and, per leaf, its type, dtype, shape, bytes and memory order."""
    leaves, tree = ft.tree_util.tree_flatten(x)
    return tree, [
        (
            type(v),
            np.asarray(v).dtype,
            np.shape(v),
            np.asarray(v).tobytes(),
            (v.flags.c_contiguous, v.flags.f_contiguous) if type(v) is np.ndarray else None,
        )
        for v in leaves
    ]


def compiled(fun) -> int:
    """How many of `fun`'s programs run compiled."""
    return sum(
        type(p) is eager._Compiled
        for e in eager._ENTRIES.get(eager._scope(fun), {}).values()
        for p in e.programs.values()
    )


def warm(transformed, *args):
    """Call until the program is compiled (third sighting) and once more."""
    for _ in range(eager.COMPILE_AT + 1):
        transformed(*args)
