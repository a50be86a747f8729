"""The OSCAL report (``--format oscal``): NIST OSCAL assessment-results JSON, built with compliance-trestle.

The document is assembled as OSCAL JSON data, then loaded into compliance-trestle's pydantic models —
which check every field, token and enumeration of OSCAL 1.x — and serialised by them; install the optional
extra ``hvguard[oscal]``. Without it the format stops with exit 2 and an install hint, before writing
anything.

Mapping:

- each SS-009 measure is a control ``ss009-<id>`` (OSCAL ids are tokens and may not start with a digit);
  ``reviewed-controls`` lists all 36;
- each target's host and each VM is an inventory item of the result's local definitions;
- each finding is an ``observation`` (its message, the evidence as JSON, the method: configuration read
  → EXAMINE, probe → TEST, attestation → INTERVIEW), with the subject it is about;
- each measure × subject × target is an OSCAL ``finding`` whose objective status is ``satisfied``
  (pass; not_applicable with reason ``other``) or ``not-satisfied`` (fail and warn with reason ``fail``;
  error, manual and waived with reason ``other``), linked to its observations;
- a waived finding also links a ``risk`` with status ``deviation-approved`` that carries the exception
  (id, approver, expiry, justification); an attested pass carries the attestation in its props.

hvguard writes no separate assessment plan: ``import-ap`` points at a back-matter resource that names the
catalog and profile that were evaluated.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import (
    Case,
    attestation_text,
    cases,
    compact_json,
    one_line,
    waiver_text,
)
from hvguard.report.model import Result

#: Namespace of hvguard's own OSCAL props (a URN: hvguard has no web namespace of its own).
NS = "urn:hvguard:oscal"
INSTALL_HINT = "--format oscal needs compliance-trestle: pip install 'hvguard[oscal]'"
#: hvguard status → (objective state, reason).
OBJECTIVE: dict[str, tuple[str, str]] = {
    "pass": ("satisfied", "pass"),
    "not_applicable": ("satisfied", "other"),
    "fail": ("not-satisfied", "fail"),
    "warn": ("not-satisfied", "fail"),
    "error": ("not-satisfied", "other"),
    "manual": ("not-satisfied", "other"),
    "waived": ("not-satisfied", "other"),
}
METHODS = {"facts": "EXAMINE", "probe": "TEST", "attestation": "INTERVIEW"}


class OscalUnavailable(RuntimeError):
    """compliance-trestle is not installed: the command line reports it in one line, exit 2."""


def control_id(measure: str) -> str:
    """The OSCAL control id of an SS-009 measure (a token: it must start with a letter)."""
    return f"ss009-{measure}"


def _stamp(text: str | None, fallback: str) -> str:
    """An OSCAL date-time (timezone required) from an ISO timestamp; ``fallback`` when unreadable."""
    if text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.isoformat().replace("+00:00", "Z")
    return fallback


class _Builder:
    """Builds the OSCAL data of one report (UUIDs derived from the document's random UUID)."""

    def __init__(self, view: ReportView) -> None:
        self.rep = view.report
        self.catalog = view.catalog
        self.root = uuid.uuid4()

    def uid(self, *parts: str) -> str:
        """A UUID unique to this document and stable for ``parts`` within it."""
        return str(uuid.uuid5(self.root, "\x1f".join(parts)))

    @staticmethod
    def prop(name: str, value: Any) -> dict[str, Any]:
        """An hvguard prop; OSCAL prop values are one trimmed line, so whitespace is folded."""
        text = one_line(value if isinstance(value, str) else compact_json(value)) or "none"
        return {"name": name, "ns": NS, "value": text}

    def register_props(self) -> list[dict[str, Any]]:
        """Props naming the exceptions register and attestations file used (path and sha256)."""
        rep = self.rep
        props = []
        if rep.as_of:
            props.append(self.prop("as-of", rep.as_of.isoformat()))
        for kind, use in (("exceptions", rep.exceptions), ("attestations", rep.attestations)):
            if use:
                props.append(self.prop(f"{kind}-file", use.path or "unknown"))
                props.append(self.prop(f"{kind}-sha256", use.sha256 or "unknown"))
        return props

    def inventory(self) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
        """One inventory item per target host and per VM; and their UUIDs by (target, subject)."""
        items: list[dict[str, Any]] = []
        ids: dict[tuple[str, str], str] = {}
        subjects = dict.fromkeys((r.target, r.subject) for r in self.rep.results)
        platform = {t.id: t.platform for t in self.rep.targets}
        for target, subject in subjects:
            ids[(target, subject)] = self.uid("subject", target, subject)
            what = f"VM {subject[3:]}" if subject.startswith("vm:") else "The host"
            items.append(
                {
                    "uuid": ids[(target, subject)],
                    "description": f"{what} of target {target} ({platform.get(target, 'unknown platform')}).",
                    "props": [
                        self.prop("target", target),
                        self.prop("subject", subject),
                        self.prop("platform", platform.get(target, "unknown")),
                    ],
                }
            )
        return items, ids

    def observation(self, r: Result, index: int, subject_uuid: str, collected: str) -> dict[str, Any]:
        """One finding of hvguard as an OSCAL observation."""
        status = r.status.value
        method = "UNKNOWN" if status == "manual" else METHODS.get(r.method or "facts", "UNKNOWN")
        props = [
            self.prop("measure", r.measure),
            self.prop("target", r.target),
            self.prop("subject", r.subject),
            self.prop("status", status),
            self.prop("check", r.check or "none"),
            self.prop("method", r.method or "facts"),
        ]
        if r.original_status:
            props.append(self.prop("original-status", r.original_status.value))
        if r.attestation:
            props.append(self.prop("attestation", attestation_text(r.attestation)))
        if r.waiver:
            props.append(self.prop("waiver-id", r.waiver.get("id") or "none"))
            props.append(self.prop("waiver", waiver_text(r.waiver)))
        obs: dict[str, Any] = {
            "uuid": self.uid("observation", str(index)),
            "title": one_line(f"{r.measure} {r.subject} @ {r.target}: {status}"),
            "description": r.message,
            "props": props,
            "methods": [method],
            "types": ["finding"],
            "subjects": [
                {"subject-uuid": subject_uuid, "type": "inventory-item", "title": one_line(r.subject)}
            ],
            "collected": collected,
            "relevant-evidence": [
                {
                    "description": f"Evidence recorded by hvguard check {r.check or 'n/a'}",
                    "remarks": json.dumps(r.evidence, indent=1, ensure_ascii=False, default=str),
                }
            ],
        }
        remarks = [*r.notes]
        if r.remediation:
            remarks.append("Remediation:\n" + r.remediation.strip())
        if remarks:
            obs["remarks"] = "\n\n".join(remarks)
        return obs

    def risk(self, r: Result, case_key: str, observation_uuid: str) -> dict[str, Any]:
        """The accepted risk behind a waived finding (the exception register entry)."""
        w = r.waiver or {}
        remarks = [f"Exception: {waiver_text(w)}."]
        if w.get("justification"):
            remarks.append(f"Justification: {w['justification']}")
        if w.get("compensating_controls"):
            remarks.append(f"Compensating controls: {compact_json(w['compensating_controls'])}")
        risk: dict[str, Any] = {
            "uuid": self.uid("risk", case_key, str(w.get("id"))),
            "title": one_line(f"Accepted deviation {w.get('id') or ''} for {r.measure} on {r.subject}"),
            "description": " ".join(remarks),
            "statement": f"{r.measure} is not met for {r.subject} on {r.target}: {r.message}",
            "status": "deviation-approved",
            "related-observations": [{"observation-uuid": observation_uuid}],
        }
        props = [self.prop(str(k).replace("_", "-"), v) for k, v in w.items() if v not in (None, "", [])]
        if props:
            risk["props"] = props
        if w.get("expires_on"):
            risk["deadline"] = _stamp(f"{w['expires_on']}T23:59:59Z", "")
            if not risk["deadline"]:
                del risk["deadline"]
        return risk

    def finding(self, case: Case[Result], obs_uuids: list[str], risk_uuids: list[str]) -> dict[str, Any]:
        """One measure × subject × target as an OSCAL finding with its objective status."""
        status = case.status
        state, reason = OBJECTIVE[status]
        m = self.catalog.measure(case.measure)
        found: dict[str, Any] = {
            "uuid": self.uid("finding", case.measure, case.target, case.subject),
            "title": one_line(f"{case.measure} {m.title} — {case.subject} @ {case.target}"),
            "description": " ".join(f"[{r.status.value}] {r.message}" for r in case.results),
            "props": [self.prop("status", status), self.prop("measure", case.measure)],
            "target": {
                "type": "objective-id",
                "target-id": f"{control_id(case.measure)}_obj",
                "title": m.title,
                "status": {"state": state, "reason": reason, "remarks": f"hvguard status: {status}"},
            },
            "related-observations": [{"observation-uuid": u} for u in obs_uuids],
        }
        if risk_uuids:
            found["related-risks"] = [{"risk-uuid": u} for u in risk_uuids]
        return found

    def document(self) -> dict[str, Any]:
        """The whole assessment-results document as OSCAL JSON data (without the root wrapper)."""
        rep, catalog = self.rep, self.catalog
        generated = _stamp(rep.generated_at, rep.generated_at)
        items, subject_ids = self.inventory()
        collected = {t.id: _stamp(t.collected_at, generated) for t in rep.targets}
        observations: list[dict[str, Any]] = []
        risks: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        index = 0
        for case in cases(rep.results):
            key = f"{case.measure}\x1f{case.target}\x1f{case.subject}"
            obs_ids: list[str] = []
            risk_ids: list[str] = []
            for r in case.results:
                index += 1
                obs = self.observation(
                    r, index, subject_ids[(r.target, r.subject)], collected.get(r.target, generated)
                )
                observations.append(obs)
                obs_ids.append(obs["uuid"])
                if r.status == "waived" and r.waiver:
                    risk = self.risk(r, key, obs["uuid"])
                    risks.append(risk)
                    risk_ids.append(risk["uuid"])
            findings.append(self.finding(case, obs_ids, risk_ids))
        plan_uuid = self.uid("assessment-plan")
        profile = rep.profile
        starts = sorted(collected.values()) or [generated]
        result: dict[str, Any] = {
            "uuid": self.uid("result"),
            "title": f"{catalog.id} v{catalog.version} evaluation by hvguard",
            "description": (
                f"hvguard evaluated {len(catalog.measures)} measures of {catalog.id} "
                f"({catalog.title}) on {len(rep.targets)} target(s) with profile {profile.name}."
            ),
            "start": starts[0],
            "end": generated,
            "props": [
                self.prop("profile", profile.name),
                self.prop("profile-source", profile.source),
                self.prop("profile-tailored", str(profile.tailored).lower()),
                *(self.prop("profile-deviation", d) for d in profile.deviations),
                *(self.prop("target", t.id) for t in rep.targets),
                *self.register_props(),
            ],
            "reviewed-controls": {
                "control-selections": [
                    {"include-controls": [{"control-id": control_id(m.id)} for m in catalog.measures]}
                ]
            },
        }
        if items:
            result["local-definitions"] = {"inventory-items": items}
        if observations:
            result["observations"] = observations
        if risks:
            result["risks"] = risks
        if findings:
            result["findings"] = findings
        catalog_name = f"{catalog.id} v{catalog.version}"
        return {
            "uuid": str(self.root),
            "metadata": {
                "title": f"hvguard {catalog_name} assessment results",
                "last-modified": generated,
                "version": rep.tool.version,
                "oscal-version": "",  # filled in by render() from the installed trestle
                "props": [self.prop("tool", f"{rep.tool.name} {rep.tool.version}")],
            },
            "import-ap": {
                "href": f"#{plan_uuid}",
                "remarks": "hvguard evaluates the SS-009 catalog directly; see the back-matter resource.",
            },
            "results": [result],
            "back-matter": {
                "resources": [
                    {
                        "uuid": plan_uuid,
                        "title": f"{catalog_name} evaluated by hvguard",
                        "description": (
                            f"Catalog {catalog_name} ({catalog.framework} mapping), all "
                            f"{len(catalog.measures)} measures, profile {profile.name} from "
                            f"{profile.source}; thresholds {compact_json(profile.thresholds)}."
                        ),
                    }
                ]
            },
        }


def render(ev: Evaluation) -> str:
    """Render the OSCAL assessment-results document, validated and serialised by compliance-trestle."""
    try:
        from trestle.oscal import OSCAL_VERSION
        from trestle.oscal.assessment_results import AssessmentResults
    except ImportError as exc:
        raise OscalUnavailable(INSTALL_HINT) from exc
    doc = _Builder(report_view(ev)).document()
    doc["metadata"]["oscal-version"] = OSCAL_VERSION
    model = AssessmentResults.model_validate(doc)
    return model.oscal_serialize_json(pretty=True) + "\n"
