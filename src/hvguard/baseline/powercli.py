"""A PowerCLI script that brings a vSphere target back to its gold configuration
(``hvguard remediate vsphere://… --baseline FILE --emit-powercli FILE``).

hvguard does not change vSphere through the API yet, so the drift becomes a script a person reviews and
runs in a session opened with ``Connect-VIServer``: ``Set-AdvancedSetting`` for host options, ``Set-VM``
for vCPUs and memory, ``Set-VMResourceConfiguration`` for reservations, limits, shares and disk IOPS
limits, and a ``ReconfigVM`` of the adapter for NIC limits (PowerCLI has no cmdlet for it). Every name
and string value is a PowerShell single-quoted literal (:func:`hvguard.checks.support.vsphere.ps`), so a
hostile VM or host name cannot run code. Values come from the baseline, never from the target.
"""

from __future__ import annotations

import re
from typing import Any

from hvguard.baseline.drift import DriftReport
from hvguard.baseline.schema import Baseline, ResourceSettings, SharesSetting
from hvguard.checks.support.vsphere import ps, vm_subjects
from hvguard.facts import TargetFacts

#: Bytes in vSphere's MB and bytes/s in one Mbit/s (the API's units, as the collector converts them).
MB = 1024 * 1024
MBIT_S = 1_000_000 // 8

_FIELD = re.compile(r"resources\.(?P<field>[a-z_]+)(?:\[(?P<key>.*)\])?")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int | float):
        return str(value)
    return ps(str(value))


def _comment(text: str) -> str:
    """A one-line comment (line breaks in names cannot end the comment and start code)."""
    return "# " + " ".join(text.split())


def _shares(flag: str, s: SharesSetting | None) -> list[str]:
    if s is None:
        return []  # vSphere always has shares: "unset" is not something a script can set
    if s.level == "custom":
        return [f"-{flag}SharesLevel Custom", f"-Num{flag}Shares {s.value or 0}"]
    return [f"-{flag}SharesLevel {s.level.capitalize()}"]


def _vm_commands(vm_expr: str, want: ResourceSettings, fields: dict[str, set[str]]) -> list[str]:
    out = [f"$vm = {vm_expr}"]
    set_vm = []
    if "vcpus" in fields and isinstance(want.vcpus, int):
        set_vm.append(f"-NumCpu {want.vcpus}")
    if "memory_bytes" in fields and isinstance(want.memory_bytes, int):
        set_vm.append(f"-MemoryMB {want.memory_bytes // MB}")
    if set_vm:
        out.append(f"Set-VM -VM $vm {' '.join(set_vm)} -Confirm:$false")
    conf: list[str] = []
    if "cpu_reservation_mhz" in fields:  # null (no reservation) is 0 MHz reserved
        conf.append(f"-CpuReservationMhz {want.cpu_reservation_mhz or 0}")
    if "cpu_limit_mhz" in fields:
        conf.append(f"-CpuLimitMhz {'$null' if want.cpu_limit_mhz is None else want.cpu_limit_mhz}")
    if "cpu_shares" in fields:
        conf.extend(_shares("Cpu", want.cpu_shares if isinstance(want.cpu_shares, SharesSetting) else None))
    if "memory_reservation_bytes" in fields:
        conf.append(f"-MemReservationMB {int(want.memory_reservation_bytes or 0) // MB}")
    if "memory_limit_bytes" in fields:
        limit = want.memory_limit_bytes
        conf.append(f"-MemLimitMB {'$null' if not isinstance(limit, int) else limit // MB}")
    if "memory_shares" in fields:
        conf.extend(
            _shares("Mem", want.memory_shares if isinstance(want.memory_shares, SharesSetting) else None)
        )
    if conf:
        out.append(f"Get-VMResourceConfiguration -VM $vm | Set-VMResourceConfiguration {' '.join(conf)}")
    disks = want.disks if isinstance(want.disks, dict) else {}
    for name in sorted(fields.get("disks", set())):
        disk = disks.get(name) or disks.get("*")
        iops = getattr(disk, "total_iops_sec", None)
        out.append(
            f"Get-VMResourceConfiguration -VM $vm | Set-VMResourceConfiguration "
            f"-Disk (Get-HardDisk -VM $vm -Name {ps(name)}) -DiskLimitIOPerSecond "
            f"{iops if isinstance(iops, int) else -1}"
        )
    nics = {k.lower(): v for k, v in want.nics.items()} if isinstance(want.nics, dict) else {}
    for mac in sorted(fields.get("nics", set())):
        nic = nics.get(mac) or nics.get("*")
        rate = getattr(nic, "adapter_bytes_sec", None)
        mbit = rate // MBIT_S if isinstance(rate, int) else -1
        out += [
            "$nic = $vm.ExtensionData.Config.Hardware.Device | "
            f"Where-Object {{ $_.MacAddress -eq {ps(mac)} }}",
            f"$nic.ResourceAllocation.Limit = {mbit}",
            "$spec = New-Object VMware.Vim.VirtualMachineConfigSpec",
            "$spec.DeviceChange = @(New-Object VMware.Vim.VirtualDeviceConfigSpec -Property "
            "@{Operation = 'edit'; Device = $nic})",
            "$vm.ExtensionData.ReconfigVM($spec)",
        ]
    return out


def powercli_script(report: DriftReport, baseline: Baseline, target: TargetFacts, *, source: str) -> str:
    """The script for ``report``'s drift (``target`` gives host names and VM ids)."""
    vs = target.vsphere
    lines = [
        _comment(f"hvguard: PowerCLI for the drift of {report.target} from the gold configuration {source}."),
        "# Review it, then run it in a PowerShell session opened with Connect-VIServer.",
        "$ErrorActionPreference = 'Stop'",
        "",
    ]
    if vs is None:
        return "\n".join([*lines, "# not a vSphere target: nothing to do", ""])
    host_by_subject = {f"host:{h.name}": h for h in vs.hosts}
    if len(vs.hosts) == 1:
        host_by_subject["host"] = vs.hosts[0]
    subjects = vm_subjects(vs)
    vm_by_subject = {subjects[vm.moref]: vm for vm in vs.vms}
    classes = {c.name: c for c in baseline.vm_classes}
    per_vm: dict[str, dict[str, set[str]]] = {}
    count = 0
    for item in report.items:
        if item.path.startswith("advanced_options."):
            host = host_by_subject.get(item.subject)
            if host is None:
                continue
            key = item.path.removeprefix("advanced_options.")
            lines.append(
                _comment(f"{item.subject}: {key} is {item.actual!r}, the baseline wants {item.expected!r}")
            )
            lines.append(
                f"Get-VMHost -Name {ps(host.name)} | Get-AdvancedSetting -Name {ps(key)} | "
                f"Set-AdvancedSetting -Value {_value(item.expected)} -Confirm:$false"
            )
            count += 1
            continue
        m = _FIELD.match(item.path)
        if m and item.subject in vm_by_subject:
            fields = per_vm.setdefault(item.subject, {})
            field = m.group("field")
            fields.setdefault(field, set())
            if m.group("key") is not None:
                fields[field].add(m.group("key"))
            lines.append(
                _comment(
                    f"{item.subject}: {item.path} is {item.actual!r}, the baseline wants {item.expected!r}"
                )
            )
        else:
            lines.append(_comment(f"by hand: {item.subject}: {item.path} (baseline: {item.expected!r})"))
    for subject, fields in per_vm.items():
        vm = vm_by_subject[subject]
        item_class = next(i.vm_class for i in report.items if i.subject == subject)
        cls = classes.get(item_class or "")
        if cls is None or not isinstance(cls.settings.resources, ResourceSettings):
            continue
        lines.append("")
        lines.append(_comment(f"{subject} (class {cls.name})"))
        expr = (
            f"Get-VM -Name {ps(vm.name)}"
            if subject == f"vm:{vm.name}"
            else f"Get-VM -Id {ps('VirtualMachine-' + vm.moref)}"
        )
        lines.extend(_vm_commands(expr, cls.settings.resources, fields))
        count += 1
    if not count:
        lines.append("# no drift a script can fix")
    return "\n".join(lines) + "\n"
