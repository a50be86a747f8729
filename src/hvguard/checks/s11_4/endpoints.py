"""Checks for SS-009 11.4.2.

11.4.2 Administration only from defined endpoint networks and devices

Checks: ``admin_endpoints``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.s11_4.common import (
    known_libvirtd,
    libvirtd_conf,
)
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    Conf,
)
from hvguard.checks.support.subjects import host_access
from hvguard.facts import (
    FirewallFacts,
)
from hvguard.findings import Finding


def _firewall(ctx: CheckContext) -> FirewallFacts | None:
    host = ctx.host
    ops = host.operations if host is not None else None
    return ops.firewall if ops is not None else None


def _path_by_firewall(firewall: FirewallFacts | None, ports: list[int]) -> tuple[bool | None, str]:
    """Whether the firewall limits new connections to ``ports`` to defined sources."""
    if firewall is None:
        return None, "no firewall facts were collected"
    states = {p: ae.port_exposure(firewall, p) for p in ports}
    if any(e.state == "open" for e in states.values()):
        open_ports = [str(p) for p, e in states.items() if e.state == "open"]
        basis = "; ".join(b for e in states.values() if e.state == "open" for b in e.basis[:2])
        return False, f"the firewall admits port(s) {', '.join(open_ports)} from any source ({basis})"
    if any(e.state == "unknown" for e in states.values()):
        basis = "; ".join(b for e in states.values() if e.state == "unknown" for b in e.basis[:2])
        return (
            None,
            f"the firewall rules for port(s) {', '.join(map(str, ports))} cannot be interpreted ({basis})",
        )
    sources = sorted({s for e in states.values() for s in e.sources})
    if sources:
        return (
            True,
            f"the firewall admits port(s) {', '.join(map(str, ports))} only from {', '.join(sources[:8])}",
        )
    return True, f"the firewall drops port(s) {', '.join(map(str, ports))}"


@check(
    "11.4.2",
    id="host.admin-endpoints",
    reads=("host.access.sshd", "host.libvirtd_conf.listen_*", "host.operations.firewall"),
)
def admin_endpoints(ctx: CheckContext) -> Iterator[Finding]:
    """Administrative access only from approved endpoint networks/devices.

    Each remote administrative path must be limited to defined networks or devices: sshd (AllowUsers
    ``user@CIDR`` for every entry, a ``Match Address`` block refusing other networks, a ListenAddress on
    management addresses only, or firewall rules admitting its ports only from listed sources) and
    libvirt's own listeners when enabled (``tls_allowed_dn_list`` naming approved devices' certificates,
    a specific ``listen_addr``, or the firewall). Fail: a path open to any network (firewall facts show
    the port open from anywhere). Manual: a path whose restriction depends on facts not collected (no
    firewall facts) — the finding says which. "Approved laptops" beyond network and certificate identity
    (PAW/MDM records) is always attestation.
    """
    access = host_access(ctx)
    if access is None:
        yield ctx.manual(
            HOST,
            "Evidence needed: the list of approved administrative endpoints/networks and the controls "
            "enforcing it — firewall rules accepting ports 22 and 16514 only from management CIDRs, sshd "
            "AllowUsers user@CIDR or Match Address blocks, libvirt tls_allowed_dn_list naming the approved "
            "devices' certificates — plus PAW/MDM records for the approved laptops.",
            known_libvirtd(ctx.host, "listen_addr", "listen_tcp", "listen_tls", "tls_allowed_dn_list"),
        )
        return
    firewall = _firewall(ctx)
    open_paths: list[str] = []
    unknown: list[str] = []
    ok: list[str] = []
    fixes: list[str] = []
    evidence: dict[str, Any] = {}
    sshd = access.sshd
    if sshd is not None and sshd.installed is not False and sshd.service_enabled is not False:
        ports = [int(p) for p in ae.sshd_values(sshd, "port") if p.isdigit()] or [22]
        own = ae.sshd_network_restriction(sshd)
        evidence["sshd"] = {
            "allowusers": ae.sshd_values(sshd, "allowusers"),
            "listenaddress": ae.listen_addresses(sshd),
            "ports": ports,
            "match_blocks": [f"Match {b.text} ({ae.loc(b.file, b.line)})" for b in sshd.matches],
        }
        if own is not None:
            ok.append(f"SSH: {own}")
        else:
            state, why = _path_by_firewall(firewall, ports)
            (ok if state else open_paths if state is False else unknown).append(f"SSH: {why}")
            if state is not True:
                fixes.append(
                    f"nft add rule inet filter input tcp dport {ports[0]} ip saddr != 10.0.5.0/24 drop   "
                    "(your management CIDR), or in sshd_config: AllowUsers admin1@10.0.5.0/24 …, or "
                    "Match Address *,!10.0.5.0/24 / DenyUsers *"
                )
    lconf: Conf | None = None
    try:
        lconf = libvirtd_conf(ctx)
    except CannotEvaluate as signal:  # the sshd path is judged all the same
        yield ctx.error_for(signal)
    if lconf is not None:
        listen_tcp = lconf.get("listen_tcp")
        listen_tls = lconf.get("listen_tls")
        listen_addr = lconf.get("listen_addr")
        dn_list = lconf.get("tls_allowed_dn_list")
        evidence.update({s.key: s.evidence() for s in (listen_tcp, listen_tls, listen_addr, dn_list)})
        wildcard = ("0.0.0.0", "::", "*")  # noqa: S104 (recognising wildcards, not binding)
        specific_addr = listen_addr.explicit and str(listen_addr.value) not in wildcard
        for name, setting, port in (("TCP", listen_tcp, 16509), ("TLS", listen_tls, 16514)):
            if not (setting.explicit and setting.as_int() != 0):
                continue
            if specific_addr:
                ok.append(f"libvirt {name}: listens only on {listen_addr.value} ({listen_addr.source})")
                continue
            if name == "TLS" and dn_list.explicit and "*" not in dn_list.as_list():
                ok.append(
                    f"libvirt TLS: only the certificates in tls_allowed_dn_list ({dn_list.source}) connect"
                )
                continue
            state, why = _path_by_firewall(firewall, [port])
            (ok if state else open_paths if state is False else unknown).append(f"libvirt {name}: {why}")
            if state is not True:
                if name == "TLS":
                    dn_example = '[ "C=GB,O=Example,OU=hv-admins,CN=*" ]'
                    fixes.append(f"{dn_list.where()}: tls_allowed_dn_list = {dn_example}")
                fixes.append(f'{listen_addr.where()}: listen_addr = "MANAGEMENT-IP"  (or filter port {port})')
    evidence["paths"] = {"restricted": ok, "open": open_paths, "undetermined": unknown}
    if firewall is not None:
        evidence["firewall_sources"] = firewall.sources
    if open_paths:
        yield ctx.failed(
            HOST,
            "Administrative access is not limited to defined networks: " + "; ".join(open_paths) + ".",
            evidence,
            "\n".join(dict.fromkeys(fixes)),
        )
        return
    if unknown:
        yield ctx.manual(
            HOST,
            "These administrative paths are not limited by their own configuration and hvguard cannot tell "
            "whether the firewall limits them: "
            + "; ".join(unknown)
            + ". Evidence needed: the firewall rules admitting these ports only from the management networks "
            "(nft list ruleset / iptables-save), plus PAW/MDM records for the approved devices.",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        (
            "Every remote administrative path is limited to defined networks or devices: "
            + "; ".join(ok)
            + "."
            if ok
            else "No remote administrative path is enabled (sshd is off and libvirt does not listen)."
        )
        + " Which laptops/desktops are approved (PAW/MDM records) remains attestation.",
        evidence,
    )
