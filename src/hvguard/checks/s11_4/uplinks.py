"""Checks for SS-009 11.4.13.

11.4.13 Multiple physical network paths from VMs to the enterprise network

Checks: ``vm_uplink_redundancy``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.catalog.checks import static_remediation
from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.support.ops import (
    ops_group,
    physical_paths,
    vm_networks,
)
from hvguard.facts import (
    NetworkFacts,
)
from hvguard.findings import Finding

BOND_FIX = static_remediation("host.vm-uplink-redundancy")  # text in hvguard/catalog/checks.yaml


@check(
    "11.4.13",
    id="host.vm-uplink-redundancy",
    reads=("hypervisor.vms[].interfaces", "host.operations.network"),
)
def vm_uplink_redundancy(ctx: CheckContext) -> Iterator[Finding]:
    """Every network VMs use reaches the enterprise network over at least two physical NICs.

    Per VM-facing network: a bridge's uplink (a bond, a VLAN on a bond, or a NIC) must reach ≥ 2
    physical NICs; NAT/routed libvirt networks leave through the default-route interface, which must;
    macvtap (direct) NICs and passthrough networks likewise. Isolated networks are not applicable.
    Fail: a single physical path. Error: interfaces not collected (offline root without sys/), or a
    network VMs use whose definition could not be read or parsed.
    """
    hv = ctx.hypervisor
    if hv is None:
        yield ctx.error(HOST, "which networks VMs use", "hypervisor")
        return
    network: NetworkFacts = ops_group(ctx, "network", "bridges, bonds and NICs")
    triples = [(vm.name, i.type, i.source) for vm in hv.vms for i in vm.interfaces]
    nets = vm_networks(triples, network.libvirt_networks)
    if not nets:
        yield ctx.not_applicable(HOST, "no VM has a network interface", {"vms": len(hv.vms)})
        return
    if network.interfaces is None:
        yield ctx.error(HOST, "bridge and bond layout (no sysfs or ip link data)", "host.operations.network")
        return
    ifaces = {i.name: i for i in network.interfaces}
    ok: list[str] = []
    bad: list[str] = []
    manual: list[str] = []
    na: list[str] = []
    unusable: list[str] = []
    for n in nets:
        vms = ", ".join(n.vms[:5])
        if n.mode == "error":
            unusable.append(f"{n.label} (VMs {vms})")
            continue
        if n.mode == "isolated":
            na.append(f"{n.label}: no path to the enterprise network (VMs {vms})")
            continue
        if n.mode == "routed":
            if not network.default_route_interfaces:
                bad.append(f"{n.label}: the host has no default route (VMs {vms})")
                continue
            counts = [physical_paths(d, ifaces) for d in network.default_route_interfaces]
            best = max(counts)
            (ok if best[0] >= 2 else bad).append(f"{n.label}: default route via {best[1]} (VMs {vms})")
            continue
        if n.mode in ("bridge", "direct") and n.device:
            count, how = physical_paths(n.device, ifaces)
            if n.device not in ifaces:
                bad.append(f"{n.label}: {n.device} does not exist on the host (VMs {vms})")
            elif count == 0 and ifaces[n.device].kind == "bridge":
                na.append(f"{n.label}: host-only bridge without a physical uplink (VMs {vms})")
            else:
                (ok if count >= 2 else bad).append(f"{n.label}: {how} — {count} physical path(s) (VMs {vms})")
            continue
        if n.mode == "devs" and n.device:
            counts = [physical_paths(d, ifaces) for d in n.device.split(",")]
            total = sum(c for c, _ in counts)
            (ok if total >= 2 else bad).append(f"{n.label}: {total} physical path(s) (VMs {vms})")
            continue
        manual.append(f"{n.label} (VMs {vms})")
    evidence = {
        "ok": ok,
        "single_path": bad,
        "needs_evidence": manual,
        "not_applicable": na,
        "default_route": network.default_route_interfaces,
    }
    if unusable:
        evidence["unusable_definitions"] = unusable
    if bad:
        yield ctx.failed(
            HOST,
            "VM traffic reaches the enterprise network over a single physical path: "
            + "; ".join(bad[:6])
            + ".",
            evidence,
            BOND_FIX,
        )
    elif unusable:
        yield ctx.error(HOST, "the physical path of " + "; ".join(unusable[:6]), evidence=evidence)
    elif manual:
        yield ctx.manual(
            HOST,
            "The physical path of these VM networks cannot be told from the facts: "
            + "; ".join(manual[:6])
            + ". Evidence needed: the uplinks (bond/team members) each uses.",
            evidence,
        )
    elif ok:
        yield ctx.passed(
            HOST, "Every VM network has at least two physical uplinks: " + "; ".join(ok[:6]) + ".", evidence
        )
    else:
        yield ctx.not_applicable(
            HOST, "VM networks do not reach the enterprise network: " + "; ".join(na[:6]), evidence
        )
