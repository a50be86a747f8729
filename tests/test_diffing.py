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


def test_key_of_names_items_list_keys_cannot() -> None:
    old = {"problems": [{"area": "host.cpu", "msg": "a"}, {"area": "host.tpm", "msg": "b"}]}
    new = {"problems": [{"area": "host.tpm", "msg": "c"}]}

    def key_of(path: str, item: object) -> str | None:
        return str(item["area"]) if path == "problems" and isinstance(item, dict) else None

    assert diff_values(old, new, key_of=key_of) == [
        Change("problems[host.cpu]", {"area": "host.cpu", "msg": "a"}, None, "removed"),
        Change("problems[host.tpm].msg", "b", "c", "changed"),
    ]
    # Without it the same lists are compared by position.
    assert diff_values(old, new)[0] == Change("problems[0].area", "host.cpu", "host.tpm", "changed")
