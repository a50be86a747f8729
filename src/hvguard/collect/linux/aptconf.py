"""apt's configuration syntax (apt.conf(5)), read the way apt itself reads it.

A port of ``ReadConfigFile`` in apt's ``apt-pkg/contrib/configuration.cc`` (apt 2.x), so offline roots and
remote copies are judged by the same rules as the host's own apt:

- ``A::B::C "v";`` and nested blocks ``A { B { C "v"; }; };`` (also ``A { B "v" };``: a ``}`` ends a
  statement), in any mix; tags are case-insensitive (``apt::periodic::enable`` is ``APT::Periodic::Enable``);
- values: a run of quoted strings joined by single spaces (``"a" "b"`` is ``a b``), else one bare word
  (quotes removed, ``%xx`` decoded); a value alone in a block is a list item, as is ``Tag:: "v";``;
- comments: ``//`` and ``#`` to the end of the line, ``/* … */`` across lines — never inside quotes;
- ``#clear A::B;`` drops that subtree; ``#include "FILE";`` (``"DIR/"`` for a directory) is followed through
  the caller's reader, at most 10 deep as apt allows.

A file apt would refuse ("Syntax error …: Extra junk …") is returned as issues: apt then refuses to run at
all, so nothing it configures is in effect. Which files apt reads, and in which order, is
:func:`apt_parts_order` (``apt.conf.d/*`` by name, then ``apt.conf``; the last setting wins).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: apt reads a directory's files whose names use only these characters
_PART_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Dir::Ignore-Files-Silently, apt's defaults
_IGNORED = re.compile(r"(~|\.disabled|\.bak|\.dpkg-[a-z]+|\.ucf-[a-z]+|\.save|\.orig|\.distUpgrade)$")
_MAX_INCLUDE_DEPTH = 10
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class AptSetting:
    """One configuration value and the file line that set it."""

    key: str
    value: str
    path: str
    line: int

    def where(self) -> str:
        """``path:line``."""
        return f"{self.path}:{self.line}"


@dataclass
class AptConfig:
    """The configuration tree, flattened: ``key`` (lower case, ``::``-joined) → its setting; list items
    (``Tag:: "v"`` or a bare value in a block) in ``lists``."""

    values: dict[str, AptSetting] = field(default_factory=dict)
    lists: dict[str, list[AptSetting]] = field(default_factory=dict)
    issues: list[tuple[str, int | None, str]] = field(default_factory=list)
    """(path, line, message) for every file apt would refuse or could not read."""

    def get(self, key: str) -> AptSetting | None:
        """The setting of ``key`` (any case), or None when unset."""
        return self.values.get(key.lower())

    def set(self, key: str, value: str, path: str, line: int) -> None:
        """Set ``key`` (a trailing ``::`` appends a list item), as apt's ``Configuration::Set``."""
        if key.endswith("::"):
            parent = key[:-2]
            self.lists.setdefault(parent.lower(), []).append(AptSetting(parent, value, path, line))
            return
        self.values[key.lower()] = AptSetting(key, value, path, line)

    def clear(self, key: str) -> None:
        """``#clear key``: remove the key and everything below it."""
        low = key.lower().rstrip(":")
        prefix = low + "::"
        for table in (self.values, self.lists):
            for k in [k for k in table if k == low or k.startswith(prefix)]:
                del table[k]


def _decode_quote_word(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            i += 1
            continue
        if ch == "%" and _HEX2.fullmatch(raw[i + 1 : i + 3]):
            out.append(chr(int(raw[i + 1 : i + 3], 16)))
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_quote_word(s: str, pos: int) -> tuple[str, int] | None:
    """apt's ParseQuoteWord: one whitespace-delimited word, ``"…"`` and ``[…]`` kept whole."""
    while pos < len(s) and s[pos] == " ":
        pos += 1
    start = pos
    while pos < len(s) and not s[pos].isspace():
        if s[pos] == '"':
            end = s.find('"', pos + 1)
            if end < 0:
                return None
            pos = end
        elif s[pos] == "[":
            end = s.find("]", pos + 1)
            if end < 0:
                return None
            pos = end
        pos += 1
    if pos == start:
        return None
    word = _decode_quote_word(s[start:pos])
    while pos < len(s) and s[pos].isspace():
        pos += 1
    return word, pos


def _parse_c_word(s: str, pos: int) -> tuple[str, int] | None:
    """apt's ParseCWord: quoted strings separated by whitespace, joined with one space."""
    while pos < len(s) and s[pos] == " ":
        pos += 1
    if pos >= len(s):
        return None
    out: list[str] = []
    while pos < len(s):
        ch = s[pos]
        if ch == '"':
            end = s.find('"', pos + 1)
            if end < 0:
                return None
            out.append(s[pos + 1 : end])
            pos = end + 1
            continue
        if not ch.isspace():
            return None
        if not (out and out[-1] == " "):
            out.append(" ")
        pos += 1
    return "".join(out).strip(" "), pos


def _strip_line_comment(line: str) -> str:
    in_quote = False
    for i, ch in enumerate(line):
        if ch == '"':
            in_quote = not in_quote
        if in_quote:
            continue
        if ch == "/" and line[i + 1 : i + 2] == "/":
            return line[:i]
        if ch == "#" and not (
            line.startswith("#clear", i)
            or line.startswith("#include", i)
            or line.startswith("#x-apt-configure-index", i)
        ):
            return line[:i]
    return line


def parse_apt_conf(
    text: str,
    path: str,
    conf: AptConfig,
    *,
    include: Callable[[str, int], None] | None = None,
    depth: int = 0,
) -> bool:
    """Apply one file's settings to ``conf`` as apt would; False (with an issue) where apt stops.

    ``include(word, depth)`` is called for ``#include``; without it includes are an issue."""

    def fail(line: int, message: str) -> bool:
        conf.issues.append((path, line, message))
        return False

    stack: list[str] = []
    parent = ""
    buffer = ""
    in_comment = False
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_comment:
            end = line.find("*/")
            if end < 0:
                continue
            line = line[end + 2 :]
            in_comment = False
        line = _strip_line_comment(line)
        # /* … */ outside quotes
        fragment: list[str] = []
        in_quote = False
        i = 0
        while i < len(line):
            ch = line[i]
            if ch == '"':
                in_quote = not in_quote
            if not in_quote and ch == "/" and line[i + 1 : i + 2] == "*":
                end = line.find("*/", i + 2)
                if end < 0:
                    in_comment = True
                    break
                i = end + 2
                continue
            fragment.append(ch)
            i += 1
        rest = "".join(fragment)
        if not rest.strip():
            continue
        in_quote = False
        start = 0
        i = 0
        while i < len(rest):
            ch = rest[i]
            if ch == '"':
                in_quote = not in_quote
            if in_quote or ch not in "{;}":
                i += 1
                continue
            piece = rest[start:i].strip()
            if buffer and piece:
                buffer += " "
            buffer += piece
            term = ch
            rest = rest[i + 1 :]
            start, i = 0, 0
            in_quote = False
            if term == "{" and not buffer:
                return fail(lineno, "block starts with no name")
            if not buffer:
                if term == "}":
                    parent = stack.pop() if stack else ""
                continue
            tagged = _parse_quote_word(buffer, 0)
            if tagged is None:
                return fail(lineno, "malformed tag")
            tag, pos = tagged
            no_word = False
            word_at = _parse_c_word(buffer, pos) or _parse_quote_word(buffer, pos)
            if word_at is None:
                if term != "{":
                    word, tag = tag, ""
                else:
                    word, no_word = "", True
                pos = len(buffer)
            else:
                word, pos = word_at
            if buffer[pos:].strip():
                return fail(lineno, "extra junk after value")
            if term == "{":
                stack.append(parent)
                parent = tag if not parent else f"{parent}::{tag}"
                tag = ""
            if not parent:
                item = tag
            elif term != "{" or tag:
                item = f"{parent}::{tag}"
            else:
                item = parent
            if tag.startswith("#"):
                if parent:
                    return fail(lineno, "directives can only be done at the top level")
                directive = tag[1:]
                if directive == "clear":
                    conf.clear(word)
                elif directive == "include":
                    if depth >= _MAX_INCLUDE_DEPTH:
                        return fail(lineno, "too many nested includes")
                    if include is None:
                        return fail(lineno, f"#include {word} cannot be followed here")
                    include(word, depth + 1)
                elif directive != "x-apt-configure-index":
                    return fail(lineno, f"unsupported directive '{directive}'")
            elif not tag and not no_word and word == "#clear":
                return fail(lineno, "clear directive requires an option tree as argument")
            elif not no_word:
                conf.set(item, word, path, lineno)
            buffer = ""
            if term == "}":
                parent = stack.pop() if stack else ""
        leftover = rest.strip()
        if leftover:
            buffer = f"{buffer} {leftover}" if buffer else leftover
    if buffer:
        return fail(lineno, "extra junk at end of file")
    return True


def apt_parts_order(names: Iterable[str]) -> list[str]:
    """The files of a configuration directory apt reads, in its order: names of ``[A-Za-z0-9_.-]`` only,
    not hidden, without a dot or ending in ``.conf``, not matching Dir::Ignore-Files-Silently, sorted
    bytewise."""
    chosen = []
    for name in names:
        if name.startswith(".") or not _PART_NAME.match(name) or _IGNORED.search(name):
            continue
        if "." in name and name.rsplit(".", 1)[1] != "conf":
            continue
        chosen.append(name)
    return sorted(chosen, key=lambda n: n.encode())
