"""Migrations of older history schemas, run inside the store's transaction when a database is opened.

1 → 2 (the estate store): creates ``hvguard_target_summaries`` and ``hvguard_register_entries`` and
computes a summary for every stored scan and target from its stored findings and facts, so the estate
views and ``hvguard history prune`` see the scans made before the upgrade. Schema 1 kept neither the
profile's tailoring nor the registers, so:

- the verdict uses the engine's rule (a binding measure with ``fail``/``error`` → ``not_compliant``,
  nothing collected → ``not_assessed``) with the binding measures of the catalog and default profile,
  plus every measure with a ``fail`` finding (a ``fail`` is only reported on binding measures);
- no register entries are recovered (the "expiring" view starts with the first scan after the upgrade).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from hvguard.engine import NOT_COMPLIANT_STATUSES, binding_measures
from hvguard.findings import Status, Verdict
from hvguard.history.schema import V2_TABLES, findings, scan_targets, scans, target_summaries
from hvguard.history.summaries import roll_up

#: Summaries inserted per statement during the migration.
BATCH = 500
#: The statuses that make a binding measure not met (the engine's).
BAD = frozenset(s.value for s in NOT_COMPLIANT_STATUSES)


def migrate(conn: Connection, found: int) -> None:
    """Migrate the schema from version ``found`` to the current one."""
    if found == 1:
        _v1_to_v2(conn)


def _v1_to_v2(conn: Connection) -> None:
    for table in V2_TABLES:
        table.create(conn, checkfirst=True)
    from hvguard.catalog import load_catalog
    from hvguard.profile import default_profile

    catalog = load_catalog()
    rule = _Rule(binding_measures(catalog, default_profile()), {m: i for i, m in enumerate(catalog.ids)})
    # One scan at a time: a large history holds millions of findings and gigabytes of facts, and
    # psycopg buffers a whole result in memory.
    for scan_id, created in conn.execute(select(scans.c.id, scans.c.created_at).order_by(scans.c.id)).all():
        counts: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        grouped = conn.execute(
            select(findings.c.target, findings.c.measure, findings.c.status, func.count())
            .where(findings.c.scan_id == scan_id)
            .group_by(findings.c.target, findings.c.measure, findings.c.status)
        ).all()
        for target, measure, status, n in grouped:
            counts[target].setdefault(measure, {})[status] = int(n)
        rows = conn.execute(
            select(
                scan_targets.c.target,
                scan_targets.c.platform,
                scan_targets.c.unreachable,
                scan_targets.c.facts_encoding,
                scan_targets.c.facts,
            ).where(scan_targets.c.scan_id == scan_id)
        ).all()
        batch = [
            _summary(rule, scan_id, created, target, platform, unreachable, counts.get(target, {}), facts)
            for target, platform, unreachable, encoding, data in rows
            for facts in (_facts(bytes(data), encoding),)
        ]
        for k in range(0, len(batch), BATCH):
            conn.execute(insert(target_summaries), batch[k : k + BATCH])


@dataclass(frozen=True)
class _Rule:
    """The verdict rule of the migration: binding measures and catalog order."""

    binding: frozenset[str]
    order: dict[str, int]


def _summary(
    rule: _Rule,
    scan_id: int,
    created: Any,
    target: str,
    platform: str,
    unreachable: str | None,
    per: dict[str, dict[str, int]],
    facts: dict[str, Any],
) -> dict[str, Any]:
    """One summary row of a schema 1 scan's target."""
    by_status = dict.fromkeys((s.value for s in Status), 0)
    for by in per.values():
        for s, n in by.items():
            by_status[s] = by_status.get(s, 0) + n
    hit = {m for m, by in per.items() if (m in rule.binding or "fail" in by) and not BAD.isdisjoint(by)}
    blocking = sorted(hit, key=lambda m: rule.order.get(m, len(rule.order)))
    if unreachable is not None:
        verdict, blocking = Verdict.NOT_ASSESSED, []
    else:
        verdict = Verdict.NOT_COMPLIANT if blocking else Verdict.COMPLIANT
    return {
        "scan_id": scan_id,
        "target": target,
        "created_at": created,
        "host_name": _host_name(facts),
        "platform": platform,
        "groups": _groups(facts),
        "verdict": verdict.value,
        "blocking": blocking,
        "by_status": by_status,
        "by_measure": roll_up(per),
        "finding_counts": per,
        "vm_count": _vm_count(facts),
    }


def _facts(data: bytes, encoding: str) -> dict[str, Any]:
    """The stored facts as plain data; {} when they cannot be read (the summary then names no host —
    reading the scan itself still reports the corruption)."""
    try:
        raw = zlib.decompress(data) if encoding == "json+zlib" else data
        facts = msgspec.json.decode(raw)
    except (zlib.error, msgspec.DecodeError):
        return {}
    return facts if isinstance(facts, dict) else {}


def _part(facts: dict[str, Any], name: str) -> dict[str, Any]:
    part = facts.get(name)
    return part if isinstance(part, dict) else {}


def _host_name(facts: dict[str, Any]) -> str | None:
    for name in ("host", "hypervisor"):
        hostname = _part(facts, name).get("hostname")
        if hostname:
            return str(hostname)
    return None


def _groups(facts: dict[str, Any]) -> list[str]:
    raw = facts.get("groups")
    return sorted({str(g) for g in raw}) if isinstance(raw, list) else []


def _vm_count(facts: dict[str, Any]) -> int:
    n = 0
    for name in ("hypervisor", "vsphere"):
        vms = _part(facts, name).get("vms")
        n += len(vms) if isinstance(vms, list) else 0
    return n
