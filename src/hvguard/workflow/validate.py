"""Field validation shared by the exceptions register and the attestations file.

An :class:`EntryReader` reads one entry's fields and records each problem with the entry's label and
the field's line, so a file with several mistakes is reported whole by ``lint`` rather than one
mistake per run. Which fields an entry has, which are required and what each means live in one table
of :class:`FieldSpec` per file kind: the reader takes its allowed keys and required fields from it, and
the published JSON Schemas (``hvguard schema exceptions|attestations``) are generated from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import msgspec

from hvguard.catalog import Catalog
from hvguard.workflow.dates import DateFormatError, parse_calendar_date
from hvguard.workflow.registerfile import Entry, Problem


class FieldSpec(msgspec.Struct, frozen=True):
    """One field of a register entry: its key, the kind of value it takes, whether it is required and
    what it means."""

    name: str
    kind: str
    """``id`` and ``text`` (non-empty text), ``measure`` (a catalog measure id), ``scope`` (see
    :mod:`hvguard.workflow.scope`), ``date`` (a calendar date YYYY-MM-DD), ``choice`` (one of
    ``choices``, any case, surrounding blanks ignored) or ``evidence`` (attestations' evidence list)."""
    description: str
    required: bool = True
    why: str = ""
    """For a required date: why it is required (part of the message when it is missing)."""
    choices: tuple[str, ...] = ()


def field_names(specs: Iterable[FieldSpec]) -> tuple[str, ...]:
    """The keys of ``specs``, in table order."""
    return tuple(spec.name for spec in specs)


class EntryReader:
    """Reads and checks the fields of one register entry against its kind's :class:`FieldSpec` table,
    collecting problems."""

    def __init__(self, entry: Entry, problems: list[Problem], fields: Iterable[FieldSpec]) -> None:
        self.entry = entry
        self.problems = problems
        self.fields = {spec.name: spec for spec in fields}
        self.data: dict[str, Any] = entry.value if isinstance(entry.value, dict) else {}
        self.ok = True

    def problem(self, key: str | None, message: str, *, severity: str = "error") -> None:
        """Record a problem about ``key`` (or the whole entry)."""
        line = self.entry.line_of(key) if key else self.entry.line
        self.problems.append(Problem(self.entry.label, message, line, severity))
        if severity == "error":
            self.ok = False

    def is_mapping(self) -> bool:
        """False (with a problem) when the entry is not a mapping of fields."""
        if isinstance(self.entry.value, dict):
            return True
        self.problem(None, "an entry must be a mapping of fields (id, measure, scope …)")
        return False

    def check_keys(self, hints: dict[str, str]) -> None:
        """Every key must be a field of the table; near-misses and known foreign spellings get a
        suggestion."""
        allowed = tuple(self.fields)
        for key in self.data:
            name = str(key)
            if name in allowed:
                continue
            hint = hints.get(name)
            if hint is None:
                from difflib import get_close_matches  # only for a misspelt key

                close = get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(allowed)}"
            self.problem(name, f"unknown key {name!r} ({hint})")

    def text(self, key: str) -> str | None:
        """A non-empty text field (required or not as its table says)."""
        value = self.data.get(key)
        if value is None:
            if self.fields[key].required:
                self.problem(key, f"{key} is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"{key} must be non-empty text, got {value!r}")
            return None
        return value.strip()

    def ident(self) -> str | None:
        """The entry's ``id``: text (quote numbers, which YAML would otherwise read as numbers)."""
        value = self.data.get("id")
        if value is None:
            self.problem("id", "id is missing (every entry needs a unique id, e.g. EX-001)")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem("id", f"id must be text (quote it: id: '{value}')")
            return None
        return value.strip()

    def date(self, key: str) -> date | None:
        """A required calendar-date field (YAML date or quoted ``YYYY-MM-DD``); the table's ``why``
        explains a missing one."""
        if key not in self.data or self.data[key] is None:
            self.problem(key, f"{key} is missing — {self.fields[key].why}")
            return None
        try:
            return parse_calendar_date(self.data[key])
        except DateFormatError as exc:
            self.problem(key, f"{key}: {exc}")
            return None

    def choice(self, key: str) -> str | None:
        """One of the table's ``choices`` for ``key`` (any case, blanks around it ignored), lower-cased."""
        options = self.fields[key].choices
        value = self.data.get(key)
        if value is None:
            self.problem(key, f"{key} is missing (one of {', '.join(options)})")
            return None
        if not isinstance(value, str) or value.strip().lower() not in options:
            self.problem(key, f"unknown {key} {value!r} (one of {', '.join(options)})")
            return None
        return value.strip().lower()

    def measure(self, catalog: Catalog) -> str | None:
        """The ``measure`` field: an id of the catalog (text: YAML reads an unquoted 11.3 as a number)."""
        value = self.data.get("measure")
        if value is None:
            self.problem("measure", "measure is missing (an SS-009 measure id such as '11.3.3')")
            return None
        if not isinstance(value, str):
            self.problem("measure", f"measure {value!r} is not a measure id (quote it: measure: '11.3.3')")
            return None
        ident = value.strip()
        if ident not in catalog.ids:
            from difflib import get_close_matches  # only for an unknown measure

            close = get_close_matches(ident, catalog.ids, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.problem("measure", f"unknown measure {ident!r} (SS-009 has 11.1.1 … 11.4.13{hint})")
            return None
        return ident
