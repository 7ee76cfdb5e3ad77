"""Treedefs: flattening to a nested-tuple structure, rebuilding from it, and matching against it.

`_flatten` and `_unflatten` are the hot path every transform runs on its arguments and results; a
node is `(kind, aux, children)` and a leaf is None, so `PyTreeDef` equality and hashing run at C
speed. `_flatten_up_to` matches another tree against a structure and, where they diverge, raises
`_Mismatch` with the key path and aval-style descriptions that `TreeStructureError`s report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from functrans.errors import TreeStructureError
from functrans.tree_util import _nodes
from functrans.tree_util._nodes import (
    _DEFAULTDICT,
    _DICT,
    _DICT_KINDS,
    _LEAF,
    _LIST,
    _NAMEDTUPLE,
    _NONE,
    _NONE_NODE,
    _ORDERED_DICT,
    _TUPLE,
    IsLeaf,
    KeyEntry,
    KeyPath,
    _flatten_one,
    _NodeKind,
    _sorted_keys,
    keystr,
)

# Bound by assignment, not by the import above: CPython 3.11+ compiles a method call on a name an
# import binds as an attribute load (it expects a module there), and `_registry.get` in `_flatten`
# then costs about 10% of a flatten.
_registry = _nodes._registry


# ---------------------------------------------------------------------------------------------
# Flatten and unflatten (the hot path: explicit loops keep one Python frame per nesting level)


def _flatten(x: Any, leaves: list, is_leaf: IsLeaf) -> Any:
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    t = type(x)
    if t is tuple or t is list:
        nodes = []
        for c in x:
            nodes.append(_flatten(c, leaves, is_leaf))
        return (_TUPLE if t is tuple else _LIST, None, tuple(nodes))
    if t is dict:
        keys = _sorted_keys(x)
        nodes = []
        for k in keys:
            nodes.append(_flatten(x[k], leaves, is_leaf))
        return (_DICT, keys, tuple(nodes))
    if x is None:
        return _NONE_NODE
    kind = _registry.get(t)
    if kind is not None:
        children, aux = kind.flatten(x)
    elif issubclass(t, tuple) and hasattr(t, "_fields"):
        kind, children, aux = _NAMEDTUPLE, x, t
    else:
        leaves.append(x)
        return _LEAF
    nodes = []
    for c in children:
        nodes.append(_flatten(c, leaves, is_leaf))
    return (kind, aux, tuple(nodes))


def _unflatten(node: Any, leaves: Any) -> Any:
    if node is _LEAF:
        return next(leaves)
    kind, aux, children = node
    built = []
    for c in children:
        built.append(_unflatten(c, leaves))
    if kind is _TUPLE:
        return tuple(built)
    if kind is _LIST:
        return built
    if kind is _DICT:
        return dict(zip(aux, built, strict=True))
    return kind.unflatten(aux, built)


def _count_leaves(node: Any) -> int:
    if node is _LEAF:
        return 1
    return sum([_count_leaves(c) for c in node[2]])


def _count_nodes(node: Any) -> int:
    if node is _LEAF:
        return 1
    return 1 + sum([_count_nodes(c) for c in node[2]])


# ---------------------------------------------------------------------------------------------
# Descriptions for error messages (avals, never array dumps)


def _describe_node(kind: _NodeKind, aux: Any, num_children: int) -> str:
    if kind is _TUPLE or kind is _LIST:
        return f"a {kind.nodetype.__name__} of length {num_children}"
    if kind is _NONE:
        return "None"
    if kind in _DICT_KINDS:
        keys = aux[1] if kind is _DEFAULTDICT else aux
        return f"a {kind.nodetype.__name__} with keys {list(keys)!r}"
    if kind is _NAMEDTUPLE:
        return f"a namedtuple {aux.__name__}"
    aux_repr = repr(aux)
    if len(aux_repr) > 60:
        aux_repr = aux_repr[:57] + "..."
    children = "1 child" if num_children == 1 else f"{num_children} children"
    return f"a {kind.nodetype.__name__} node with {children} and aux data {aux_repr}"


def _describe_value(x: Any) -> str:
    one = _flatten_one(x)
    if one is not None:
        return _describe_node(one[0], one[1], len(one[2]))
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:
        return f"a leaf {dtype}[{','.join(str(d) for d in shape)}]"
    return f"a leaf of type {type(x).__name__}"


class _Mismatch(Exception):
    """Internal: raised where two trees diverge; frames add their child key while unwinding."""

    def __init__(self, expected: str, got: str):
        super().__init__(expected, got)
        self.expected, self.got = expected, got
        self.reversed_path: list[KeyEntry] = []

    @property
    def path(self) -> KeyPath:
        return tuple(reversed(self.reversed_path))


def _where(path: KeyPath) -> str:
    return f"at {keystr(path)}" if path else "at the root"


# ---------------------------------------------------------------------------------------------
# Matching one tree against the structure of another


def _align(kind: _NodeKind, aux: Any, num_children: int, x: Any) -> list | None:
    """The children of ``x`` in the order of node (kind, aux), or None if ``x`` is another node."""
    t = type(x)
    if kind is _TUPLE or kind is _LIST:
        return x if t is kind.nodetype and len(x) == num_children else None
    if kind is _NONE:
        return [] if x is None else None
    if kind is _NAMEDTUPLE:
        return list(x) if t is aux else None
    if t is not kind.nodetype:
        return None
    if kind in _DICT_KINDS:
        # Dicts match by key set, not key order, so insertion order never matters here.
        keys = aux[1] if kind is _DEFAULTDICT else aux
        if len(x) != len(keys) or any(k not in x for k in keys):
            return None
        return [x[k] for k in keys]
    children, x_aux = kind.flatten(x)
    children = list(children)
    return children if len(children) == num_children and x_aux == aux else None


def _flatten_up_to(node: Any, x: Any, out: list) -> None:
    if node is _LEAF:
        out.append(x)
        return
    kind, aux, children = node
    xs = _align(kind, aux, len(children), x)
    if xs is None:
        raise _Mismatch(_describe_node(kind, aux, len(children)), _describe_value(x))
    for i, (c, xc) in enumerate(zip(children, xs, strict=True)):
        try:
            _flatten_up_to(c, xc, out)
        except _Mismatch as e:
            e.reversed_path.append(kind.child_keys(aux, len(children))[i])
            raise


# ---------------------------------------------------------------------------------------------
# PyTreeDef


class PyTreeDef:
    """The structure of a pytree: its containers, their keys/aux data, and where the leaves go.

    Immutable and hashable; ``==`` compares node types, aux data and children recursively.
    Build one with ``tree_structure`` / ``tree_flatten``, not directly.
    """

    __slots__ = ("_node", "_num_leaves", "_hash")

    def __init__(self, node: Any, num_leaves: int | None = None):
        # Slot setters bypass the __setattr__ guard below; a treedef is built on every flatten.
        _set_node(self, node)
        _set_num_leaves(self, _count_leaves(node) if num_leaves is None else num_leaves)
        _set_hash(self, None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("PyTreeDef is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PyTreeDef is immutable")

    def __copy__(self) -> PyTreeDef:
        return self

    def __deepcopy__(self, memo: dict) -> PyTreeDef:
        return self

    @property
    def num_leaves(self) -> int:
        """How many leaves a tree of this structure has."""
        return self._num_leaves

    @property
    def num_nodes(self) -> int:
        """Nodes including leaves and None: ``(*, *)`` has 3."""
        return _count_nodes(self._node)

    def children(self) -> list[PyTreeDef]:
        """The treedefs of the root's children (empty for a leaf or None)."""
        if self._node is _LEAF:
            return []
        return [PyTreeDef(c) for c in self._node[2]]

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """Build the tree of this structure with ``leaves`` in flattening order.

        Raises:
          TreeStructureError: the number of leaves differs from ``num_leaves``.
        """
        leaves = list(leaves)
        if len(leaves) != self._num_leaves:
            raise TreeStructureError(
                f"unflatten: {self._short_repr()} has {self._num_leaves} leaves but got "
                f"{len(leaves)}"
            )
        return _unflatten(self._node, iter(leaves))

    def flatten_up_to(self, tree: Any) -> list[Any]:
        """Flatten ``tree`` only down to this treedef's leaves.

        Returns:
          One entry per leaf of ``self``: the whole subtree of ``tree`` at that leaf's position.

        Raises:
          TreeStructureError: ``tree`` does not have this structure above those positions; the
            message names the key path where they diverge.

        Example:
          >>> tree_structure((1, 2)).flatten_up_to(({"a": 3}, [4]))
          [{'a': 3}, [4]]
        """
        out: list[Any] = []
        try:
            _flatten_up_to(self._node, tree, out)
        except _Mismatch as e:
            raise TreeStructureError(
                f"flatten_up_to: tree does not match {self._short_repr()} {_where(e.path)}: "
                f"expected {e.expected}, got {e.got}"
            ) from None
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        return self._node == other._node

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(self._node)
            except TypeError as e:
                raise TypeError(
                    f"{self._short_repr()} is not hashable because some aux data is not ({e}); "
                    "static dataclass fields and aux data of registered nodes must be hashable"
                ) from None
            _set_hash(self, h)
        return h

    def __repr__(self) -> str:
        return f"PyTreeDef({_repr_node(self._node)})"

    def _short_repr(self) -> str:
        # Error messages name the structure, but a treedef of a large model must not flood them.
        text = repr(self)
        return text if len(text) <= 100 else text[:96] + "...)"


_set_node = PyTreeDef._node.__set__
_set_num_leaves = PyTreeDef._num_leaves.__set__
_set_hash = PyTreeDef._hash.__set__


def _repr_node(node: Any) -> str:
    if node is _LEAF:
        return "*"
    kind, aux, children = node
    parts = [_repr_node(c) for c in children]
    if kind is _TUPLE:
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if kind is _LIST:
        return "[" + ", ".join(parts) + "]"
    if kind is _NONE:
        return "None"
    if kind in _DICT_KINDS:
        keys = aux[1] if kind is _DEFAULTDICT else aux
        body = "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(keys, parts, strict=True)) + "}"
        if kind is _DICT:
            return body
        if kind is _ORDERED_DICT:
            return f"OrderedDict({body})"
        return f"defaultdict({getattr(aux[0], '__name__', repr(aux[0]))}, {body})"
    if kind is _NAMEDTUPLE:
        fields = ", ".join(f"{f}={p}" for f, p in zip(aux._fields, parts, strict=True))
        return f"{aux.__name__}({fields})"
    return f"CustomNode({kind.nodetype.__name__}[{aux!r}], [{', '.join(parts)}])"


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """Whether ``treedef`` is a single leaf ``*`` (unlike JAX, None and ``()`` are not leaves).

    Example:
      >>> treedef_is_leaf(tree_structure(1.0)), treedef_is_leaf(tree_structure((1.0,)))
      (True, False)
    """
    return treedef._node is _LEAF
