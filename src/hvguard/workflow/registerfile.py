"""A register file's (exceptions or attestations) parsed form and its problems: the types shared by the
reader (:mod:`hvguard.workflow.register_yaml`), the validators and the registers.

Every problem names where it is (the entry's label and line) so a file with several mistakes is
reported whole. This module imports neither PyYAML nor ``dataclasses`` (msgspec structs instead): the
guard hook imports it, through the registers it unpickles, on every VM start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

#: Register files are hand-written lists; anything larger is not one.
MAX_FILE_BYTES = 10 * 1024 * 1024


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a register file: where (entry label and line) and what."""

    where: str
    message: str
    line: int | None = None
    severity: str = "error"
    """``error`` (the file cannot be used) or ``warning`` (usable, but a risk manager should look)."""

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.where}{at}: {self.message}"


class RegisterError(ValueError):
    """A register file that cannot be used; ``problems`` lists every error found."""

    def __init__(self, path: Path, kind: str, problems: list[Problem]) -> None:
        self.path = path
        self.kind = kind
        self.problems = problems
        first = problems[0] if problems else Problem("file", "unusable")
        more = len(problems) - 1
        tail = f" (+{more} more; `hvguard {kind} lint {path}` lists them all)" if more > 0 else ""
        super().__init__(f"{kind} file {path}: {first}{tail}")


class Entry(msgspec.Struct, frozen=True):
    """One list item of a register file, with where it is."""

    index: int
    """1-based position in the list."""
    line: int | None
    value: Any
    key_lines: dict[str, int] = msgspec.field(default_factory=dict)

    @property
    def label(self) -> str:
        """The entry's id when it has a usable one, else its position."""
        ident = self.value.get("id") if isinstance(self.value, dict) else None
        if isinstance(ident, str) and ident.strip():
            return ident.strip()
        return f"entry #{self.index}"

    def line_of(self, key: str) -> int | None:
        """The line of ``key`` in this entry (or of the entry itself)."""
        return self.key_lines.get(key, self.line)


class RegisterDoc(msgspec.Struct, frozen=True):
    """A parsed register file: its digest (for the report) and its entries."""

    path: Path
    sha256: str
    entries: tuple[Entry, ...]
