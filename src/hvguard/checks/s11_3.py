"""Checks for SS-009 section 11.3: VM management (KVM/libvirt).

The 11.3 preamble calls these "advisory measures where appropriate" while every row says "must"; the
checks report them as worded and leave advisory tailoring (fail → warn) to the engine and profile.

Host CPU and memory come from ``virNodeGetInfo`` (``hypervisor.node``) when there is a libvirt
connection, else from ``/proc`` (``host.cpu``, ``host.memory``); evidence names the ``source``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.support.platform import offers_libvirt_qemu_controls
from hvguard.checks.support.subjects import host_area, vms_or_not_applicable
from hvguard.facts import Disk, VmFacts
from hvguard.findings import Finding

# libvirt's default CFS period when <period> is not given (the kernel's cfs_period_us default).
DEFAULT_CPU_PERIOD_US = 100_000
# Tag (libvirt <metadata>, collected into VmFacts.metadata_tags) marking a VM that requires guaranteed RAM.
GUARANTEED_RAM_TAG = "hvguard.guaranteed_ram"
_TRUE_WORDS = frozenset({"yes", "true", "1", "on"})
# How many VMs an evidence list names before it only counts the rest (keeps reports small).
EVIDENCE_LIST_CAP = 20
# Example values in remediations; units are libvirt's (KiB/s and KiB for <bandwidth>, bytes/s for iotune).
_NIC_LIMIT = "125000,250000,256"  # average 125000 KiB/s (≈1 Gbit/s), peak 250000 KiB/s, burst 256 KiB
_DISK_LIMIT = "--total-bytes-sec 104857600 --total-iops-sec 1000"  # 100 MiB/s, 1000 IOPS
_LIMITS_NOTE = (
    "\n# Example values: size each to the VM's workload. Bandwidth in KiB/s (125000 ≈ 1 Gbit/s), burst in"
    " KiB; disk in bytes/s and IOPS; vcpu_quota in µs per vcpu_period."
)
_CPU_LIMIT = f"vcpu_period={DEFAULT_CPU_PERIOD_US} vcpu_quota=80000"  # 80 % of a host core per vCPU


def host_cores(ctx: CheckContext) -> tuple[int, dict[str, object]] | None:
    """Total physical cores of the host and the evidence of where the number came from.

    ``virNodeGetInfo`` (libvirt-host.h): ``nodes`` NUMA cells × ``sockets`` per node × ``cores`` per
    socket (× ``threads`` would count hardware threads, which 11.3.3's "cores" excludes). For "unusual"
    NUMA topologies libvirt reports nodes = sockets = threads = 1 and ``cores`` = every logical CPU; so
    when /proc's count of unique (socket, core) pairs is known and lower, that one is used — a
    conservative reading of "strictly less than the total number of cores".
    """
    hv = ctx.hypervisor
    host = ctx.host
    cpu_cores = host.cpu.physical_cores if host is not None else None
    node = hv.node if hv is not None else None
    if node is not None and node.sockets > 0 and node.cores > 0:
        numa = max(node.numa_nodes, 1)  # 0 = not reported: libvirt's minimum is one cell
        total = numa * node.sockets * node.cores
        evidence: dict[str, object] = {
            "source": "hypervisor.node",
            "host_cores": total,
            "numa_nodes": numa,
            "sockets_per_node": node.sockets,
            "cores_per_socket": node.cores,
        }
        if cpu_cores is not None and cpu_cores < total:
            evidence.update(source="host.cpu", host_cores=cpu_cores, node_cores=total)
            return cpu_cores, evidence
        return total, evidence
    if cpu_cores is not None:
        return cpu_cores, {"source": "host.cpu", "host_cores": cpu_cores}
    return None


def host_ram_kib(ctx: CheckContext) -> tuple[int, str] | None:
    """Host RAM in KiB and its source: ``virNodeGetInfo().memory``, else /proc/meminfo MemTotal."""
    hv = ctx.hypervisor
    if hv is not None and hv.node is not None and hv.node.memory_kib > 0:
        return hv.node.memory_kib, "hypervisor.node"
    host = ctx.host
    if host is not None and host.memory.total_kib:
        return host.memory.total_kib, "host.memory"
    return None


# --------------------------------------------------------------------------------------------------------
# 11.3.1 Combined configured VM memory to host RAM


@check(
    "11.3.1",
    id="kvm.memory-overcommit",
    reads=(
        "hypervisor.vms[].memory_kib",
        "hypervisor.vms[].max_memory_kib",
        "hypervisor.vms[].active",
        "hypervisor.node.memory_kib",
        "host.memory.total_kib",
    ),
)
def memory_overcommit(ctx: CheckContext) -> Iterator[Finding]:
    """Σ configured VM memory ÷ host RAM ≤ ``memory_overcommit_pass_max`` passes, ≤ ``…_warn_max`` warns,
    above fails (profile thresholds; SS-009 v2 removed its own ratio). A VM counts with its ``<memory>``
    (the maximum allocation), or its hot-plug ``<maxMemory>`` when that is larger, since the guest can
    grow to it. Scope ``defined`` counts every VM (any may be started), ``running`` only active ones.
    VMs whose size is unknown make the ratio a lower bound: a lower bound above the fail line still
    fails, anything else is ``error`` (a pass cannot be shown)."""
    th = ctx.profile.thresholds
    scope = th.memory_overcommit_scope
    hv = ctx.hypervisor
    if hv is not None and not hv.vms:
        yield ctx.not_applicable(HOST, f"no VMs defined on {hv.uri}")
        return
    counted: list[tuple[int, str]] = []
    hotplug: list[str] = []
    unknown: list[str] = []
    for item in ctx.vms():
        if isinstance(item, Finding):
            yield item
            if item.subject == HOST:  # no hypervisor connection: nothing to add up
                return
            unknown.append(item.subject.removeprefix("vm:"))
            continue
        vm = item
        if scope == "running" and not vm.active:
            if vm.active is None:
                unknown.append(vm.name)
            continue
        kib = vm.memory_kib
        if kib is None:
            unknown.append(vm.name)
            continue
        if vm.max_memory_kib is not None and vm.max_memory_kib > kib:
            kib = vm.max_memory_kib
            hotplug.append(vm.name)
        counted.append((kib, vm.name))
    ram = host_ram_kib(ctx)
    if ram is None:
        yield ctx.error(HOST, "host RAM", "hypervisor.node", host_area(ctx, "memory"))
        return
    ram_kib, ram_source = ram
    total = sum(k for k, _ in counted)
    ratio = total / ram_kib
    top = heapq.nlargest(EVIDENCE_LIST_CAP, counted)
    evidence: dict[str, object] = {
        "scope": scope,
        "vms_counted": len(counted),
        "largest_vms": [{"name": n, "kib": k} for k, n in top],
        "vms_not_listed": len(counted) - len(top),
        "total_kib": total,
        "host_ram_kib": ram_kib,
        "ram_source": ram_source,
        "ratio": round(ratio, 4),
        "pass_max": th.memory_overcommit_pass_max,
        "warn_max": th.memory_overcommit_warn_max,
    }
    if hotplug:
        evidence["hotplug_max_used"] = hotplug[:EVIDENCE_LIST_CAP]
    if unknown:
        evidence["unknown_vms"] = unknown[:EVIDENCE_LIST_CAP]
        evidence["unknown_count"] = len(unknown)
    what = f"Σ configured memory of {len(counted)} {scope} VM(s) = {total} KiB on {ram_kib} KiB host RAM"
    hot = f" (hot-plug maxMemory used for {len(hotplug)} VM(s))" if hotplug else ""
    if ratio > th.memory_overcommit_warn_max:
        lower = f"; at least, {len(unknown)} VM(s) not counted" if unknown else ""
        yield ctx.failed(
            HOST,
            f"memory ratio {ratio:.4g} > {th.memory_overcommit_warn_max:g}: {what}{hot}{lower}",
            evidence,
            _overcommit_fix(total, ram_kib, th.memory_overcommit_pass_max, top, bool(hotplug)),
        )
        return
    if unknown:
        finding = ctx.error(
            HOST,
            f"the memory ratio: {len(unknown)} VM(s) of unknown size or state ({', '.join(unknown[:3])}"
            f"{' …' if len(unknown) > 3 else ''}); the others alone give {ratio:.4g}",
            *(f"vm:{n}" for n in unknown[:3]),
        )
        finding.evidence = {**finding.evidence, **evidence}
        yield finding
        return
    if ratio > th.memory_overcommit_pass_max:
        yield ctx.warned(
            HOST,
            f"memory overcommitted: ratio {ratio:.4g} > {th.memory_overcommit_pass_max:g} (warn up to "
            f"{th.memory_overcommit_warn_max:g}): {what}{hot}",
            evidence,
            _overcommit_fix(total, ram_kib, th.memory_overcommit_pass_max, top, bool(hotplug)),
        )
        return
    yield ctx.passed(
        HOST, f"memory ratio {ratio:.4g} ≤ {th.memory_overcommit_pass_max:g}: {what}{hot}", evidence
    )


def _overcommit_fix(
    total: int, ram_kib: int, target: float, top: list[tuple[int, str]], hotplug: bool
) -> str:
    excess = total - int(target * ram_kib)
    lines = [
        f"Reduce the configured VM memory by at least {excess} KiB (to ratio {target:g}), migrate VMs to "
        "another host, or add RAM. Lower a VM's maximum with:"
    ]
    if top:
        kib, name = top[0]
        new = kib - excess
        if new >= 262144:  # keep a usable guest (256 MiB); otherwise one VM cannot absorb the excess
            lines.append(f"  virsh setmaxmem {name} {new} --config")
        else:
            lines.append(f"  virsh setmaxmem {name} <KiB> --config    # per VM, largest first")
    if hotplug:
        lines.append("For VMs with hot-plug memory also lower <maxMemory> (virsh edit NAME).")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# 11.3.2 Guaranteed RAM, a limit, and a priority


@check("11.3.2", id="kvm.memory-guarantee-capability", reads=("hypervisor.driver", "hypervisor.uri"))
def memory_guarantee_capability(ctx: CheckContext) -> Iterator[Finding]:
    """Capability: libvirt's QEMU driver offers a limit (``<memtune><hard_limit>``), a guarantee
    (``<memoryBacking><locked/>`` or ``<hugepages/>``: the VM's RAM is pinned or pre-reserved and never
    swapped or reclaimed) and contention behaviour (``<memtune><soft_limit>``) — the closest thing to a
    priority, as KVM has no memory priority score. ``<min_guarantee>`` is VMware-only and refused by QEMU,
    so it is not counted. Passes for a QEMU/KVM connection; other drivers are ``manual``."""
    hv = ctx.hypervisor
    if hv is None:
        yield ctx.error(HOST, "the hypervisor's memory tuning options", "hypervisor")
        return
    evidence: dict[str, object] = {
        "driver": hv.driver,
        "uri": hv.uri,
        "limit": "memtune/hard_limit",
        "guarantee": ["memoryBacking/locked", "memoryBacking/hugepages"],
        "priority": "memtune/soft_limit (approximation)",
    }
    offered = offers_libvirt_qemu_controls(hv)
    if offered:
        yield ctx.passed(
            HOST,
            "QEMU/KVM offers a RAM limit (memtune hard_limit), a guarantee (memoryBacking locked or "
            "hugepages) and contention behaviour (memtune soft_limit; a priority is approximated by "
            "soft_limit, as KVM has no memory priority score)",
            evidence,
        )
        return
    if offered is None:
        yield ctx.error(HOST, "the hypervisor driver", "hypervisor")
        return
    yield ctx.manual(
        HOST,
        f"the memory guarantee, limit and priority options of libvirt driver '{hv.driver}' are not assessed "
        "by hvguard: show the options this hypervisor offers",
        evidence,
    )


@check(
    "11.3.2",
    id="kvm.vm-guaranteed-ram",
    reads=("hypervisor.vms[].metadata_tags", "hypervisor.vms[].memtune", "hypervisor.vms[].memory_backing"),
)
def vm_guaranteed_ram(ctx: CheckContext) -> Iterator[Finding]:
    """A VM that requires guaranteed RAM (tagged ``hvguard.guaranteed_ram`` = yes/true in its libvirt
    metadata) has a limit (``memtune hard_limit``) and a guarantee (``memoryBacking locked`` or
    ``hugepages``; ``locked`` requires ``hard_limit`` anyway). Untagged VMs yield nothing: the measure
    asks for the option "for every VM (that requires it)", and a finding per untagged VM would be noise
    — the capability finding covers them."""
    for item in ctx.vms():
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        tag = vm.metadata_tags.get(GUARANTEED_RAM_TAG)
        if tag is None or tag.strip().lower() not in _TRUE_WORDS:
            continue
        subject = vm_subject(vm)
        mt = vm.memtune
        mb = vm.memory_backing
        evidence: dict[str, object] = {
            "tag": tag,
            "hard_limit_kib": mt.hard_limit_kib,
            "soft_limit_kib": mt.soft_limit_kib,
            "locked": mb.locked,
            "hugepages": mb.hugepages,
        }
        if mt.min_guarantee_kib is not None:
            evidence["min_guarantee_kib_ignored"] = mt.min_guarantee_kib
        missing: list[str] = []
        fixes: list[str] = []
        if mt.hard_limit_kib is None:
            missing.append("no limit (memtune hard_limit)")
            mem = max(vm.memory_kib or 0, vm.max_memory_kib or 0)
            # hard_limit must cover the guest RAM plus QEMU's own overhead (+1 GiB here); soft_limit = RAM.
            hard = f"{mem + 1048576}" if mem else "<guest RAM KiB + QEMU overhead>"
            soft = f"{mem}" if mem else "<guest RAM KiB>"
            fixes.append(f"virsh memtune {vm.name} --hard-limit {hard} --soft-limit {soft} --config")
        if not (mb.locked or mb.hugepages):
            missing.append("no guarantee (memoryBacking locked or hugepages)")
            fixes.append(
                f"virsh edit {vm.name}    # add inside <domain>:\n"
                "  <memoryBacking>\n    <locked/>\n  </memoryBacking>"
            )
        if missing:
            yield ctx.failed(
                subject,
                "VM requires guaranteed RAM but has " + " and ".join(missing),
                evidence,
                "\n".join(fixes),
            )
            continue
        how = "locked" if mb.locked else "hugepages"
        yield ctx.passed(
            subject, f"guaranteed RAM ({how}) with a limit of {mt.hard_limit_kib} KiB (hard_limit)", evidence
        )


# --------------------------------------------------------------------------------------------------------
# 11.3.3 vCPUs strictly fewer than host cores


@check(
    "11.3.3",
    id="kvm.vcpu-below-cores",
    reads=("hypervisor.node", "host.cpu", "hypervisor.vms[].vcpu"),
)
def vcpu_below_cores(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's maximum vCPU count (``<vcpu>`` text — hot-plug can raise the current count up to it) is
    strictly less than the host's physical cores minus the profile's ``vcpu_extra_reserved_cores``.
    vCPUs equal to the core count fail. Cores, not hardware threads (see :func:`host_cores`)."""
    hv = ctx.hypervisor
    if hv is None:
        # ctx.vms() yields the one "no hypervisor connection" error here.
        yield from (f for f in ctx.vms() if isinstance(f, Finding))
        return
    if not hv.vms:
        yield ctx.not_applicable(HOST, f"no VMs defined on {hv.uri}")
        return
    cores = host_cores(ctx)
    if cores is None:
        yield ctx.error(HOST, "the host's physical core count", "hypervisor.node", host_area(ctx, "cpu"))
        return
    n_cores, core_evidence = cores
    reserve = ctx.profile.thresholds.vcpu_extra_reserved_cores
    limit = n_cores - reserve  # vCPUs must be < limit
    allowed = limit - 1
    source = core_evidence["source"]
    for item in ctx.vms():
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        vmax = vm.vcpu.maximum
        evidence = {
            "vcpu_max": vmax,
            "vcpu_current": vm.vcpu.current,
            "host_cores": n_cores,
            "reserved_cores": reserve,
            "source": source,
        }
        subject = vm_subject(vm)
        if vmax < limit:
            yield ctx.passed(
                subject, f"{vmax} vCPU(s) < {limit} (host cores {n_cores} − reserve {reserve})", evidence
            )
            continue
        if allowed >= 1:
            fix = f"virsh setvcpus {vm.name} {allowed} --maximum --config"
            if vm.vcpu.current is None or vm.vcpu.current > allowed:
                fix = f"virsh setvcpus {vm.name} {allowed} --config\n{fix}"
            fix += f"\n(then restart the VM: virsh shutdown {vm.name} && virsh start {vm.name})"
        else:
            fix = (
                f"The host has {n_cores} core(s) with {reserve} reserved: no VM can have fewer vCPUs. Move "
                f"{vm.name} to a host with more cores, or lower vcpu_extra_reserved_cores in the profile."
            )
        yield ctx.failed(
            subject,
            f"{vmax} vCPU(s) (maximum) is not strictly less than "
            + (
                f"the host's {n_cores} physical cores"
                if not reserve
                else f"{n_cores} cores − {reserve} reserved"
            ),
            evidence,
            fix,
        )


# --------------------------------------------------------------------------------------------------------
# 11.3.4 CPU lower limit, upper limit and priority


@check("11.3.4", id="kvm.cpu-scheduling-capability", reads=("hypervisor.driver", "hypervisor.uri"))
def cpu_scheduling_capability(ctx: CheckContext) -> Iterator[Finding]:
    """Capability: libvirt's QEMU driver offers an upper limit (``<cputune>`` period/quota per vCPU, or
    global_period/global_quota per VM), a priority (``<cputune><shares>``, the CFS weight) and — as CFS
    has no reservation — a lower limit only through dedicated pinning (``<vcpupin>`` to host CPUs no other
    VM uses). Passes for a QEMU/KVM connection with that caveat; other drivers are ``manual``."""
    hv = ctx.hypervisor
    if hv is None:
        yield ctx.error(HOST, "the hypervisor's CPU scheduling options", "hypervisor")
        return
    evidence: dict[str, object] = {
        "driver": hv.driver,
        "uri": hv.uri,
        "upper_limit": ["cputune/period+quota", "cputune/global_period+global_quota"],
        "priority": "cputune/shares",
        "lower_limit": "cputune/vcpupin to dedicated host CPUs (only)",
    }
    offered = offers_libvirt_qemu_controls(hv)
    if offered:
        yield ctx.passed(
            HOST,
            "QEMU/KVM offers a CPU upper limit (cputune quota/period), a priority (cputune shares) and a "
            "lower limit only via dedicated pinning (vcpupin to host CPUs isolated from other VMs; the Linux "
            "scheduler has no CPU reservation)",
            evidence,
        )
        return
    if offered is None:
        yield ctx.error(HOST, "the hypervisor driver", "hypervisor")
        return
    yield ctx.manual(
        HOST,
        f"the CPU limit and priority options of libvirt driver '{hv.driver}' are not assessed by hvguard: "
        "show the options this hypervisor offers",
        evidence,
    )


@check("11.3.4", id="kvm.vm-cpu-scheduling", reads=("hypervisor.vms[].cputune",))
def vm_cpu_scheduling(ctx: CheckContext) -> Iterator[Finding]:
    """Informative, one ``pass`` per VM recording the scheduling settings in use (shares, quota/period,
    pinning). 11.3.4 requires the hypervisor to *provide* the features for every deployed VM — met by the
    capability — not every VM to set them; auditors still want the per-VM scheduling policy (the
    catalog's evidence). An absent quota is not failed here: 11.3.10 requires the CPU limit, and failing
    it twice would double-count one gap."""
    for item in ctx.vms():  # a capability measure: no N/A when there are no VMs
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        ct = vm.cputune
        if ct.quota is not None and ct.quota > 0:
            upper = f"vCPU quota {ct.quota}/{ct.period or DEFAULT_CPU_PERIOD_US} µs"
        elif ct.global_quota is not None and ct.global_quota > 0:
            upper = f"global quota {ct.global_quota}/{ct.global_period or DEFAULT_CPU_PERIOD_US} µs"
        else:
            upper = "no quota (see 11.3.10)"
        prio = f"shares {ct.shares}" if ct.shares is not None else "default shares"
        lower = f"{len(ct.vcpupins)} vCPU pin(s)" if ct.vcpupins else "no dedicated pinning"
        yield ctx.passed(
            vm_subject(vm),
            f"scheduling options available; this VM sets: upper limit {upper}; priority {prio}; lower "
            f"limit {lower}",
            {
                "shares": ct.shares,
                "period": ct.period,
                "quota": ct.quota,
                "global_period": ct.global_period,
                "global_quota": ct.global_quota,
                "vcpupins": len(ct.vcpupins),
            },
        )


# --------------------------------------------------------------------------------------------------------
# 11.3.5 – 11.3.9: evidence beyond the facts


@check("11.3.5", id="kvm.introspection-monitoring", reads=("hypervisor.vms[].interfaces[].filterref",))
def introspection_monitoring(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: upstream KVM has no guest introspection (VMI) interface, and the monitoring
    product, its coverage and its signature updates are not host facts. The count of VM interfaces with
    a libvirt nwfilter (traffic policy enforcement) is given as supporting evidence."""
    evidence: dict[str, object] = {}
    hv = ctx.hypervisor
    if hv is not None:
        nics = filtered = 0
        filters: set[str] = set()
        for vm in hv.vms:
            for nic in vm.interfaces:
                nics += 1
                if nic.filterref:
                    filtered += 1
                    filters.add(nic.filterref)
        evidence = {"vm_interfaces": nics, "with_nwfilter": filtered, "nwfilters": sorted(filters)[:10]}
    yield ctx.manual(
        HOST,
        "Provide: (1) the guest-monitoring mechanism — introspection product (upstream KVM has no VMI; "
        "e.g. a host-based IDS/IPS covering the VM bridges and taps), its version and which VMs and "
        "networks it covers; (2) the policy enforcement of VM traffic (e.g. libvirt nwfilter such as "
        "clean-traffic, host firewall); (3) for every anti-malware tool on the host (AV scanner, IDPS, "
        "firewall feeds) the automatic signature-update job and its last successful update time.",
        evidence,
    )


@check("11.3.6", id="kvm.monitoring-ss025", reads=())
def monitoring_ss025(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: compliance with SS-025 can only be shown by an assessment (SS-025 was not
    supplied, so no technical check is possible)."""
    yield ctx.manual(
        HOST,
        "Provide the assessment showing the VM security-monitoring and policy-enforcement solution(s) named "
        "for 11.3.5 comply with SS-025 Virtualisation Security Standard (assessor, date, result, open "
        "actions). SS-025 was not supplied to hvguard, so it cannot check this.",
    )


@check("11.3.7", id="kvm.config-change-notify", reads=("host.libvirtd_conf",))
def config_change_notify(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual`` for now: that VM configuration changes are logged *and* administrators are
    notified needs the monitoring chain end to end. ``hvguard watch`` (libvirt define/update events plus
    a hash of every VM definition, with notification) will provide it but is not yet available. The
    libvirt audit settings are given as supporting evidence."""
    evidence: dict[str, object] = {}
    host = ctx.host
    if host is not None:
        for key in ("audit_level", "audit_logging"):
            value = host.libvirtd_conf.values.get(key)
            evidence[key] = value.value if value is not None else None
        evidence["libvirtd_conf"] = host.libvirtd_conf.path
    yield ctx.manual(
        HOST,
        "Provide the VM configuration-change monitoring in use and an example notification: libvirt audit "
        "records (VIRT_RESOURCE/VIRT_CONTROL; libvirtd.conf audit_level >= 1 with auditd running), an auditd "
        "watch such as '-w /etc/libvirt/qemu/ -p wa -k vm_config', where these logs are compiled, and a "
        "notification delivered to administrators for a recent VM change. 'hvguard watch' will provide "
        "this evidence (change log and notification) once available; it is not yet.",
        evidence,
    )


@check("11.3.8", id="kvm.image-ss025", reads=())
def image_ss025(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: hvguard does not inventory or scan an image library yet (the image library
    service is planned), and SS-025 was not supplied."""
    yield ctx.manual(
        HOST,
        "Provide the inventory of every VM image on the image server / in the VM image library (and libvirt "
        "storage pools holding templates), a current SS-025 compliance result per image (e.g. an offline "
        "scan record), and the procedure that removes non-compliant images. hvguard's image library service "
        "is not available yet, and SS-025 was not supplied.",
    )


@check("11.3.9", id="kvm.image-signatures", reads=())
def image_signatures(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: libvirt has no native image signing; the signature per image and its
    verification are evidence outside the host facts until hvguard's signed image library exists."""
    yield ctx.manual(
        HOST,
        "Provide, for every image kept on the image server / in the VM image library, its digital signature "
        "and a current verification record, with the signing key's management per SS-002 and its algorithm "
        "and key size per SS-007. libvirt does not sign images; hvguard's signed image library is not "
        "available yet.",
    )


# --------------------------------------------------------------------------------------------------------
# 11.3.10 Network, disk I/O and CPU limits per VM

_READ_KEYS = ("total_bytes_sec", "total_iops_sec", "read_bytes_sec", "read_iops_sec")
_WRITE_KEYS = ("total_bytes_sec", "total_iops_sec", "write_bytes_sec", "write_iops_sec")


def _disk_limited(vm: VmFacts, disk: Disk) -> tuple[bool, bool]:
    """(reads limited, writes limited) by ``<iotune>`` or a ``<blkiotune>`` device throttle on its source."""
    io = disk.iotune
    reads = any(io.get(k, 0) > 0 for k in _READ_KEYS)
    writes = any(io.get(k, 0) > 0 for k in _WRITE_KEYS)
    if not (reads and writes) and disk.source_path:
        for dev in vm.blkiotune.devices:
            if dev.path == disk.source_path:
                reads = reads or bool(dev.read_bytes_sec) or bool(dev.read_iops_sec)
                writes = writes or bool(dev.write_bytes_sec) or bool(dev.write_iops_sec)
    return reads, writes


@check(
    "11.3.10",
    id="kvm.vm-resource-limits",
    reads=(
        "hypervisor.vms[].interfaces[].inbound",
        "hypervisor.vms[].interfaces[].outbound",
        "hypervisor.vms[].disks[].iotune",
        "hypervisor.vms[].blkiotune",
        "hypervisor.vms[].cputune",
    ),
)
def vm_resource_limits(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM has every limit that bounds a DoS: every interface an inbound *and* outbound
    ``<bandwidth>`` with ``average`` set (a direction left out gets no QoS); every disk of device 'disk'
    (cdrom/floppy are read-only media) a read and a write limit (``<iotune>`` total_* or read_*+write_*,
    bytes or IOPS, or a matching ``<blkiotune>`` device throttle); and a CPU quota — a vCPU quota below
    its period (a quota ≥ period can never throttle a single vCPU thread) or a global quota. A VM without
    NICs or disks is judged on the CPU part alone. One finding per VM lists every unmet part."""
    for item in vms_or_not_applicable(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        name = vm.name
        unmet: list[str] = []
        fixes: list[str] = []
        nic_ev: list[dict[str, object]] = []
        for i, nic in enumerate(vm.interfaces):
            inbound = nic.inbound.average if nic.inbound is not None else None
            outbound = nic.outbound.average if nic.outbound is not None else None
            ident = nic.mac or nic.target_dev
            label = ident or f"#{i + 1}"
            nic_ev.append({"interface": label, "inbound_average": inbound, "outbound_average": outbound})
            missing = [d for d, avg in (("inbound", inbound), ("outbound", outbound)) if not avg or avg <= 0]
            if missing:
                unmet.append(f"interface {label} has no {' or '.join(missing)} bandwidth limit")
                opts = " ".join(f"--{d} {_NIC_LIMIT}" for d in missing)
                fixes.append(f"virsh domiftune {name} {ident or '<MAC>'} {opts} --config")
        disk_ev: list[dict[str, object]] = []
        for disk in vm.disks:
            if disk.device != "disk":
                continue
            reads, writes = _disk_limited(vm, disk)
            dev = disk.target or disk.source_path or "<target>"
            disk_ev.append({"disk": dev, "iotune": disk.iotune})
            if not (reads and writes):
                gap = "I/O" if not (reads or writes) else ("read" if not reads else "write")
                unmet.append(f"disk {dev} has no {gap} limit")
                fixes.append(f"virsh blkdeviotune {name} {dev} {_DISK_LIMIT} --config")
        ct = vm.cputune
        period = ct.period or DEFAULT_CPU_PERIOD_US
        vcpu_limited = ct.quota is not None and 0 < ct.quota < period
        global_limited = ct.global_quota is not None and ct.global_quota > 0
        cpu_ev = {
            "period": ct.period,
            "quota": ct.quota,
            "global_period": ct.global_period,
            "global_quota": ct.global_quota,
        }
        if not (vcpu_limited or global_limited):
            if ct.quota is not None and ct.quota >= period:
                unmet.append(f"vCPU quota {ct.quota} ≥ period {period} µs never throttles a vCPU")
            else:
                unmet.append("no CPU quota")
            fixes.append(f"virsh schedinfo {name} --config {_CPU_LIMIT}")
        evidence = {"interfaces": nic_ev, "disks": disk_ev, "cpu": cpu_ev}
        subject = vm_subject(vm)
        if unmet:
            yield ctx.failed(
                subject,
                "missing resource limits: " + "; ".join(unmet),
                evidence,
                "\n".join(fixes) + _LIMITS_NOTE,
            )
            continue
        yield ctx.passed(
            subject,
            f"limits set on {len(nic_ev)} interface(s) (in+out), {len(disk_ev)} disk(s) and CPU "
            + (
                f"(vCPU quota {ct.quota}/{period} µs)"
                if vcpu_limited
                else f"(global quota {ct.global_quota})"
            ),
            evidence,
        )
