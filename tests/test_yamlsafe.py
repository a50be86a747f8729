"""The one guarded YAML loader: what it still accepts (merge keys, modest aliases) and what it refuses."""

from __future__ import annotations

import pytest

from hvguard.yamlsafe import YamlInputError, load_yaml


def test_merge_keys_and_overrides_still_load() -> None:
    text = "base: &b {x: 1, y: 2}\nvm:\n  <<: *b\n  x: 3\n"
    assert load_yaml(text, "f.yaml") == {"base": {"x": 1, "y": 2}, "vm": {"x": 3, "y": 2}}


def test_a_merge_key_on_each_of_many_entries_loads() -> None:
    defaults = "d: &d {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}\n"
    text = defaults + "items:\n" + "".join(f"  - {{<<: *d, id: {i}}}\n" for i in range(20_000))
    assert len(load_yaml(text, "f.yaml")["items"]) == 20_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml line 3: duplicate key 'a' (first at line 1)"),
        ("1: x\n01: y\n", "f.yaml line 2: duplicate key 1 (first at line 1)"),  # equal once built
        ("m:\n  k: 1\n  k: 2\n", "f.yaml line 3: duplicate key 'k' (first at line 2)"),
        ("a: &x [1, *x]\n", "f.yaml line 1: recursive alias *x"),
        ("a: " + "[" * 101 + "]" * 101, "f.yaml line 1: nested more than 100 levels deep; not loaded"),
        ("a: [\n", "f.yaml line 2: invalid YAML: did not find expected node content"),
        ("a: !!python/object:os.system x\n", "f.yaml line 1: invalid YAML: could not determine a"),
    ],
)
def test_refusals_are_one_line_with_the_line(text: str, message: str) -> None:
    with pytest.raises(YamlInputError) as caught:
        load_yaml(text, "f.yaml")
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)
