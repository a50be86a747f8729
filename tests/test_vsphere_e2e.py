"""End to end against VMware's vSphere API simulator: hvguard's vSphere checks judge what the collector
read, and each verdict moves from fail (or error) to pass and back through the API alone —
ReconfigVM_Task, UpdateOptions, SetEntityPermissions — on a stock VPX model (a vCenter).

The simulator's hosts know almost no advanced option until one is set: the stock state of every
option-based measure must therefore be ``error`` (InvalidName), never a pass.
"""

from __future__ import annotations

from typing import Any

from hvguard.collect.vsphere.collector import collect_vsphere_target
from hvguard.collect.vsphere.target import PASSWORD_ENV, VsphereOptions
from hvguard.engine import evaluate
from hvguard.findings import worst
from hvguard.profile import load_profile
from vsphere_env import Simulator, api, find, wait

VM = "vm:DC0_C0_RP0_VM0"
HOST = "host:DC0_C0_H0"

#: ESXi 8 STIG values (a compliant host).
GOOD_OPTIONS: dict[str, Any] = {
    "Syslog.global.logHost": "ssl://syslog.example.org:1514",
    "Syslog.global.certificate.checkSSLCerts": True,
    "Syslog.global.certificate.strictX509Compliance": True,
    "Syslog.global.auditRecord.storageEnable": True,
    "Syslog.global.auditRecord.remoteEnable": True,
    "UserVars.ESXiShellTimeOut": 600,
    "UserVars.ESXiShellInteractiveTimeOut": 900,
    "UserVars.DcuiTimeOut": 600,
    "DCUI.Access": "root",
    "Config.HostAgent.plugins.solo.enableMob": False,
    "Security.AccountLockFailures": 3,
    "Security.AccountUnlockTime": 900,
}
ISOLATION = (
    "isolation.device.connectable.disable",
    "isolation.tools.copy.disable",
    "isolation.tools.paste.disable",
    "isolation.tools.diskShrink.disable",
    "isolation.tools.diskWiper.disable",
)


def verdicts(sim: Simulator, monkeypatch: Any) -> dict[tuple[str, str], str]:
    """(measure, subject) → the worst status of the vSphere checks, from a fresh collection."""
    monkeypatch.setenv(PASSWORD_ENV, sim.password)
    facts = collect_vsphere_target(sim.target, VsphereOptions(tls_ca=sim.ca.ca_pem))
    ev = evaluate([facts], load_profile(None))
    out: dict[tuple[str, str], list[str]] = {}
    for f in ev.findings:
        if f.status != "not_applicable":
            out.setdefault((f.measure, f.subject), []).append(f.status)
    return {key: worst(statuses) for key, statuses in out.items()}


def _set_options(host: Any, values: dict[str, Any]) -> None:
    from pyVmomi import VmomiSupport, vim

    host.configManager.advancedOption.UpdateOptions(
        changedValue=[
            # Real ESXi wants xsd:long for integer settings.
            vim.option.OptionValue(key=k, value=VmomiSupport.long(v) if type(v) is int else v)
            for k, v in values.items()
        ]
    )


def _harden_vm(vm: Any) -> None:
    from pyVmomi import vim

    devices = vm.config.hardware.device
    disk = next(d for d in devices if isinstance(d, vim.vm.device.VirtualDisk))
    nic = next(d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard))
    disk.storageIOAllocation = vim.StorageResourceManager.IOAllocationInfo(
        limit=500, shares=vim.SharesInfo(level="normal", shares=1000)
    )
    nic.resourceAllocation = vim.vm.device.VirtualEthernetCard.ResourceAllocation(
        limit=100, reservation=0, share=vim.SharesInfo(level="normal", shares=50)
    )
    changes = [
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk),
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic),
    ] + [
        vim.vm.device.VirtualDeviceSpec(operation="remove", device=d)
        for d in devices
        if isinstance(d, vim.vm.device.VirtualCdrom)
    ]
    spec = vim.vm.ConfigSpec(
        deviceChange=changes,
        cpuAllocation=vim.ResourceAllocationInfo(
            reservation=100, limit=1000, shares=vim.SharesInfo(level="normal", shares=1000)
        ),
        memoryAllocation=vim.ResourceAllocationInfo(
            reservation=32, limit=64, shares=vim.SharesInfo(level="normal", shares=320)
        ),
        extraConfig=[vim.option.OptionValue(key=k, value="TRUE") for k in ISOLATION],
    )
    wait(vm.ReconfigVM_Task(spec))


def test_vm_measures_fail_pass_fail_through_reconfigure(vcsim_fresh: Any, monkeypatch: Any) -> None:
    from pyVmomi import vim

    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    vm = find(si, "VirtualMachine", "DC0_C0_RP0_VM0")
    stock = verdicts(sim, monkeypatch)
    assert stock[("11.2.7", VM)] == "fail"  # no isolation settings, a connected CD-ROM
    assert stock[("11.3.10", VM)] == "fail"  # no CPU, IOPS or bandwidth limit
    assert stock[("11.1.2", VM)] == "pass"
    assert stock[("11.3.3", VM)] == "pass"

    _harden_vm(vm)
    hardened = verdicts(sim, monkeypatch)
    assert hardened[("11.2.7", VM)] == "pass"
    assert hardened[("11.3.10", VM)] == "pass"

    host = vm.runtime.host
    ram_mb = host.hardware.memorySize // (1024 * 1024)
    wait(
        vm.ReconfigVM_Task(
            vim.vm.ConfigSpec(
                numCPUs=64,
                memoryMB=int(ram_mb * 2),
                flags=vim.vm.FlagInfo(virtualExecUsage="hvOff"),
                extraConfig=[
                    vim.option.OptionValue(key="isolation.device.connectable.disable", value="FALSE")
                ],
            )
        )
    )
    broken = verdicts(sim, monkeypatch)
    assert broken[("11.1.2", VM)] == "fail"  # forced to binary translation
    assert broken[("11.3.3", VM)] == "fail"  # 64 vCPUs on a 2-core host
    assert broken[("11.3.1", f"host:{host.name}")] == "fail"  # twice the host's RAM
    assert broken[("11.2.7", VM)] == "fail"  # the guest may connect devices again


def test_host_option_measures_error_pass_fail_through_update_options(
    vcsim_fresh: Any, monkeypatch: Any
) -> None:
    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    host = find(si, "HostSystem", "DC0_C0_H0")
    measures = ("11.4.4", "11.4.6", "11.4.10", "11.4.11")
    stock = verdicts(sim, monkeypatch)
    for m in measures:
        assert stock[(m, HOST)] == "error", m  # InvalidName: the simulator's host lacks the keys

    _set_options(host, GOOD_OPTIONS)
    good = verdicts(sim, monkeypatch)
    for m in measures:
        assert good[(m, HOST)] == "pass", m
    assert good[("11.4.10", "host:DC0_C0_H1")] == "error"  # another host: its own options

    _set_options(
        host,
        {
            "Syslog.global.logHost": "udp://10.0.0.1:514",
            "Syslog.global.auditRecord.remoteEnable": False,
            "Config.HostAgent.plugins.solo.enableMob": True,
        },
    )
    bad = verdicts(sim, monkeypatch)
    for m in measures:
        assert bad[(m, HOST)] == "fail", m


def test_permission_measures_through_set_entity_permissions(vcsim_fresh: Any, monkeypatch: Any) -> None:
    from pyVmomi import vim

    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    auth = si.RetrieveContent().authorizationManager
    root = si.RetrieveContent().rootFolder
    dc = find(si, "Datacenter", "DC0")
    vm = find(si, "VirtualMachine", "DC0_C0_RP0_VM0")

    def grant(entity: Any, principal: str, role: int, *, group: bool, propagate: bool = True) -> None:
        # The simulator replaces an entity's whole list (vCenter merges per principal).
        auth.SetEntityPermissions(
            entity=entity,
            permission=[
                vim.AuthorizationManager.Permission(
                    entity=entity, principal=principal, group=group, roleId=role, propagate=propagate
                )
            ],
        )

    stock = verdicts(sim, monkeypatch)
    assert stock[("11.2.5", "vcenter")] == "fail"  # 'admin' and 'root' administer the whole inventory
    assert stock[("11.2.3", "vcenter")] == "manual"  # nobody is denied anything

    grant(root, "VSPHERE.LOCAL\\Administrator", -1, group=False)
    root_only = verdicts(sim, monkeypatch)
    assert root_only[("11.2.2", "vcenter")] == "fail"  # VM administration only at the root

    grant(dc, "VSPHERE.LOCAL\\vm-admins", -1, group=True)
    grant(vm, "VSPHERE.LOCAL\\vm-admins", -5, group=True, propagate=False)
    scoped = verdicts(sim, monkeypatch)
    assert scoped[("11.2.2", "vcenter")] == "pass"
    assert scoped[("11.2.3", VM)] == "pass"  # the group's grant is denied on this VM
    assert scoped[("11.2.5", "vcenter")] != "fail"
