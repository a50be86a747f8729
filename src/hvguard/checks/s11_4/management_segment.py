"""Checks for SS-009 11.4.12.

11.4.12 Management interface in a dedicated segment behind a firewall

Checks: ``management_segment``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.s11_4.common import (
    NFT_FIX,
    bridges_of_vms,
    firewall_view,
    known_libvirtd,
)
from hvguard.checks.support.libvirt_conf import (
    Conf,
)
from hvguard.checks.support.ops import (
    is_loopback,
    is_wildcard,
    ops_group,
    port_range,
    require_well_formed,
)
from hvguard.facts import (
    FirewallFacts,
    NetInterface,
    NetworkFacts,
)
from hvguard.findings import Finding


def _vm_networks(ctx: CheckContext) -> list[str]:
    """The networks/bridges VM interfaces attach to (``type:source``), sorted and de-duplicated."""
    hv = ctx.hypervisor
    if hv is None:
        return []
    seen = {f"{i.type or '?'}:{i.source or '?'}" for vm in hv.vms for i in vm.interfaces}
    return sorted(seen)[:50]


MGMT_PROCESSES = frozenset({"sshd", "libvirtd", "virtproxyd", "virtqemud"})


def _mgmt_ports(ctx: CheckContext) -> set[int]:
    ports = {22, 16509, 16514}
    host = ctx.host
    if host is not None and host.access is not None and host.access.sshd is not None:
        port = host.access.sshd.effective.get("port")
        if port is not None:
            ports |= {int(p) for p in port.values if p.isdigit()}
    if host is not None and host.libvirtd_conf.error is None:
        conf = Conf(host.libvirtd_conf, "libvirtd_conf")
        for key in ("tcp_port", "tls_port"):
            s = conf.get(key)
            if s.explicit and str(s.value).isdigit():
                ports.add(int(str(s.value)))
    return ports


def _mgmt_listeners(
    ctx: CheckContext, fw: FirewallFacts, ports: set[int]
) -> list[tuple[str, int, str]] | None:
    """(address, port, who) of management services; None when neither sockets nor config tell."""
    if fw.listening is not None:
        return [
            (s.address, s.port, s.process or f"port {s.port}")
            for s in fw.listening
            if s.proto == "tcp"
            and not is_loopback(s.address)
            and (s.port in ports or s.process in MGMT_PROCESSES)
        ]
    host = ctx.host
    if host is None or host.access is None or host.access.sshd is None:
        return None
    listen = host.access.sshd.effective.get("listenaddress")
    addrs = listen.values if listen is not None and listen.values else ["0.0.0.0", "::"]  # noqa: S104
    out = []
    for a in addrs:
        ip = a.rsplit(":", 1)[0].strip("[]") if a.count(":") == 1 or a.startswith("[") else a
        out.append((ip, 22, "sshd (configured)"))
    return out


def _iface_for_address(address: str, network: NetworkFacts) -> list[NetInterface]:
    out = []
    for i in network.interfaces or []:
        for cidr in i.addresses:
            if cidr.split("/", 1)[0] == address:
                out.append(i)
    return out


@check(
    "11.4.12",
    id="host.management-segment",
    reads=(
        "host.operations.network",
        "host.operations.firewall",
        "host.libvirtd_conf.listen_addr",
        "host.access.sshd",
        "hypervisor.vms[].interfaces",
    ),
)
def management_segment(ctx: CheckContext) -> Iterator[Finding]:
    """The management interface is not on a VM-facing bridge, and the firewall restricts who reaches it.

    Fail: sshd or libvirtd listens on an address of a bridge that carries VM traffic (or of a port of
    one) without a firewall rule limiting those ports to management sources; the firewall admits a
    management port from any source; or no input chain drops by default. Manual (always, second
    finding): the dedicated VLAN/subnet itself — a network diagram is the evidence.
    """
    groups: dict[str, Any] = {}
    unusable: list[Finding] = []
    for group, what in (
        ("network", "which interface carries the management services"),
        ("firewall", "management listeners and source filtering"),
    ):
        try:
            groups[group] = ops_group(ctx, group, what)
        except CannotEvaluate as signal:  # both groups' problems are reported, not only the first
            unusable.append(ctx.error_for(signal))
    diagram = ctx.manual(
        HOST,
        "Evidence needed: a network diagram showing the management interface on a dedicated VLAN/subnet "
        "that carries no VM traffic, and the enterprise subnets allowed to reach it.",
        {"vm_networks": _vm_networks(ctx)},
    )
    if not unusable:
        fw: FirewallFacts = groups["firewall"]
        try:
            require_well_formed(
                "the firewall ruleset", [i for i in fw.issues if not i.path.startswith("/proc/")]
            )
        except CannotEvaluate as signal:
            unusable.append(ctx.error_for(signal))
    if unusable:  # the network diagram is asked for whatever the facts show
        yield from unusable
        yield diagram
        return
    network: NetworkFacts = groups["network"]
    ports = _mgmt_ports(ctx)
    listeners = _mgmt_listeners(ctx, fw, ports)
    vm_bridges = bridges_of_vms(ctx, network)
    ifaces = {i.name: i for i in network.interfaces or []}
    vm_facing = {n for n, i in ifaces.items() if n in vm_bridges or (i.master in vm_bridges)}
    view = firewall_view(fw)
    mgmt_open = [
        o
        for o in view.openings
        if o.all_ports or any((r := port_range(p)) and any(r[0] <= x <= r[1] for x in ports) for p in o.ports)
    ]
    evidence: dict[str, Any] = {
        "management_ports": sorted(ports),
        "listeners": [f"{a}:{p} ({who})" for a, p, who in listeners or []][:20],
        "vm_facing_interfaces": sorted(vm_facing),
        "firewall_admits": [o.describe() for o in mgmt_open][:20],
        **known_libvirtd(ctx.host, "listen_addr"),
    }
    fails: list[str] = []
    if listeners is None:
        yield ctx.error(HOST, "where the management services listen (no /proc/net sockets, no sshd facts)")
        yield diagram
        return
    unrestricted = [o for o in mgmt_open if not o.sources and not o.iifs]
    restricted_ok = bool(view.drop_chains) and not unrestricted
    exposed: list[str] = []
    unknown: list[str] = []
    for address, port, who in listeners:
        if is_wildcard(address):
            if not network.addresses_known:
                unknown.append(f"{who} on {address}:{port}")
                continue
            on = [
                i
                for i in ifaces.values()
                if i.name in vm_facing and any(not a.startswith("fe80") for a in i.addresses)
            ]
        else:
            on = [i for i in _iface_for_address(address, network) if i.name in vm_facing]
        exposed += [f"{who} on {address}:{port} is reachable via VM-facing {i.name}" for i in on]
    if exposed and not restricted_ok:
        fails.append("; ".join(exposed[:5]))
    if not view.drop_chains:
        fails.append("no input chain drops by default, so management ports accept any source")
    elif unrestricted:
        fails.append(
            "the firewall admits management ports from any source: "
            + "; ".join(o.describe() for o in unrestricted[:5])
        )
    if fails:
        yield ctx.failed(
            HOST,
            "The management interface is not isolated: " + "; ".join(fails) + ".",
            evidence,
            "Bind sshd and libvirtd to the management address only (sshd_config: ListenAddress MGMT_IP; "
            'libvirtd.conf: listen_addr = "MGMT_IP"), keep that interface out of every VM bridge, and accept '
            "management ports only from the designated subnets:\n" + NFT_FIX,
        )
    elif unknown and restricted_ok:
        yield ctx.passed(
            HOST,
            "Management services listen on every address ("
            + ", ".join(unknown[:5])
            + "), but the firewall drops input by default and admits management ports only from designated "
            "sources, so VM-facing interfaces cannot reach them.",
            evidence,
        )
    elif unknown:
        yield ctx.manual(
            HOST,
            "Management services listen on every address ("
            + ", ".join(unknown[:5])
            + ") and the host's interface addresses were not collected. Evidence needed: `ip -br addr` "
            "showing "
            "no address on a VM bridge, or the firewall restricting these ports to management subnets.",
            evidence,
        )
    else:
        yield ctx.passed(
            HOST,
            "Management services are not reachable through VM-facing bridges"
            + (" beyond the firewall's source restrictions" if exposed else "")
            + ", and the firewall admits management ports only from designated sources.",
            evidence,
        )
    yield diagram
