"""Checks for SS-009 11.3.3.

11.3.3 vCPUs per VM strictly fewer than host cores

Checks: ``vcpu_below_cores``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check, vm_subject
from hvguard.checks.support.shell import shell_word as sh
from hvguard.checks.support.subjects import host_area
from hvguard.facts import VmFacts
from hvguard.findings import Finding


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
        raise CannotEvaluate(HOST, "per-VM settings", "hypervisor")
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

    def judge(vm: VmFacts) -> Iterator[Finding]:
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
            return
        if allowed >= 1:
            fix = f"virsh setvcpus {sh(vm.name)} {allowed} --maximum --config"
            if vm.vcpu.current is None or vm.vcpu.current > allowed:
                fix = f"virsh setvcpus {sh(vm.name)} {allowed} --config\n{fix}"
            fix += f"\n(then restart the VM: virsh shutdown {sh(vm.name)} && virsh start {sh(vm.name)})"
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

    yield from ctx.each_vm(judge)
