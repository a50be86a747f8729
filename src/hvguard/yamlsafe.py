"""The one YAML loader of every YAML file hvguard is given (profile, exceptions, attestations, baseline,
watch configuration) — and of its own packaged data, which is trusted but read the same way.

A YAML file is untrusted input, and PyYAML's safe loader alone is not safe against it:

* **size** — the file must be a regular file (opened with ``O_NONBLOCK`` and checked with ``fstat``, so a
  FIFO or ``/dev/zero`` is refused by its type, never read) and is read up to a cap, never whole;
* **aliases** — a few hundred bytes of anchors and aliases ("billion laughs") expand to billions of
  nodes for every consumer that walks the result; an event pass before composing counts what the
  aliases expand to and refuses more than :data:`MAX_ALIAS_EXPANSION` nodes (and any recursive alias);
* **depth** — deeply nested collections exhaust the recursion of the composer and constructor
  ("RecursionError"); the same pass refuses more than :data:`MAX_DEPTH` levels;
* **duplicate keys** — YAML's loaders silently keep the last of two equal keys, hiding a setting; they
  are refused with both lines (``construct_mapping`` of the loader, which libyaml's C loader also runs
  in Python).

Every failure is a :class:`YamlInputError` whose text is one line, ``SOURCE line N: reason``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hvguard.filekind import InputFileError, kind_of, read_regular_file

#: Bytes read at most from a YAML file given to hvguard (a 1000-VM baseline is well under 1 MiB).
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Collections nested deeper than this are refused (hvguard's formats need fewer than ten).
MAX_DEPTH = 100
#: Nodes that aliases may add to a document when expanded: ample for "<<: *defaults" on every entry of
#: a large file, while a "billion laughs" (9**9 nodes from 450 bytes) is refused before it is built.
MAX_ALIAS_EXPANSION = 1_000_000

#: libyaml's safe loader when PyYAML was built with it (about ten times faster), else the pure one.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlInputError(ValueError):
    """A YAML input that cannot be used: one line, ``SOURCE line N: reason`` (``line`` may be None)."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        super().__init__(f"{source}{f' line {line}' if line else ''}: {reason}")
        self.source = source
        self.reason = reason
        self.line = line


class _DuplicateKey(yaml.constructor.ConstructorError):
    """Two equal keys in one mapping."""


class SafeYamlLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (libyaml's when available) refusing duplicate mapping keys.

    ``unique_keys`` False keeps YAML's last-wins behaviour, for a caller that reports duplicates itself.
    """

    unique_keys = True

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if self.unique_keys and isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" merges; keys written beside it override, as YAML intends
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base class refuses it with its own message
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _DuplicateKey(
                        None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def read_input_file(path: Path, *, limit: int) -> bytes:
    """The bytes of the input file at ``path`` (a YAML file, a secret): a regular file of at most
    ``limit`` bytes. Opened with ``O_NONBLOCK`` and checked with ``fstat`` first, so a FIFO or a device
    (``/dev/zero``) is refused by its type, never read; raises :class:`YamlInputError` (no line)."""
    source = str(path)
    try:
        return read_regular_file(path, limit, chunk=64 * 1024)
    except InputFileError as exc:
        if exc.problem == "missing":
            raise YamlInputError(source, "cannot read: no such file") from exc
        if exc.problem == "special":
            raise YamlInputError(source, f"not a regular file ({kind_of(exc.mode)})") from exc
        if exc.problem == "too_large":
            raise YamlInputError(source, f"larger than {limit} bytes; not read") from exc
        reason = exc.reason
        raise YamlInputError(source, f"cannot read: {reason[:1].lower() + reason[1:]}") from exc


def read_yaml_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """The text of the YAML file at ``path`` (:func:`read_input_file`), UTF-8."""
    data = read_input_file(path, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlInputError(str(path), "not UTF-8 text", data.count(b"\n", 0, exc.start) + 1) from exc


def compose_yaml(
    text: str, source: str, *, loader: type[SafeYamlLoader] = SafeYamlLoader
) -> tuple[yaml.Node | None, Any]:
    """The node tree and the constructed value of the single YAML document in ``text``, after the
    alias and depth guard; raises :class:`YamlInputError` (``source`` names the input)."""
    _guard(text, source, loader)
    instance = loader(text)
    try:
        node = instance.get_single_node()
        data = instance.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _marked(source, exc) from exc
    except yaml.YAMLError as exc:
        raise YamlInputError(source, f"invalid YAML: {_one_line(str(exc))}") from exc
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a timestamp YAML cannot build
        raise YamlInputError(source, f"unusable YAML: {_one_line(str(exc) or type(exc).__name__)}") from exc
    finally:
        instance.dispose()
    return node, data


def load_yaml(text: str, source: str, *, loader: type[SafeYamlLoader] = SafeYamlLoader) -> Any:
    """The constructed value of ``text`` (see :func:`compose_yaml`)."""
    return compose_yaml(text, source, loader=loader)[1]


def load_yaml_file(path: Path, *, limit: int = MAX_FILE_BYTES) -> Any:
    """Read (:func:`read_yaml_file`) and load (:func:`load_yaml`) the YAML file at ``path``."""
    return load_yaml(read_yaml_file(path, limit=limit), str(path))


def _guard(text: str, source: str, loader: type[SafeYamlLoader]) -> None:
    """One pass over the parse events (flat: no recursion) refusing deep nesting and alias bombs."""
    sizes: dict[str, int] = {}  # anchor → nodes its value expands to
    open_anchors: list[tuple[str | None, int]] = []  # per open collection: its anchor, nodes before it
    nodes = 0
    expanded = 0
    instance = loader(text)
    try:
        while (event := instance.get_event()) is not None:
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in sizes:
                    if any(anchor == event.anchor for anchor, _ in open_anchors):
                        raise YamlInputError(source, f"recursive alias *{event.anchor}", line)
                    continue  # undefined: the composer refuses it with its own message
                nodes += sizes[event.anchor]
                expanded += sizes[event.anchor]
                if expanded > MAX_ALIAS_EXPANSION:
                    raise YamlInputError(
                        source, f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes; not loaded", line
                    )
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                open_anchors.append((event.anchor, nodes))
                nodes += 1
                if len(open_anchors) > MAX_DEPTH:
                    raise YamlInputError(
                        source, f"nested more than {MAX_DEPTH} levels deep; not loaded", line
                    )
            elif isinstance(event, yaml.CollectionEndEvent) and open_anchors:
                anchor, before = open_anchors.pop()
                if anchor is not None:
                    sizes[anchor] = nodes - before
            if isinstance(event, yaml.StreamEndEvent):
                break
    except yaml.MarkedYAMLError as exc:
        raise _marked(source, exc) from exc
    except yaml.YAMLError as exc:
        raise YamlInputError(source, f"invalid YAML: {_one_line(str(exc))}") from exc
    finally:
        instance.dispose()


def _marked(source: str, exc: yaml.MarkedYAMLError) -> YamlInputError:
    mark = exc.problem_mark or exc.context_mark
    reason = _one_line(exc.problem or exc.context or type(exc).__name__)
    if not isinstance(exc, _DuplicateKey):
        reason = f"invalid YAML: {reason}"
    return YamlInputError(source, reason, mark.line + 1 if mark is not None else None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "SafeYamlLoader",
    "YamlInputError",
    "compose_yaml",
    "load_yaml",
    "load_yaml_file",
    "read_input_file",
    "read_yaml_file",
]
