"""Reading a register file (exceptions or attestations) from YAML: safe YAML with line numbers.

Both files are a mapping with one list (``exceptions:`` or ``attestations:``) of entries. The loader is
PyYAML's safe loader with one change: implicit timestamps are off, so ``2026-01-10`` reaches the
validators as text and every date goes through one strict parser (:mod:`hvguard.workflow.dates`) —
YAML would otherwise turn ``2026-02-30`` into an exception inside the parser, and ``2026-01-10T10:00``
into a timestamp. Node marks give each entry's and each key's line, so every problem can name where
it is. Duplicate keys (which YAML silently resolves to the last one) are problems, not guesses.

This module is apart from :mod:`hvguard.workflow.registerfile` (the register's types) so that applying
a register already parsed — the guard hook unpickling its compiled policy on every VM start — never
imports PyYAML: the ``check_*``/``load_*`` functions import it when they read a file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from hvguard.workflow.registerfile import MAX_FILE_BYTES, Entry, Problem, RegisterDoc, RegisterError
from hvguard.yamlsafe import SafeYamlLoader, YamlInputError, compose_yaml, read_yaml_file


class NoTimestampLoader(SafeYamlLoader):
    """hvguard's guarded safe loader without implicit timestamps (dates stay text until validated).
    Duplicate keys are listed as problems here (with the entry they are in), not refused at load."""

    unique_keys = False


NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _duplicate_keys(node: yaml.MappingNode, where: str) -> list[Problem]:
    seen: dict[str, int] = {}
    out = []
    for key_node, _ in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        if key in seen:
            out.append(Problem(where, f"key {key!r} appears twice (lines {seen[key]} and {line})", line))
        else:
            seen[key] = line
    return out


def read_register(path: Path, list_key: str, kind: str) -> tuple[RegisterDoc, list[Problem]]:
    """Parse the file at ``path`` whose entries are under ``list_key``; raise :class:`RegisterError`
    when it cannot be parsed at all, else return the entries and the structural problems found."""
    try:
        text = read_yaml_file(path, limit=MAX_FILE_BYTES)
        node, data = compose_yaml(text, str(path), loader=NoTimestampLoader)
    except YamlInputError as exc:
        raise RegisterError(path, kind, [Problem("file", exc.reason, exc.line)]) from exc
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise RegisterError(
            path, kind, [Problem("file", f"must be a mapping with a list under '{list_key}:'", 1)]
        )
    problems = _duplicate_keys(node, "file")
    unknown = sorted(str(k) for k in data if k != list_key)
    if unknown:
        names = ", ".join(unknown)
        problems.append(Problem("file", f"unknown top-level key(s) {names}; expected {list_key}"))
    if list_key not in data:
        raise RegisterError(path, kind, [Problem("file", f"no '{list_key}:' list"), *problems])
    items = data[list_key]
    items_node = next(v for k, v in node.value if k.value == list_key)
    if items is None:  # "exceptions:" with nothing under it: an empty register
        return RegisterDoc(path, digest, ()), problems
    if not isinstance(items, list) or not isinstance(items_node, yaml.SequenceNode):
        line = items_node.start_mark.line + 1
        raise RegisterError(path, kind, [*problems, Problem("file", f"'{list_key}' must be a list", line)])
    entries = []
    for i, (value, item_node) in enumerate(zip(items, items_node.value, strict=True), start=1):
        key_lines: dict[str, int] = {}
        if isinstance(item_node, yaml.MappingNode):
            for key_node, _ in item_node.value:
                key_lines.setdefault(str(key_node.value), key_node.start_mark.line + 1)
        entry = Entry(i, item_node.start_mark.line + 1, value, key_lines)
        if isinstance(item_node, yaml.MappingNode):
            problems += _duplicate_keys(item_node, entry.label)
            for key_node, value_node in item_node.value:
                if isinstance(value_node, yaml.MappingNode):
                    problems += _duplicate_keys(value_node, f"{entry.label} {key_node.value}")
        entries.append(entry)
    return RegisterDoc(path, digest, tuple(entries)), problems
