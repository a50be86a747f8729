"""The SARIF report (``--format sarif``): SARIF 2.1.0 that GitHub code scanning can ingest.

One run; ``tool.driver.rules`` are the 36 SS-009 measures (id, PascalCase name, title, the standard's
text, help, tags with ``security``, ``precision``, and ``security-severity`` from the measure's effective
modality — see :mod:`hvguard.report.severity`). Results are the findings that need someone's attention:

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
pass            not emitted                  GitHub ignores ``kind`` and would open an alert
not_applicable  not emitted                  for each; their counts are in ``run.properties``
==============  ==========================  =================================================

GitHub's ingestion rules (docs.github.com, "SARIF support for code scanning" and "SARIF results exceed
limits") and how this file meets them:

- every result has a ``physicalLocation`` whose ``artifactLocation.uri`` is relative, with
  ``uriBaseId`` ``ESTATEROOT`` (described in ``run.originalUriBaseIds``): the config file and line the
  evidence names (``hvguard/<target>/fs/etc/libvirt/qemu.conf``, line 12), else a pseudo-path for the
  subject (``hvguard/<target>/host``, ``hvguard/<target>/vm/<name>``, line 1). ``<target>`` is a slug
  of the target id; names are percent-encoded, and a name of only dots gets a trailing ``~``. The
  region has start/end line and column: hvguard knows the line, not the columns, so the region is the
  start of the line (columns 1–1);
- ``partialFingerprints.primaryLocationLineHash`` (the only key GitHub reads) is a hash of target,
  subject, measure and check, so an alert keeps its identity from run to run;
- rules carry ``shortDescription``/``fullDescription`` (≤ 1024 characters, the full text in ``help``),
  ``help.text``, ≤ 10 tags including ``security`` and ``security-severity`` as a numeric string in
  (0, 10];
- at most 25,000 results per run: beyond that the least severe are left out and an execution
  notification says how many (the JSON report always has every finding).

GitHub does not read SARIF suppressions: a waived finding is uploaded as an open alert carrying its
suppression; dismiss it there, or filter waived results out before upload. Each result also names its
subject and target as logical locations; further files go to ``relatedLocations``. Evidence,
remediation, waiver and attestation are in the result's property bag. Collection problems and
unreachable targets are tool execution notifications of the invocation.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any
from urllib.parse import quote

import msgspec

from hvguard.catalog import Measure
from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import FileRef, file_refs, rank
from hvguard.report.model import ProfileBlock, Report, Result
from hvguard.report.severity import base_score, effective_modality, finding_score

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

#: hvguard status → (SARIF kind, level) of the statuses that are emitted; ``waived`` takes the level of
#: its original status.
KIND_LEVEL: dict[str, tuple[str, str]] = {
    "fail": ("fail", "error"),
    "warn": ("fail", "warning"),
    "error": ("fail", "error"),
    "waived": ("fail", "warning"),
    "manual": ("review", "none"),
}
#: Statuses that are not emitted (GitHub would open an alert for each; it ignores ``kind``).
OMITTED: tuple[str, ...] = ("pass", "not_applicable")
#: The default level of a measure's rule from its effective modality.
MODALITY_LEVEL = {"must": "error", "conditional": "warning", "should": "warning", "may": "note"}
#: GitHub's ``problem.severity`` of a rule from its effective modality.
PROBLEM_SEVERITY = {
    "must": "error",
    "conditional": "warning",
    "should": "recommendation",
    "may": "recommendation",
}
#: The uriBaseId of every artifact location: hvguard's tree of the scanned estate.
BASE_ID = "ESTATEROOT"
#: GitHub code scanning's hard limit on results per run (larger files are rejected).
MAX_RESULTS = 25_000
#: GitHub's limits on rule text (characters) and on tags per rule (only 10 are shown).
MAX_DESCRIPTION = 1024
MAX_NAME = 255
MAX_TAGS = 10


def rule_name(title: str) -> str:
    """A PascalCase identifier from a measure title (SARIF recommends one for ``rule.name``)."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return ("".join(w[:1].upper() + w[1:] for w in words) or "Measure")[:MAX_NAME]


def clip(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def rule(m: Measure, section_title: str, profile: ProfileBlock) -> dict[str, Any]:
    """The reportingDescriptor of one measure, with GitHub's tags, precision and security-severity."""
    modality = effective_modality(m, profile)
    help_text = f"{m.text}\n\n{m.notes or m.title}"
    help_text += f"\n\nEvidence an auditor needs where facts cannot decide: {m.manual_evidence}"
    tags = ["security", "compliance", "SS-009", f"SS-009 {m.section}", *(f"NIST-CSF-1.1 {n}" for n in m.nist)]
    return {
        "id": m.id,
        "name": rule_name(m.title),
        "shortDescription": {"text": clip(m.title)},
        "fullDescription": {"text": clip(m.text)},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": MODALITY_LEVEL.get(modality, "warning")},
        "properties": {
            "tags": tags[:MAX_TAGS],
            "precision": "high",
            "security-severity": f"{base_score(m, profile):.1f}",
            "problem.severity": PROBLEM_SEVERITY.get(modality, "warning"),
            "nist": list(m.nist),
            "modality": m.modality,
            "effective_modality": modality,
            "automation": m.automation,
            "section": m.section,
            "section_title": section_title,
        },
    }


def slug(target: str) -> str:
    """A path segment naming a target: its id with every run of other characters than letters, digits,
    ``.``, ``_`` and ``-`` replaced by ``-`` (``qemu+ssh://hv1/system`` → ``qemu-ssh-hv1-system``)."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", target).strip("-.")
    return out or "target"


def _segment(text: str) -> str:
    """One path segment, percent-encoded. A name of only dots gets a trailing ``~``: percent-encoding
    would not do (``%2E%2E`` normalises back to ``..``, RFC 3986 §6.2.2.2) and no name may climb the tree."""
    if text in ("", ".", ".."):
        return f"{text}~"
    return quote(text, safe="")


def _file_path(path: str) -> str:
    return "/".join(_segment(p) for p in path.split("/") if p)


class _Paths:
    """Relative artifact URIs under :data:`BASE_ID`: one stable, unique prefix per target."""

    def __init__(self, targets: list[str]) -> None:
        seen: Counter[str] = Counter(slug(t) for t in targets)
        # two target ids that slug alike (qemu+ssh vs qemu-ssh) are told apart by a short hash of the id
        self.prefix = {
            t: "hvguard/" + (slug(t) if seen[slug(t)] == 1 else f"{slug(t)}-{_digest(t)[:8]}")
            for t in targets
        }

    def subject(self, target: str, subject: str) -> str:
        """``hvguard/<target>/host`` or ``hvguard/<target>/vm/<name>``."""
        base = self.prefix[target]
        if subject.startswith("vm:"):
            return f"{base}/vm/{_segment(subject[3:])}"
        return f"{base}/{_segment(subject)}"

    def file(self, target: str, path: str) -> str:
        """``hvguard/<target>/fs/<path on the target>``."""
        return f"{self.prefix[target]}/fs/{_file_path(path)}"


def _region(line: int) -> dict[str, int]:
    # hvguard knows the line, not the columns: the start of the line
    return {"startLine": line, "startColumn": 1, "endLine": line, "endColumn": 1}


def physical(uri: str, line: int | None) -> dict[str, Any]:
    """A physicalLocation: a relative URI under :data:`BASE_ID` and the line (1 when none is known)."""
    return {"artifactLocation": {"uri": uri, "uriBaseId": BASE_ID}, "region": _region(line or 1)}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(r: Result) -> str:
    """A stable identity of a finding across runs: target, subject, measure and check."""
    return _digest("\x1f".join((r.target, r.subject, r.measure, r.check)))


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


def _location(r: Result, ref: FileRef | None, paths: _Paths) -> dict[str, Any]:
    if ref is None:
        return physical(paths.subject(r.target, r.subject), None)
    return physical(paths.file(r.target, ref.path), ref.line)


def result(
    r: Result,
    rule_index: int,
    m: Measure,
    profile: ProfileBlock,
    logical: _Logical,
    paths: _Paths,
    occurrence: int,
) -> dict[str, Any]:
    """One finding as a SARIF result (``occurrence``: its number among findings with the same identity)."""
    status = r.status.value
    original = r.original_status.value if r.original_status else None
    kind, level = KIND_LEVEL[status]
    if status == "waived":
        level = "error" if original in ("fail", "error") else "warning"
    text = r.message or f"{r.measure} {r.title}: {status}"  # GitHub needs a non-empty message
    if r.remediation and kind == "fail":
        text += "\n\nRemediation:\n" + r.remediation.strip()
    refs = file_refs(r.evidence)
    location: dict[str, Any] = {
        "physicalLocation": _location(r, refs[0] if refs else None, paths),
        "logicalLocations": [logical.subject(r.target, r.subject)],
    }
    fp = fingerprint(r)
    out: dict[str, Any] = {
        "ruleId": r.measure,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {
            "primaryLocationLineHash": f"{fp[:16]}:{occurrence}",
            "hvguardFinding/v1": fp,
        },
        "properties": {
            "status": status,
            "original_status": original,
            "security-severity": f"{finding_score(m, profile, status):.1f}",
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
            {
                "id": i,
                "physicalLocation": physical(paths.file(r.target, ref.path), ref.line),
                "message": {"text": ref.key or ref.path},
            }
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


def _emitted(rep: Report, measures: dict[str, Measure]) -> tuple[list[Result], int]:
    """The findings to emit, in report order, and how many were left out over :data:`MAX_RESULTS`
    (the least severe first: score, then status rank)."""
    wanted = [r for r in rep.results if r.status.value not in OMITTED]
    if len(wanted) <= MAX_RESULTS:
        return wanted, 0

    def key(i: int) -> tuple[float, int]:
        r = wanted[i]
        return (-finding_score(measures[r.measure], rep.profile, r.status.value), -rank(r.status.value))

    keep = set(sorted(range(len(wanted)), key=key)[:MAX_RESULTS])
    return [r for i, r in enumerate(wanted) if i in keep], len(wanted) - MAX_RESULTS


def sarif_log(view: ReportView) -> dict[str, Any]:
    """The SARIF log as plain data (used by :func:`render`)."""
    rep, catalog = view.report, view.catalog
    rules = [rule(m, catalog.sections.get(m.section, ""), rep.profile) for m in catalog.measures]
    rule_index = {m.id: i for i, m in enumerate(catalog.measures)}
    measures = {m.id: m for m in catalog.measures}
    logical = _Logical()
    paths = _Paths(list(dict.fromkeys([*(t.id for t in rep.targets), *(r.target for r in rep.results)])))
    emitted, over = _emitted(rep, measures)
    occurrences: Counter[str] = Counter()
    results = []
    for r in emitted:
        fp = fingerprint(r)
        occurrences[fp] += 1
        results.append(
            result(
                r, rule_index[r.measure], measures[r.measure], rep.profile, logical, paths, occurrences[fp]
            )
        )
    tool = rep.tool
    invocation: dict[str, Any] = {
        "executionSuccessful": not any(t.unreachable for t in rep.targets),
        "endTimeUtc": rep.generated_at,
    }
    notifications = _notifications(rep)
    if over:
        notifications.append(
            {
                "level": "warning",
                "message": {
                    "text": f"{over} of {len(emitted) + over} findings left out: GitHub code scanning "
                    f"accepts at most {MAX_RESULTS} results per run (the least severe were dropped; the "
                    "JSON report has every finding)"
                },
            }
        )
    catalog_name = f"{catalog.id} v{catalog.version}"
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    counts = Counter(r.status.value for r in rep.results)
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
                "originalUriBaseIds": {
                    BASE_ID: {
                        "description": {
                            "text": "hvguard's tree of the scanned estate (not files of this repository): "
                            "hvguard/<target>/host, hvguard/<target>/vm/<name>, and "
                            "hvguard/<target>/fs/<path> for a file on the target"
                        }
                    }
                },
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
                    "omitted": {
                        **{s: counts.get(s, 0) for s in OMITTED},
                        "over_result_limit": over,
                    },
                },
            }
        ],
    }


def render(ev: Evaluation) -> str:
    """Render the SARIF 2.1.0 log (indented JSON, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(sarif_log(report_view(ev))), indent=2).decode() + "\n"
