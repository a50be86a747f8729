"""Value-level diffs: keyed lists, positional lists, added/removed leaves, ignored paths."""

from __future__ import annotations

from hvguard.diffing import Change, diff_values


def test_nested_change_added_removed() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}}
    new = {"a": 1, "b": {"c": 5, "e": 4}}
    assert diff_values(old, new) == [
        Change("b.c", 2, 5, "changed"),
        Change("b.d", 3, None, "removed"),
        Change("b.e", None, 4, "added"),
    ]


def test_keyed_lists_match_by_name_not_position() -> None:
    old = {"vms": [{"name": "a", "vcpu": 1}, {"name": "b", "vcpu": 2}]}
    new = {"vms": [{"name": "new", "vcpu": 9}, {"name": "a", "vcpu": 1}, {"name": "b", "vcpu": 4}]}
    assert diff_values(old, new) == [
        Change("vms[b].vcpu", 2, 4, "changed"),
        Change("vms[new]", None, {"name": "new", "vcpu": 9}, "added"),
    ]


def test_plain_lists_by_position_and_type_changes() -> None:
    assert diff_values([1, 2], [1, 3, 4]) == [Change("[1]", 2, 3, "changed"), Change("[2]", None, 4, "added")]
    assert diff_values({"x": 1}, {"x": True}) == [Change("x", 1, True, "changed")]
    assert diff_values({"x": 1.0}, {"x": 1.0}) == []


def test_ignore_drops_paths() -> None:
    old = {"at": "t1", "v": 1}
    new = {"at": "t2", "v": 1}
    assert diff_values(old, new, ignore=lambda p: p == "at") == []
