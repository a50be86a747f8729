"""Re-run the SS-009 checks after a change, for the notification's ``findings``.

The watcher keeps every VM of a connection in memory, so measures that look at all VMs together
(11.3.1, combined memory against host RAM) are evaluated on the real set, not on the changed VM
alone. Host facts are collected once at start and again at every resynchronisation (for a local
URI; a remote one has none, and measures that need them say so as usual).

A notification lists the changed VM's findings, plus every other finding whose status differs from the
previous evaluation of that connection — so "this VM's memory increase pushed 11.3.1 to fail" is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hvguard import __version__
from hvguard.collect.libvirt.resources import with_neutral_facts
from hvguard.collect.targets import platform_of
from hvguard.engine import evaluate
from hvguard.facts import CollectionInfo, HostFacts, HypervisorFacts, Problem, TargetFacts, VmFacts
from hvguard.findings import Finding
from hvguard.profile import Profile
from hvguard.services.watch.state import now_iso

log = logging.getLogger("hvguard.watch")


def finding_dict(f: Finding) -> dict[str, Any]:
    """The fields of a finding a notification carries."""
    return {
        "measure": f.measure,
        "status": f.status.value,
        "subject": f.subject,
        "message": f.message,
        "remediation": f.remediation,
    }


@dataclass
class ConnectionView:
    """What the watcher knows about one connection for evaluation purposes."""

    uri: str
    host: HostFacts | None = None
    hypervisor: HypervisorFacts | None = None
    problems: list[Problem] = field(default_factory=list)
    vms: dict[str, VmFacts] = field(default_factory=dict)
    """Parsed current definitions, by UUID."""
    last_statuses: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)


class Reevaluator:
    """Evaluates a connection's facts with one profile."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def _target(self, view: ConnectionView) -> TargetFacts:
        vms = sorted(view.vms.values(), key=lambda v: v.name)
        hv = view.hypervisor or HypervisorFacts(uri=view.uri)
        hv = msgspec.structs.replace(hv, vms=vms)
        return TargetFacts(
            id=view.uri,
            platform=platform_of(hv),
            collection=CollectionInfo(collected_at=now_iso(), tool_version=__version__, collectors=["watch"]),
            host=view.host,
            hypervisor=with_neutral_facts(hv),
            problems=view.problems,
        )

    def baseline(self, view: ConnectionView) -> None:
        """Evaluate without reporting, so later notifications can tell what a change moved."""
        self.findings_after_change(view, None)

    def findings_after_change(self, view: ConnectionView, vm_name: str | None) -> list[dict[str, Any]]:
        """The changed VM's findings and every other finding whose status moved."""
        return self.findings_for(
            lambda: self._target(view), view, f"vm:{vm_name}" if vm_name is not None else None
        )

    def findings_for(
        self, target: Callable[[], TargetFacts], view: ConnectionView, subject: str | None
    ) -> list[dict[str, Any]]:
        """``subject``'s findings in ``target()`` (built by the caller: libvirt or vSphere facts) and every
        other finding whose status moved since the previous evaluation of ``view``."""
        try:
            ev = evaluate([target()], self.profile)
        except Exception as exc:  # the change must still be told, with why the findings are missing
            log.exception("re-evaluation failed")
            return [
                {
                    "measure": "-",
                    "status": "error",
                    "subject": subject or "host",
                    "message": f"re-evaluation failed: {type(exc).__name__}: {' '.join(str(exc).split())}",
                    "remediation": None,
                }
            ]
        # A check may give several findings for one subject: compare the sorted statuses per key.
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for f in ev.findings:
            grouped.setdefault((f.measure, f.subject, f.check), []).append(f.status.value)
        statuses = {k: tuple(sorted(v)) for k, v in grouped.items()}
        out: list[dict[str, Any]] = []
        for f in ev.findings:
            key = (f.measure, f.subject, f.check)
            moved = bool(view.last_statuses) and view.last_statuses.get(key) != statuses[key]
            if f.subject == subject or moved:
                out.append(finding_dict(f))
        view.last_statuses = statuses
        return out
