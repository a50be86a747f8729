"""Gold configuration on vSphere targets: ESXi advanced options per host class and the platform-neutral
resource settings (``VmResources``) per VM class.

Pure functions of the baseline and the facts model (no I/O), like :mod:`hvguard.baseline.drift`. The
``resources`` view is platform-neutral, so a ``resources`` group also works on KVM VMs (drift.py uses
:func:`resources_view` for them too); the libvirt-only groups (``vcpu``, ``cputune`` …) have no meaning
on a vSphere VM and are reported as errors there, never skipped silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import msgspec

from hvguard.baseline.schema import ALL, Baseline, HostSettings, VmSettings, VsphereHostClass
from hvguard.checks.support.vsphere import vm_subjects
from hvguard.diffing import diff_values
from hvguard.facts import Platform, Shares, TargetFacts, VmResources
from hvguard.facts.vsphere import JUDGED_HOST_OPTIONS, VsphereHost

#: Advanced options ``capture`` records per host: the ones SS-009's ESXi checks judge. A hand-written
#: baseline may govern any other key (the collector reads every option of every host).
CAPTURED_OPTIONS: tuple[str, ...] = JUDGED_HOST_OPTIONS

#: Values the collector withholds (secrets): never captured, never compared.
REDACTED = "<redacted>"


# --------------------------------------------------------------------------------------------------------
# Views


def _shares(s: Shares | None) -> dict[str, Any] | None:
    return None if s is None else {"level": s.level, "value": s.value}


def resources_view(r: VmResources) -> dict[str, Any]:
    """Every governed resource setting of a VM in baseline shape (unset values are None). Disks are
    the ``disk`` devices only (a CD-ROM has no limit)."""
    return {
        "vcpus": r.vcpus,
        "memory_bytes": r.memory_bytes,
        "cpu_reservation_mhz": r.cpu_reservation_mhz,
        "cpu_limit_mhz": r.cpu_limit.mhz if r.cpu_limit is not None else None,
        "cpu_shares": _shares(r.cpu_shares),
        "memory_reservation_bytes": r.memory_reservation_bytes,
        "memory_limit_bytes": r.memory_limit_bytes,
        "memory_shares": _shares(r.memory_shares),
        "disks": {d.name: {"total_iops_sec": d.total_iops_sec} for d in r.disks if d.device == "disk"},
        "nics": {n.name.lower(): {"adapter_bytes_sec": n.adapter_bytes_sec} for n in r.nics},
    }


def _keyed(expected: dict[str, Any], actual: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Per-disk / per-adapter maps as lists keyed by ``name``, with ``"*"`` expanded to every device not
    listed; a device the baseline names that the VM lacks shows as missing."""
    wanted = {k: v for k, v in expected.items() if k != ALL}
    if ALL in expected:
        for k in actual:
            wanted.setdefault(k, expected[ALL])
    exp = [{"name": k, **v} for k, v in wanted.items()]
    act = [{"name": k, **{f: actual[k].get(f) for f in v}} for k, v in wanted.items() if k in actual]
    return exp, act


def resources_drift(want: Any, r: VmResources) -> list[tuple[str, Any, Any]]:
    """(path, expected, actual) for every governed resource value that differs."""
    expected: dict[str, Any] = msgspec.to_builtins(want)
    full = resources_view(r)
    actual: dict[str, Any] = {}
    for key, value in list(expected.items()):
        if key in ("disks", "nics"):
            if key == "nics":
                value = {k.lower(): v for k, v in value.items()}
            expected[key], actual[key] = _keyed(value, full[key])
        elif isinstance(value, dict) and isinstance(full[key], dict):
            # a priority governs the keys written (``level`` alone leaves the number free)
            actual[key] = {k: full[key].get(k) for k in value}
        else:
            actual[key] = full[key]
    return [
        (c.path, c.old, c.new)
        for c in diff_values({"resources": expected}, {"resources": actual}, list_keys=("name",))
    ]


def libvirt_groups(settings: VmSettings) -> list[str]:
    """The libvirt-only groups a class governs (none of them exists on a vSphere VM)."""
    data = msgspec.to_builtins(settings)
    return [g for g in data if g != "resources"]


# --------------------------------------------------------------------------------------------------------
# Capture


def host_options(host: VsphereHost, keys: Sequence[str] = CAPTURED_OPTIONS) -> dict[str, Any]:
    """The captured advanced options of ``host``: ``keys`` the host has a (non-secret) value for."""
    values = host.options.values if host.options is not None else {}
    return {k: values[k] for k in keys if k in values and values[k] != REDACTED}


def capture_vsphere(target: TargetFacts, *, match: str | None, hosts: bool) -> tuple[list[Any], list[Any]]:
    """(host classes, VM classes) of a vSphere target: one class per host and per VM, matched by exact
    name, as for KVM. VMs and hosts that could not be read, and hosts with none of
    :data:`CAPTURED_OPTIONS` set, are left out (the caller reports them)."""
    from hvguard.baseline.matching import exact_pattern

    vs = target.vsphere
    if vs is None:
        return [], []
    host_classes: list[dict[str, Any]] = []
    for h in vs.hosts if hosts else []:
        if h.options is None or not host_options(h):
            continue  # nothing read, or none of the captured options set: a class would govern nothing
        host_classes.append(
            {"name": h.name, "match": exact_pattern(h.name), "advanced_options": host_options(h)}
        )
    vm_classes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for vm in vs.vms:
        if vm.error is not None or vm.name in seen:
            continue  # two VMs of one name (other folders) cannot both be matched by name: first wins
        if match is not None and not fnmatch.fnmatchcase(vm.name, match):
            continue
        seen.add(vm.name)
        vm_classes.append(
            {
                "name": vm.name,
                "match": {"name": exact_pattern(vm.name)},
                "settings": {"resources": resources_view(vm.resources)},
            }
        )
    return host_classes, vm_classes


# --------------------------------------------------------------------------------------------------------
# Drift


def top_subject(target: TargetFacts) -> str:
    """The subject of the target as a whole: ``vcenter`` for a vCenter, else ``host``."""
    return "vcenter" if target.platform == Platform.VMWARE_VCENTER else "host"


def host_subject(target: TargetFacts, host: VsphereHost) -> str:
    """``host`` on a standalone ESXi target, ``host:NAME`` on a vCenter (the subject contract)."""
    return "host" if target.platform == Platform.VMWARE_ESXI else f"host:{host.name}"


def host_class(classes: Sequence[VsphereHostClass], name: str) -> tuple[VsphereHostClass | None, list[str]]:
    """The first host class matching ``name`` and the names of later ones that match too."""
    hits = [c for c in classes if fnmatch.fnmatchcase(name, c.match)]
    return (hits[0] if hits else None), [c.name for c in hits[1:]]


def option_drift(cls: VsphereHostClass, host: VsphereHost) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """((path, expected, actual) per differing option, [errors]) for one host. A key the host does not
    have is drift (actual None); a key whose read failed is an error, never "no drift"."""
    if host.options is None:
        return [], ["advanced options were not read"]
    items: list[tuple[str, Any, Any]] = []
    errors: list[str] = []
    for key, want in cls.advanced_options.items():
        if key in host.options.unreadable and not host.options.unreadable[key].startswith("InvalidName"):
            errors.append(f"advanced option {key} could not be read: {host.options.unreadable[key]}")
            continue
        got = host.options.values.get(key)
        if got == REDACTED:
            errors.append(f"advanced option {key} holds a secret hvguard does not read")
        elif got != want or type(got) is not type(want):
            items.append((f"advanced_options.{key}", want, got))
    return items, errors


def vsphere_drift(baseline: Baseline, target: TargetFacts, report: Any) -> None:
    """Fill ``report`` (a :class:`~hvguard.baseline.drift.DriftReport`) for a vSphere target."""
    from hvguard.baseline.drift_items import DriftError, DriftItem
    from hvguard.baseline.matching import Matcher, exact_name

    vs = target.vsphere
    assert vs is not None
    if isinstance(baseline.host, HostSettings):
        report.warnings.append("host (libvirt) settings are not checked on a vSphere target")
    classes = baseline.vsphere_hosts if isinstance(baseline.vsphere_hosts, list) else []
    if classes:
        if not vs.hosts:
            report.errors.append(DriftError(top_subject(target), "the ESXi hosts were not read"))
        for h in vs.hosts:
            cls, shadowed = host_class(classes, h.name)
            if cls is None:
                continue
            subject = host_subject(target, h)
            report.host_checked = True
            if shadowed:
                report.warnings.append(
                    f"host:{h.name} matches host classes {cls.name!r} and {', '.join(map(repr, shadowed))}: "
                    f"the first ({cls.name!r}) applies"
                )
            items, errors = option_drift(cls, h)
            report.items.extend(DriftItem(subject, p, e, a, cls.name) for p, e, a in items)
            report.errors.extend(DriftError(subject, m) for m in errors)
        names = {h.name for h in vs.hosts}
        for cls in classes:
            if not (set("*?[") & set(cls.match)) and cls.match not in names and vs.hosts:
                report.items.append(DriftItem(f"host:{cls.match}", "host", "present", None, cls.name))
    if not baseline.vm_classes:
        return
    subjects = vm_subjects(vs)
    matcher = Matcher(baseline.vm_classes)
    seen: set[str] = set()
    for vm in vs.vms:
        seen.add(vm.name)
        a = matcher.assign(vm.name, {})
        subject = subjects[vm.moref]
        if a.vm_class is None:
            report.ungoverned.append(subject.removeprefix("vm:"))
            continue
        report.governed[subject.removeprefix("vm:")] = a.vm_class.name
        if (warning := a.warning()) is not None:
            report.warnings.append(warning)
        if vm.error is not None:
            report.errors.append(DriftError(subject, f"cannot read this VM: {vm.error}"))
            continue
        other = libvirt_groups(a.vm_class.settings)
        if other:
            report.errors.append(
                DriftError(
                    subject,
                    f"class {a.vm_class.name!r} governs {', '.join(other)}: libvirt settings a vSphere VM "
                    "does not have (govern it with 'resources')",
                )
            )
        if isinstance(a.vm_class.settings.resources, msgspec.Struct):
            report.items.extend(
                DriftItem(subject, p, e, act, a.vm_class.name)
                for p, e, act in resources_drift(a.vm_class.settings.resources, vm.resources)
            )
    for vm_class in baseline.vm_classes:
        name = exact_name(vm_class)
        if name is not None and name not in seen:
            report.items.append(DriftItem(f"vm:{name}", "vm", "present", None, vm_class.name))
        elif name is None and not any(c == vm_class.name for c in report.governed.values()):
            report.warnings.append(f"class {vm_class.name!r} matches no VM on {target.id}")
