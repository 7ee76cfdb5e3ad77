"""The registry check: every registered primitive has a test case and every rule it needs.

A primitive added to `functrans.primitives.ALL_PRIMITIVES` without a case in tests/cases.py, or
without one of its rules, fails here, so nothing can be registered without being rule-checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from cases import CASES, Case

from functrans.core import Primitive
from functrans.primitives import ALL_PRIMITIVES

ALWAYS_NEEDED = ("impl", "abstract_eval", "jvp", "batch")


def missing_cases(registry: Mapping[str, Primitive], cases: Iterable[Case]) -> list[str]:
    """Registered primitives that no case exercises."""
    covered = {c.prim for c in cases}
    return sorted(name for name in registry if name not in covered)


def unknown_cases(registry: Mapping[str, Primitive], cases: Iterable[Case]) -> list[str]:
    """Cases naming a primitive that is not registered."""
    return sorted({c.id for c in cases if c.prim not in registry})


def missing_rules(registry: Mapping[str, Primitive], cases: Iterable[Case]) -> dict[str, list]:
    """Per primitive, the rules it lacks: all need impl/abstract_eval/jvp/batch, and those a
    case declares linear in some operand need transpose."""
    linear = {c.prim for c in cases if c.linear}
    out = {}
    for name, prim in registry.items():
        needed = ALWAYS_NEEDED + (("transpose",) if name in linear else ())
        lacking = [rule for rule in needed if not prim.has_rule(rule)]
        if lacking:
            out[name] = lacking
    return out


def untested_transposes(registry: Mapping[str, Primitive], cases: Iterable[Case]) -> list[str]:
    """Primitives with a transpose rule but no case that exercises it."""
    linear = {c.prim for c in cases if c.linear}
    return sorted(n for n, p in registry.items() if p.has_rule("transpose") and n not in linear)


def test_every_primitive_has_a_case():
    assert missing_cases(ALL_PRIMITIVES, CASES) == []


def test_every_case_names_a_registered_primitive():
    assert unknown_cases(ALL_PRIMITIVES, CASES) == []


def test_every_primitive_has_its_rules():
    assert missing_rules(ALL_PRIMITIVES, CASES) == {}


def test_every_transpose_rule_is_exercised_by_a_linear_case():
    assert untested_transposes(ALL_PRIMITIVES, CASES) == []


def test_registry_keys_are_primitive_names():
    assert all(name == prim.name for name, prim in ALL_PRIMITIVES.items())


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_a_new_primitive_without_a_case_is_reported():
    registry = dict(ALL_PRIMITIVES)
    registry["fake_op"] = Primitive("fake_op")
    new = set(missing_cases(registry, CASES)) - set(missing_cases(ALL_PRIMITIVES, CASES))
    assert new == {"fake_op"}


def test_a_primitive_without_rules_is_reported():
    registry = {"fake_op": Primitive("fake_op"), "sin": ALL_PRIMITIVES["sin"]}
    cases = [Case("fake_op", lambda rng: (np.ones(2),), linear=(0,))]
    assert missing_rules(registry, cases) == {
        "fake_op": ["impl", "abstract_eval", "jvp", "batch", "transpose"]
    }
    half = Primitive("half_op")
    half.impl = np.sin
    half.jvp = lambda primals, tangents: (primals[0], tangents[0])
    assert missing_rules({"half_op": half}, []) == {"half_op": ["abstract_eval", "batch"]}


def test_a_transpose_rule_without_a_linear_case_is_reported():
    prim = Primitive("scale_op")
    prim.transpose = lambda ct, x: [ct]
    assert untested_transposes({"scale_op": prim}, []) == ["scale_op"]
    assert (
        untested_transposes({"scale_op": prim}, [Case("scale_op", lambda rng: (), linear=(0,))])
        == []
    )


def test_a_case_for_an_unregistered_primitive_is_reported():
    assert unknown_cases({}, CASES[:1]) == [CASES[0].id]
