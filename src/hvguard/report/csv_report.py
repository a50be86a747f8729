"""The CSV report (``--format csv``): one row per finding — a risk register auditors open in a spreadsheet.

Columns: target, subject, measure, section, title, status, original status, the status under the
default thresholds when the profile loosened one (untailored status), message, remediation, the
waiver (exception id, approver, expiry, justification), the attestation (id, who, until), method, check,
notes, the evidence as compact JSON, and the profile with its deviations from the defaults (the same on
every row, so a filtered or pasted extract still says which thresholds judged it). RFC 4180 quoting
(``csv`` module, CRLF line ends), UTF-8 with a byte-order mark so that Excel decodes non-ASCII text
correctly (Python reads it with ``utf-8-sig``).

Formula injection: a spreadsheet treats a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return as a formula, and VM names, messages and evidence come from hosts we do not trust
(``=HYPERLINK(…)`` as a VM name). Such a cell gets a leading apostrophe — the OWASP recommendation: Excel
and LibreOffice then show the text as text and hide the apostrophe in the cell, while the value stays
readable. The guard applies to every text cell, including the JSON evidence column.

One finding per line: every cell shows control characters, CR and LF (a multi-line fix too), C1 controls
and bidi controls as visible escapes (``\\n``, ``\\x1b``, ``\\u202e``; :func:`hvguard.report.common.visible`),
so a VM name cannot forge rows for a line-based reader or redraw a terminal that shows the file; the JSON
report keeps the raw values.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import compact_json, visible
from hvguard.report.model import ProfileBlock, Result

COLUMNS: tuple[str, ...] = (
    "target",
    "subject",
    "measure",
    "section",
    "title",
    "status",
    "original_status",
    "untailored_status",
    "message",
    "remediation",
    "waiver_id",
    "waiver_approved_by",
    "waiver_expires_on",
    "waiver_justification",
    "attestation_id",
    "attested_by",
    "attestation_valid_until",
    "method",
    "check",
    "notes",
    "evidence",
    "profile",
    "profile_deviations",
)
#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """``value`` made safe to open in a spreadsheet: a leading apostrophe before a formula trigger."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return neutralise(visible(value if isinstance(value, str) else str(value)))


def row(r: Result, section: str, profile: ProfileBlock) -> dict[str, str]:
    """One finding as a CSV row (every cell neutralised); ``profile`` is the report's profile block."""
    w = r.waiver or {}
    a = r.attestation or {}
    values: dict[str, Any] = {
        "target": r.target,
        "subject": r.subject,
        "measure": r.measure,
        "section": section,
        "title": r.title,
        "status": r.status.value,
        "original_status": r.original_status.value if r.original_status else None,
        "untailored_status": r.untailored_status.value if r.untailored_status else None,
        "message": r.message,
        "remediation": (r.remediation or "").strip(),
        "waiver_id": w.get("id"),
        "waiver_approved_by": w.get("approved_by"),
        "waiver_expires_on": w.get("expires_on"),
        "waiver_justification": w.get("justification"),
        "attestation_id": a.get("id"),
        "attested_by": a.get("attested_by"),
        "attestation_valid_until": a.get("valid_until"),
        "method": r.method,
        "check": r.check,
        "notes": "; ".join(r.notes),
        "evidence": compact_json(r.evidence),
        "profile": profile.name,
        "profile_deviations": "; ".join(profile.deviations),
    }
    return {k: _cell(values[k]) for k in COLUMNS}


def csv_text(view: ReportView) -> str:
    """The CSV report: a header row, then one row per finding in report order."""
    rep = view.report
    section_of = {m.id: m.section for m in view.catalog.measures}
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writeheader()
    for r in rep.results:
        writer.writerow(row(r, section_of[r.measure], rep.profile))
    return buf.getvalue()


def render(ev: Evaluation) -> str:
    """Render the CSV report of ``ev``."""
    return csv_text(report_view(ev))
