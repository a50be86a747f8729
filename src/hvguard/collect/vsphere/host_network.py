"""A host's firewall and standard networking, from ``config.firewall``, ``config.network`` and
``config.virtualNicManagerInfo`` as plain data, into the facts' shapes (pure: no API calls)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hvguard.collect.vsphere.values import boolean, dig, integer, items, mapping, strings, text
from hvguard.facts import (
    Firewall,
    FirewallRuleset,
    HostNetwork,
    PhysicalNic,
    PortGroup,
    SecurityPolicy,
    Shaping,
    Teaming,
    VmkNic,
    VSwitch,
)


def firewall(info: Mapping[str, Any]) -> Firewall:
    """``HostFirewallInfo`` → :class:`Firewall`."""
    policy = mapping(info.get("defaultPolicy"))
    return Firewall(
        incoming_blocked=boolean(policy.get("incomingBlocked")),
        outgoing_blocked=boolean(policy.get("outgoingBlocked")),
        rulesets=[_ruleset(r) for r in items(info.get("ruleset"))],
    )


def _ruleset(r: Mapping[str, Any]) -> FirewallRuleset:
    allowed = mapping(r.get("allowedHosts"))
    networks = [
        f"{n.get('network')}/{n.get('prefixLength')}"
        for n in items(allowed.get("ipNetwork"))
        if n.get("network")
    ]
    rules = []
    for rule in items(r.get("rule")):
        port = f"{rule.get('port')}" + (f"-{rule['endPort']}" if integer(rule.get("endPort")) else "")
        rules.append(f"{rule.get('protocol')}/{port}/{rule.get('direction')}")
    return FirewallRuleset(
        key=str(r.get("key")),
        label=text(r.get("label")),
        enabled=boolean(r.get("enabled")),
        required=r.get("required") is True,
        user_configurable=boolean(r.get("userControllable")),
        all_ip=boolean(allowed.get("allIp")) if allowed else None,
        ip_addresses=strings(allowed.get("ipAddress")),
        ip_networks=networks,
        rules=rules,
    )


def security(policy: Any) -> SecurityPolicy | None:
    """``HostNetworkSecurityPolicy`` → :class:`SecurityPolicy` (None when absent)."""
    p = mapping(policy)
    if not p:
        return None
    return SecurityPolicy(
        allow_promiscuous=boolean(p.get("allowPromiscuous")),
        mac_changes=boolean(p.get("macChanges")),
        forged_transmits=boolean(p.get("forgedTransmits")),
    )


def shaping(policy: Any) -> Shaping | None:
    """``HostNetworkTrafficShapingPolicy`` → :class:`Shaping` (bits/s, bytes as the API gives them)."""
    p = mapping(policy)
    if not p:
        return None
    return Shaping(
        enabled=boolean(p.get("enabled")),
        average_bps=integer(p.get("averageBandwidth")),
        peak_bps=integer(p.get("peakBandwidth")),
        burst_bytes=integer(p.get("burstSize")),
    )


def teaming(policy: Any) -> Teaming | None:
    """``HostNicTeamingPolicy`` → :class:`Teaming` (None when absent)."""
    p = mapping(policy)
    if not p:
        return None
    order = mapping(p.get("nicOrder"))
    return Teaming(
        active=strings(order.get("activeNic")),
        standby=strings(order.get("standbyNic")),
        policy=text(p.get("policy")),
    )


def _pnic_name(key: str, names: Mapping[str, str]) -> str:
    """A vSwitch lists its NICs by key (``key-vim.host.PhysicalNic-vmnic0``): the device name."""
    return names.get(key) or key.rsplit("-", 1)[-1]


def network(info: Mapping[str, Any], nic_manager: Mapping[str, Any] | None) -> HostNetwork:
    """``HostNetworkInfo`` (+ ``HostVirtualNicManagerInfo`` for the services of each VMkernel NIC)."""
    pnics = items(info.get("pnic"))
    names = {str(p.get("key")): str(p.get("device")) for p in pnics if p.get("key") and p.get("device")}
    services: dict[str, list[str]] = {}
    for config in items(mapping(nic_manager).get("netConfig")):
        candidates = {str(c.get("key")): str(c.get("device")) for c in items(config.get("candidateVnic"))}
        for key in strings(config.get("selectedVnic")):
            device = candidates.get(key) or key.rsplit("-", 1)[-1]
            services.setdefault(device, []).append(str(config.get("nicType")))
    return HostNetwork(
        pnics=[
            PhysicalNic(device=str(p.get("device")), link_speed_mb=integer(dig(p, "linkSpeed.speedMb")))
            for p in pnics
        ],
        vswitches=[
            VSwitch(
                name=str(v.get("name")),
                pnics=[_pnic_name(k, names) for k in strings(v.get("pnic"))],
                teaming=teaming(dig(v, "spec.policy.nicTeaming")),
                security=security(dig(v, "spec.policy.security")),
                shaping=shaping(dig(v, "spec.policy.shapingPolicy")),
                mtu=integer(v.get("mtu")),
            )
            for v in items(info.get("vswitch"))
        ],
        portgroups=[_portgroup(p) for p in items(info.get("portgroup"))],
        vmknics=[
            VmkNic(
                device=str(n.get("device")),
                portgroup=text(n.get("portgroup"))
                or text(dig(n, "spec.distributedVirtualPort.portgroupKey")),
                ip=text(dig(n, "spec.ip.ipAddress")),
                netmask=text(dig(n, "spec.ip.subnetMask")),
                services=services.get(str(n.get("device")), []),
            )
            for n in items(info.get("vnic"))
        ],
    )


def _portgroup(p: Mapping[str, Any]) -> PortGroup:
    # The effective policy (the vSwitch's with this port group's overrides) when the server gives it.
    policy = mapping(p.get("computedPolicy")) or mapping(dig(p, "spec.policy"))
    return PortGroup(
        name=str(dig(p, "spec.name")),
        vswitch=text(dig(p, "spec.vswitchName")),
        vlan_id=integer(dig(p, "spec.vlanId")),
        teaming=teaming(policy.get("nicTeaming")),
        security=security(policy.get("security")),
        shaping=shaping(policy.get("shapingPolicy")),
    )
