"""The public tree functions: flatten, map and reduce pytrees, with key paths, and prefixes.

Thin wrappers over the walks in `_treedef`, plus the key-path walk; `broadcast_prefix` expands a
prefix tree (vmap's `in_axes` / `out_axes`) to one entry per leaf of the full tree. When trees do
not match, the `TreeStructureError` names the key path where they diverge.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from functrans.errors import TreeStructureError
from functrans.tree_util._nodes import _LEAF, IsLeaf, KeyPath, _flatten_one, keystr
from functrans.tree_util._treedef import (
    PyTreeDef,
    _align,
    _describe_node,
    _describe_value,
    _flatten,
    _flatten_up_to,
    _Mismatch,
    _unflatten,
    _where,
)

# ---------------------------------------------------------------------------------------------
# The tree functions


def tree_flatten(tree: Any, is_leaf: IsLeaf = None) -> tuple[list[Any], PyTreeDef]:
    """Split a pytree into its leaves and its structure.

    Args:
      tree: a pytree; None is a node with no leaves.
      is_leaf: called on every subtree first; True makes that subtree a leaf.

    Returns:
      ``(leaves, treedef)`` with leaves in depth-first order, dict children by sorted key.

    Example:
      >>> tree_flatten((1, {"b": 2, "a": None}))
      ([1, 2], PyTreeDef((*, {'a': None, 'b': *})))
    """
    leaves: list[Any] = []
    node = _flatten(tree, leaves, is_leaf)
    return leaves, PyTreeDef(node, len(leaves))


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves``.

    Raises:
      TreeStructureError: the number of leaves differs from ``treedef.num_leaves``.

    Example:
      >>> tree_unflatten(tree_structure((0, [0])), [1, 2])
      (1, [2])
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any, is_leaf: IsLeaf = None) -> list[Any]:
    """The leaves of ``tree`` in flattening order.

    Example:
      >>> tree_leaves([None, 1, {"a": 2}])
      [1, 2]
    """
    leaves: list[Any] = []
    _flatten(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree: Any, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The treedef of ``tree``.

    Example:
      >>> tree_structure((1, {"a": 2, "b": None}))
      PyTreeDef((*, {'a': *, 'b': None}))
    """
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Apply ``f`` to the leaves of ``tree`` (and the matching subtrees of ``rest``).

    Args:
      f: called as ``f(leaf, *matching entries of rest)``.
      tree: defines the output structure.
      rest: trees with ``tree``'s structure down to ``tree``'s leaves (deeper is allowed).
      is_leaf: applied to ``tree`` only.

    Returns:
      A tree of ``tree``'s structure holding ``f``'s results.

    Raises:
      TreeStructureError: some tree in ``rest`` does not match; the message names the key path.

    Example:
      >>> tree_map(lambda x, y: x + y, (1, {"a": 2}), (10, {"a": 20}))
      (11, {'a': 22})
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    if not rest:
        return _unflatten(treedef._node, iter([f(x) for x in leaves]))
    columns = [leaves] + [_rest_up_to("tree_map", treedef, r, i) for i, r in enumerate(rest)]
    return _unflatten(treedef._node, iter([f(*xs) for xs in zip(*columns, strict=True)]))


def _rest_up_to(fname: str, treedef: PyTreeDef, other: Any, i: int) -> list[Any]:
    out: list[Any] = []
    try:
        _flatten_up_to(treedef._node, other, out)
    except _Mismatch as e:
        raise TreeStructureError(
            f"{fname}: rest[{i}] does not match the structure of the first tree {_where(e.path)}: "
            f"the first tree has {e.expected} there, rest[{i}] has {e.got}"
        ) from None
    return out


def tree_all(tree: Any, is_leaf: IsLeaf = None) -> bool:
    """Whether every leaf of ``tree`` is truthy (True for a tree without leaves)."""
    return all(tree_leaves(tree, is_leaf))


_NO_INITIALIZER = object()


def tree_reduce(
    function: Callable[[Any, Any], Any],
    tree: Any,
    initializer: Any = _NO_INITIALIZER,
    is_leaf: IsLeaf = None,
) -> Any:
    """Fold ``function`` over the leaves of ``tree``, like ``functools.reduce``.

    Raises:
      TypeError: ``tree`` has no leaves and no ``initializer`` was given.

    Example:
      >>> import operator
      >>> tree_reduce(operator.add, (1, [2, 3]))
      6
    """
    if initializer is _NO_INITIALIZER:
        return functools.reduce(function, tree_leaves(tree, is_leaf))
    return functools.reduce(function, tree_leaves(tree, is_leaf), initializer)


def _flatten_with_path(x: Any, path: KeyPath, out: list, is_leaf: IsLeaf) -> Any:
    if is_leaf is not None and is_leaf(x):
        out.append((path, x))
        return _LEAF
    one = _flatten_one(x)
    if one is None:
        out.append((path, x))
        return _LEAF
    kind, aux, children = one
    nodes = []
    for key, c in zip(kind.child_keys(aux, len(children)), children, strict=True):
        nodes.append(_flatten_with_path(c, (*path, key), out, is_leaf))
    return (kind, aux, tuple(nodes))


def tree_flatten_with_path(
    tree: Any, is_leaf: IsLeaf = None
) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
    """Like ``tree_flatten``, but each leaf comes with its key path.

    Example:
      >>> tree_flatten_with_path({"a": (1, 2)})[0]
      [((DictKey(key='a'), SequenceKey(idx=0)), 1), ((DictKey(key='a'), SequenceKey(idx=1)), 2)]
    """
    out: list[tuple[KeyPath, Any]] = []
    node = _flatten_with_path(tree, (), out, is_leaf)
    return out, PyTreeDef(node, len(out))


def tree_leaves_with_path(tree: Any, is_leaf: IsLeaf = None) -> list[tuple[KeyPath, Any]]:
    """The ``(key path, leaf)`` pairs of ``tree`` in flattening order."""
    return tree_flatten_with_path(tree, is_leaf)[0]


def tree_map_with_path(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: IsLeaf = None) -> Any:
    """Like ``tree_map``, but ``f`` is called as ``f(key_path, leaf, *rest_entries)``.

    Raises:
      TreeStructureError: some tree in ``rest`` does not match; the message names the key path.

    Example:
      >>> tree_map_with_path(lambda p, x: keystr(p), {"a": [0]})
      {'a': ["['a'][0]"]}
    """
    pairs, treedef = tree_flatten_with_path(tree, is_leaf)
    columns = [_rest_up_to("tree_map_with_path", treedef, r, i) for i, r in enumerate(rest)]
    results = [f(p, x, *xs) for (p, x), *xs in zip(pairs, *columns, strict=True)]
    return _unflatten(treedef._node, iter(results))


# ---------------------------------------------------------------------------------------------
# Prefix broadcasting (vmap's in_axes, out_axes)


def broadcast_prefix(
    prefix_tree: Any,
    full_tree: Any,
    is_leaf: IsLeaf = None,
    *,
    what: str = "prefix",
    full_what: str = "the tree",
) -> list[Any]:
    """For each leaf of ``full_tree``, the leaf of ``prefix_tree`` whose subtree contains it.

    None in ``prefix_tree`` is a leaf (``in_axes=None`` means "not mapped") and covers a whole
    subtree; elsewhere ``prefix_tree`` must have ``full_tree``'s containers.

    Args:
      prefix_tree: a tree prefix of ``full_tree``.
      full_tree: the tree whose leaves are counted.
      is_leaf: marks extra leaves in both trees.
      what: the prefix's name in error messages, e.g. ``"in_axes"``.
      full_what: the full tree's name in error messages, e.g. ``"the argument"``.

    Returns:
      A list with one entry per leaf of ``full_tree``.

    Raises:
      TreeStructureError: ``prefix_tree`` is not a prefix; the message names the key path.

    Example:
      >>> broadcast_prefix((0, None), ("x", {"a": "y", "b": "z"}))
      [0, None, None]
    """
    out: list[Any] = []
    try:
        _broadcast(prefix_tree, full_tree, is_leaf, out)
    except _Mismatch as e:
        path = keystr(e.path)
        at = f" at {path}" if path else ""
        raise TreeStructureError(
            f"{what}{path} is {e.expected} but {full_what}{at} is {e.got}; {what} must have the "
            f"containers of {full_what} down to its own leaves (None covers a whole subtree)"
        ) from None
    return out


def _broadcast(prefix: Any, full: Any, is_leaf: IsLeaf, out: list) -> None:
    one = None
    if prefix is not None and (is_leaf is None or not is_leaf(prefix)):
        one = _flatten_one(prefix)
    if one is None:
        out.extend([prefix] * len(tree_leaves(full, is_leaf)))
        return
    kind, aux, prefix_children = one
    full_one = None if is_leaf is not None and is_leaf(full) else _flatten_one(full)
    if full_one is None:
        raise _Mismatch(_describe_node(kind, aux, len(prefix_children)), _describe_value(full))
    # Walk in the full tree's child order so the output follows its leaf order.
    full_kind, full_aux, full_children = full_one
    aligned = None
    if full_kind is kind:
        aligned = _align(full_kind, full_aux, len(full_children), prefix)
    if aligned is None:
        raise _Mismatch(
            _describe_node(kind, aux, len(prefix_children)),
            _describe_node(full_kind, full_aux, len(full_children)),
        )
    for i, (p, c) in enumerate(zip(aligned, full_children, strict=True)):
        try:
            _broadcast(p, c, is_leaf, out)
        except _Mismatch as e:
            e.reversed_path.append(full_kind.child_keys(full_aux, len(full_children))[i])
            raise
