"""Pytrees: how every transform sees nested containers of arrays.

A transform flattens its arguments into a list of leaves plus a ``PyTreeDef``, works on the flat
list, and unflattens its results. Invariants: ``tree_unflatten(tree_structure(t), tree_leaves(t))
== t``; leaves come in a deterministic order (dicts by sorted key); two treedefs are equal, and hash
equal, exactly when their node types, keys/aux data and child structures agree, so a treedef can
key the jit cache. Internally a treedef is a nested tuple ``(kind, aux, children)`` with ``None``
for a leaf, so equality and hashing run at C speed. Nothing here knows about arrays or tracers.

The parts: ``_nodes`` (key entries, node kinds and the registry, ``register_pytree_node``,
``register_dataclass``), ``_treedef`` (flatten/unflatten, ``PyTreeDef``, matching a tree against
a structure) and ``_functions`` (``tree_flatten`` to ``tree_map_with_path``, ``tree_reduce``,
``tree_all``, ``broadcast_prefix``). Import from here: every public name is re-exported.
"""

from __future__ import annotations

import inspect

from functrans.tree_util._functions import (
    broadcast_prefix,
    tree_all,
    tree_flatten,
    tree_flatten_with_path,
    tree_leaves,
    tree_leaves_with_path,
    tree_map,
    tree_map_with_path,
    tree_reduce,
    tree_structure,
    tree_unflatten,
)
from functrans.tree_util._nodes import (
    DictKey,
    FlattenedIndexKey,
    GetAttrKey,
    KeyEntry,
    KeyPath,
    SequenceKey,
    keystr,
    register_dataclass,
    register_pytree_node,
)
from functrans.tree_util._nodes import IsLeaf as IsLeaf  # for annotations; not in __all__
from functrans.tree_util._treedef import PyTreeDef, treedef_is_leaf

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


# Public classes and functions report the module users import them from: docs/api.md and the
# reprs of KeyEntry and KeyPath name it, and doctest collects only the examples of objects (and,
# in a class, of methods) defined in the module it searches.
def _export(obj) -> None:
    defined_in = obj.__module__
    obj.__module__ = __name__
    if isinstance(obj, type):
        for member in vars(obj).values():
            if inspect.isfunction(member) and member.__module__ == defined_in:
                member.__module__ = __name__


for _name in __all__:
    _obj = globals()[_name]
    if inspect.isclass(_obj) or inspect.isfunction(_obj):  # KeyEntry and KeyPath are aliases
        _export(_obj)
del _name, _obj
