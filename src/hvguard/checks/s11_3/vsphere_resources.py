"""Checks for SS-009 11.3.1–11.3.4 and 11.3.10 on vSphere, from the platform-neutral ``VmResources``.

11.3.1 Σ configured VM memory ÷ host RAM per ESXi host; 11.3.2/11.3.4 the per-VM memory and CPU
reservation, limit and shares vSphere offers; 11.3.3 vCPUs strictly fewer than the host's physical cores;
11.3.10 per-VM CPU limit, per-disk IOPS limit and per-NIC bandwidth limit (adapter limit, or traffic
shaping on its port group).

Checks: ``vsphere.memory-overcommit``, ``vsphere.memory-controls``, ``vsphere.vcpu-below-cores``,
``vsphere.cpu-controls``, ``vsphere.vm-dos-limits``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CannotEvaluate, CheckContext, check
from hvguard.checks.support.vsphere import each_host, each_vm, facts, need, ps, top_subject
from hvguard.facts import ControlsOffered, Shaping, VsphereFacts, VsphereHost, VsphereVm, host_area
from hvguard.findings import Finding

GIB = 1024**3


def _offered(offer: ControlsOffered | None, *names: str) -> bool | None:
    if offer is None:
        return None
    return all(getattr(offer, n) is True for n in names)


def _offer(
    ctx: CheckContext, offered: bool | None, evidence: dict[str, object], yes: str, unknown: str
) -> Finding:
    """The capability finding on the target (``host`` / ``vcenter``): ``pass`` when offered, ``error``
    when the collector did not record the offer, else ``manual``."""
    subject = top_subject(ctx)
    if offered:
        return ctx.passed(subject, yes, evidence)
    if offered is None:
        return ctx.error(subject, "vSphere's per-VM resource controls", "vsphere")
    return ctx.manual(subject, unknown, evidence)


@check(
    "11.3.1",
    id="vsphere.memory-overcommit",
    reads=("vsphere.hosts[].memory_bytes", "vsphere.vms[].resources"),
)
def memory_overcommit(ctx: CheckContext) -> Iterator[Finding]:
    """Per host: Σ ``config.hardware.memoryMB`` of the VMs registered on it (``runtime.host``; only powered-on
    ones when ``memory_overcommit_scope`` is ``running``) ÷ ``hardware.memorySize`` ≤
    ``memory_overcommit_pass_max`` passes, ≤ ``…_warn_max`` warns, above fails."""
    vs = facts(ctx)
    th = ctx.profile.thresholds

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        ram = need(host.memory_bytes, subject, "the host's RAM (hardware.memorySize)", host_area(host.moref))
        vms = [
            vm
            for vm in vs.vms
            if vm.host == host.moref
            and not vm.template
            and (th.memory_overcommit_scope != "running" or vm.power_state == "poweredOn")
        ]
        unknown = [vm.name for vm in vms if vm.error is not None or vm.resources.memory_bytes is None]
        if unknown:
            raise CannotEvaluate(subject, f"the memory of VM(s) {', '.join(unknown[:5])}", "vsphere.vms")
        total = sum(vm.resources.memory_bytes or 0 for vm in vms)
        ratio = total / ram if ram else float("inf")
        evidence = {
            "vm_memory_gib": round(total / GIB, 2),
            "host_memory_gib": round(ram / GIB, 2),
            "ratio": round(ratio, 3),
            "vms": len(vms),
            "scope": th.memory_overcommit_scope,
            "pass_max": th.memory_overcommit_pass_max,
            "warn_max": th.memory_overcommit_warn_max,
        }
        text = f"VM memory {total / GIB:.1f} GiB ÷ host RAM {ram / GIB:.1f} GiB = {ratio:.2f}"
        fix = (
            "Reduce the VMs' memory (Set-VM -VM NAME -MemoryGB N), move VMs to other hosts "
            f"(Move-VM -VM NAME -Destination (Get-VMHost -Name OTHER)) from {ps(host.name)}, or add RAM."
        )
        if ratio <= th.memory_overcommit_pass_max:
            yield ctx.passed(subject, text, evidence)
        elif ratio <= th.memory_overcommit_warn_max:
            yield ctx.warned(
                subject, f"{text}: overcommitted above {th.memory_overcommit_pass_max}", evidence, fix
            )
        else:
            yield ctx.failed(subject, f"{text}: above {th.memory_overcommit_warn_max}", evidence, fix)

    yield from each_host(ctx, judge)


@check("11.3.2", id="vsphere.memory-controls", reads=("vsphere.controls_offered",))
def memory_controls(ctx: CheckContext) -> Iterator[Finding]:
    """Capability: vSphere offers per-VM memory reservation (guarantee), limit and shares (priority)
    (``ResourceAllocationInfo`` of ``config.memoryAllocation``)."""
    vs = facts(ctx)
    yield _offer(
        ctx,
        _offered(vs.controls_offered, "memory_limit", "memory_guarantee", "memory_priority"),
        {
            "guarantee": "memoryAllocation.reservation",
            "limit": "memoryAllocation.limit",
            "priority": "memoryAllocation.shares",
        },
        "vSphere offers a per-VM RAM reservation (guarantee), limit and shares (priority): "
        "Set-VMResourceConfiguration "
        "-MemReservationGB/-MemLimitGB/-MemSharesLevel",
        "the collector did not state vSphere's per-VM memory controls: show them",
    )


@check("11.3.4", id="vsphere.cpu-controls", reads=("vsphere.controls_offered",))
def cpu_controls(ctx: CheckContext) -> Iterator[Finding]:
    """Capability: vSphere offers per-VM CPU reservation (MHz, lower limit), limit (MHz, upper limit) and
    shares (priority) (``config.cpuAllocation``)."""
    vs = facts(ctx)
    yield _offer(
        ctx,
        _offered(vs.controls_offered, "cpu_limit", "cpu_guarantee", "cpu_priority"),
        {
            "lower": "cpuAllocation.reservation (MHz)",
            "upper": "cpuAllocation.limit (MHz)",
            "priority": "cpuAllocation.shares",
        },
        "vSphere offers a per-VM CPU reservation (lower limit), limit (upper limit) and shares (priority): "
        "Set-VMResourceConfiguration -CpuReservationMhz/-CpuLimitMhz/-CpuSharesLevel",
        "the collector did not state vSphere's per-VM CPU controls: show them",
    )


@check(
    "11.3.3", id="vsphere.vcpu-below-cores", reads=("vsphere.vms[].resources.vcpus", "vsphere.hosts[].cpu")
)
def vcpu_below_cores(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's ``numCPU`` is strictly less than its host's physical cores (``cpuInfo.numCpuCores``, not
    threads) minus ``vcpu_extra_reserved_cores``."""
    vs = facts(ctx)
    hosts = {h.moref: h for h in vs.hosts}
    reserve = ctx.profile.thresholds.vcpu_extra_reserved_cores

    def judge(vm: VsphereVm, subject: str) -> Iterator[Finding]:
        host = hosts.get(vm.host or "")
        if host is None:
            raise CannotEvaluate(
                subject, f"the VM's host ({vm.host or 'runtime.host not read'})", "vsphere.vms"
            )
        cpu = need(host.cpu, subject, f"the cores of host {host.name}", host_area(host.moref, "cpu"))
        cores = need(cpu.cores, subject, f"the cores of host {host.name}", host_area(host.moref, "cpu"))
        vcpus = need(vm.resources.vcpus, subject, "the VM's vCPU count", "vsphere.vms")
        limit = cores - reserve
        evidence = {"vcpus": vcpus, "host": host.name, "host_cores": cores, "reserved_cores": reserve}
        if vcpus < limit:
            yield ctx.passed(
                subject,
                f"{vcpus} vCPU(s) < {limit} (host {host.name}: {cores} cores − reserve {reserve})",
                evidence,
            )
        else:
            allowed = max(limit - 1, 1)
            yield ctx.failed(
                subject,
                f"{vcpus} vCPU(s) is not strictly less than host {host.name}'s {cores} physical cores"
                + (f" − {reserve} reserved" if reserve else ""),
                evidence,
                f"Set-VM -VM (Get-VM -Name {ps(vm.name)}) -NumCpu {allowed} -Confirm:$false  # with the VM "
                "powered off",
            )

    yield from each_vm(ctx, judge, templates=False)


def _shaped(vs: VsphereFacts, vm: VsphereVm) -> dict[str, Shaping]:
    """The VM's networks that have traffic shaping enabled (standard port groups on its host, DVS port
    groups in either direction)."""
    out: dict[str, Shaping] = {}
    for host in vs.hosts:
        if host.moref != vm.host or host.network is None:
            continue
        for pg in host.network.portgroups:
            if pg.name in vm.networks and pg.shaping is not None and pg.shaping.enabled:
                out[pg.name] = pg.shaping
    for dvs in vs.distributed_switches or []:
        for dpg in dvs.portgroups:
            shaping = dpg.out_shaping if dpg.out_shaping and dpg.out_shaping.enabled else dpg.in_shaping
            if dpg.name in vm.networks and shaping is not None and shaping.enabled:
                out[dpg.name] = shaping
    return out


@check("11.3.10", id="vsphere.vm-dos-limits", reads=("vsphere.vms[].resources", "vsphere.hosts[].network"))
def vm_dos_limits(ctx: CheckContext) -> Iterator[Finding]:
    """Per VM: a CPU limit (``cpuAllocation.limit``), an IOPS limit on every virtual disk
    (``storageIOAllocation.limit``), and a bandwidth limit on every network adapter — its own
    (``resourceAllocation.limit``) or traffic shaping enabled on every port group it uses."""
    vs = facts(ctx)

    def judge(vm: VsphereVm, subject: str) -> Iterator[Finding]:
        res = vm.resources
        shaped = _shaped(vs, vm)
        missing: list[str] = []
        fixes: list[str] = []
        name = ps(vm.name)
        if res.cpu_limit is None or res.cpu_limit.mhz is None:
            missing.append("no CPU limit")
            fixes.append(
                f"Get-VM -Name {name} | Get-VMResourceConfiguration | Set-VMResourceConfiguration "
                "-CpuLimitMhz MHZ"
            )
        unlimited_disks = [d.name for d in res.disks if d.device == "disk" and d.total_iops_sec is None]
        if unlimited_disks:
            missing.append("no IOPS limit on " + ", ".join(unlimited_disks))
            fixes.append(
                f"Get-VM -Name {name} | Get-HardDisk | ForEach-Object "
                f"{{ Get-VMResourceConfiguration -VM $_.Parent | "
                "Set-VMResourceConfiguration -Disk $_ -DiskLimitIOPerSecond IOPS }"
            )
        unshaped_networks = [n for n in vm.networks if n not in shaped]
        unlimited_nics = [n.name for n in res.nics if n.adapter_bytes_sec is None]
        if unlimited_nics and (unshaped_networks or not vm.networks):
            missing.append(
                "no bandwidth limit on adapter(s) "
                + ", ".join(unlimited_nics)
                + (f" and no traffic shaping on {', '.join(unshaped_networks)}" if unshaped_networks else "")
            )
            fixes.append(
                "Limit the port group's traffic: standard switch (on the host) esxcli network vswitch "
                "standard "
                "portgroup policy shaping set -p PORTGROUP --enabled=true --avg-bandwidth=KBPS "
                "--peak-bandwidth=KBPS "
                "--burst-size=KB; distributed switch: Get-VDPortgroup -Name PORTGROUP | "
                "Get-VDTrafficShapingPolicy "
                "-Direction Out | Set-VDTrafficShapingPolicy -Enabled $true -AverageBandwidth BPS"
            )
        evidence = {
            "cpu_limit_mhz": res.cpu_limit.mhz if res.cpu_limit else None,
            "disk_iops_limits": {d.name: d.total_iops_sec for d in res.disks if d.device == "disk"},
            "nic_limits_bytes_sec": {n.name: n.adapter_bytes_sec for n in res.nics},
            "shaped_networks": sorted(shaped),
            "networks": vm.networks,
        }
        if missing:
            yield ctx.failed(
                subject,
                "resource limits against DoS missing: " + "; ".join(missing),
                evidence,
                "\n".join(fixes),
            )
        else:
            yield ctx.passed(subject, "CPU, disk IOPS and network bandwidth limited", evidence)

    yield from each_vm(ctx, judge, templates=False)
