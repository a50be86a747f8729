"""Drift: where a target's settings differ from its baseline, one item per differing value.

Pure functions of a baseline and the facts model (no I/O). A VM is compared only on what its class
governs (see :mod:`hvguard.baseline.schema` for the rules); values are compared in the shape
:mod:`hvguard.baseline.settings` gives, through :func:`hvguard.diffing.diff_values`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from hvguard.baseline.drift_items import DriftError as DriftError  # re-exported: callers import it here
from hvguard.baseline.drift_items import DriftItem as DriftItem
from hvguard.baseline.matching import Assignment, Matcher, exact_name
from hvguard.baseline.schema import ALL, Baseline, HostSettings, VmSettings
from hvguard.baseline.settings import conf_values, disk_devices, host_fact, is_default_seclabel, vm_settings
from hvguard.baseline.vsphere import resources_drift, vsphere_drift
from hvguard.diffing import diff_values
from hvguard.facts import HostFacts, TargetFacts, VmFacts

HOST = "host"
DRIFT_SCHEMA = "hvguard.drift/1"
_LIST_KEYS = ("target", "mac", "path", "model")


@dataclass
class DriftReport:
    """Drift of one target against one baseline, and what was and was not governed."""

    target: str
    baseline: str
    items: list[DriftItem] = field(default_factory=list)
    errors: list[DriftError] = field(default_factory=list)
    governed: dict[str, str] = field(default_factory=dict)
    """VM name → governing class."""
    ungoverned: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    host_checked: bool = False

    def exit_code(self) -> int:
        """0 no drift, 1 drift, 2 something governed could not be evaluated."""
        if self.errors:
            return 2
        return 1 if self.items else 0

    def to_json(self) -> dict[str, Any]:
        """The ``hvguard.drift/1`` document."""
        return {
            "schema": DRIFT_SCHEMA,
            "target": self.target,
            "baseline": self.baseline,
            "drift": [i.to_json() for i in self.items],
            "errors": [{"subject": e.subject, "message": e.message} for e in self.errors],
            "governed": dict(sorted(self.governed.items())),
            "ungoverned": sorted(self.ungoverned),
            "warnings": list(self.warnings),
            "summary": {
                "drift": len(self.items),
                "errors": len(self.errors),
                "subjects_with_drift": len({i.subject for i in self.items}),
                "vms_governed": len(self.governed),
                "vms_ungoverned": len(self.ungoverned),
                "host_checked": self.host_checked,
            },
        }


# --------------------------------------------------------------------------------------------------------
# VMs


def _restrict(actual: Any, expected: Any) -> Any:
    """``actual`` cut down to the keys ``expected`` governs (lists: the union of their items' keys)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _restrict(actual.get(k), v) for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list):
        keys: set[str] = set()
        for item in expected:
            if isinstance(item, dict):
                keys |= set(item)
        if keys:
            return [{k: a.get(k) for k in keys} if isinstance(a, dict) else a for a in actual]
    return actual


def _keyed(
    expected: dict[str, Any], actual: dict[str, Any], key: str, wildcard_keys: Iterable[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-disk / per-interface maps as lists keyed by ``key``, with ``"*"`` expanded."""
    explicit = {k: v for k, v in expected.items() if k != ALL}
    wanted = dict(explicit)
    if ALL in expected:
        for k in wildcard_keys:
            wanted.setdefault(k, expected[ALL])
    exp_list: list[dict[str, Any]] = []
    act_list: list[dict[str, Any]] = []
    for k, settings in wanted.items():
        exp_list.append({key: k, **settings})
        if k in actual:
            restricted = _restrict(actual[k], settings)
            if "iotune" in settings:  # a whole value: every limit set counts, not only the listed ones
                restricted["iotune"] = actual[k].get("iotune", {})
            act_list.append({key: k, **restricted})
    return exp_list, act_list


def vm_views(settings: VmSettings, vm: VmFacts) -> tuple[dict[str, Any], dict[str, Any]]:
    """(expected, actual) for one VM, both holding exactly the governed keys."""
    expected: dict[str, Any] = msgspec.to_builtins(settings)
    expected.pop("resources", None)  # the platform-neutral group: compared by vm_drift
    full = vm_settings(vm)
    actual: dict[str, Any] = {}
    for group, want in list(expected.items()):
        if group == "disks":
            devices = disk_devices(vm)
            exp, act = _keyed(want, full["disks"], "target", [t for t, d in devices.items() if d == "disk"])
            expected[group], actual[group] = exp, act
        elif group == "interfaces":
            want = {k.lower(): v for k, v in want.items()}
            exp, act = _keyed(want, full["interfaces"], "mac", list(full["interfaces"]))
            expected[group], actual[group] = exp, act
        elif group == "blkiotune":
            got = _restrict(full["blkiotune"], want)
            if "devices" in want:
                expected[group]["devices"] = [{"path": p, **v} for p, v in want["devices"].items()]
                got["devices"] = [{"path": p, **v} for p, v in full["blkiotune"]["devices"].items()]
            actual[group] = got
        elif group == "seclabels":
            expected[group] = [d for d in want if not is_default_seclabel(d)]
            actual[group] = _restrict(full[group], expected[group])
        else:
            actual[group] = _restrict(full[group], want)
    return expected, actual


def vm_drift(settings: VmSettings, vm: VmFacts, vm_class: str | None = None) -> list[DriftItem]:
    """Every governed value of ``vm`` that differs from ``settings``."""
    expected, actual = vm_views(settings, vm)
    subject = f"vm:{vm.name}"
    items = [
        DriftItem(subject, c.path, c.old, c.new, vm_class)
        for c in diff_values(expected, actual, list_keys=_LIST_KEYS)
    ]
    if isinstance(settings.resources, msgspec.Struct):
        items.extend(
            DriftItem(subject, p, e, a, vm_class)
            for p, e, a in resources_drift(settings.resources, vm.resources)
        )
    return items


# --------------------------------------------------------------------------------------------------------
# Host


def host_drift(want: HostSettings, host: HostFacts) -> tuple[list[DriftItem], list[DriftError]]:
    """Drift of the host's config keys and configuration facts."""
    items: list[DriftItem] = []
    errors: list[DriftError] = []
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    for which in ("qemu_conf", "libvirtd_conf"):
        keys = getattr(want, which)
        if not isinstance(keys, dict):
            continue
        cf = getattr(host, which)
        if cf.error is not None:
            errors.append(DriftError(HOST, f"{which.replace('_', '.')} is unusable: {cf.error}"))
            continue
        expected[which] = dict(keys)
        actual[which] = conf_values(cf, list(keys))
    if isinstance(want.facts, dict):
        expected["facts"] = dict(want.facts)
        actual["facts"] = {path: host_fact(host, path) for path in want.facts}
    # A config key or fact is one value: a list that differs is one item with both whole lists (the
    # playbook writes the whole key), not one item per element.
    for group, wanted in expected.items():
        for key, value in wanted.items():
            got = actual[group][key]
            if value != got or type(value) is not type(got):
                items.append(DriftItem(HOST, f"{group}.{key}", value, got))
    return items, errors


# --------------------------------------------------------------------------------------------------------
# A target


def assignments(baseline: Baseline, vms: Iterable[VmFacts]) -> list[Assignment]:
    """The governing class of every VM (first match in file order)."""
    matcher = Matcher(baseline.vm_classes)
    return [matcher.assign(vm.name, vm.metadata_tags) for vm in vms]


def target_drift(baseline: Baseline, target: TargetFacts, source: str) -> DriftReport:
    """Drift of one collected target against ``baseline`` (``source`` names the baseline file)."""
    report = DriftReport(target=target.id, baseline=source)
    if target.unreachable is not None:
        report.errors.append(DriftError(HOST, f"target could not be collected: {target.unreachable}"))
        return report
    if target.vsphere is not None:
        vsphere_drift(baseline, target, report)
        return report
    if isinstance(baseline.vsphere_hosts, list) and baseline.vsphere_hosts:
        report.warnings.append("vsphere_hosts (ESXi advanced options) are checked on vsphere:// targets only")
    if isinstance(baseline.host, HostSettings):
        if target.host is None:
            why = "; ".join(f"{p.source}: {p.message}" for p in target.problems if p.area == "host")
            report.errors.append(
                DriftError(HOST, f"host facts were not collected ({why or 'no host collector ran'})")
            )
        else:
            items, errors = host_drift(baseline.host, target.host)
            report.items.extend(items)
            report.errors.extend(errors)
            report.host_checked = True
    if not baseline.vm_classes:
        return report
    hv = target.hypervisor
    if hv is None:
        report.errors.append(DriftError(HOST, "no hypervisor connection: VM classes cannot be checked"))
        return report
    seen: set[str] = set()
    for a, vm in zip(assignments(baseline, hv.vms), hv.vms, strict=True):
        seen.add(vm.name)
        if a.vm_class is None:
            report.ungoverned.append(vm.name)
            continue
        report.governed[vm.name] = a.vm_class.name
        warning = a.warning()
        if warning:
            report.warnings.append(warning)
        if vm.error is not None:
            report.errors.append(DriftError(f"vm:{vm.name}", f"cannot read this VM: {vm.error}"))
            continue
        report.items.extend(vm_drift(a.vm_class.settings, vm, a.vm_class.name))
    for cls in baseline.vm_classes:
        name = exact_name(cls)
        if name is not None and name not in seen:
            report.items.append(DriftItem(f"vm:{name}", "domain", "defined", None, cls.name))
        elif name is None and not any(c == cls.name for c in report.governed.values()):
            report.warnings.append(f"class {cls.name!r} matches no VM on {target.id}")
    return report
