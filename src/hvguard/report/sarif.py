"""The SARIF report (``--format sarif``): SARIF 2.1.0 for code-scanning dashboards and audit tooling.

One run; ``tool.driver.rules`` are the 36 SS-009 measures (id, PascalCase name, title, the standard's
text, NIST CSF ids, modality, section). Every finding is a result, so the file holds exactly what the
HTML and CSV reports hold; its SARIF ``kind`` says what it means:

==============  ==========================  =================================================
hvguard status  SARIF kind / level           why
==============  ==========================  =================================================
fail            ``fail`` / ``error``         a requirement is not met
warn            ``fail`` / ``warning``       an advisory ("should") measure is not met
error           ``fail`` / ``error``         could not evaluate: as bad as a failure (exit code
                                             treats it so), never hidden as informational
waived          ``fail`` / level of the      with an ``external`` suppression (state
                original status              ``accepted``) carrying the exception register entry
manual          ``review`` / ``none``        a person must supply evidence (the message says what)
pass            ``pass`` / ``none``          attested passes carry the attestation in properties
not_applicable  ``notApplicable`` / ``none`` with the reason as message
==============  ==========================  =================================================

SARIF requires ``level`` ``none`` whenever ``kind`` is not ``fail`` (§3.27.9–10). Each result names its
subject and target as logical locations (``host`` / ``vm:NAME`` inside the target) and, when the
evidence names a file and line (``/etc/libvirt/qemu.conf:12``), a physical location; further files go to
``relatedLocations``. Evidence, remediation, waiver and attestation are in the result's property bag;
``partialFingerprints`` make a finding trackable from run to run. Collection problems and unreachable
targets are tool execution notifications of the invocation.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import msgspec

from hvguard.catalog import Measure
from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import FileRef, file_refs
from hvguard.report.model import Report, Result

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

#: hvguard status → (SARIF kind, level); ``waived`` takes the level of its original status.
KIND_LEVEL: dict[str, tuple[str, str]] = {
    "fail": ("fail", "error"),
    "warn": ("fail", "warning"),
    "error": ("fail", "error"),
    "waived": ("fail", "warning"),
    "manual": ("review", "none"),
    "pass": ("pass", "none"),
    "not_applicable": ("notApplicable", "none"),
}
#: The default level of a measure's rule from the standard's modality.
MODALITY_LEVEL = {"must": "error", "should": "warning", "conditional": "warning"}


def rule_name(title: str) -> str:
    """A PascalCase identifier from a measure title (SARIF recommends one for ``rule.name``)."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Measure"


def rule(m: Measure, section_title: str) -> dict[str, Any]:
    """The reportingDescriptor of one measure."""
    help_text = m.notes or m.title
    help_text += f"\n\nEvidence an auditor needs where facts cannot decide: {m.manual_evidence}"
    return {
        "id": m.id,
        "name": rule_name(m.title),
        "shortDescription": {"text": m.title},
        "fullDescription": {"text": m.text},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": MODALITY_LEVEL.get(m.modality, "warning")},
        "properties": {
            "nist": list(m.nist),
            "modality": m.modality,
            "automation": m.automation,
            "section": m.section,
            "section_title": section_title,
            "tags": ["SS-009", f"SS-009 {m.section}", *(f"NIST-CSF-1.1 {n}" for n in m.nist)],
        },
    }


def artifact_uri(path: str) -> str:
    """A URI reference for a file on a target: ``file:///…`` when absolute, else a relative reference."""
    if path.startswith("/"):
        return PurePosixPath(path).as_uri()
    return quote(path, safe="/._-~")


def physical(ref: FileRef) -> dict[str, Any]:
    """A physicalLocation for a file (with its line when known)."""
    loc: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(ref.path)}}
    if ref.line is not None:
        loc["region"] = {"startLine": ref.line}
    return loc


def fingerprint(r: Result) -> str:
    """A stable identity of a finding across runs: target, subject, measure and check."""
    key = "\x1f".join((r.target, r.subject, r.measure, r.check))
    return hashlib.sha256(key.encode()).hexdigest()


class _Logical:
    """The run's logicalLocations: each target once, and each subject once beneath its target."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.index: dict[tuple[str, str], int] = {}

    def _add(self, key: tuple[str, str], entry: dict[str, Any]) -> int:
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append(entry)
        return self.index[key]

    def subject(self, target: str, subject: str) -> dict[str, Any]:
        """A reference to ``subject`` of ``target`` (adding both to the run's list on first use)."""
        parent = self._add(("", target), {"name": target, "fullyQualifiedName": target, "kind": "namespace"})
        fqn = f"{target}::{subject}"
        idx = self._add(
            (target, subject),
            {"name": subject, "fullyQualifiedName": fqn, "kind": "resource", "parentIndex": parent},
        )
        return {"index": idx, "name": subject, "fullyQualifiedName": fqn, "kind": "resource"}


def result(r: Result, rule_index: int, logical: _Logical) -> dict[str, Any]:
    """One finding as a SARIF result."""
    status = r.status.value
    original = r.original_status.value if r.original_status else None
    kind, level = KIND_LEVEL[status]
    if status == "waived":
        level = "error" if original in ("fail", "error") else "warning"
    text = r.message
    if r.remediation and kind == "fail":
        text += "\n\nRemediation:\n" + r.remediation.strip()
    refs = file_refs(r.evidence)
    location: dict[str, Any] = {"logicalLocations": [logical.subject(r.target, r.subject)]}
    if refs:
        location["physicalLocation"] = physical(refs[0])
    out: dict[str, Any] = {
        "ruleId": r.measure,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"hvguardFinding/v1": fingerprint(r)},
        "properties": {
            "status": status,
            "original_status": original,
            "target": r.target,
            "subject": r.subject,
            "check": r.check,
            "method": r.method,
            "evidence": r.evidence,
            "remediation": r.remediation,
            "notes": r.notes,
            "waiver": r.waiver,
            "attestation": r.attestation,
        },
    }
    if len(refs) > 1:
        out["relatedLocations"] = [
            {"id": i, "physicalLocation": physical(ref), "message": {"text": ref.key or ref.path}}
            for i, ref in enumerate(refs[1:], start=1)
        ]
    if status == "waived":
        w = r.waiver or {}
        suppression: dict[str, Any] = {
            "kind": "external",
            "state": "accepted",
            "justification": str(w.get("justification") or f"exception {w.get('id', '?')}"),
            "properties": dict(w),
        }
        out["suppressions"] = [suppression]
    return out


def _notifications(rep: Report) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    for t in rep.targets:
        if t.unreachable:
            notes.append(
                {
                    "level": "error",
                    "message": {"text": f"target {t.id} could not be collected: {t.unreachable}"},
                    "properties": {"target": t.id},
                }
            )
        for p in t.problems:
            notes.append(
                {
                    "level": "warning",
                    "message": {"text": f"{t.id}: {p.area}: {p.source}: {p.message}"},
                    "properties": {"target": t.id, "area": p.area, "source": p.source, "message": p.message},
                }
            )
    return notes


def sarif_log(view: ReportView) -> dict[str, Any]:
    """The SARIF log as plain data (used by :func:`render`)."""
    rep, catalog = view.report, view.catalog
    rules = [rule(m, catalog.sections.get(m.section, "")) for m in catalog.measures]
    rule_index = {m.id: i for i, m in enumerate(catalog.measures)}
    logical = _Logical()
    results = [result(r, rule_index[r.measure], logical) for r in rep.results]
    tool = rep.tool
    invocation: dict[str, Any] = {
        "executionSuccessful": not any(t.unreachable for t in rep.targets),
        "endTimeUtc": rep.generated_at,
    }
    notifications = _notifications(rep)
    catalog_name = f"{catalog.id} v{catalog.version}"
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": tool.name,
                        "version": tool.version,
                        "semanticVersion": tool.version,
                        "fullName": f"{tool.name} {tool.version} ({catalog_name})",
                        "rules": rules,
                        "properties": {"catalog": rep.catalog, "framework": catalog.framework},
                    }
                },
                "invocations": [invocation],
                "logicalLocations": logical.items,
                "results": results,
                "columnKind": "unicodeCodePoints",
                # the report's context blocks as the JSON report writes them (msgspec encodes the structs)
                "properties": {
                    "report_schema": rep.schema,
                    "profile": rep.profile,
                    "as_of": rep.as_of,
                    "exceptions": rep.exceptions,
                    "attestations": rep.attestations,
                    "targets": rep.targets,
                    "summary": rep.summary,
                },
            }
        ],
    }


def render(ev: Evaluation) -> str:
    """Render the SARIF 2.1.0 log (indented JSON, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(sarif_log(report_view(ev))), indent=2).decode() + "\n"
