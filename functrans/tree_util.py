"""Pytrees: how every transform sees nested containers of arrays.

A transform flattens its arguments into a list of leaves plus a ``PyTreeDef``, works on the flat
list, and unflattens its results. Invariants: ``tree_unflatten(tree_structure(t), tree_leaves(t))
== t``; leaves come in a deterministic order (dicts by sorted key); two treedefs are equal, and hash
equal, exactly when their node types, keys/aux data and child structures agree, so a treedef can
key the jit cache. Internally a treedef is a nested tuple ``(kind, aux, children)`` with ``None``
for a leaf, so equality and hashing run at C speed. Nothing here knows about arrays or tracers.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from functrans.errors import TreeStructureError

__all__ = [
    "DictKey",
    "FlattenedIndexKey",
    "GetAttrKey",
    "KeyEntry",
    "KeyPath",
    "PyTreeDef",
    "SequenceKey",
    "broadcast_prefix",
    "keystr",
    "register_dataclass",
    "register_pytree_node",
    "tree_all",
    "tree_flatten",
    "tree_flatten_with_path",
    "tree_leaves",
    "tree_leaves_with_path",
    "tree_map",
    "tree_map_with_path",
    "tree_reduce",
    "tree_structure",
    "tree_unflatten",
    "treedef_is_leaf",
]

IsLeaf = Callable[[Any], bool] | None


# ---------------------------------------------------------------------------------------------
# Key paths


@dataclasses.dataclass(frozen=True, slots=True)
class SequenceKey:
    """The child at position ``idx`` of a tuple or list."""

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class DictKey:
    """The child under ``key`` of a dict, OrderedDict or defaultdict."""

    key: Any

    def __str__(self) -> str:
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class GetAttrKey:
    """The field ``name`` of a namedtuple or registered dataclass."""

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class FlattenedIndexKey:
    """The ``idx``-th child returned by the flatten function of a ``register_pytree_node`` type."""

    idx: int

    def __str__(self) -> str:
        return f"[<flat index {self.idx}>]"


KeyEntry = SequenceKey | DictKey | GetAttrKey | FlattenedIndexKey
KeyPath = tuple[KeyEntry, ...]


def keystr(keypath: KeyPath) -> str:
    """Render a key path the way it would be written in Python.

    Args:
      keypath: a tuple of key entries, as produced by ``tree_flatten_with_path``.

    Returns:
      The concatenated entries; ``''`` for the empty path (the root).

    Example:
      >>> keystr((SequenceKey(1), DictKey("a"), GetAttrKey("w")))
      "[1]['a'].w"
    """
    return "".join([str(k) for k in keypath])


# ---------------------------------------------------------------------------------------------
# Node kinds and the registry


class _NodeKind:
    """How one type of container is taken apart and rebuilt; compared by identity."""

    __slots__ = ("nodetype", "flatten", "unflatten", "child_keys")

    def __init__(self, nodetype, flatten, unflatten, child_keys):
        self.nodetype = nodetype
        self.flatten = flatten  # x -> (children iterable, aux)
        self.unflatten = unflatten  # (aux, children list) -> x
        self.child_keys = child_keys  # (aux, number of children) -> list of key entries

    def __repr__(self) -> str:
        return f"_NodeKind({self.nodetype.__name__})"


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:
        # Keys that cannot be ordered among themselves (e.g. 1 and 'a') keep insertion order.
        return tuple(d)


def _dict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], keys


def _ordered_dict_flatten(d):
    keys = tuple(d)
    return [d[k] for k in keys], keys


def _defaultdict_flatten(d):
    keys = _sorted_keys(d)
    return [d[k] for k in keys], (d.default_factory, keys)


def _sequence_keys(aux, n):
    return [SequenceKey(i) for i in range(n)]


def _dict_keys(keys, n):
    return [DictKey(k) for k in keys]


_TUPLE = _NodeKind(tuple, lambda x: (x, None), lambda aux, ch: tuple(ch), _sequence_keys)
_LIST = _NodeKind(list, lambda x: (x, None), lambda aux, ch: list(ch), _sequence_keys)
_DICT = _NodeKind(
    dict, _dict_flatten, lambda keys, ch: dict(zip(keys, ch, strict=True)), _dict_keys
)
_NONE = _NodeKind(type(None), lambda x: ((), None), lambda aux, ch: None, lambda aux, n: [])
_ORDERED_DICT = _NodeKind(
    collections.OrderedDict,
    _ordered_dict_flatten,
    lambda keys, ch: collections.OrderedDict(zip(keys, ch, strict=True)),
    _dict_keys,
)
_DEFAULTDICT = _NodeKind(
    collections.defaultdict,
    _defaultdict_flatten,
    lambda aux, ch: collections.defaultdict(aux[0], zip(aux[1], ch, strict=True)),
    lambda aux, n: _dict_keys(aux[1], n),
)
# Every namedtuple class shares this kind; the class itself is the aux data, so two namedtuple
# classes with the same fields still give different treedefs.
_NAMEDTUPLE = _NodeKind(
    tuple,
    lambda x: (x, type(x)),
    lambda cls, ch: cls(*ch),
    lambda cls, n: [GetAttrKey(f) for f in cls._fields],
)

_LEAF = None  # the node of a leaf inside a treedef
_NONE_NODE = (_NONE, None, ())
_DICT_KINDS = (_DICT, _ORDERED_DICT, _DEFAULTDICT)

# Exact types only: a subclass of dict or list is a leaf unless registered itself (as in JAX).
_registry: dict[type, _NodeKind] = {
    kind.nodetype: kind for kind in (_TUPLE, _LIST, _DICT, _NONE, _ORDERED_DICT, _DEFAULTDICT)
}


def register_pytree_node(
    nodetype: type,
    flatten_func: Callable[[Any], tuple[Iterable[Any], Any]],
    unflatten_func: Callable[[Any, Iterable[Any]], Any],
) -> None:
    """Make instances of ``nodetype`` pytree nodes instead of leaves.

    Args:
      nodetype: the class; only exact instances are nodes, not instances of subclasses.
      flatten_func: ``x -> (children, aux_data)``; ``aux_data`` becomes part of the treedef, so it
        must be hashable and comparable with ``==``.
      unflatten_func: ``(aux_data, children) -> x``.

    Raises:
      ValueError: ``nodetype`` is already registered (the built-in containers always are).

    Example:
      >>> class Box:
      ...     def __init__(self, value, label):
      ...         self.value, self.label = value, label
      >>> register_pytree_node(Box, lambda b: ((b.value,), b.label), lambda lb, ch: Box(*ch, lb))
      >>> tree_leaves(Box(1.0, "x"))
      [1.0]
    """
    if nodetype in _registry:
        raise ValueError(
            f"register_pytree_node: {nodetype!r} is already registered as a pytree node"
        )
    _registry[nodetype] = _NodeKind(
        nodetype,
        flatten_func,
        unflatten_func,
        lambda aux, n: [FlattenedIndexKey(i) for i in range(n)],
    )


def register_dataclass(
    nodetype: type | None = None,
    data_fields: Sequence[str] | None = None,
    meta_fields: Sequence[str] | None = None,
) -> Any:
    """Register a class whose data fields are children and whose meta fields are aux data.

    Usable as a plain call or as a decorator on a ``dataclasses.dataclass``; then the data fields
    are the ``init`` fields not marked ``field(metadata=dict(static=True))``, the meta fields those
    marked. Unflatten calls ``nodetype(**fields)``, so ``__post_init__`` runs again.

    Args:
      nodetype: the class.
      data_fields: attribute names holding subtrees.
      meta_fields: attribute names holding hashable values that become part of the treedef.

    Returns:
      ``nodetype`` (so the decorator form returns the class).

    Raises:
      TypeError: fields were not given and ``nodetype`` is not a dataclass.
      ValueError: the fields do not cover the dataclass's ``init`` fields exactly once, or the
        class is already registered.

    Example:
      >>> @register_dataclass
      ... @dataclasses.dataclass
      ... class Params:
      ...     w: Any
      ...     act: str = dataclasses.field(default="relu", metadata=dict(static=True))
    """
    if nodetype is None:
        return functools.partial(
            register_dataclass, data_fields=data_fields, meta_fields=meta_fields
        )
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(
                f"register_dataclass: {nodetype.__name__} is not a dataclass; apply "
                "@dataclasses.dataclass first or pass data_fields and meta_fields"
            )
        init_fields = [f for f in dataclasses.fields(nodetype) if f.init]
        data_fields = [f.name for f in init_fields if not f.metadata.get("static", False)]
        meta_fields = [f.name for f in init_fields if f.metadata.get("static", False)]
    data_fields, meta_fields = tuple(data_fields or ()), tuple(meta_fields or ())
    given = data_fields + meta_fields
    if len(set(given)) != len(given):
        raise ValueError(f"register_dataclass: a field is listed twice in {list(given)}")
    if dataclasses.is_dataclass(nodetype):
        init_names = {f.name for f in dataclasses.fields(nodetype) if f.init}
        if set(given) != init_names:
            raise ValueError(
                f"register_dataclass: data_fields + meta_fields {sorted(given)} must be exactly "
                f"the init fields of {nodetype.__name__}, {sorted(init_names)}"
            )
    if nodetype in _registry:
        raise ValueError(f"register_dataclass: {nodetype!r} is already registered as a pytree node")

    def flatten(x):
        return [getattr(x, n) for n in data_fields], tuple([getattr(x, n) for n in meta_fields])

    def unflatten(meta, children):
        kwargs = dict(zip(meta_fields, meta, strict=True))
        kwargs.update(zip(data_fields, children, strict=True))
        return nodetype(**kwargs)

    keys = [GetAttrKey(n) for n in data_fields]
    _registry[nodetype] = _NodeKind(nodetype, flatten, unflatten, lambda aux, n: keys)
    return nodetype


def _flatten_one(x: Any) -> tuple[_NodeKind, Any, list] | None:
    """One level of ``x``: its kind, aux data and children, or None when ``x`` is a leaf."""
    t = type(x)
    kind = _registry.get(t)
    if kind is None:
        if issubclass(t, tuple) and hasattr(t, "_fields"):
            return _NAMEDTUPLE, t, list(x)
        return None
    children, aux = kind.flatten(x)
    return kind, aux, list(children)


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
