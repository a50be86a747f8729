"""What several 11.4 measure modules share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext
from hvguard.checks.support.libvirt_conf import (
    Conf,
    load_conf,
)
from hvguard.checks.support.ops import (
    ChainAnalysis,
    Opening,
    analyse_input,
    is_loopback,
)
from hvguard.facts import (
    FirewallFacts,
    HostFacts,
    LogForward,
    LoggingFacts,
    NetworkFacts,
)
from hvguard.findings import Finding


def libvirtd_conf(ctx: CheckContext) -> Conf:
    """libvirtd.conf with defaults; raises :class:`CannotEvaluate` (no host facts, malformed or unread
    file)."""
    host = ctx.host
    if host is None:
        raise CannotEvaluate(HOST, "libvirtd.conf settings", "host")
    return load_conf(ctx, host, "libvirtd_conf")


def known_libvirtd(host: HostFacts | None, *keys: str) -> dict[str, Any]:
    """Evidence of libvirtd.conf keys when the file is usable (for manual findings; never decides)."""
    if host is None:
        return {"libvirtd.conf": "not collected (no host facts for this target)"}
    if host.libvirtd_conf.error is not None:
        return {"libvirtd.conf": f"unusable: {host.libvirtd_conf.error}"}
    conf = Conf(host.libvirtd_conf, "libvirtd_conf")
    return {k: conf.written(k).evidence() for k in keys}


def parse_errors(ctx: CheckContext, errors: list[str], what: str) -> Iterator[Finding]:
    """One ``error`` per malformed file entry (``FILE line N: reason``)."""
    for error in errors:
        yield ctx.error(HOST, f"{what} ({error})", evidence={"parse_error": error})


def remote_log_forwards(logging: LoggingFacts) -> list[LogForward]:
    return [f for f in logging.forwards if f.target and not is_local_target(f.target)]


def is_local_target(target: str) -> bool:
    """True for log targets on this host (localhost, 127.0.0.0/8, ::1)."""
    host = target.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.lower() in ("localhost", "localhost.localdomain", "") or is_loopback(host)


NFT_FIX = """/etc/nftables.conf (then: nft -c -f /etc/nftables.conf && systemctl enable --now nftables):
table inet hvguard_filter {
    set mgmt { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }  # management subnets
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif lo accept
        meta l4proto { icmp, ipv6-icmp } accept
        ip saddr @mgmt tcp dport { 22, 16514 } accept
    }
}"""


def bridges_of_vms(ctx: CheckContext, network: NetworkFacts | None) -> set[str]:
    """Bridges that carry VM traffic (from the VMs' interfaces and libvirt's networks)."""
    out: set[str] = set()
    nets = {n.name: n for n in (network.libvirt_networks if network else [])}
    hv = ctx.hypervisor
    for vm in hv.vms if hv else []:
        for i in vm.interfaces:
            if i.type == "bridge" and i.source:
                out.add(i.source)
            elif i.type == "network" and i.source and i.source in nets and nets[i.source].bridge:
                out.add(nets[i.source].bridge or "")
    out.update(n.bridge for n in nets.values() if n.bridge)
    return out


class FirewallView(msgspec.Struct):
    """The evaluated input filter: the chains that drop by default and what they still admit."""

    analyses: list[ChainAnalysis]
    drop_chains: list[ChainAnalysis]
    openings: list[Opening]
    unclear: list[str]


def firewall_view(fw: FirewallFacts) -> FirewallView:
    analyses = analyse_input(fw)
    drops = [a for a in analyses if a.default_drop]
    if not drops:
        return FirewallView(analyses, [], [], [])
    # A packet must pass every base chain on the hook: the chain that admits least bounds what is open.
    first = min(drops, key=lambda a: (len(a.openings), len(a.unclear)))
    openings = [
        o
        for o in first.openings
        if all(
            any(other.all_ports or set(other.ports) & set(o.ports) or o.all_ports for other in a.openings)
            for a in drops
            if a is not first
        )
    ]
    return FirewallView(analyses, drops, openings, [u for a in drops for u in a.unclear])
