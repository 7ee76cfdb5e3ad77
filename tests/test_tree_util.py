"""Tests of functrans.tree_util: round trips, treedef identity, key paths, prefixes and errors."""

from __future__ import annotations

import collections
import copy
import dataclasses
import operator
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functrans.errors import TreeStructureError
from functrans.tree_util import (
    DictKey,
    FlattenedIndexKey,
    GetAttrKey,
    SequenceKey,
    broadcast_prefix,
    keystr,
    register_dataclass,
    register_pytree_node,
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
    treedef_is_leaf,
)

# ---------------------------------------------------------------------------------------------
# Node types used below (registration is global, so it happens once, at import)


class Point(NamedTuple):
    x: Any
    y: Any


Pair = collections.namedtuple("Pair", ["first", "second"])


class Box:
    """A registered custom node: `value` is a child, `label` is aux data."""

    def __init__(self, value, label):
        self.value, self.label = value, label

    def __eq__(self, other):
        return type(other) is Box and (self.value, self.label) == (other.value, other.label)

    def __repr__(self):
        return f"Box({self.value!r}, {self.label!r})"


register_pytree_node(Box, lambda b: ((b.value,), b.label), lambda label, ch: Box(*ch, label))


@register_dataclass
@dataclasses.dataclass
class Params:
    w: Any
    b: Any
    act: str = dataclasses.field(default="relu", metadata=dict(static=True))


@dataclasses.dataclass(frozen=True)
class Layer:
    kernel: Any
    name: str


register_dataclass(Layer, data_fields=["kernel"], meta_fields=["name"])


def _mixed_tree():
    return (
        1,
        [2.0, None, {"b": 3, "a": (4,)}],
        Point(5, [6]),
        Pair({"k": 7}, None),
        collections.OrderedDict([("z", 8), ("a", 9)]),
        collections.defaultdict(list, {"q": 10}),
        Box(11, "lbl"),
        Params(w=12, b=(13,), act="tanh"),
        Layer(kernel=[14], name="dense"),
        (),
        [],
        {},
    )


# ---------------------------------------------------------------------------------------------
# Round trips


ROUND_TRIP_CASES = [
    1.0,
    None,
    (),
    (1,),
    [1, [2, [3]]],
    {"b": 1, "a": 2},
    {1: "x", 0: "y"},
    Point(1, 2),
    Pair(first=(1, 2), second={"a": 3}),
    collections.OrderedDict([("z", 1), ("a", 2)]),
    collections.defaultdict(int, {"b": 1, "a": 2}),
    Box(1.0, "x"),
    Box((1, {"a": 2}), "nested"),
    Params(w=1, b=2),
    Layer(kernel=(1, 2), name="l"),
    _mixed_tree(),
]


@pytest.mark.parametrize("tree", ROUND_TRIP_CASES, ids=repr)
def test_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree
    assert type(rebuilt) is type(tree)
    assert treedef.num_leaves == len(leaves)
    assert tree_structure(rebuilt) == treedef
    assert tree_map(lambda x: x, tree) == tree


def test_leaf_order():
    assert tree_leaves({"b": 1, "a": 2, "c": (3, 4)}) == [2, 1, 3, 4]
    assert tree_leaves(collections.OrderedDict([("z", 1), ("a", 2)])) == [1, 2]
    assert tree_leaves(collections.defaultdict(int, {"z": 1, "a": 2})) == [2, 1]
    assert tree_leaves(Point(y=1, x=2)) == [2, 1]
    assert tree_leaves(_mixed_tree()) == [1, 2.0, 4, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]


def test_unsortable_dict_keys_keep_insertion_order():
    tree = {1: "a", "x": "b"}
    leaves, treedef = tree_flatten(tree)
    assert leaves == ["a", "b"]
    assert tree_unflatten(treedef, leaves) == tree


def test_rebuilt_containers_keep_their_types():
    dd = tree_map(lambda x: x * 2, collections.defaultdict(list, {"a": 1}))
    assert type(dd) is collections.defaultdict and dd.default_factory is list
    assert dd["missing"] == []
    od = tree_map(lambda x: x, collections.OrderedDict([("z", 1), ("a", 2)]))
    assert type(od) is collections.OrderedDict and list(od) == ["z", "a"]
    assert type(tree_map(lambda x: x, Point(1, 2))) is Point
    p = tree_map(lambda x: x + 1, Params(w=1, b=2, act="tanh"))
    assert p == Params(w=2, b=3, act="tanh")


def test_subclasses_of_builtin_containers_are_leaves():
    class MyDict(dict):
        pass

    d = MyDict(a=1)
    assert tree_leaves([d]) == [d]


def test_deep_nesting():
    tree: Any = 0
    for i in range(500):
        tree = [tree] if i % 2 else (tree,)
    leaves, treedef = tree_flatten(tree)
    assert leaves == [0]
    assert tree_unflatten(treedef, [1]) == tree_map(lambda x: x + 1, tree)
    assert hash(treedef) == hash(tree_structure(tree))
    assert tree_leaves_with_path(tree)[0][1] == 0
    assert treedef.flatten_up_to(tree) == [0]


# ---------------------------------------------------------------------------------------------
# None and is_leaf


def test_none_is_a_node_without_leaves():
    assert tree_leaves([None, 1]) == [1]
    assert tree_leaves(None) == []
    assert tree_structure(None).num_leaves == 0
    assert tree_unflatten(tree_structure([None, 1]), [5]) == [None, 5]
    assert tree_map(lambda x: x + 1, {"a": None, "b": 1}) == {"a": None, "b": 2}


def test_is_leaf_makes_none_a_leaf():
    def is_none(v):
        return v is None

    leaves, treedef = tree_flatten([None, 1], is_leaf=is_none)
    assert leaves == [None, 1]
    assert treedef.num_leaves == 2
    assert tree_map(lambda v: "n" if v is None else v, [None, 1], is_leaf=is_none) == ["n", 1]


def test_is_leaf_stops_at_subtrees():
    tree = {"a": (1, 2), "b": [3, (4, 5)]}
    leaves = tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), 3, (4, 5)]
    assert tree_leaves(tree, is_leaf=lambda x: isinstance(x, dict)) == [tree]
    paths = [keystr(p) for p, _ in tree_leaves_with_path(tree, is_leaf=lambda x: x == (4, 5))]
    assert paths == ["['a'][0]", "['a'][1]", "['b'][0]", "['b'][1]"]


# ---------------------------------------------------------------------------------------------
# PyTreeDef identity


def test_equal_structures_are_equal_and_hash_equal():
    a = tree_structure({"a": (1, [2]), "b": None, "p": Point(1, 2), "box": Box(0, "x")})
    b = tree_structure({"b": None, "a": ("x", ["y"]), "p": Point(3, 4), "box": Box(9, "x")})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert tree_structure(Params(w=1, b=2)) == tree_structure(Params(w=np.ones(3), b="s"))


def test_leaf_values_do_not_matter():
    assert tree_structure((np.ones(3), 1.0)) == tree_structure(("a", object()))


@pytest.mark.parametrize(
    "left, right",
    [
        ({"a": 1}, {"b": 1}),  # different dict keys
        ({"a": 1}, {"a": 1, "b": 2}),
        ([1, 2], (1, 2)),  # list vs tuple
        ((1, 2), (1, 2, 3)),
        ((1, (2,)), ((1,), 2)),
        (None, ()),
        (None, 1),
        (Point(1, 2), (1, 2)),
        (Point(1, 2), Pair(1, 2)),
        (Box(1, "x"), Box(1, "y")),  # different aux
        (Params(w=1, b=2, act="relu"), Params(w=1, b=2, act="tanh")),  # different static field
        ({"a": 1}, collections.OrderedDict(a=1)),
        (collections.defaultdict(list, a=1), collections.defaultdict(int, a=1)),
    ],
)
def test_different_structures_differ(left, right):
    assert tree_structure(left) != tree_structure(right)


def test_treedef_is_immutable_and_copies_are_itself():
    treedef = tree_structure((1, 2))
    with pytest.raises(AttributeError):
        treedef._node = None  # type: ignore[misc]
    assert copy.copy(treedef) is treedef
    assert copy.deepcopy(treedef) is treedef
    assert treedef != (1, 2)


def test_unhashable_aux_data_fails_only_when_hashed():
    treedef = tree_structure(Box(1, ["unhashable"]))
    assert treedef == tree_structure(Box(2, ["unhashable"]))
    with pytest.raises(TypeError, match="hashable"):
        hash(treedef)


def test_treedef_properties():
    treedef = tree_structure((1, {"a": 2, "b": None}))
    assert treedef.num_leaves == 2
    assert treedef.num_nodes == 5  # tuple, 1, dict, 2, None
    assert treedef.children() == [tree_structure(1), tree_structure({"a": 0, "b": None})]
    assert treedef.children()[1].num_leaves == 1
    assert tree_structure(1).children() == []
    assert treedef_is_leaf(tree_structure(1.0))
    assert not treedef_is_leaf(tree_structure((1.0,)))
    assert not treedef_is_leaf(tree_structure(None))


@pytest.mark.parametrize(
    "tree, expected",
    [
        ((1, {"a": 2, "b": None}), "PyTreeDef((*, {'a': *, 'b': None}))"),
        (1, "PyTreeDef(*)"),
        (None, "PyTreeDef(None)"),
        ((1,), "PyTreeDef((*,))"),
        ([1, [2]], "PyTreeDef([*, [*]])"),
        (Point(1, 2), "PyTreeDef(Point(x=*, y=*))"),
        (collections.OrderedDict(b=1), "PyTreeDef(OrderedDict({'b': *}))"),
        (collections.defaultdict(list, b=1), "PyTreeDef(defaultdict(list, {'b': *}))"),
        (Box(1, "x"), "PyTreeDef(CustomNode(Box['x'], [*]))"),
    ],
)
def test_repr(tree, expected):
    assert repr(tree_structure(tree)) == expected


def test_unflatten_checks_leaf_count():
    treedef = tree_structure((1, 2))
    with pytest.raises(TreeStructureError, match="2 leaves but got 3"):
        tree_unflatten(treedef, [1, 2, 3])
    with pytest.raises(ValueError):
        treedef.unflatten([1])


# ---------------------------------------------------------------------------------------------
# Registration


def test_register_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(Box, lambda b: ((), None), lambda aux, ch: Box(0, ""))
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(tuple, lambda t: (t, None), lambda aux, ch: tuple(ch))
    with pytest.raises(ValueError, match="already registered"):
        register_dataclass(Params)


def test_register_pytree_node_accepts_generators():
    class Gen:
        def __init__(self, *xs):
            self.xs = xs

    register_pytree_node(Gen, lambda g: ((x for x in g.xs), len(g.xs)), lambda n, ch: Gen(*ch))
    leaves, treedef = tree_flatten(Gen(1, (2, 3)))
    assert leaves == [1, 2, 3]
    assert tree_unflatten(treedef, [4, 5, 6]).xs == (4, (5, 6))


def test_register_dataclass_validates_fields():
    @dataclasses.dataclass
    class D:
        a: Any
        b: Any

    with pytest.raises(ValueError, match="init fields"):
        register_dataclass(D, data_fields=["a"], meta_fields=[])
    with pytest.raises(ValueError, match="twice"):
        register_dataclass(D, data_fields=["a", "b"], meta_fields=["a"])
    with pytest.raises(TypeError, match="not a dataclass"):
        register_dataclass(Box)


def test_dataclass_init_false_fields_are_recomputed():
    @register_dataclass
    @dataclasses.dataclass
    class Scaled:
        x: Any
        twice: Any = dataclasses.field(init=False)

        def __post_init__(self):
            self.twice = self.x * 2

    assert tree_leaves(Scaled(3)) == [3]
    assert tree_map(lambda v: v + 1, Scaled(3)).twice == 8


def test_register_dataclass_on_a_plain_class():
    class Plain:
        def __init__(self, a, tag):
            self.a, self.tag = a, tag

    register_dataclass(Plain, data_fields=["a"], meta_fields=["tag"])
    out = tree_map(lambda v: v * 10, Plain(2, "t"))
    assert (out.a, out.tag) == (20, "t")


# ---------------------------------------------------------------------------------------------
# tree_map, flatten_up_to and their errors


def test_tree_map_multiple_trees():
    out = tree_map(lambda x, y, z: x + y + z, (1, {"a": 2}), (10, {"a": 20}), (100, {"a": 200}))
    assert out == (111, {"a": 222})


def test_tree_map_rest_may_be_deeper():
    out = tree_map(lambda x, y: (x, y), (1, 2), ([3, 4], {"a": 5}))
    assert out == ((1, [3, 4]), (2, {"a": 5}))


def test_tree_map_dict_insertion_order_does_not_matter():
    assert tree_map(operator.sub, {"a": 5, "b": 7}, {"b": 1, "a": 2}) == {"a": 3, "b": 6}


def test_tree_map_none_in_tree_requires_none_in_rest():
    assert tree_map(operator.add, [None, 1], [None, 2]) == [None, 3]
    with pytest.raises(TreeStructureError, match=r"at \[0\]"):
        tree_map(operator.add, [None, 1], [5, 2])


@pytest.mark.parametrize(
    "tree, other, where, expected, got",
    [
        (
            (1, {"a": 2}),
            (1, {"b": 2}),
            "at [1]",
            "a dict with keys ['a']",
            "a dict with keys ['b']",
        ),
        ((1, [2, 3]), (1, [2]), "at [1]", "a list of length 2", "a list of length 1"),
        ([1, 2], (1, 2), "at the root", "a list of length 2", "a tuple of length 2"),
        ({"a": {"b": (1,)}}, {"a": {"b": 1}}, "at ['a']['b']", "a tuple of length 1", "a leaf"),
        (Point(1, (2,)), Point(1, 2), "at .y", "a tuple of length 1", "a leaf of type int"),
        (Box((1,), "x"), Box((1,), "y"), "at the root", "aux data 'x'", "aux data 'y'"),
        ((Box((1,), "x"),), (Box(1, "x"),), "at [0][<flat index 0>]", "a tuple", "a leaf"),
    ],
)
def test_tree_map_mismatch_names_the_key_path(tree, other, where, expected, got):
    with pytest.raises(TreeStructureError) as info:
        tree_map(lambda x, y: x, tree, other)
    message = str(info.value)
    assert "tree_map" in message and "rest[0]" in message
    assert where in message and expected in message and got in message


def test_tree_map_first_tree_leaves_cover_anything_in_rest():
    tree_map(lambda a, b: None, {"a": 1}, {"a": (np.ones((2, 3)), None)})
    with pytest.raises(TreeStructureError, match=r"rest\[0\].*at \['a'\].*float64\[2,3\]"):
        tree_map(lambda a, b: None, {"a": (1,)}, {"a": np.ones((2, 3))})


def test_tree_map_names_which_rest_tree_mismatches():
    with pytest.raises(TreeStructureError, match=r"rest\[1\]"):
        tree_map(lambda *xs: 0, (1, 2), (1, 2), (1, 2, 3))


def test_flatten_up_to():
    treedef = tree_structure((1, {"a": 2, "b": None}))
    tree = ([1, 2], {"b": None, "a": {"deep": (3,)}})
    assert treedef.flatten_up_to(tree) == [[1, 2], {"deep": (3,)}]
    assert tree_structure(1).flatten_up_to({"x": 1}) == [{"x": 1}]
    assert tree_structure(None).flatten_up_to(None) == []
    nested = tree_structure(Params(w=(1, 2), b=3))
    assert nested.flatten_up_to(Params(w=("x", [4]), b=5)) == ["x", [4], 5]


def test_flatten_up_to_errors_name_the_key_path():
    treedef = tree_structure({"a": [1, (2, 3)]})
    with pytest.raises(TreeStructureError) as info:
        treedef.flatten_up_to({"a": [1, (2,)]})
    assert "['a'][1]" in str(info.value)
    assert "a tuple of length 2" in str(info.value) and "a tuple of length 1" in str(info.value)
    with pytest.raises(TreeStructureError, match=r"\['a'\]\[1\]"):
        treedef.flatten_up_to({"a": [1, None]})
    with pytest.raises(TreeStructureError, match="at the root"):
        treedef.flatten_up_to([1])
    with pytest.raises(TreeStructureError, match=r"at \.y"):
        tree_structure(Point(1, None)).flatten_up_to(Point(1, 2))


# ---------------------------------------------------------------------------------------------
# Reductions


def test_tree_all_and_reduce():
    assert tree_all((True, {"a": 1, "b": [None]}))
    assert not tree_all((True, {"a": 0}))
    assert tree_all(None)
    assert tree_reduce(operator.add, (1, [2, 3], {"a": 4})) == 10
    assert tree_reduce(operator.add, (), 7) == 7
    assert tree_reduce(lambda acc, x: acc + [x], {"b": 1, "a": 2}, []) == [2, 1]
    with pytest.raises(TypeError):
        tree_reduce(operator.add, [None])


# ---------------------------------------------------------------------------------------------
# Key paths


def test_key_entry_strings():
    assert str(SequenceKey(0)) == "[0]"
    assert str(DictKey("a")) == "['a']"
    assert str(DictKey(3)) == "[3]"
    assert str(GetAttrKey("w")) == ".w"
    assert str(FlattenedIndexKey(1)) == "[<flat index 1>]"
    assert keystr(()) == ""
    assert keystr((SequenceKey(1), DictKey("a"), GetAttrKey("w"))) == "[1]['a'].w"


def test_flatten_with_path():
    tree = {"b": [1, Point(2, 3)], "a": Box(4, "x"), "c": Params(w=5, b=None), "n": None}
    pairs, treedef = tree_flatten_with_path(tree)
    assert treedef == tree_structure(tree)
    assert [keystr(p) for p, _ in pairs] == [
        "['a'][<flat index 0>]",
        "['b'][0]",
        "['b'][1].x",
        "['b'][1].y",
        "['c'].w",
    ]
    assert [x for _, x in pairs] == tree_leaves(tree)
    assert pairs[0][0] == (DictKey("a"), FlattenedIndexKey(0))
    assert tree_leaves_with_path(7) == [((), 7)]
    od = collections.OrderedDict([("z", 1), ("a", 2)])
    assert [keystr(p) for p, _ in tree_leaves_with_path(od)] == ["['z']", "['a']"]
    dd = collections.defaultdict(list, {"z": 1, "a": 2})
    assert [keystr(p) for p, _ in tree_leaves_with_path(dd)] == ["['a']", "['z']"]


def test_tree_map_with_path():
    tree = {"a": [1, 2], "b": Layer(kernel=3, name="l")}
    out = tree_map_with_path(lambda p, x: f"{keystr(p)}={x}", tree)
    assert out == {"a": ["['a'][0]=1", "['a'][1]=2"], "b": Layer(kernel="['b'].kernel=3", name="l")}
    summed = tree_map_with_path(lambda p, x, y: x + y, (1, 2), (10, 20))
    assert summed == (11, 22)
    with pytest.raises(TreeStructureError, match=r"tree_map_with_path.*at \[1\]"):
        tree_map_with_path(lambda p, x, y: x, (1, (2,)), (1, 2))


# ---------------------------------------------------------------------------------------------
# broadcast_prefix


x, y, z = np.zeros(3), np.ones(2), np.ones((2, 2))


@pytest.mark.parametrize(
    "prefix, full, expected",
    [
        ((0, None), (x, {"a": y, "b": z}), [0, None, None]),
        (0, (x, {"a": y, "b": z}), [0, 0, 0]),
        (None, (x, [y, z]), [None, None, None]),
        ((1, {"a": 0, "b": None}), (x, {"b": z, "a": y}), [1, 0, None]),
        ({"b": 2, "a": 1}, {"a": [x, y], "b": z}, [1, 1, 2]),
        ([0, None], [None, x], [None]),  # a None in the full tree has no leaves to cover
        (Point(0, 1), Point(x, (y, z)), [0, 1, 1]),
        ((0, 1), (x, ()), [0]),
        ((), (), []),
    ],
)
def test_broadcast_prefix(prefix, full, expected):
    assert broadcast_prefix(prefix, full) == expected


def test_broadcast_prefix_follows_full_tree_leaf_order_for_unsortable_keys():
    full = {1: "one", "s": ["s0", "s1"]}
    prefix = {"s": "S", 1: "I"}
    assert tree_leaves(full) == ["one", "s0", "s1"]
    assert broadcast_prefix(prefix, full) == ["I", "S", "S"]


def test_broadcast_prefix_is_leaf():
    full = {"a": (x, y), "b": z}
    assert broadcast_prefix(0, full, is_leaf=lambda v: isinstance(v, tuple)) == [0, 0]
    axes = (0, 1)
    assert broadcast_prefix({"a": axes, "b": 2}, full, is_leaf=lambda v: v is axes) == [
        axes,
        axes,
        2,
    ]


@pytest.mark.parametrize(
    "prefix, full, message",
    [
        (
            (0, (0, 1)),
            (x, {"a": y, "b": z}),
            "in_axes[1] is a tuple of length 2 but the argument at [1] is a dict with keys "
            "['a', 'b']",
        ),
        ((0, 1), (x,), "in_axes is a tuple of length 2 but the argument is a tuple of length 1"),
        (
            {"a": 0},
            {"a": x, "b": y},
            "in_axes is a dict with keys ['a'] but the argument is a dict",
        ),
        ([0, [1]], [x, y], "in_axes[1] is a list of length 1 but the argument at [1] is a leaf "),
        ({"a": (0,)}, {"a": [x]}, "in_axes['a'] is a tuple of length 1 but the argument at ['a']"),
        ((0, 1), None, "in_axes is a tuple of length 2 but the argument is None"),
    ],
)
def test_broadcast_prefix_errors(prefix, full, message):
    with pytest.raises(TreeStructureError) as info:
        broadcast_prefix(prefix, full, what="in_axes", full_what="the argument")
    assert message in str(info.value)


def test_broadcast_prefix_default_names():
    with pytest.raises(TreeStructureError, match=r"prefix\[0\] is a tuple .* the tree at \[0\]"):
        broadcast_prefix(((0,),), (x,))
    with pytest.raises(TreeStructureError, match=r"float64\[3\]"):
        broadcast_prefix(((0,),), (x,))


# ---------------------------------------------------------------------------------------------
# Random pytrees


def _pytrees():
    def extend(children):
        return (
            st.lists(children, max_size=4).map(tuple)
            | st.lists(children, max_size=4)
            | st.dictionaries(st.text("abc", max_size=2), children, max_size=4)
            | st.builds(Point, children, children)
        )

    return st.recursive(st.integers(-5, 5) | st.none(), extend, max_leaves=25)


def _get(tree, path):
    for key in path:
        if isinstance(key, SequenceKey):
            tree = tree[key.idx]
        elif isinstance(key, DictKey):
            tree = tree[key.key]
        else:
            tree = getattr(tree, key.name)
    return tree


@settings(derandomize=True, max_examples=50, deadline=None)
@given(_pytrees())
def test_random_round_trip(tree):
    treedef = tree_structure(tree)
    assert tree_unflatten(treedef, tree_leaves(tree)) == tree
    assert tree_map(lambda v: v, tree) == tree
    assert tree_map(lambda a, b: a + b, tree, tree) == tree_map(lambda v: 2 * v, tree)
    assert treedef.flatten_up_to(tree) == tree_leaves(tree)
    assert broadcast_prefix(tree, tree) == tree_leaves(tree)
    assert broadcast_prefix(0, tree) == [0] * treedef.num_leaves


@settings(derandomize=True, max_examples=50, deadline=None)
@given(_pytrees(), _pytrees())
def test_random_treedef_equality_matches_hash(a, b):
    ta, tb = tree_structure(a), tree_structure(b)
    assert (ta == tb) == (ta == tree_structure(tree_map(lambda v: 0, b)))
    if ta == tb:
        assert hash(ta) == hash(tb)
    assert ta == tree_structure(tree_map(lambda v: v + 1, a))
    assert hash(ta) == hash(tree_structure(tree_map(lambda v: v + 1, a)))


@settings(derandomize=True, max_examples=50, deadline=None)
@given(_pytrees())
def test_random_paths_point_at_leaves(tree):
    pairs, treedef = tree_flatten_with_path(tree)
    assert treedef == tree_structure(tree)
    assert [v for _, v in pairs] == tree_leaves(tree)
    for path, leaf in pairs:
        assert _get(tree, path) == leaf
    assert len({keystr(p) for p, _ in pairs}) == len(pairs)
