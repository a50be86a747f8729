"""The HDF report (``--format hdf``): MITRE's Heimdall Data Format, the exec-JSON document Heimdall reads.

One profile (the SS-009 catalog as evaluated), one control per measure — all 36, in catalog order — and
one result per finding, so each subject (``host``, ``vm:NAME``) of each target is a result of its
measure's control. Statuses map as follows:

==============  ==================  =========================================================
hvguard status  HDF result status   notes
==============  ==================  =========================================================
pass            ``passed``          an attested pass says so in its message
fail            ``failed``          the remediation follows the message
warn            ``failed``          an advisory measure: its control has the lower impact of
                                    a "should" (0.4)
error           ``error``           could not evaluate; Heimdall shows the control as
                                    "Profile Error"
manual          ``skipped``         ``skip_message`` says what evidence is needed
not_applicable  ``skipped``         with the reason; a control whose findings are all N/A has
                                    impact 0 (Heimdall: "Not Applicable")
waived          ``skipped``         the control's ``waiver_data`` carries the exception(s);
                                    ``skipped_due_to_waiver`` when nothing but waived (or N/A)
                                    findings remain (Heimdall: "Not Applicable")
==============  ==================  =========================================================

Impact is the measure's effective modality (:mod:`hvguard.report.severity`): must 0.8, conditional 0.6,
should or advisory 0.4. Tags carry the NIST CSF 1.1 ids of the catalog (``nist_csf``; HDF's ``nist`` tag
means SP 800-53, which SS-009 does not map to, so Heimdall lists the controls as unmapped), the section,
modality and automation. An attestation is carried as the control's ``attestation_data`` (Heimdall's
shape: control id, explanation, frequency as ``<days>d``, status, updated, updated_by). HDF has one
waiver and one attestation slot per control; when several apply, the slot holds the first and the
``hvguard_waivers`` / ``hvguard_attestations`` lists beside it hold them all. Every result also carries
the finding as hvguard wrote it (``hvguard``: target, subject, check, evidence, remediation …), and the
report's context (targets, profile, registers, summary) is under ``passthrough.hvguard``.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import msgspec

from hvguard.catalog import Measure
from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import attestation_text, compact_json, waiver_text
from hvguard.report.model import ProfileBlock, Report, Result
from hvguard.report.severity import effective_modality, impact

#: hvguard status → HDF result status.
STATUS: dict[str, str] = {
    "pass": "passed",
    "fail": "failed",
    "warn": "failed",
    "error": "error",
    "manual": "skipped",
    "not_applicable": "skipped",
    "waived": "skipped",
}
PROFILE_NAME = "hvguard-ss009"


def _result(r: Result, start_time: str) -> dict[str, Any]:
    """One finding as an HDF control result."""
    status = r.status.value
    out: dict[str, Any] = {
        "status": STATUS[status],
        "code_desc": f"{r.measure} {r.subject} on {r.target} ({r.check})",
        "run_time": None,
        "start_time": start_time,
        "resource": r.subject,
        "resource_id": f"{r.target} {r.subject}",
    }
    message = r.message
    if status == "warn":
        message = f"advisory measure not met (warn): {message}"
    if r.attestation:
        message += f" [{attestation_text(r.attestation)}]"
    if r.remediation and status in ("fail", "warn", "error"):
        message += "\n\nRemediation:\n" + r.remediation.strip()
    message += f"\n\nEvidence: {compact_json(r.evidence)}"
    out["message"] = message
    if status == "waived":
        original = r.original_status.value if r.original_status else "fail"
        out["skip_message"] = f"waived by {waiver_text(r.waiver)}: {original}: {r.message}"
    elif status == "manual":
        out["skip_message"] = f"manual review: {r.message}"
    elif status == "not_applicable":
        out["skip_message"] = f"not applicable: {r.message}"
    out["hvguard"] = {
        "status": status,
        "original_status": r.original_status.value if r.original_status else None,
        "target": r.target,
        "subject": r.subject,
        "check": r.check,
        "method": r.method,
        "evidence": r.evidence,
        "remediation": r.remediation,
        "waiver": r.waiver,
        "attestation": r.attestation,
        "notes": r.notes,
    }
    return out


def _waiver_data(waived: list[Result], all_waived: bool) -> dict[str, Any]:
    """HDF ``waiver_data`` of a control with waived findings."""
    waivers = [{**(r.waiver or {}), "target": r.target, "subject": r.subject} for r in waived]
    justifications = dict.fromkeys(
        f"{w.get('id') or '(no id)'}: {w.get('justification') or 'no justification given'}" for w in waivers
    )
    expiries = sorted(str(w["expires_on"]) for w in waivers if w.get("expires_on"))
    lines = [
        f"{r.subject} on {r.target} ({r.original_status.value if r.original_status else 'fail'}) "
        f"waived by {waiver_text(r.waiver)}"
        for r in waived
    ]
    return {
        "justification": "; ".join(justifications),
        "expiration_date": expiries[0] if expiries else None,
        "message": "\n".join(lines),
        # hvguard evaluated the measure before the exception applied: the results are all there
        "run": True,
        "skipped_due_to_waiver": all_waived,
        "hvguard_waivers": waivers,
    }


def _frequency(att: dict[str, Any]) -> str:
    """How long an attestation holds, as Heimdall writes it (``<days>d``); ``1y`` when undated."""
    try:
        days = (
            date.fromisoformat(str(att["valid_until"])) - date.fromisoformat(str(att["attested_on"]))
        ).days
    except (KeyError, ValueError):
        return "1y"
    return f"{max(days, 1)}d"


def _attestation_data(measure: str, attested: list[Result]) -> dict[str, Any]:
    """HDF ``attestation_data`` of a control with attested findings (the first attestation; all in
    ``hvguard_attestations``)."""
    items = [{**(r.attestation or {}), "target": r.target, "subject": r.subject} for r in attested]
    first = items[0]
    explanation = str(first.get("statement") or attestation_text(first))
    others = sorted({str(a.get("id")) for a in items[1:]} - {str(first.get("id"))})
    if others:
        explanation += f" (also attested: {', '.join(others)})"
    return {
        "control_id": measure,
        "explanation": explanation,
        "frequency": _frequency(first),
        "status": "passed" if all(r.status.value == "pass" for r in attested) else "failed",
        "updated": str(first.get("attested_on") or ""),
        "updated_by": str(first.get("attested_by") or ""),
        "hvguard_attestations": items,
    }


def control(
    m: Measure, findings: list[Result], profile: ProfileBlock, starts: dict[str, str]
) -> dict[str, Any]:
    """The HDF control of measure ``m`` with its findings as results."""
    statuses = {r.status.value for r in findings}
    fixes = list(dict.fromkeys(r.remediation.strip() for r in findings if r.remediation))
    descriptions = [
        {"label": "default", "data": m.text},
        {"label": "check", "data": f"{m.notes}\n\nEvidence where facts cannot decide: {m.manual_evidence}"},
    ]
    if fixes:
        descriptions.append({"label": "fix", "data": "\n\n".join(fixes)})
    out: dict[str, Any] = {
        "id": m.id,
        "title": m.title,
        "desc": m.text,
        "descriptions": descriptions,
        # no finding, or every finding not applicable: impact 0 is HDF's "Not Applicable"
        "impact": 0.0 if statuses <= {"not_applicable"} else impact(m, profile),
        "refs": [{"ref": f"SS-009 §{m.id}"}],
        "tags": {
            "nist_csf": list(m.nist),
            "section": m.section,
            "modality": m.modality,
            "effective_modality": effective_modality(m, profile),
            "automation": m.automation,
        },
        "code": None,
        "source_location": {"ref": "hvguard/catalog/ss009.yaml", "line": None},
        "results": [_result(r, starts.get(r.target, "")) for r in findings],
    }
    waived = [r for r in findings if r.status.value == "waived"]
    if waived:
        out["waiver_data"] = _waiver_data(waived, statuses <= {"waived", "not_applicable"})
    attested = [r for r in findings if r.attestation]
    if attested:
        out["attestation_data"] = _attestation_data(m.id, attested)
    return out


def _sha256(rep: Report) -> str:
    """The profile's checksum: SHA-256 of the catalog reference and the profile block as JSON — what
    the findings were judged against."""
    return hashlib.sha256(msgspec.json.encode({"catalog": rep.catalog, "profile": rep.profile})).hexdigest()


def hdf_document(view: ReportView) -> dict[str, Any]:
    """The HDF exec-JSON document as plain data (used by :func:`render`)."""
    rep, catalog = view.report, view.catalog
    per_measure: dict[str, list[Result]] = {m.id: [] for m in catalog.measures}
    for r in rep.results:
        per_measure.setdefault(r.measure, []).append(r)
    starts = {t.id: t.collected_at or rep.generated_at for t in rep.targets}
    for r in rep.results:
        starts.setdefault(r.target, rep.generated_at)
    controls = [control(m, per_measure[m.id], rep.profile, starts) for m in catalog.measures]
    platforms = sorted({t.platform for t in rep.targets}) or ["none"]
    releases = sorted({t.hypervisor.version for t in rep.targets if t.hypervisor and t.hypervisor.version})
    profile = rep.profile
    return {
        "platform": {
            "name": ", ".join(platforms),
            "release": ", ".join(releases) or "unknown",
            "target_id": ", ".join(t.id for t in rep.targets),
        },
        "profiles": [
            {
                "name": PROFILE_NAME,
                "title": f"{catalog.id} {catalog.title} v{catalog.version} (hvguard profile {profile.name})",
                "maintainer": rep.tool.name,
                "summary": f"{catalog.id} v{catalog.version} ({catalog.date}), mapped to {catalog.framework}",
                "version": catalog.version,
                "supports": [{"platform": "os", "platform-family": "linux"}],
                "sha256": _sha256(rep),
                "status": "loaded",
                "depends": [],
                "attributes": [
                    {"name": name, "options": {"value": value}} for name, value in profile.thresholds.items()
                ],
                "groups": [
                    {
                        "id": sec,
                        "title": title,
                        "controls": [m.id for m in catalog.measures if m.section == sec],
                    }
                    for sec, title in catalog.sections.items()
                ],
                "controls": controls,
            }
        ],
        "statistics": {"duration": None},
        "version": rep.tool.version,
        # the report's context blocks as the JSON report writes them (msgspec encodes the structs)
        "passthrough": {
            "hvguard": {
                "report_schema": rep.schema,
                "generated_at": rep.generated_at,
                "catalog": rep.catalog,
                "profile": rep.profile,
                "as_of": rep.as_of,
                "exceptions": rep.exceptions,
                "attestations": rep.attestations,
                "source": rep.source,
                "targets": rep.targets,
                "summary": rep.summary,
            }
        },
    }


def render(ev: Evaluation) -> str:
    """Render the HDF exec-JSON document (indented JSON, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(hdf_document(report_view(ev))), indent=2).decode() + "\n"
