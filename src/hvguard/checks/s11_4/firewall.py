"""Checks for SS-009 11.4.9.

11.4.9 Host firewall allows only needed ports and protocols

Checks: ``firewall``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_4.common import (
    NFT_FIX,
    bridges_of_vms,
    firewall_view,
)
from hvguard.checks.support.ops import (
    PortSpec,
    is_loopback,
    opening_allowed,
    ops_group,
    require_well_formed,
)
from hvguard.facts import (
    FirewallFacts,
)
from hvguard.findings import Finding


def _allowed_ports(ctx: CheckContext) -> list[PortSpec]:
    return [PortSpec.parse(p) for p in ctx.profile.thresholds.firewall_allowed_ports]


@check(
    "11.4.9",
    id="host.firewall",
    reads=(
        "host.operations.firewall",
        "host.operations.network.libvirt_networks",
        "hypervisor.vms[].interfaces",
    ),
)
def firewall(ctx: CheckContext) -> Iterator[Finding]:
    """The host firewall admits only what enabled services need.

    Pass: an input-hook base chain drops by default (``policy drop``, or a final match-less drop/reject
    rule), and every port it accepts is in the profile's ``firewall_allowed_ports`` (libvirt's DNS/DHCP
    ports are allowed on its own bridges; loopback, ICMP and established/related replies are always fine).
    Fail: no ruleset, no default-drop input chain (every listening socket is exposed), an accept of every
    port, or a port outside the allow-list. Manual: accept rules with matches hvguard does not interpret.
    Listening sockets outside the allow-list are reported as evidence (filtered, so not a failure).
    """
    fw: FirewallFacts = ops_group(ctx, "firewall", "the host firewall ruleset")
    require_well_formed("the firewall ruleset", [i for i in fw.issues if not i.path.startswith("/proc/")])
    host = ctx.host
    network = host.operations.network if host and host.operations else None
    allowed = _allowed_ports(ctx)
    vm_bridges = bridges_of_vms(ctx, network)
    view = firewall_view(fw)
    listening = [s for s in (fw.listening or []) if not is_loopback(s.address)]
    unexpected = [
        f"{s.port}/{s.proto} on {s.address}" + (f" ({s.process})" if s.process else "")
        for s in listening
        if not any(spec.covers(s.port, s.port, s.proto) for spec in allowed)
    ]
    evidence: dict[str, Any] = {
        "sources": fw.sources,
        "live": fw.live,
        "notes": fw.notes,
        "input_chains": [
            {"chain": a.label, "default": "drop" if a.default_drop else "accept", "where": a.default_where}
            for a in view.analyses
        ],
        "accepted": [o.describe() for o in view.openings][:50],
        "allowed_ports": [str(s) for s in allowed],
        "listening_non_loopback": [
            f"{s.port}/{s.proto} {s.address} {s.process or ''}".strip() for s in listening
        ][:50],
    }
    if not fw.sources:
        yield ctx.failed(
            HOST,
            "No host firewall ruleset was found (no live nftables/iptables ruleset, no /etc/nftables.conf or "
            "iptables rules file): every listening service is reachable"
            + (f" ({', '.join(unexpected[:8])})." if unexpected else "."),
            evidence,
            NFT_FIX,
        )
        return
    if not view.drop_chains:
        yield ctx.failed(
            HOST,
            "No input chain drops by default ("
            + (
                ", ".join(f"{a.label}: policy {a.chain.policy or 'none'}" for a in view.analyses)
                or "no input chain"
            )
            + "): traffic not explicitly refused reaches every service"
            + (f", e.g. {', '.join(unexpected[:8])}." if unexpected else "."),
            evidence,
            NFT_FIX,
        )
        return
    fails: list[str] = []
    for o in view.openings:
        ok, why = opening_allowed(o, allowed, vm_bridges)
        if not ok:
            fails.append(f"{o.describe()}: {why}")
    if fails:
        yield ctx.failed(
            HOST,
            "The firewall admits traffic no enabled service needs: " + "; ".join(fails[:8]) + ".",
            evidence,
            "Remove or narrow these accept rules (or, if a service truly needs the port, add it to "
            "firewall_allowed_ports in your profile, which the report lists as a deviation):\n"
            + "\n".join(f"  {f.split(': ', 1)[0]}" for f in fails[:8])
            + "\nA compliant input chain:\n"
            + NFT_FIX,
        )
        return
    if view.unclear:
        yield ctx.manual(
            HOST,
            "The input chain drops by default, but these accept rules use matches hvguard does not "
            "interpret: "
            + "; ".join(view.unclear[:6])
            + ". Evidence needed: what each admits, and that it is needed by an enabled service.",
            evidence,
        )
        return
    note = f" Listening but filtered: {', '.join(unexpected[:8])}." if unexpected else ""
    src = "The running ruleset" if fw.live else "The configured ruleset (" + ", ".join(fw.sources[:3]) + ")"
    yield ctx.passed(
        HOST,
        f"{src} drops input by default and admits only allowed ports ("
        + (", ".join(sorted({p for o in view.openings for p in o.ports})) or "none")
        + f").{note}",
        evidence,
    )
