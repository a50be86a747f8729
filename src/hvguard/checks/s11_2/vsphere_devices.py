"""Checks for SS-009 11.2.7 on vSphere: each VM reaches only its own devices.

ESXi gives every VM its own VMX process and its own virtual devices; what a VM can reach beyond them is
configuration: host devices passed through (DirectPath I/O, VMCH-80-000214), removable devices backed by
host hardware (floppy, CD/DVD, serial, parallel, USB: VMCH-80-000209–213), and the guest's ability to
connect or remove devices itself (``isolation.device.connectable.disable``, VMCH-80-000197).

Checks: ``vsphere.vm-devices``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import each_vm, need, ps
from hvguard.facts import VsphereVm, vm_area
from hvguard.findings import Finding

#: Device types that reach host hardware or outside the VM, with their STIG id.
REMOVABLE = {
    "VirtualFloppy": "VMCH-80-000209",
    "VirtualCdrom": "VMCH-80-000210",
    "VirtualParallelPort": "VMCH-80-000211",
    "VirtualSerialPort": "VMCH-80-000212",
    "VirtualUSB": "VMCH-80-000213",
    "VirtualUSBController": "VMCH-80-000213",
    "VirtualUSBXHCIController": "VMCH-80-000213",
}
PASSTHROUGH = {"VirtualPCIPassthrough": "VMCH-80-000214"}
CONNECTABLE_KEY = "isolation.device.connectable.disable"


def _remove_fix(vm: VsphereVm, kind: str) -> str:
    cmd = {
        "VirtualFloppy": "Get-FloppyDrive -VM $vm | Remove-FloppyDrive -Confirm:$false",
        "VirtualCdrom": "Get-CDDrive -VM $vm | Remove-CDDrive -Confirm:$false",
        "VirtualUSB": "Get-UsbDevice -VM $vm | Remove-UsbDevice -Confirm:$false",
    }.get(kind)
    if cmd is None:
        cmd = (
            "$spec = New-Object VMware.Vim.VirtualMachineConfigSpec; "
            "$dev = $vm.ExtensionData.Config.Hardware.Device | Where-Object "
            f"{{ $_ -is [VMware.Vim.{kind}] }}; "
            "$spec.DeviceChange = $dev | ForEach-Object "
            "{ $c = New-Object VMware.Vim.VirtualDeviceConfigSpec; "
            "$c.Operation = 'remove'; $c.Device = $_; $c }; $vm.ExtensionData.ReconfigVM($spec)"
        )
    return f"$vm = Get-VM -Name {ps(vm.name)}; {cmd}  # with the VM powered off"


@check("11.2.7", id="vsphere.vm-devices", reads=("vsphere.vms[].devices", "vsphere.vms[].extra_config"))
def vm_devices(ctx: CheckContext) -> Iterator[Finding]:
    """Per VM: no floppy, serial, parallel or USB device and no CD/DVD backed by a host device
    (a datastore ISO is the VM's own file); ``isolation.device.connectable.disable`` = TRUE; a passthrough
    (DirectPath I/O) device is a ``manual`` finding: it must be attested as required."""

    def judge(vm: VsphereVm, subject: str) -> Iterator[Finding]:
        devices = need(vm.devices, subject, "the VM's devices", vm_area(vm.moref, "devices"))
        extra = need(vm.extra_config, subject, "the VM's extraConfig", vm_area(vm.moref, "extra_config"))
        failed: list[str] = []
        fixes: list[str] = []
        stigs: set[str] = set()
        for dev in devices:
            stig = REMOVABLE.get(dev.type)
            if stig is None:
                continue
            if dev.type == "VirtualCdrom" and not (dev.backing or "").startswith("host"):
                continue  # an ISO on a datastore, or no backing: not host hardware
            failed.append(f"{dev.label or dev.type} ({dev.type}{', ' + dev.backing if dev.backing else ''})")
            fixes.append(_remove_fix(vm, dev.type))
            stigs.add(stig)
        connectable = extra.get(CONNECTABLE_KEY)
        if (connectable or "").strip().upper() != "TRUE":
            failed.append(f"{CONNECTABLE_KEY} = {connectable!r}, wanted TRUE")
            fixes.append(
                f"New-AdvancedSetting -Entity (Get-VM -Name {ps(vm.name)}) -Name {ps(CONNECTABLE_KEY)} "
                "-Value $true -Force -Confirm:$false"
            )
            stigs.add("VMCH-80-000197")
        passthrough = [d for d in devices if d.type in PASSTHROUGH]
        evidence = {
            "devices": [d.type for d in devices],
            CONNECTABLE_KEY: connectable,
            "passthrough": [d.label or d.backing or d.type for d in passthrough] + vm.resources.passthrough,
            "stig": sorted(stigs | ({"VMCH-80-000214"} if passthrough else set())),
        }
        if failed:
            yield ctx.failed(
                subject,
                "the VM can reach devices beyond its own: " + "; ".join(failed),
                evidence,
                "\n".join(fixes),
            )
        elif passthrough:
            yield ctx.manual(
                subject,
                f"{len(passthrough)} host PCI device(s) passed through (DirectPath I/O): attest each is "
                "required "
                "and assigned to this VM only (VMCH-80-000214)",
                evidence,
            )
        else:
            yield ctx.passed(
                subject,
                "no host-backed removable or passthrough devices; guest cannot connect devices",
                evidence,
            )

    yield from each_vm(ctx, judge)
