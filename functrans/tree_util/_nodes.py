"""Pytree nodes: which values are containers, how each kind is taken apart and rebuilt, and keys.

The registry maps an exact type to its `_NodeKind` (flatten, unflatten, child keys): the built-in
containers are registered here, every namedtuple shares one kind, and `register_pytree_node` /
`register_dataclass` add user types. A key entry names one step from a node to a child, so errors
can give a key path. Kinds are compared by identity and the registry is only mutated in place, so
`_treedef` and `_functions` hold them by name.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

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
      >>> import dataclasses
      >>> from typing import Any
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
