"""Compare two stored scans: status transitions per (target, subject, measure) and value-level fact
changes per target. Pure functions over :mod:`hvguard.history.records`; no I/O.

Decisions, so the diff says what changed and nothing else:
- A transition is reported when the statuses of the findings under one (target, subject, measure)
  differ; ``old``/``new`` are the rolled-up (worst) statuses and ``old_statuses``/``new_statuses`` the
  individual ones, so a second check turning pass → fail under an already failing measure still shows.
  Message-only changes (e.g. "4 vCPUs" → "5 vCPUs" with the same status) are not transitions: the fact
  change that caused them is listed.
- Fact changes ignore collection metadata (time, duration, tool version), process ids and socket
  inodes (a restart is not a setting), probe times and file modification times.
- On a libvirt target the platform-neutral facts (``hypervisor.vms[…].resources``,
  ``hypervisor.controls_offered``) are computed from the libvirt facts beside them, so they are not
  compared: a changed setting is listed once, under its libvirt name.
- A domain's ``xml_sha256`` is not a change of its own: when the XML hash moved but no audited value of
  that VM did, the VM is listed under ``unaudited_xml_changes`` (something hvguard does not model
  changed, e.g. ``<description>``) without counting as a change.
- Lists are matched by identity: VMs by name, disks by target, interfaces by MAC (``diff_values``'s
  keys), problems by area and source, QEMU processes by VM name, listening sockets by protocol, address
  and port, pending updates by package, plain values (CPU flags) by value.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hvguard.diffing import diff_values
from hvguard.facts import Platform
from hvguard.findings import Status, worst
from hvguard.history.records import ScanSummary, StoredFinding, StoredScan

#: Fact paths that change without any setting on the target changing: collection metadata, process
#: ids and socket inodes (a restart), probe times, file modification times (a content change shows in
#: the parsed values), and the domain XML hash (see the module notes).
IGNORED_FACT_PATHS = re.compile(
    r"collection\.(?:collected_at|duration_s|tool_version)"
    r"|hypervisor\.vms\[[^\]]*\]\.xml_sha256"
    r"|.*\.(?:pid|inode|mtime|ran_at)"
)
#: Fact paths a libvirt target's collector derives from its other facts (see the module notes).
DERIVED_LIBVIRT_FACT_PATHS = re.compile(r"hypervisor\.vms\[[^\]]*\]\.resources|hypervisor\.controls_offered")


@dataclass(frozen=True)
class Transition:
    """A status change of one measure for one subject of one target (``None`` = absent in that scan)."""

    target: str
    subject: str
    measure: str
    kind: str
    """``changed``, ``added`` (new subject or measure) or ``removed`` (e.g. the VM was undefined)."""
    old: str | None
    new: str | None
    old_statuses: tuple[str, ...]
    new_statuses: tuple[str, ...]
    message: str
    """The newer scan's message (the older one's for ``removed``)."""

    def to_json(self) -> dict[str, Any]:
        """The transition in ``hvguard diff --format json``."""
        return {
            "target": self.target,
            "subject": self.subject,
            "measure": self.measure,
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "old_statuses": list(self.old_statuses),
            "new_statuses": list(self.new_statuses),
            "message": self.message,
        }


@dataclass(frozen=True)
class FactChange:
    """One collected value that differs: ``path`` like ``hypervisor.vms[web1].cputune.quota``."""

    target: str
    path: str
    old: Any
    new: Any
    kind: str
    """``changed``, ``added`` or ``removed`` (``old``/``new`` is None for the side that lacks it)."""

    def to_json(self) -> dict[str, Any]:
        """The change in ``hvguard diff --format json``."""
        return {"target": self.target, "path": self.path, "old": self.old, "new": self.new, "kind": self.kind}


@dataclass(frozen=True)
class ScanDiff:
    """Everything that differs between two scans over the compared targets."""

    old: ScanSummary
    new: ScanSummary
    targets: tuple[str, ...]
    transitions: tuple[Transition, ...]
    fact_changes: tuple[FactChange, ...]
    subjects_added: tuple[tuple[str, str], ...] = ()
    """(target, subject) present only in the newer scan."""
    subjects_removed: tuple[tuple[str, str], ...] = ()
    unaudited_xml_changes: tuple[tuple[str, str], ...] = ()
    """(target, VM name): the domain XML changed but no audited value of it did."""
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when a status or an audited fact changed (the ``hvguard diff`` exit code 1)."""
        return bool(self.transitions or self.fact_changes)

    def to_json(self) -> dict[str, Any]:
        """The diff as ``hvguard diff --format json`` prints it."""
        return {
            "schema": "hvguard.diff/1",
            "from": self.old.to_json(),
            "to": self.new.to_json(),
            "targets": list(self.targets),
            "changed": self.changed,
            "transitions": [t.to_json() for t in self.transitions],
            "fact_changes": [c.to_json() for c in self.fact_changes],
            "subjects": {
                "added": [{"target": t, "subject": s} for t, s in self.subjects_added],
                "removed": [{"target": t, "subject": s} for t, s in self.subjects_removed],
            },
            "unaudited_xml_changes": [{"target": t, "vm": v} for t, v in self.unaudited_xml_changes],
            "notes": list(self.notes),
        }


def diff_scans(old: StoredScan, new: StoredScan, targets: Sequence[str]) -> ScanDiff:
    """Compare ``old`` → ``new`` over ``targets`` (both scans must hold them)."""
    transitions = status_transitions(old.findings, new.findings, targets)
    changes: list[FactChange] = []
    xml_only: list[tuple[str, str]] = []
    notes: list[str] = []
    for target in targets:
        o, n = old.targets.get(target), new.targets.get(target)
        if o is None or n is None:
            missing = old.summary.id if o is None else new.summary.id
            notes.append(f"{target}: facts missing from scan {missing}")
            continue
        if o.facts_version != n.facts_version:
            notes.append(
                f"{target}: facts model version {o.facts_version} → {n.facts_version}: "
                "renamed or new fields show as removed/added"
            )
        target_changes = fact_changes(target, o.facts, n.facts, platform=n.platform)
        changes.extend(target_changes)
        xml_only.extend((target, vm) for vm in unaudited_xml_changes(o.facts, n.facts, target_changes))
    added, removed = _subject_changes(old.findings, new.findings, targets)
    return ScanDiff(
        old=old.summary,
        new=new.summary,
        targets=tuple(targets),
        transitions=tuple(transitions),
        fact_changes=tuple(changes),
        subjects_added=added,
        subjects_removed=removed,
        unaudited_xml_changes=tuple(xml_only),
        notes=tuple(notes),
    )


def _measure_order(measure: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in measure.split("."))


def status_transitions(
    old: Sequence[StoredFinding], new: Sequence[StoredFinding], targets: Sequence[str]
) -> list[Transition]:
    """Transitions per (target, subject, measure) over ``targets``, in target, measure, subject order."""
    wanted = set(targets)
    before: dict[tuple[str, str, str], list[StoredFinding]] = defaultdict(list)
    after: dict[tuple[str, str, str], list[StoredFinding]] = defaultdict(list)
    for side, found in ((before, old), (after, new)):
        for f in found:
            if f.target in wanted:
                side[(f.target, f.subject, f.measure)].append(f)
    order = {t: i for i, t in enumerate(targets)}
    keys = sorted(
        set(before) | set(after),
        key=lambda k: (order[k[0]], _measure_order(k[2]), k[1] != "host", k[1]),
    )
    out: list[Transition] = []
    for key in keys:
        o, n = before.get(key, []), after.get(key, [])
        o_st, n_st = tuple(sorted(f.status for f in o)), tuple(sorted(f.status for f in n))
        if o_st == n_st:
            continue
        kind = "changed" if o and n else ("added" if n else "removed")
        shown = _worst_finding(n or o)
        out.append(
            Transition(
                target=key[0],
                subject=key[1],
                measure=key[2],
                kind=kind,
                old=_rolled_up(o),
                new=_rolled_up(n),
                old_statuses=o_st,
                new_statuses=n_st,
                message=shown.message,
            )
        )
    return out


def _rolled_up(found: Sequence[StoredFinding]) -> str | None:
    if not found:
        return None
    return worst([_status(f.status) for f in found]).value


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:  # a status a later hvguard may add: rank it with error so it is not hidden
        return Status.ERROR


def _worst_finding(found: Sequence[StoredFinding]) -> StoredFinding:
    top = worst([_status(f.status) for f in found])
    return next(f for f in found if _status(f.status) is top)


def _subject_changes(
    old: Sequence[StoredFinding], new: Sequence[StoredFinding], targets: Sequence[str]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    wanted = set(targets)
    before = {(f.target, f.subject) for f in old if f.target in wanted}
    after = {(f.target, f.subject) for f in new if f.target in wanted}
    return tuple(sorted(after - before)), tuple(sorted(before - after))


def _ignored(path: str) -> bool:
    return IGNORED_FACT_PATHS.fullmatch(path) is not None


def _ignored_on_libvirt(path: str) -> bool:
    return _ignored(path) or DERIVED_LIBVIRT_FACT_PATHS.fullmatch(path) is not None


def _is_libvirt(platform: str) -> bool:
    return platform == Platform.KVM_LIBVIRT or platform.startswith("libvirt-")


def _list_identity(path: str, item: Any) -> str | None:
    """Identities ``diff_values``'s generic keys do not cover. Lists of plain values (CPU flags, kernel
    modules, listen addresses) are sets in the facts model: matched by value, one added flag is one
    change, not every later position shifting."""
    if isinstance(item, str | int) and not isinstance(item, bool):
        return str(item)
    if not isinstance(item, dict):
        return None
    if path == "problems":
        return f"{item.get('area')}: {item.get('source')}"
    if path == "host.qemu_processes":
        name = item.get("vm_name")
        return str(name) if name else None
    if {"proto", "address", "port"} <= item.keys():  # a listening socket
        return f"{item['proto']} {item['address']}:{item['port']}"
    if isinstance(item.get("package"), str):  # a pending update
        return str(item["package"])
    return None


def fact_changes(
    target: str, old: dict[str, Any], new: dict[str, Any], *, platform: str = ""
) -> list[FactChange]:
    """Value-level changes between two stored facts of one target (plain data); ``platform`` is the
    target's ``TargetFacts.platform`` (a libvirt one skips the derived neutral facts)."""
    ignore = _ignored_on_libvirt if _is_libvirt(platform) else _ignored
    return [
        FactChange(target=target, path=c.path, old=c.old, new=c.new, kind=c.kind)
        for c in diff_values(old, new, ignore=ignore, key_of=_list_identity)
    ]


def _vm_hashes(facts: dict[str, Any]) -> dict[str, Any]:
    hv = facts.get("hypervisor")
    vms = hv.get("vms") if isinstance(hv, dict) else None
    if not isinstance(vms, list):
        return {}
    return {vm["name"]: vm.get("xml_sha256") for vm in vms if isinstance(vm, dict) and "name" in vm}


def unaudited_xml_changes(
    old: dict[str, Any], new: dict[str, Any], changes: Sequence[FactChange]
) -> list[str]:
    """VMs whose domain XML hash changed while none of their audited values did."""
    before, after = _vm_hashes(old), _vm_hashes(new)
    out = []
    for name, digest in after.items():
        if name not in before or before[name] == digest or before[name] is None or digest is None:
            continue
        prefix = f"hypervisor.vms[{name}]"
        if not any(c.path == prefix or c.path.startswith((prefix + ".", prefix + "[")) for c in changes):
            out.append(str(name))
    return out
