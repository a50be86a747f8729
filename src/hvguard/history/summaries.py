"""The estate rows of one evaluation (schema 2), built when the scan is stored: one summary per target
and one row per register entry the evaluation applied.

The verdict is the engine's (:func:`hvguard.engine.target_verdict`, already in ``Evaluation.verdicts``):
the store never decides compliance by a rule of its own. One pass over the findings builds every
target's counts, so saving a 1,000-host estate costs a few milliseconds more than before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from hvguard.engine import Evaluation
from hvguard.facts import TargetFacts
from hvguard.findings import SEVERITY_ORDER, Finding, Status, severity
from hvguard.workflow.usage import SourceUse

_RANK = {s.value: severity(s) for s in SEVERITY_ORDER}
_KEY = attrgetter("target", "measure", "status._value_")  # plain str: enum hashing runs in Python


def target_groups(t: TargetFacts) -> tuple[str, ...]:
    """The target's inventory groups, sorted and without repeats."""
    return tuple(sorted(set(t.groups)))


def host_name(t: TargetFacts) -> str | None:
    """The host name collected from the target: the host's, else the hypervisor's."""
    for part in (t.host, t.hypervisor):
        name = getattr(part, "hostname", None) if part is not None else None
        if name:
            return str(name)
    return None


def vm_count(t: TargetFacts) -> int:
    """The VMs collected from the target, whatever its platform."""
    n = len(t.hypervisor.vms) if t.hypervisor is not None else 0
    if t.vsphere is not None:
        n += len(t.vsphere.vms)
    return n


def count_findings(findings: Iterable[Finding]) -> dict[str, dict[str, dict[str, int]]]:
    """Target → measure → status → number of findings, in one pass (counted in C by ``Counter`` over
    attribute tuples: a 1,000-host estate has hundreds of thousands of findings)."""
    tally = Counter(map(_KEY, findings))
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (target, measure, status), n in tally.items():
        out.setdefault(target, {}).setdefault(measure, {})[status] = n
    return out


def roll_up(counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """Measure → the worst status among its counted findings."""
    return {m: max(by, key=_RANK.__getitem__) for m, by in counts.items() if by}


def summary_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """One ``hvguard_target_summaries`` row (less ``scan_id``/``created_at``) per distinct target."""
    counted = count_findings(ev.findings)
    rows = []
    seen: set[str] = set()
    for t in ev.targets:
        if t.id in seen:  # a target named twice was evaluated twice; its verdict is kept once
            continue
        seen.add(t.id)
        verdict = ev.verdicts.get(t.id)
        counts = counted.get(t.id, {})
        by_status = dict.fromkeys((s.value for s in Status), 0)
        for per in counts.values():
            for s, n in per.items():
                by_status[s] += n
        rows.append(
            {
                "target": t.id,
                "host_name": host_name(t),
                "platform": t.platform,
                "groups": list(target_groups(t)),
                "verdict": verdict.verdict.value if verdict is not None else "not_assessed",
                "blocking": list(verdict.blocking) if verdict is not None else [],
                "by_status": verdict.by_status if verdict is not None else by_status,
                "by_measure": roll_up(counts),
                "finding_counts": counts,
                "vm_count": vm_count(t),
            }
        )
    return rows


def register_rows(ev: Evaluation) -> list[dict[str, Any]]:
    """One ``hvguard_register_entries`` row (less ``scan_id``) per exception and attestation used."""
    rows = []
    for use in (ev.exceptions_used, ev.attestations_used):
        if use is not None:
            rows.extend(_entry_rows(use))
    return rows


def _entry_rows(use: SourceUse) -> list[dict[str, Any]]:
    return [
        {
            "kind": use.kind,
            "entry_id": e.id,
            "measure": e.measure,
            "state": e.state,
            "valid_from": e.valid_from,
            "valid_until": e.valid_until,
            "scope": e.scope,
            "source": use.path,
        }
        for e in use.entries
    ]
