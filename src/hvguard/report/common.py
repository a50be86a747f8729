"""What the formats share.

Every format renders the same canonical data — the :class:`~hvguard.report.model.Report` of one
evaluation (:func:`hvguard.report.build.report_view`) — so an HTML report, a CSV risk register and a SARIF
or OSCAL file of the same evaluation always agree. This module adds the few derived views they all need:
status labels, findings grouped per measure × subject, and the file:line locations named in evidence.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hvguard.findings import SEVERITY_ORDER, Status, severity
from hvguard.report.model import Result, Target

#: Upper-case text label per status: status is never shown by colour alone.
LABEL: dict[str, str] = {
    "pass": "PASS",
    "fail": "FAIL",
    "warn": "WARN",
    "manual": "MANUAL",
    "not_applicable": "N/A",
    "error": "ERROR",
    "waived": "WAIVED",
}
#: Statuses worst first (the roll-up order), as strings.
ORDER: tuple[str, ...] = tuple(s.value for s in SEVERITY_ORDER)
#: Statuses that need someone's attention.
ATTENTION: frozenset[str] = frozenset({"error", "fail", "warn", "manual"})

# "path:line" as the checks write a setting's source (``/etc/libvirt/qemu.conf:12``); "default (…)"
# and other prose never match because they contain spaces or parentheses.
_FILE_LINE = re.compile(r"^(?P<path>[^\s:()]+):(?P<line>[1-9][0-9]{0,8})$")
# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def rank(status: str) -> int:
    """How bad a status string is (error highest), for sorting and roll-ups."""
    return severity(Status(status))


def worst(statuses: Iterable[str]) -> str:
    """The roll-up of several status strings (``not_applicable`` when there are none)."""
    items = list(statuses)
    return max(items, key=rank) if items else "not_applicable"


def counts_text(statuses: Iterable[str]) -> str:
    """``"2 fail · 3 pass"``: how many of each status, worst first."""
    seen: dict[str, int] = defaultdict(int)
    for s in statuses:
        seen[s] += 1
    return " · ".join(f"{seen[s]} {s}" for s in ORDER if seen[s])


def compact_json(value: Any) -> str:
    """``value`` as one line of JSON (keys in their order, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot represent replaced by U+FFFD.

    Evidence comes from hosts we do not trust; a stray control character would otherwise make the
    whole JUnit file unparseable.
    """
    return _NOT_XML.sub("\ufffd", text)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space, trimmed."""
    return " ".join(text.split())


def vm_name(subject: str) -> str | None:
    """The VM name of a ``vm:NAME`` subject, ``None`` for ``host`` and anything else."""
    return subject[3:] if subject.startswith("vm:") else None


@dataclass(frozen=True)
class FileRef:
    """A file (and line, when known) that evidence names, e.g. the qemu.conf line a setting came from."""

    path: str
    line: int | None
    key: str
    """The evidence key under which it was found (``security_driver``, ``file`` …)."""


def file_refs(evidence: Any) -> list[FileRef]:
    """Every ``path:line`` source and ``file``/``path`` value in ``evidence``, first occurrence first.

    Settings carry ``{"value": …, "source": "/etc/libvirt/qemu.conf:3"}``; parse errors carry
    ``{"file": "/etc/libvirt/qemu.conf"}``. A path seen with a line supersedes the same path without.
    """
    found: dict[tuple[str, int | None], FileRef] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                k = str(k)
                if isinstance(v, str):
                    m = _FILE_LINE.match(v)
                    if m and (k == "source" or k.endswith("source")):
                        ref = FileRef(m["path"], int(m["line"]), key if k == "source" else k)
                        found.setdefault((ref.path, ref.line), ref)
                    elif k in ("file", "path") and v.startswith("/") and "\n" not in v:
                        found.setdefault((v, None), FileRef(v, None, k))
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)

    walk(evidence, "")
    with_line = {r.path for r in found.values() if r.line is not None}
    return [r for r in found.values() if r.line is not None or r.path not in with_line]


#: A finding as the formats read it: a report :class:`Result`, or its plain-data form (any mapping with
#: at least ``measure``, ``target``, ``subject`` and ``status``).
R = TypeVar("R", bound="Result | Mapping[str, Any]")


def _field(r: Result | Mapping[str, Any], name: str) -> str:
    return str(r[name] if isinstance(r, Mapping) else getattr(r, name))


@dataclass(frozen=True)
class Case(Generic[R]):
    """All findings of one measure for one subject of one target (a JUnit test case, an OSCAL finding)."""

    measure: str
    target: str
    subject: str
    results: tuple[R, ...]

    @property
    def status(self) -> str:
        """The worst status among the findings."""
        return worst(_field(r, "status") for r in self.results)


def cases(results: Iterable[R]) -> Iterator[Case[R]]:
    """Group findings per measure × target × subject, in the order they first appear."""
    grouped: dict[tuple[str, str, str], list[R]] = {}
    for r in results:
        key = (_field(r, "measure"), _field(r, "target"), _field(r, "subject"))
        grouped.setdefault(key, []).append(r)
    for (measure, target, subject), items in grouped.items():
        yield Case(measure, target, subject, tuple(items))


def waiver_text(waiver: dict[str, Any] | None) -> str:
    """One line naming the exception that waived a finding: id, approver, approval date, expiry."""
    if not waiver:
        return ""
    parts = [f"exception {waiver.get('id') or '(no id)'}"]
    if waiver.get("approved_by"):
        parts.append(f"approved by {waiver['approved_by']}")
    if waiver.get("approved_on"):
        parts.append(f"on {waiver['approved_on']}")
    if waiver.get("expires_on"):
        parts.append(f"expires {waiver['expires_on']}")
    if waiver.get("risk_owner"):
        parts.append(f"risk owner {waiver['risk_owner']}")
    return ", ".join(parts)


def attestation_text(att: dict[str, Any] | None) -> str:
    """One line naming the attestation behind a finding: id, who attested, when, valid until."""
    if not att:
        return ""
    parts = [f"attestation {att.get('id') or '(no id)'}"]
    if att.get("attested_by"):
        parts.append(f"attested by {att['attested_by']}")
    if att.get("attested_on"):
        parts.append(f"on {att['attested_on']}")
    if att.get("valid_until"):
        parts.append(f"valid until {att['valid_until']}")
    return ", ".join(parts)


_PROC_PID = re.compile(r"^/proc/[0-9]+/")
#: Unreadable paths named in a banner; the rest are counted (all are in the JSON report).
BANNER_PATHS = 5


def privilege_banner(t: Target) -> str | None:
    """The warning that heads a report when a target was collected without root or could not read some
    paths (``Scanned without root: 2 path(s) could not be read (/etc/sudoers, …)``); None otherwise."""
    # Every process's /proc/PID/fd is one thing to a reader: shown once, as /proc/*/fd.
    unreadable = list(dict.fromkeys(_PROC_PID.sub("/proc/*/", p) for p in t.collection.unreadable))
    if t.collection.privileged is not False and not unreadable:
        return None
    lead = "Scanned without root" if t.collection.privileged is False else "Scanned with root"
    if not unreadable:
        return f"{lead}: every path it read was readable, but results may differ from a scan as root"
    shown = ", ".join(unreadable[:BANNER_PATHS])
    more = f", … {len(unreadable) - BANNER_PATHS} more" if len(unreadable) > BANNER_PATHS else ""
    return (
        f"{lead}: {len(unreadable)} path(s) could not be read ({shown}{more}); the results that depend on "
        "them are incomplete"
    )


# -- terminal-safe text ------------------------------------------------------------------------------
# VM names, messages and evidence come from hosts hvguard does not trust. On a terminal an ESC starts an
# escape sequence (a FAIL line redrawn as PASS), CR/LF start forged report lines, C1 controls act like ESC
# on some terminals, and bidi overrides reorder what is shown. The human formats show every such
# character as a visible escape; JSON keeps the raw value (it escapes it itself).
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)


def _escape(code: int) -> str:
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE: dict[int, str] = {
    code: _escape(code) for code in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), *_BIDI)
}
_MULTI_LINE: dict[int, str] = {code: text for code, text in _ONE_LINE.items() if code != 0x0A}


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character (C0 but tab, DEL, C1), bidi control and line/paragraph
    separator shown as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``); with ``multiline`` line feeds
    stay (a CR is still escaped: it would redraw the line)."""
    return text.translate(_MULTI_LINE if multiline else _ONE_LINE)
