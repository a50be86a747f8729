"""The JSON report (``--format json``): the stable machine-readable contract ``hvguard.report/1``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from hvguard import __version__
from hvguard.engine import Evaluation
from hvguard.facts import TargetFacts

SCHEMA = "hvguard.report/1"


def _target(t: TargetFacts) -> dict[str, Any]:
    hv = t.hypervisor
    return {
        "id": t.id,
        "platform": t.platform,
        "hostname": (t.host.hostname if t.host else None) or (hv.hostname if hv else None),
        "uri": hv.uri if hv else None,
        "hypervisor": {
            "type": hv.hypervisor_type,
            "version": hv.hypervisor_version,
            "libvirt": hv.libvirt_version,
        }
        if hv
        else None,
        "vm_count": len(hv.vms) if hv else 0,
        "collected_at": t.collection.collected_at,
        "collectors": t.collection.collectors,
        "unreachable": t.unreachable,
        "problems": [{"area": p.area, "source": p.source, "message": p.message} for p in t.problems],
    }


def report_dict(ev: Evaluation) -> dict[str, Any]:
    """The report as plain data (used by the JSON format and by tests)."""
    titles = {m.id: m.title for m in ev.catalog.measures}
    results = [
        {
            "measure": f.measure,
            "title": titles[f.measure],
            "status": f.status.value,
            "target": f.target,
            "subject": f.subject,
            "message": f.message,
            "evidence": f.evidence,
            "remediation": f.remediation,
            "waiver": f.waiver,
            "attestation": f.attestation,
            "check": f.check,
            "method": f.method,
            "original_status": f.original_status.value if f.original_status else None,
            "untailored_status": f.untailored_status.value if f.untailored_status else None,
            "notes": f.notes,
        }
        for f in ev.findings
    ]
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "tool": {"name": "hvguard", "version": __version__},
        "catalog": {"id": ev.catalog.id, "version": ev.catalog.version},
        "profile": ev.profile.to_json(),
        # The date exceptions and attestations were judged on, and the files used (path, sha256, each
        # entry's state, matches and notes — stale, expired, expiring soon); null when not given.
        "as_of": ev.as_of.isoformat() if ev.as_of else None,
        "exceptions": ev.exceptions_used.to_json() if ev.exceptions_used else None,
        "attestations": ev.attestations_used.to_json() if ev.attestations_used else None,
        "targets": [_target(t) for t in ev.targets],
        "results": results,
        "summary": {
            "by_status": ev.by_status,
            "by_measure": {m: s.value for m, s in ev.by_measure.items()},
        },
    }


def render(ev: Evaluation) -> str:
    """Render the JSON report (indented, UTF-8, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(report_dict(ev)), indent=2).decode() + "\n"
