"""The risk register as rows: what ``hvguard exceptions list|export`` and ``attestations list|export``
print, with each entry's state and days to expiry on a given date."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import msgspec

from hvguard.catalog import load_catalog
from hvguard.workflow.attestations import AttestationSet
from hvguard.workflow.dates import days_left
from hvguard.workflow.exceptions import ExceptionRegister

EXCEPTION_COLUMNS = (
    "id",
    "measure",
    "measure_title",
    "title",
    "target",
    "subject",
    "check",
    "groups",
    "risk_rating",
    "risk_owner",
    "approved_by",
    "approved_on",
    "expires_on",
    "days_to_expiry",
    "state",
    "justification",
    "compensating_controls",
    "reference",
    "as_of",
)
ATTESTATION_COLUMNS = (
    "id",
    "measure",
    "measure_title",
    "target",
    "subject",
    "check",
    "groups",
    "attested_by",
    "attested_on",
    "valid_until",
    "days_to_expiry",
    "state",
    "statement",
    "evidence",
    "reference",
    "as_of",
)


def exception_rows(register: ExceptionRegister, as_of: date) -> list[dict[str, Any]]:
    """One row per exception, in file order."""
    titles = {m.id: m.title for m in load_catalog().measures}
    return [
        {
            "id": ex.id,
            "measure": ex.measure,
            "measure_title": titles[ex.measure],
            "title": ex.title,
            "target": ex.scope.target,
            "subject": ex.scope.subject,
            "check": ex.scope.check,
            "groups": ", ".join(ex.scope.groups),
            "risk_rating": ex.risk_rating,
            "risk_owner": ex.risk_owner,
            "approved_by": ex.approved_by,
            "approved_on": ex.approved_on.isoformat(),
            "expires_on": ex.expires_on.isoformat(),
            "days_to_expiry": days_left(ex.expires_on, as_of),
            "state": ex.state(as_of),
            "justification": ex.justification,
            "compensating_controls": ex.compensating_controls,
            "reference": ex.reference,
            "as_of": as_of.isoformat(),
        }
        for ex in register.entries
    ]


def attestation_rows(attestations: AttestationSet, as_of: date) -> list[dict[str, Any]]:
    """One row per attestation, in file order (evidence as ``path`` / ``url`` items, ``; ``-joined)."""
    titles = {m.id: m.title for m in load_catalog().measures}
    return [
        {
            "id": a.id,
            "measure": a.measure,
            "measure_title": titles[a.measure],
            "target": a.scope.target,
            "subject": a.scope.subject,
            "check": a.scope.check,
            "groups": ", ".join(a.scope.groups),
            "attested_by": a.attested_by,
            "attested_on": a.attested_on.isoformat(),
            "valid_until": a.valid_until.isoformat(),
            "days_to_expiry": days_left(a.valid_until, as_of),
            "state": a.state(as_of),
            "statement": a.statement,
            "evidence": "; ".join(e.path or e.url or "" for e in a.evidence),
            "reference": a.reference,
            "as_of": as_of.isoformat(),
        }
        for a in attestations.entries
    ]


def _cell(value: Any) -> Any:
    """A CSV cell safe to open in a spreadsheet: text starting with a formula character is prefixed
    with ``'`` so it is shown, not executed (CSV injection); numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows as CSV with a header line (RFC 4180 quoting, ``\\r\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row[k]) for k in columns})
    return buf.getvalue()


def to_json(kind: str, path: str, sha256: str, as_of: date, rows: list[dict[str, Any]]) -> str:
    """Rows as a JSON document naming the source file and its digest."""
    doc = {
        "schema": f"hvguard.{kind}/1",
        "source": {"path": path, "sha256": sha256},
        "as_of": as_of.isoformat(),
        kind: rows,
    }
    return msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n"
