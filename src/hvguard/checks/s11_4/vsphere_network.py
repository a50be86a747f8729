"""Checks for SS-009 11.4.12 and 11.4.13 on vSphere: the management segment and redundant uplinks.

11.4.12 the management VMkernel adapter sits on a port group no VM uses, on its own VLAN (ESXI-80-000198),
with the firewall limiting sources (11.4.2); 11.4.13 every network VMs use has at least two physical
uplinks (active + standby) on the host: standard vSwitch teaming and distributed port groups.

Checks: ``vsphere.management-segment``, ``vsphere.vm-uplinks``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import each_host, facts, host_cli, need, ps
from hvguard.facts import HostNetwork, Teaming, VsphereHost, host_area
from hvguard.findings import Finding

MIN_UPLINKS = 2


@check(
    "11.4.12", id="vsphere.management-segment", reads=("vsphere.hosts[].network", "vsphere.vms[].networks")
)
def management_segment(ctx: CheckContext) -> Iterator[Finding]:
    """Per host: the VMkernel adapters carrying management are on port groups no VM is attached to, with a
    VLAN that no VM port group of the host shares (ESXI-80-000198); the firewall part is 11.4.2."""
    vs = facts(ctx)

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        net = need(
            host.network, subject, "the host's network configuration", host_area(host.moref, "network")
        )
        mgmt = [v for v in net.vmknics if "management" in v.services]
        if not mgmt:
            yield ctx.error(
                subject,
                "which VMkernel adapter carries management (virtualNicManagerInfo)",
                host_area(host.moref, "network"),
                evidence={"vmknics": [v.device for v in net.vmknics]},
            )
            return
        vm_networks = {n for vm in vs.vms if vm.host == host.moref for n in vm.networks}
        pgs = {pg.name: pg for pg in net.portgroups}
        vm_vlans = {pgs[n].vlan_id for n in vm_networks if n in pgs}
        failed: list[str] = []
        fixes: list[str] = []
        rows: list[dict[str, object]] = []
        evidence: dict[str, object] = {
            "management": rows,
            "vm_networks": sorted(vm_networks),
            "stig": ["ESXI-80-000198"],
        }
        for vmk in mgmt:
            pg = pgs.get(vmk.portgroup or "")
            vlan = pg.vlan_id if pg else None
            rows.append({"vmknic": vmk.device, "portgroup": vmk.portgroup, "vlan": vlan, "ip": vmk.ip})
            if vmk.portgroup in vm_networks:
                failed.append(f"VMs are attached to management port group {vmk.portgroup!r}")
                fixes.append(
                    f"Get-VM -Location ({host_cli(ctx, host)}) | Get-NetworkAdapter | Where-Object "
                    f"{{$_.NetworkName -eq "
                    f"{ps(vmk.portgroup or '')}}} | "
                    "Set-NetworkAdapter -NetworkName 'VM Network' -Confirm:$false"
                )
            if vlan in (None, 0):
                failed.append(f"management port group {vmk.portgroup!r} has no VLAN of its own (VLAN {vlan})")
                fixes.append(
                    f"{host_cli(ctx, host)} | Get-VirtualPortGroup -Name {ps(vmk.portgroup or '')} | "
                    "Set-VirtualPortGroup -VLanId MGMT_VLAN"
                )
            elif vlan in vm_vlans:
                failed.append(f"management VLAN {vlan} is shared with VM port groups")
                fixes.append(
                    f"{host_cli(ctx, host)} | Get-VirtualPortGroup -Name {ps(vmk.portgroup or '')} | "
                    "Set-VirtualPortGroup -VLanId MGMT_VLAN"
                )
        if failed:
            yield ctx.failed(
                subject,
                "management interface not in a dedicated segment: " + "; ".join(failed),
                evidence,
                "\n".join(fixes),
            )
        else:
            yield ctx.passed(
                subject, "management VMkernel adapter(s) on a dedicated port group and VLAN", evidence
            )

    yield from each_host(ctx, judge)


def _uplinks(teaming: Teaming | None) -> list[str]:
    return [*teaming.active, *teaming.standby] if teaming is not None else []


def _standard(net: HostNetwork, networks: set[str]) -> list[tuple[str, list[str]]]:
    """(port group, its usable uplinks) for each standard port group VMs use: the effective teaming order's
    active+standby NICs that the vSwitch really has."""
    switches = {s.name: s for s in net.vswitches}
    out = []
    for pg in net.portgroups:
        if pg.name not in networks:
            continue
        switch = switches.get(pg.vswitch or "")
        pnics = set(switch.pnics) if switch else set()
        order = _uplinks(pg.teaming) or _uplinks(switch.teaming if switch else None)
        out.append((pg.name, [n for n in order if n in pnics]))
    return out


@check(
    "11.4.13",
    id="vsphere.vm-uplinks",
    reads=("vsphere.hosts[].network", "vsphere.distributed_switches", "vsphere.vms[].networks"),
)
def vm_uplinks(ctx: CheckContext) -> Iterator[Finding]:
    """Per host, each network its VMs use reaches the physical network over at least two uplinks: on a
    standard vSwitch the port group's active + standby NICs (teaming order, vSwitch default unless
    overridden) that are the switch's own; on a distributed switch the port group's active + standby uplinks
    and at least two physical NICs of this host behind the switch."""
    vs = facts(ctx)
    dvs_pgs = {
        pg.name: (dvs, pg) for dvs in vs.distributed_switches or [] for pg in dvs.portgroups if not pg.uplink
    }

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        net = need(
            host.network, subject, "the host's network configuration", host_area(host.moref, "network")
        )
        networks = {n for vm in vs.vms if vm.host == host.moref and not vm.template for n in vm.networks}
        paths: dict[str, list[str]] = dict(_standard(net, networks))
        fixes: list[str] = []
        for name in sorted(networks - paths.keys()):
            if name in dvs_pgs:
                dvs, pg = dvs_pgs[name]
                uplinks = _uplinks(pg.teaming) or list(dvs.uplink_names)
                pnics = dvs.host_pnics.get(host.moref, [])
                paths[name] = uplinks[: len(pnics)] if len(pnics) < len(uplinks) else uplinks
                if len(paths[name]) < MIN_UPLINKS:
                    fixes.append(
                        f"Add a second physical NIC of {host.name} to distributed switch {dvs.name!r}: "
                        "Get-VDSwitch -Name "
                        f"{ps(dvs.name)} | Add-VDSwitchPhysicalNetworkAdapter -VMHostPhysicalNic "
                        "(Get-VMHostNetworkAdapter "
                        f"-VMHost ({host_cli(ctx, host)}) -Physical -Name VMNIC) -Confirm:$false; and list "
                        "both uplinks as "
                        f"active/standby: Get-VDPortgroup -Name {ps(name)} | Get-VDUplinkTeamingPolicy | "
                        "Set-VDUplinkTeamingPolicy -ActiveUplinkPort 'Uplink 1' -StandbyUplinkPort 'Uplink 2'"
                    )
            elif vs.distributed_switches is None:
                yield ctx.error(
                    subject,
                    f"network {name!r} (distributed switches not read)",
                    "vsphere.distributed_switches",
                )
                return
            else:
                paths[name] = []
        single = {n: p for n, p in paths.items() if len(p) < MIN_UPLINKS}
        for name in single:
            if name in dvs_pgs:
                continue
            switch = next((pg.vswitch for pg in net.portgroups if pg.name == name), None)
            fixes.append(
                f"{host_cli(ctx, host)} | Get-VirtualSwitch -Name {ps(switch or 'vSwitch0')} | "
                "Set-VirtualSwitch -Nic "
                "vmnicA,vmnicB -Confirm:$false; then: Get-VirtualPortGroup -VMHost (…) -Name "
                f"{ps(name)} | Get-NicTeamingPolicy | Set-NicTeamingPolicy -MakeNicActive vmnicA "
                "-MakeNicStandby vmnicB"
            )
        evidence = {"uplinks_per_network": paths, "minimum": MIN_UPLINKS}
        if not paths:
            yield ctx.not_applicable(subject, "no VM network on this host", evidence)
        elif single:
            yield ctx.failed(
                subject,
                "VM networks with fewer than two physical paths: "
                + ", ".join(f"{n} ({', '.join(p) or 'no uplink'})" for n, p in single.items()),
                evidence,
                "\n".join(fixes),
            )
        else:
            yield ctx.passed(
                subject, f"{len(paths)} VM network(s), each with ≥ {MIN_UPLINKS} physical uplinks", evidence
            )

    yield from each_host(ctx, judge)
