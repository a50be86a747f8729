"""What an evaluation did with a register file: per entry, its state on the evaluation date and what it
matched — the reports show this so stale, expired and soon-expiring entries are visible."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

#: An active entry this close to its last valid day gets a note in the report.
EXPIRY_NOTICE_DAYS = 30


def state_on(start: date, until: date, as_of: date) -> str:
    """``active``, ``expired`` or ``pending`` (approved/attested after the evaluation date)."""
    if as_of > until:
        return "expired"
    if as_of < start:
        return "pending"
    return "active"


class EntryUse(msgspec.Struct, frozen=True):
    """One register entry as the evaluation saw it."""

    id: str
    measure: str
    state: str
    """``active``, ``expired`` or ``pending`` on the evaluation date."""
    valid_from: date
    valid_until: date
    days_left: int
    """Days from the evaluation date to the last valid day (0 = expires today; negative = expired)."""
    matched: int
    """Findings within the entry's measure and scope, whatever their status."""
    applied: int
    """Findings the entry changed (waived, or attested to pass/error)."""
    notes: tuple[str, ...]
    scope: dict[str, Any] = msgspec.field(default_factory=dict)
    """The entry's scope as plain data (the history store keeps it for the "expiring" view)."""

    def to_json(self) -> dict[str, Any]:
        """The entry's use as plain data."""
        return {
            "id": self.id,
            "measure": self.measure,
            "state": self.state,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "days_left": self.days_left,
            "matched": self.matched,
            "applied": self.applied,
            "notes": list(self.notes),
        }


class SourceUse(msgspec.Struct, frozen=True):
    """One register file used by an evaluation: where it came from (path and digest) and its entries."""

    kind: str
    """``exceptions`` or ``attestations``."""
    path: str
    sha256: str
    entries: tuple[EntryUse, ...]

    @property
    def notes(self) -> list[str]:
        """Every entry note, prefixed by the entry id (what the report lists under the register)."""
        return [f"{e.id}: {n}" for e in self.entries for n in e.notes]

    def to_json(self) -> dict[str, Any]:
        """The source as plain data for the JSON report."""
        counts: dict[str, int] = {"active": 0, "expired": 0, "pending": 0}
        for e in self.entries:
            counts[e.state] = counts.get(e.state, 0) + 1
        return {
            "path": self.path,
            "sha256": self.sha256,
            "entries": len(self.entries),
            "by_state": counts,
            "applied": sum(e.applied for e in self.entries),
            "notes": self.notes,
            "entry_use": [e.to_json() for e in self.entries],
        }
