"""Batches for vmap checks: slicing a batch into examples and stacking examples into a batch.

`in_axes` has vmap's meaning throughout (an int, possibly negative, or None per leaf, given as a
pytree prefix of the arguments); unstacking then stacking along the same in_axes is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functrans import tree_util
from functrans.testing._flat import _as_leaf, _aval_str, _is_float, _wide_array


def _flat_axes(axes: Any, tree: Any, what: str, full_what: str) -> list[Any]:
    if isinstance(axes, list):
        axes = tuple(axes)  # vmap accepts a list at the top level, like a tuple
    if isinstance(axes, tuple) and isinstance(tree, tuple) and len(axes) != len(tree):
        raise ValueError(f"{what}={axes!r} has {len(axes)} entries for {len(tree)} {full_what}")
    try:
        return tree_util.broadcast_prefix(axes, tree, what=what, full_what=full_what)
    except ValueError as err:
        raise ValueError(f"{what}={axes!r} does not fit the {full_what}: {err}") from None


def _unstack(args: tuple, in_axes: Any) -> tuple[list[tuple], int]:
    """The per-example arguments of a batch described by `in_axes`, and the batch size."""
    pairs, in_tree = tree_util.tree_flatten_with_path(args)
    leaves = [_as_leaf(x) for _, x in pairs]
    axes = _flat_axes(in_axes, args, "in_axes", "arguments")
    sizes = {}
    for (path, _), x, a in zip(pairs, leaves, axes, strict=True):
        if a is None:
            continue
        nd = np.ndim(x)
        if not isinstance(a, (int, np.integer)) or not -nd <= a < nd:
            raise ValueError(
                f"in_axes for args{tree_util.keystr(path)} is {a!r} but it is {_aval_str(x)}; "
                f"use an int in [{-nd}, {nd}) or None"
            )
        sizes.setdefault(np.shape(x)[a], []).append(f"args{tree_util.keystr(path)}")
    if len(sizes) != 1:
        raise ValueError(
            "assert_vmap_matches_loop: "
            + (f"mapped axes have different sizes {sizes}" if sizes else "no argument is mapped")
        )
    size = next(iter(sizes))
    examples = [
        tree_util.tree_unflatten(
            in_tree, [x if a is None else np.take(x, b, axis=a) for x, a in zip(leaves, axes)]
        )
        for b in range(size)
    ]
    return examples, size


def _stack(examples: Sequence[tuple], in_axes: Any) -> tuple:
    """The batch of per-example arguments, the batch axis inserted where `in_axes` says (None:
    not batched, the first example's value)."""
    pairs, tree = tree_util.tree_flatten_with_path(tuple(examples[0]))
    axes = _flat_axes(in_axes, tuple(examples[0]), "in_axes", "arguments")
    columns = zip(*[tree.flatten_up_to(tuple(ex)) for ex in examples], strict=True)
    leaves = [
        _as_leaf(col[0]) if a is None else np.stack([np.asarray(c) for c in col], axis=a)
        for col, a in zip(columns, axes, strict=True)
    ]
    return tree_util.tree_unflatten(tree, leaves)


def _scaled_examples(args: tuple, size: int, rng) -> list[tuple]:
    """`args` and `size - 1` copies with each float leaf scaled by 1 +- (1..2)%: distinct batch
    elements that keep signs, symmetry, definiteness and orderings (so stay in most domains)."""

    def scaled(x):
        x = _as_leaf(x)
        if not _is_float(x):
            return x
        s = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.01, 0.02)
        return (np.asarray(x) * np.asarray(s, _wide_array(x).real.dtype)).astype(
            np.asarray(x).dtype
        )

    return [args] + [tree_util.tree_map(scaled, args) for _ in range(size - 1)]
