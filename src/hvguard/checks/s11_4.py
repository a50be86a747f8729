"""Checks for SS-009 section 11.4: administration of the hypervisor host and software (KVM/libvirt).

From today's facts hvguard decides libvirt's half of remote console access (11.4.6), flags settings that
prove a measure unmet (unauthenticated libvirt admin access for 11.4.3, libvirt daemon logs kept out of
syslog for 11.4.10), and from the host's operations facts (:mod:`hvguard.facts.operations`) decides audit
log protection (11.4.4), patch state (11.4.8), the host firewall (11.4.9), log transport, permissions
and sealing (11.4.10), remote logging (11.4.11), management-interface isolation (11.4.12) and uplink
redundancy (11.4.13). From the access-control facts (:mod:`hvguard.facts.access`) it decides directory
integration (11.4.1), administration from defined networks (11.4.2, with the firewall facts), SSH and
sudo MFA (11.4.3) and sshd's root and allow-list settings (11.4.6). What facts cannot show is reported
``manual`` with the evidence an auditor needs.
libvirtd.conf defaults are listed in :mod:`hvguard.checks.s11_2` (source: libvirt
``src/remote/libvirtd.conf.in``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    MODULAR_NOTE,
    Conf,
    Setting,
    fix_line,
    load_conf,
    restart_note,
)
from hvguard.checks.support.ops import (
    ChainAnalysis,
    Opening,
    PortSpec,
    analyse_input,
    days,
    epoch_of,
    is_loopback,
    is_wildcard,
    mode_text,
    opening_allowed,
    ops_group,
    physical_paths,
    port_range,
    require_well_formed,
    stat_evidence,
    vm_networks,
)
from hvguard.facts import (
    AccessFacts,
    FileStat,
    FirewallFacts,
    HostFacts,
    LogForward,
    LoggingFacts,
    NetInterface,
    NetworkFacts,
    PatchFacts,
)
from hvguard.findings import Finding

# --------------------------------------------------------------------------------------------------------
# Helpers


def _libvirtd(ctx: CheckContext) -> Conf:
    """libvirtd.conf with defaults; raises :class:`CannotEvaluate` (no host facts, malformed or unread
    file)."""
    host = ctx.host
    if host is None:
        raise CannotEvaluate(HOST, "libvirtd.conf settings", "host")
    return load_conf(ctx, host, "libvirtd_conf")


def _known_libvirtd(host: HostFacts | None, *keys: str) -> dict[str, Any]:
    """Evidence of libvirtd.conf keys when the file is usable (for manual findings; never decides)."""
    if host is None:
        return {"libvirtd.conf": "not collected (no host facts for this target)"}
    if host.libvirtd_conf.error is not None:
        return {"libvirtd.conf": f"unusable: {host.libvirtd_conf.error}"}
    conf = Conf(host.libvirtd_conf, "libvirtd_conf")
    return {k: conf.written(k).evidence() for k in keys}


def _vm_networks(ctx: CheckContext) -> list[str]:
    """The networks/bridges VM interfaces attach to (``type:source``), sorted and de-duplicated."""
    hv = ctx.hypervisor
    if hv is None:
        return []
    seen = {f"{i.type or '?'}:{i.source or '?'}" for vm in hv.vms for i in vm.interfaces}
    return sorted(seen)[:50]


def _tls_active(listen_tls: Setting) -> bool:
    """Whether the TLS listener counts: explicitly on, or the default (on whenever libvirtd runs --listen)."""
    return listen_tls.as_int() != 0


# --------------------------------------------------------------------------------------------------------
# 11.4.1 Directory integration


def _access(ctx: CheckContext) -> AccessFacts | None:
    """The host's access-control facts (None for targets or bundles without them)."""
    return ctx.host.access if ctx.host is not None else None


def _parse_errors(ctx: CheckContext, errors: list[str], what: str) -> Iterator[Finding]:
    """One ``error`` per malformed file entry (``FILE line N: reason``)."""
    for error in errors:
        yield ctx.error(HOST, f"{what} ({error})", evidence={"parse_error": error})


#: sssd id providers that take accounts from an enterprise directory, and auth providers that use Kerberos.
DIRECTORY_PROVIDERS = frozenset({"ad", "ipa", "ldap"})
KERBEROS_PROVIDERS = frozenset({"ad", "ipa", "krb5"})


@check(
    "11.4.1",
    id="host.directory-integration",
    reads=("host.access.directory", "host.access.accounts"),
)
def directory_integration(ctx: CheckContext) -> Iterator[Finding]:
    """Host accounts come from the enterprise directory ("if possible … must").

    Pass: an enabled sssd domain with ``id_provider`` ad/ipa/ldap and nsswitch ``passwd`` querying
    ``sss`` (Kerberos when ``auth_provider`` — by default the id provider — is ad/ipa/krb5; an ldap-only
    domain passes with a note). Fail: no directory integration at all; sssd configured but nsswitch not
    using it (or the reverse); sssd.conf readable by others (sssd refuses to start). Manual: winbind or
    nslcd instead of sssd. "If possible": where integration is impossible, record an exception. Remaining
    local login accounts are listed (break-glass only).
    """
    host = ctx.host
    access = _access(ctx)
    if access is None or access.directory is None:
        if access is not None and ctx.problems("host.access.directory"):
            yield ctx.error(HOST, "directory integration (sssd, krb5, nsswitch)", "host.access.directory")
            return
        yield ctx.manual(
            HOST,
            "Evidence needed: the host's directory join (`realm list` showing a kerberos-member realm, "
            "/etc/sssd/sssd.conf id_provider = ad|ipa|ldap, nsswitch passwd: sss, /etc/krb5.keytab), admin "
            "logins granted to directory groups (simple_allow_groups / AllowGroups), and the local accounts "
            "that remain (break-glass only) — or the risk-register exception explaining why integration is "
            "not possible.",
            {
                "hostname": host.hostname if host else None,
                "os": f"{host.os_id} {host.os_version}" if host else None,
            },
        )
        return
    d = access.directory
    yield from _parse_errors(ctx, d.errors, "a directory-integration file")
    domains = [x for x in d.sssd_domains if x.enabled]
    directory = [x for x in domains if (x.id_provider or "").lower() in DIRECTORY_PROVIDERS]
    passwd = d.nsswitch.get("passwd")
    sources = passwd.sources if passwd is not None else []
    local = [
        u.name
        for u in (access.accounts.users if access.accounts else [])
        if u.login_shell and u.uid != 0 and u.uid >= 1000
    ]
    evidence: dict[str, Any] = {
        "sssd_domains": [
            {
                "name": x.name,
                "where": ae.loc(x.file, x.line),
                "enabled": x.enabled,
                "id_provider": x.id_provider,
                "auth_provider": x.auth_provider,
                "access_provider": x.access_provider,
                "realm": x.realm,
                "simple_allow_groups": x.simple_allow_groups,
            }
            for x in d.sssd_domains
        ],
        "nsswitch_passwd": {"sources": sources, "where": ae.loc(passwd.file, passwd.line)}
        if passwd
        else None,
        "krb5_default_realm": d.krb5_default_realm,
        "krb5_keytab": {"present": d.keytab_present, "size": d.keytab_size},
        "sssd_conf_mode": d.sssd_mode,
        "local_login_accounts": local,
    }
    fails: list[str] = []
    fixes: list[str] = []
    if d.sssd_mode is not None and int(d.sssd_mode, 8) & 0o077:
        fails.append(f"{d.sssd_file} has mode {d.sssd_mode}: sssd refuses a configuration others can read")
        fixes.append(f"chmod 0600 {d.sssd_file}; chown root:root {d.sssd_file}")
    if directory and "sss" not in sources:
        fails.append(
            "sssd has a directory domain ("
            + ", ".join(f"{x.name} at {ae.loc(x.file, x.line)}" for x in directory)
            + ") but nsswitch passwd does not query sss: directory accounts cannot log in"
        )
        fixes.append(
            "/etc/nsswitch.conf: passwd: files sss / group: files sss (Debian: pam-auth-update --enable sss; "
            "RHEL: authselect select sssd)"
        )
    elif "sss" in sources and not directory:
        fails.append(
            "nsswitch passwd queries sss but sssd has no enabled ad/ipa/ldap domain: no directory accounts"
        )
        fixes.append("realm join --user=ADMIN AD.EXAMPLE.COM (writes the sssd domain and the keytab)")
    if fails:
        yield ctx.failed(
            HOST, "Directory integration is broken: " + "; ".join(fails) + ".", evidence, "\n".join(fixes)
        )
        return
    remaining = ""
    if local:
        remaining = f" Local login accounts besides root remain: {', '.join(local[:10])} — break-glass."
    if directory:
        kerberos = [
            x for x in directory if (x.auth_provider or x.id_provider or "").lower() in KERBEROS_PROVIDERS
        ]
        names = ", ".join(f"{x.name} ({x.id_provider})" for x in directory)
        access_note = "; ".join(
            f"{x.name}: access_provider {x.access_provider or 'default'}"
            + (f", simple_allow_groups {', '.join(x.simple_allow_groups)}" if x.simple_allow_groups else "")
            for x in directory
        )
        auth = (
            "authentication by Kerberos"
            + (f" (realm {d.krb5_default_realm})" if d.krb5_default_realm else "")
            + ("; host keytab present" if d.keytab_present else "")
            if kerberos
            else "authentication by LDAP bind (no Kerberos auth_provider: prefer ad/ipa/krb5)"
        )
        yield ctx.passed(
            HOST,
            f"Accounts come from the enterprise directory through sssd ({names}; nsswitch passwd: "
            f"{' '.join(sources)}), {auth}; {access_note}.{remaining}",
            evidence,
        )
        return
    other = [s for s in sources if s in ("winbind", "ldap")]
    if other:
        yield ctx.manual(
            HOST,
            f"nsswitch passwd uses {', '.join(other)} (not sssd). Evidence needed: the join (`wbinfo -t` for "
            "winbind, /etc/nslcd.conf for nslcd with TLS), Kerberos authentication in PAM, and admin logins "
            "restricted to directory groups." + remaining,
            evidence,
        )
        return
    yield ctx.failed(
        HOST,
        "Host accounts are not integrated with an enterprise directory: no sssd directory domain and "
        f"nsswitch passwd uses only {' '.join(sources) or 'files'}. Joiners/leavers and password policy "
        "are handled on this host alone." + remaining,
        evidence,
        "realm join --user=ADMIN AD.EXAMPLE.COM   (realmd: sssd domain with id_provider = ad, keytab, "
        "nsswitch/PAM)\nthen in /etc/sssd/sssd.conf [domain/AD.EXAMPLE.COM]: access_provider = simple, "
        "simple_allow_groups = hv-admins\nIf integration is not possible, record an exception with its "
        "reason.",
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.2 Administration only from defined endpoints


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
    access = _access(ctx)
    if access is None:
        yield ctx.manual(
            HOST,
            "Evidence needed: the list of approved administrative endpoints/networks and the controls "
            "enforcing it — firewall rules accepting ports 22 and 16514 only from management CIDRs, sshd "
            "AllowUsers user@CIDR or Match Address blocks, libvirt tls_allowed_dn_list naming the approved "
            "devices' certificates — plus PAW/MDM records for the approved laptops.",
            _known_libvirtd(ctx.host, "listen_addr", "listen_tcp", "listen_tls", "tls_allowed_dn_list"),
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
        lconf = _libvirtd(ctx)
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


# --------------------------------------------------------------------------------------------------------
# 11.4.3 Multi-factor authentication


@check("11.4.3", id="host.admin-mfa", reads=("host.libvirtd_conf",))
def admin_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Every administrative path requires two factors.

    Fail: a libvirt admin path with no authentication at all — ``listen_tcp = 1`` with ``auth_tcp =
    "none"``, or a TLS listener with ``tls_no_verify_certificate = 1`` and ``auth_tls = "none"``. Otherwise
    manual: sshd AuthenticationMethods and PAM (later collectors) decide the rest.
    """
    evidence_needed = (
        "Evidence needed: every administrative path enforces two factors — sshd -T authenticationmethods "
        "publickey,keyboard-interactive with pam_u2f/pam_oath in /etc/pam.d/sshd, sudo's PAM stack likewise, "
        "libvirt TLS client certificates on hardware tokens plus SASL/GSSAPI, web UIs behind an MFA IdP, and "
        "out-of-band consoles (iDRAC/iLO) with MFA."
    )
    try:
        lconf = _libvirtd(ctx)
    except CannotEvaluate as signal:  # the attestation part stands whatever libvirtd.conf says
        yield ctx.error_for(signal)
        yield ctx.manual(HOST, evidence_needed, {"libvirtd.conf": "not evaluated (see the error finding)"})
        return
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    auth_tls = lconf.get("auth_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    evidence = {s.key: s.evidence() for s in (listen_tcp, auth_tcp, listen_tls, auth_tls, no_verify)}
    fails: list[str] = []
    fixes: list[str] = []
    if listen_tcp.as_int() != 0 and auth_tcp.as_str() == "none":
        fails.append('libvirt TCP (listen_tcp = 1, auth_tcp = "none") admits administrators with no factor')
        fixes.append(fix_line(listen_tcp, 0))
    if _tls_active(listen_tls) and no_verify.as_int() != 0 and auth_tls.as_str() == "none":
        fails.append(
            'libvirt TLS with tls_no_verify_certificate = 1 and auth_tls = "none" admits administrators '
            "with no factor" + ("" if listen_tls.explicit else " whenever libvirtd listens (--listen)")
        )
        fixes.append(fix_line(no_verify, 0))
    if fails:
        yield ctx.failed(
            HOST,
            "An administrative path needs no authentication at all: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if _access(ctx) is None:
        yield ctx.manual(HOST, evidence_needed, evidence)
        return
    # SSH and sudo are decided by host.sshd-mfa and host.sudo-mfa; what remains is libvirt's own listeners.
    if listen_tls.explicit and not _tls_active(listen_tls) and listen_tcp.as_int() == 0:
        yield ctx.passed(
            HOST,
            "libvirt has no remote listener of its own (listen_tcp = 0, listen_tls = 0): remote VM "
            "management goes through SSH (qemu+ssh), decided by host.sshd-mfa. Out-of-band consoles (BMC: "
            "iDRAC/iLO) are outside the host: attest their MFA separately.",
            evidence,
        )
        return
    yield ctx.manual(
        HOST,
        "libvirt's own remote listener "
        + ("is on" if listen_tls.explicit or listen_tcp.as_int() else "may run (listen_tls defaults to 1)")
        + ": a TLS client certificate or a SASL login is one factor. Evidence needed: client certificates on "
        'hardware tokens with a PIN plus auth_tls = "sasl" (GSSAPI), or listen_tcp = 0 and listen_tls = 0 '
        "so management goes through SSH; and MFA on out-of-band consoles (BMC).",
        evidence,
    )


@check("11.4.3", id="host.sshd-mfa", reads=("host.access.sshd", "host.access.pam.sshd"))
def sshd_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Every SSH login needs two factors.

    Pass: every AuthenticationMethods list (global and in every Match block) needs two distinct methods
    (``publickey,keyboard-interactive``, ``publickey,password`` …), or a single keyboard-interactive /
    password method whose PAM stack (UsePAM yes) enforces a second factor (pam_u2f, pam_google_authenticator,
    pam_oath, pam_yubico, pam_duo, smartcard) without ``nullok`` and without an earlier rule that can
    succeed first. Fail: ``AuthenticationMethods any`` with a single-factor method enabled (public key
    alone, password alone), or a single-factor list. Not applicable when sshd is not installed.
    """
    access = _access(ctx)
    if access is None:
        return
    sshd = access.sshd
    if sshd is None:
        if ctx.problems("host.access.sshd"):
            yield ctx.error(HOST, "sshd's configuration", "host.access.sshd")
        return
    if sshd.installed is False:
        yield ctx.not_applicable(HOST, "sshd is not installed: there is no SSH administrative path")
        return
    yield from _parse_errors(ctx, sshd.errors, "an sshd configuration line; sshd refuses to start with it")
    stack = access.pam.get("sshd")
    if stack is not None:
        yield from _parse_errors(ctx, stack.errors, "a PAM rule of sshd (PAM may skip or refuse it)")
    result = ae.ssh_mfa(sshd, stack)
    if result.gaps:
        yield ctx.failed(
            HOST,
            "SSH logins do not all need two factors: " + "; ".join(result.gaps) + ".",
            result.evidence,
            "\n".join(
                [
                    ae.sshd_fix(
                        sshd, "authenticationmethods", "AuthenticationMethods publickey,keyboard-interactive"
                    ),
                    ae.sshd_fix(sshd, "kbdinteractiveauthentication", "KbdInteractiveAuthentication yes"),
                    ae.sshd_fix(sshd, "usepam", "UsePAM yes"),
                    "/etc/pam.d/sshd: auth required pam_u2f.so cue   (or pam_google_authenticator.so, "
                    "without nullok); remove AuthenticationMethods overrides in Match blocks that weaken it",
                    "Check: sshd -t && sshd -T | grep -i authenticationmethods; then systemctl reload ssh",
                ]
            ),
        )
        return
    yield ctx.passed(
        HOST,
        "Every SSH login needs two factors (AuthenticationMethods "
        + result.evidence["authenticationmethods"]["value"]
        + (
            f"; PAM second factor: {', '.join(result.evidence['pam_sshd_second_factors'])}"
            if isinstance(result.evidence["pam_sshd_second_factors"], list)
            else ""
        )
        + ").",
        result.evidence,
    )


@check(
    "11.4.3",
    id="host.sudo-mfa",
    reads=("host.access.sudo", "host.access.pam.sudo"),
)
def sudo_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Privilege elevation through sudo needs two factors.

    Pass: sudo's PAM stack enforces a second factor (as for SSH) and no rule skips authentication
    (``NOPASSWD``) or turns it off (``Defaults !authenticate``). Fail otherwise, naming the file and line.
    Not applicable when sudo grants nothing beyond root.
    """
    access = _access(ctx)
    if access is None:
        return
    sudo = access.sudo
    if sudo is None:
        if ctx.problems("host.access.sudo"):
            yield ctx.error(HOST, "the sudo configuration", "host.access.sudo")
        return
    grants = [r for r in sudo.rules if r.principals != ["root"]]
    if not sudo.present or not grants:
        yield ctx.not_applicable(HOST, "sudo grants nothing beyond root: it is not an administrative path")
        return
    stack = access.pam.get("sudo")
    if stack is not None:
        yield from _parse_errors(ctx, stack.errors, "a PAM rule of sudo (PAM may skip or refuse it)")
    mandatory, notes = ae.pam_second_factor(stack)
    gaps: list[str] = []
    fixes: list[str] = []
    for rule in grants:
        if rule.nopasswd:
            gaps.append(
                f"{ae.loc(rule.file, rule.line)}: NOPASSWD for {rule.written} — no authentication at all"
            )
            fixes.append(f"visudo -f {rule.file}: line {rule.line} — remove NOPASSWD:")
    for default in sudo.defaults:
        if "!authenticate" in default.text.replace(" ", ""):
            gaps.append(f"{ae.loc(default.file, default.line)}: {default.text} turns authentication off")
            fixes.append(f"visudo -f {default.file}: line {default.line} — remove !authenticate")
    if not mandatory:
        gaps.append(
            f"sudo's PAM stack ({stack.file if stack else '/etc/pam.d/sudo'}) has no enforced second factor"
            + (f" ({'; '.join(notes)})" if notes else "")
        )
        fixes.append("/etc/pam.d/sudo: auth required pam_u2f.so cue   (before @include common-auth)")
    evidence = {
        "pam_sudo_second_factors": notes or "none",
        "grants": [
            {"where": ae.loc(r.file, r.line), "users": r.principals, "nopasswd": r.nopasswd} for r in grants
        ][:30],
    }
    if gaps:
        yield ctx.failed(
            HOST,
            "sudo does not require two factors: " + "; ".join(gaps[:10]) + ".",
            evidence,
            "\n".join(fixes),
        )
        return
    yield ctx.passed(HOST, "sudo requires two factors: " + "; ".join(notes) + ".", evidence)


# --------------------------------------------------------------------------------------------------------
# 11.4.4 Administrators cannot tamper with audit logs

AUDIT_FINALIZE_FIX = (
    'echo "-e 2" > /etc/audit/rules.d/99-finalize.rules && augenrules --load   (the rules become '
    "immutable; changing them then needs a reboot)"
)
AUDIT_REMOTE_FIX = (
    "Forward audit records off the host in real time, to a server run by another team: "
    "/etc/audit/plugins.d/au-remote.conf: active = yes; /etc/audit/audisp-remote.conf: remote_server = "
    "LOGHOST, port = 60, transport = KRB5 (GSSAPI-encrypted) — or active = yes in "
    "/etc/audit/plugins.d/syslog.conf with rsyslog forwarding over TLS (see 11.4.10)."
)


def _loose_bits(st: FileStat, *, directory: bool) -> list[str]:
    """What is wrong with a log file's or log directory's owner and mode (empty when fine)."""
    out: list[str] = []
    if st.mode is None:
        return out
    if st.uid not in (0, None):
        out.append(f"{st.path} is owned by {st.owner} (not root)")
    if st.mode & 0o022:
        out.append(f"{st.path} mode {mode_text(st.mode)} lets group/other write")
    if st.mode & 0o007:
        out.append(f"{st.path} mode {mode_text(st.mode)} gives 'other' access")
    if st.has_acl:
        out.append(f"{st.path} carries a POSIX ACL that may widen access (getfacl)")
    return out


def _remote_log_forwards(logging: LoggingFacts) -> list[LogForward]:
    return [f for f in logging.forwards if f.target and not _is_local_target(f.target)]


def _is_local_target(target: str) -> bool:
    """True for log targets on this host (localhost, 127.0.0.0/8, ::1)."""
    host = target.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.lower() in ("localhost", "localhost.localdomain", "") or is_loopback(host)


def _audit_forwarded(logging: LoggingFacts) -> tuple[bool, str]:
    """Whether audit records leave the host, and how."""
    audit = logging.audit
    remote = _remote_log_forwards(logging)
    if audit.remote_plugin_active and audit.remote_server is not None:
        return True, f"audisp-remote to {audit.remote_server.value} ({audit.remote_server.where()})"
    syslog_fwd = [f for f in remote if f.daemon in ("rsyslog", "syslog-ng")]
    if audit.syslog_plugin_active and syslog_fwd:
        return True, f"audisp syslog plugin → {syslog_fwd[0].daemon} forward to {syslog_fwd[0].target}"
    if any(p.startswith(posixpath.dirname(audit.log_file)) for p in logging.rsyslog_imfile) and syslog_fwd:
        return True, f"rsyslog imfile reads {audit.log_file} → forward to {syslog_fwd[0].target}"
    return False, "no audisp-remote, audisp syslog plugin or rsyslog imfile feeding a remote forward"


def _admins_with_all(host: HostFacts) -> list[str] | None:
    """sudoers grants of ALL commands to non-root principals (None when sudoers was not collected)."""
    access = host.access
    if access is None or access.sudo is None:
        return None
    out = []
    for rule in access.sudo.rules:
        if rule.all_commands:
            who = [p for p in rule.principals if p not in ("root", "#0")]
            if who:
                out.append(f"{', '.join(who)} ({rule.file}:{rule.line})")
    return out


@check(
    "11.4.4",
    id="host.audit-log-protection",
    reads=(
        "host.libvirtd_conf.audit_level",
        "host.operations.logging.audit",
        "host.operations.logging.forwards",
        "host.access.sudo.rules",
    ),
)
def audit_log_protection(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor admins cannot modify, delete or disable the audit logs.

    Fail: libvirtd.conf ``audit_level = 0``; auditd absent; the effective audit rules do not end
    immutable (``-e 2``, augenrules order) or the running kernel is not (``auditctl -s`` enabled ≠ 2);
    the audit log directory or files are not root-only (no group/other write, no other access); or
    records are not copied off the host in real time (audisp-remote, or the audisp syslog plugin / rsyslog
    imfile feeding a remote forward). With sudoers collected, administrators holding ``ALL`` are listed:
    they can still stop auditd or edit local files, so the off-host copy is what keeps the record.
    """
    lconf = _libvirtd(ctx)
    level = lconf.get("audit_level")
    logging: LoggingFacts = ops_group(ctx, "logging", "auditd rules, audit log permissions and forwarding")
    audit = logging.audit
    require_well_formed("auditd configuration", audit.issues)
    host = ctx.host
    assert host is not None
    fails: list[str] = []
    fixes: list[str] = []
    evidence: dict[str, Any] = {
        "audit_level": level.evidence(),
        "auditd_installed": audit.installed,
        "rules": audit.rules_source,
        "enable_flag": {"value": audit.enable_flag, "source": audit.enable_flag_at},
        "auditctl_enabled": audit.live_enabled if audit.live_enabled is not None else audit.live_note,
        "log_dir": stat_evidence(audit.log_dir) if audit.log_dir and audit.log_dir.exists else None,
        "log_files": [stat_evidence(f) for f in audit.log_files[:5]],
    }
    if level.as_int() == 0:
        fails.append("libvirt's hypervisor audit records are disabled (audit_level = 0)")
        fixes.append(f"{fix_line(level, 2)}  (2: audit, and refuse to start if host auditing is off)")
    if not audit.installed:
        fails.append("auditd is not installed: the host keeps no audit trail an administrator cannot edit")
        fixes.append("apt-get install auditd audispd-plugins   (dnf install audit on RHEL)")
    else:
        if audit.enable_flag != 2:
            where = audit.enable_flag_at or audit.rules_source or "no audit rules"
            fails.append(
                f"the audit rules are not immutable (last -e is {audit.enable_flag} at {where}; "
                "-e 2 needed): "
                "root can delete rules or disable auditing at run time"
            )
            fixes.append(AUDIT_FINALIZE_FIX)
        elif audit.live_enabled is not None and audit.live_enabled != 2:
            fails.append(
                f"-e 2 is configured ({audit.enable_flag_at}) but the running kernel reports enabled "
                f"{audit.live_enabled}: the rules were not loaded (augenrules --load) or were changed since"
            )
            fixes.append("augenrules --load, then reboot so the immutable rule set is the one running")
        loose = []
        if audit.log_dir is not None and audit.log_dir.exists:
            loose += _loose_bits(audit.log_dir, directory=True)
        for f in audit.log_files:
            loose += _loose_bits(f, directory=False)
        if loose:
            fails.append("audit logs are not root-only: " + "; ".join(loose[:5]))
            fixes.append(
                f"chown root:root {posixpath.dirname(audit.log_file)} && chmod 0700 "
                f"{posixpath.dirname(audit.log_file)} && chmod 0600 {audit.log_file}*   (and log_group = root"
                " in /etc/audit/auditd.conf)"
            )
        forwarded, how = _audit_forwarded(logging)
        evidence["off_host_copy"] = how
        if not forwarded:
            fails.append(f"audit records are not copied off the host ({how}): local root can erase them")
            fixes.append(AUDIT_REMOTE_FIX)
    admins = _admins_with_all(host)
    evidence["sudo_all_grants"] = admins if admins is not None else "not collected"
    if fails:
        yield ctx.failed(
            HOST,
            "Hypervisor administrators can modify, delete or disable audit records: "
            + "; ".join(fails)
            + ".",
            evidence,
            "\n".join([*fixes, restart_note() if level.as_int() == 0 else ""]).strip(),
        )
        return
    note = ""
    if admins:
        note = (
            f" sudo grants ALL to {'; '.join(admins[:5])}: they can still stop auditd (logged) or edit local "
            "files until reboot rules apply, so the off-host copy is the record of custody."
        )
    yield ctx.passed(
        HOST,
        "Audit rules are immutable (-e 2), the audit logs are root-only, records are copied off the host "
        f"({evidence['off_host_copy']}) and libvirt auditing is on.{note}",
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.5 Separation of hypervisor credentials


@check("11.4.5", id="host.admin-credential-separation", reads=("host.access",))
def admin_credential_separation(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor credentials give no access to guest applications or data — attestation, with the
    hypervisor administration groups and accounts hvguard found named in the evidence."""
    access = _access(ctx)
    evidence: dict[str, Any] = {"directory_groups": "not collected (needs directory access)"}
    groups: set[str] = set()
    if access is not None:
        if access.accounts is not None:
            logins = {u.name for u in access.accounts.users if u.login_shell}
            for g in access.accounts.groups:
                if g.privileged and logins & {*g.members, *g.primary_members}:
                    groups.add(g.name)
        if access.sudo is not None:
            groups |= {
                p.lstrip("!%:")
                for r in access.sudo.rules
                for p in r.principals
                if p.lstrip("!").startswith("%")
            }
        if access.polkit is not None:
            groups |= {g.value for _, r in ae.libvirt_rules(access) for g in r.groups}
        if access.sshd is not None:
            groups |= set(ae.sshd_values(access.sshd, "allowgroups"))
        if access.directory is not None:
            groups |= {g for x in access.directory.sssd_domains for g in x.simple_allow_groups}
        evidence["hypervisor_admin_groups"] = sorted(groups)
        evidence["hypervisor_admin_accounts"] = sorted(ae.direct_access(access))
    named = f" (found here: {', '.join(sorted(groups)[:15])})" if groups else ""
    yield ctx.manual(
        HOST,
        "Evidence needed: a directory report showing that the hypervisor administrator identities and groups"
        f"{named} have no membership in guest OS, application or data administrator groups (intersection "
        "empty), and that hypervisor admins hold no guest credentials (no shared passwords, no SSH keys into "
        "the guests).",
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.6 Remote console access: deny, deny root, allow-list

_ROOT_CN = re.compile(r"(^|,)\s*CN\s*=\s*root\s*(,|$)", re.IGNORECASE)


def _sasl_problems(sasl_list: Setting) -> list[str]:
    if not sasl_list.explicit:
        return ["sasl_allowed_username_list is unset: every SASL account may connect"]
    names = [n.strip() for n in sasl_list.as_list()]
    out: list[str] = []
    if "*" in names:
        out.append("sasl_allowed_username_list contains '*': every account may connect")
    if any(n.split("@")[0] == "root" for n in names):
        out.append("sasl_allowed_username_list admits root")
    return out


def _dn_problems(dn_list: Setting) -> list[str]:
    if not dn_list.explicit:
        return ["tls_allowed_dn_list is unset: any certificate signed by the CA is accepted"]
    dns = [n.strip() for n in dn_list.as_list()]
    out: list[str] = []
    if "*" in dns:
        out.append("tls_allowed_dn_list contains '*': every certificate is accepted")
    if any(_ROOT_CN.search(d) for d in dns):
        out.append("tls_allowed_dn_list admits a CN=root certificate")
    return out


@check(
    "11.4.6",
    id="kvm.libvirt-remote-access",
    reads=("host.libvirtd_conf.listen_*", "host.libvirtd_conf.auth_*", "host.libvirtd_conf.*_allowed_*"),
)
def libvirt_remote_access(ctx: CheckContext) -> Iterator[Finding]:
    """libvirt's remote management listener can be denied, keeps root out and admits only listed admins.

    Pass: no remote listener (``listen_tcp = 0`` and ``listen_tls = 0``), or every enabled listener
    authenticates and restricts to a list — TLS: client certificates verified and ``tls_allowed_dn_list``
    set (no '*', no CN=root); SASL (TCP, or TLS with auth_tls sasl): ``sasl_allowed_username_list`` set (no
    '*', no root). Fail: an enabled listener without authentication or without the allow-list. Manual: the
    default ``listen_tls = 1`` without a DN list — it takes effect only with ``--listen``/socket activation,
    which is not collected. The sshd half is ``host.sshd-remote-access``. Source: libvirtd.conf.in.
    """
    lconf = _libvirtd(ctx)
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    auth_tls = lconf.get("auth_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    dn_list = lconf.get("tls_allowed_dn_list")
    sasl_list = lconf.get("sasl_allowed_username_list")
    evidence: dict[str, Any] = {
        s.key: s.evidence()
        for s in (listen_tcp, auth_tcp, listen_tls, auth_tls, no_verify, dn_list, sasl_list)
    }
    evidence["note"] = MODULAR_NOTE
    fails: list[str] = []
    fixes: list[str] = []
    manual: list[str] = []
    tcp_on = listen_tcp.as_int() != 0
    if tcp_on:
        if auth_tcp.as_str() == "none":
            fails.append(
                'TCP listener with auth_tcp = "none": anyone reaching port 16509 gets in, so neither '
                "root nor an account list can be enforced"
            )
            fixes.append(fix_line(listen_tcp, 0))
        else:
            probs = _sasl_problems(sasl_list)
            fails += [f"TCP listener: {p}" for p in probs]
            if probs:
                fixes.append(fix_line(sasl_list, ["admin1@EXAMPLE.COM", "admin2@EXAMPLE.COM"]))
    tls_off = listen_tls.explicit and listen_tls.as_int() == 0
    if not tls_off:
        mode = auth_tls.as_str()
        probs = []
        if no_verify.as_int() != 0 and mode == "none":
            probs.append("tls_no_verify_certificate = 1: clients need no certificate")
            fixes.append(fix_line(no_verify, 0))
        probs += _sasl_problems(sasl_list) if mode == "sasl" else _dn_problems(dn_list)
        if probs and mode != "sasl" and not dn_list.explicit:
            fixes.append(fix_line(dn_list, ["C=GB,O=Example,OU=hv-admins,CN=*"]))
        if probs and listen_tls.explicit:
            fails += [f"TLS listener: {p}" for p in probs]
        elif probs:
            manual.append(
                "listen_tls defaults to 1 and takes effect only when libvirtd runs with --listen (or "
                "libvirtd-tls.socket / virtproxyd-tls.socket is enabled), which is not collected; "
                + "; ".join(probs)
                + ". Evidence needed: `ss -ltn 'sport = :16514'` shows no listener, or set listen_tls = 0 / "
                "tls_allowed_dn_list"
            )
    if fails:
        yield ctx.failed(
            HOST,
            "libvirt remote access is not restricted to listed administrative accounts: "
            + "; ".join(fails)
            + ".",
            evidence,
            "\n".join(
                [
                    *dict.fromkeys(fixes),
                    "To deny remote libvirt access entirely: listen_tcp = 0, listen_tls = 0.",
                    restart_note(),
                ]
            ),
        )
        return
    if manual:
        yield ctx.manual(HOST, "; ".join(manual) + ".", evidence)
        return
    if not tcp_on and tls_off:
        msg = (
            "libvirt's own remote listeners are disabled (listen_tcp = 0, listen_tls = 0): remote management "
            "goes only through SSH (qemu+ssh), governed by sshd."
        )
    else:
        msg = (
            "libvirt's remote listeners authenticate every client and admit only the listed accounts/"
            "certificates (root excluded); setting listen_tcp = 0 and listen_tls = 0 denies them entirely."
        )
    yield ctx.passed(HOST, msg, evidence)


@check("11.4.6", id="host.sshd-remote-access", reads=("host.access.sshd",))
def sshd_remote_access(ctx: CheckContext) -> Iterator[Finding]:
    """SSH (the service console's remote protocol) denies root, admits only listed administrators, and can
    be switched off.

    Pass: effective ``PermitRootLogin no`` with no Match block re-enabling root, and a non-empty
    AllowUsers or AllowGroups without ``*`` and without root. Fail otherwise (file:line of each setting).
    Switching sshd off entirely is always possible (``systemctl disable --now ssh``); whether it starts at
    boot is in the evidence. Not applicable when sshd is not installed (SSH access is denied entirely).
    """
    access = _access(ctx)
    sshd = access.sshd if access is not None else None
    if sshd is None:
        if access is not None and ctx.problems("host.access.sshd"):
            yield ctx.error(HOST, "sshd's configuration", "host.access.sshd")
            return
        yield ctx.manual(
            HOST,
            "Evidence needed for SSH (the service console's main remote protocol): `sshd -T` showing "
            "permitrootlogin no and allowusers/allowgroups naming only the hypervisor administrators, and "
            "that sshd can be switched off entirely (systemctl disable --now ssh) with console access as "
            "fallback.",
            {"sshd": "not collected (an older bundle or no host facts)"},
        )
        return
    if sshd.installed is False:
        yield ctx.not_applicable(
            HOST, "sshd is not installed: remote SSH access to the host is denied entirely"
        )
        return
    yield from _parse_errors(ctx, sshd.errors, "an sshd configuration line; sshd refuses to start with it")
    root = sshd.effective.get("permitrootlogin")
    root_value = ae.sshd_value(sshd, "permitrootlogin", "prohibit-password")
    allow_users = ae.sshd_values(sshd, "allowusers")
    allow_groups = ae.sshd_values(sshd, "allowgroups")
    evidence: dict[str, Any] = {
        "permitrootlogin": {"value": root_value, "source": ae.setting_source(root)},
        "allowusers": {"value": allow_users, "source": ae.setting_source(sshd.effective.get("allowusers"))},
        "allowgroups": {
            "value": allow_groups,
            "source": ae.setting_source(sshd.effective.get("allowgroups")),
        },
        "match_blocks": [f"Match {b.text} ({ae.loc(b.file, b.line)})" for b in sshd.matches],
        "source": sshd.source,
        "service_enabled": sshd.service_enabled,
        "service_evidence": sshd.service_evidence,
    }
    fails: list[str] = []
    fixes: list[str] = []
    if root_value != "no":
        fails.append(f"PermitRootLogin is {root_value} ({ae.setting_source(root)}): root may log in over SSH")
        fixes.append(ae.sshd_fix(sshd, "permitrootlogin", "PermitRootLogin no"))
    for block in sshd.matches:
        setting = block.settings.get("permitrootlogin")
        if setting is not None and setting.values != ["no"]:
            fails.append(
                f"Match {block.text} ({ae.loc(setting.file, setting.line)}) sets PermitRootLogin "
                f"{setting.values[0]}"
            )
            fixes.append(f"{setting.file} line {setting.line}: PermitRootLogin no (or delete the line)")
    if not allow_users and not allow_groups:
        fails.append("neither AllowUsers nor AllowGroups is set: every account with a login may connect")
        fixes.append(ae.sshd_fix(sshd, "allowgroups", "AllowGroups hv-admins"))
    wide = [a for a in [*allow_users, *allow_groups] if a.split("@", 1)[0] in ("*", "root")]
    if wide:
        fails.append(f"the allow-list admits {', '.join(wide)}")
        fixes.append("name only the hypervisor administrators (AllowGroups hv-admins)")
    enabled = {True: "starts at boot", False: "does not start at boot", None: "boot state unknown"}
    deny_note = (
        f" sshd {enabled[sshd.service_enabled]}; it can be switched off entirely with "
        "`systemctl disable --now ssh` (sshd on RHEL), leaving the console."
    )
    if fails:
        yield ctx.failed(
            HOST,
            "SSH access to the service console is not restricted: " + "; ".join(fails) + "." + deny_note,
            evidence,
            "\n".join(
                [
                    *dict.fromkeys(fixes),
                    "Check: sshd -t && sshd -T | grep -Ei 'permitrootlogin|allow'; then systemctl reload ssh",
                ]
            ),
        )
        return
    listed = " ".join(
        [
            *(f"users {' '.join(allow_users)}" for _ in [0] if allow_users),
            *(f"groups {' '.join(allow_groups)}" for _ in [0] if allow_groups),
        ]
    )
    yield ctx.passed(
        HOST,
        f"SSH denies root (PermitRootLogin no, {ae.setting_source(root)}) and admits only the listed "
        f"administrators ({listed})." + deny_note,
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.7 Gold configuration (should)


@check("11.4.7", id="host.gold-configuration", reads=())
def gold_configuration(ctx: CheckContext) -> Iterator[Finding]:
    """A gold configuration is defined, applied automatically and checked — attestation (advisory measure)."""
    yield ctx.manual(
        HOST,
        "Evidence needed: the gold configuration baseline assigned to this host (e.g. an hvguard profile "
        "plus Ansible/OpenSCAP content under version control), the automation that applies it to new and "
        "existing hosts, and the date and result of the last compliance run (this hvguard report can be that"
        " run).",
        {"baseline": "not collected (attestation)"},
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.8 Patching


def _age_days(now: float | None, then: float | None) -> float | None:
    if now is None or then is None:
        return None
    return max(0.0, days(now - then))


@check(
    "11.4.8",
    id="host.patching",
    reads=("host.operations.patches", "host.kernel.release", "hypervisor.libvirt_version"),
)
def patching(ctx: CheckContext) -> Iterator[Finding]:
    """Host and hypervisor patched per SS-033: no security update pending longer than the window.

    Pass: no pending security update, package lists refreshed within ``patch_max_age_days`` and no
    reboot pending longer than that. Fail: a pending security update older than the window (dnf:
    advisory issue date; apt records no release date, so an update pending while the lists are older
    than the window is at least that old), package lists not refreshed within the window, or
    reboot-required older than the window. Manual: apt security updates pending with lists fresher than
    the window (their release dates are not recorded: show they are newer than the window, or install
    them). Error: pending updates could not be determined (offline root without the package
    manager's answer). A second finding covers automatic updates (warn when off) and a third the
    vulnerability-scan evidence (attestation).
    """
    window = ctx.profile.thresholds.patch_max_age_days
    host, hv = ctx.host, ctx.hypervisor
    known = {
        "kernel.release": host.kernel.release if host else None,
        "hypervisor_version": hv.hypervisor_version if hv else None,
        "libvirt_version": hv.libvirt_version if hv else None,
    }
    try:
        patches: PatchFacts = ops_group(ctx, "patches", "pending security updates")
    except CannotEvaluate as signal:  # the vulnerability-scan attestation below stands all the same
        yield ctx.error_for(signal)
    else:
        yield from _patch_state(ctx, patches, window, known)
        yield from _auto_updates(ctx, patches)
    yield ctx.manual(
        HOST,
        "Evidence needed: the date and report of the last vulnerability scan of this host (SS-033 "
        "'regular vulnerability management testing'), and that updates are tested before rollout.",
        known,
    )


def _patch_state(ctx: CheckContext, p: PatchFacts, window: int, known: dict[str, Any]) -> Iterator[Finding]:
    try:
        require_well_formed("patch automation configuration", p.issues)
    except CannotEvaluate as signal:  # reported, and the pending updates are judged all the same
        yield ctx.error_for(signal)
    now = epoch_of(ctx.target.collection.collected_at)
    lists_age = _age_days(now, p.lists_updated)
    reboot_age = _age_days(now, p.reboot_required_since)
    evidence: dict[str, Any] = {
        **known,
        "package_manager": p.manager,
        "source": p.source,
        "window_days": window,
        "lists_updated_days_ago": None if lists_age is None else round(lists_age, 1),
        "lists_updated_source": p.lists_updated_source,
        "reboot_required": p.reboot_required,
        "reboot_required_days": None if reboot_age is None else round(reboot_age, 1),
        "reboot_packages": p.reboot_packages[:20],
    }
    if p.pending is None:
        yield ctx.error(
            HOST,
            f"pending security updates ({p.pending_note or 'no package manager answer'})",
            evidence=evidence,
        )
        return
    security = [u for u in p.pending if u.security]
    evidence["pending_updates"] = len(p.pending)
    evidence["pending_security"] = [
        {
            "package": u.package,
            "installed": u.installed,
            "candidate": u.candidate,
            "suite": u.suite,
            "advisory": u.advisory,
            "issued": u.issued,
        }
        for u in security[:50]
    ]
    fails: list[str] = []
    unknown_age: list[str] = []
    for u in security:
        issued = epoch_of(u.issued) if u.issued else None
        age = _age_days(now, issued)
        if age is not None:
            if age > window:
                fails.append(
                    f"{u.package} ({u.advisory or u.candidate}, issued {u.issued}, {age:.0f} days ago)"
                )
        elif lists_age is not None and lists_age > window:
            fails.append(f"{u.package} {u.candidate} (pending at least {lists_age:.0f} days: lists that old)")
        else:
            unknown_age.append(f"{u.package} {u.candidate}")
    problems: list[str] = []
    if fails:
        problems.append(
            f"{len(fails)} security update(s) pending longer than {window} days: " + ", ".join(fails[:10])
        )
    if lists_age is not None and lists_age > window:
        problems.append(
            f"the package lists were last refreshed {lists_age:.0f} days ago ({p.lists_updated_source}): "
            "newer security updates are invisible to the host"
        )
    if p.reboot_required and reboot_age is not None and reboot_age > window:
        problems.append(
            f"a reboot has been pending for {reboot_age:.0f} days (/var/run/reboot-required"
            + (f": {', '.join(p.reboot_packages[:5])}" if p.reboot_packages else "")
            + "): the patched code is not running"
        )
    if problems:
        fix = (
            "apt-get update && apt-get upgrade (or unattended-upgrade -v), then reboot when "
            "/var/run/reboot-required exists"
            if p.manager == "apt"
            else "dnf upgrade --security, then reboot if needs-restarting -r says so"
        )
        yield ctx.failed(
            HOST, "The host is not patched per SS-033: " + "; ".join(problems) + ".", evidence, fix
        )
        return
    if unknown_age:
        yield ctx.manual(
            HOST,
            f"{len(unknown_age)} security update(s) are pending ({', '.join(unknown_age[:8])}); "
            "apt records no "
            f"release date. Evidence needed: they were released less than {window} days ago (Debian security "
            "tracker / DSA dates), or install them now (apt-get upgrade).",
            evidence,
        )
        return
    reboot_note = ""
    if p.reboot_required:
        reboot_note = f" A reboot is pending since {reboot_age or 0:.0f} day(s) ago (within the window)."
    if p.reboot_required is None:
        reboot_note = " Whether a reboot is pending is not known for this host."
    yield ctx.passed(
        HOST,
        f"No security update is pending ({len(p.pending)} other update(s)); package lists refreshed "
        + (f"{lists_age:.0f} day(s) ago." if lists_age is not None else "at an unknown time.")
        + reboot_note,
        evidence,
    )


def _auto_updates(ctx: CheckContext, p: PatchFacts) -> Iterator[Finding]:
    evidence = {"auto_updates": p.auto_updates, "source": p.auto_updates_at, "detail": p.auto_updates_detail}
    if p.auto_updates is None:
        return
    if p.auto_updates:
        yield ctx.passed(HOST, f"Security updates install automatically ({p.auto_updates_detail}).", evidence)
        return
    fix = (
        'apt-get install unattended-upgrades && printf \'APT::Periodic::Update-Package-Lists "1";\\n'
        'APT::Periodic::Unattended-Upgrade "1";\\n\' > /etc/apt/apt.conf.d/20auto-upgrades'
        if p.manager == "apt"
        else "dnf install dnf-automatic; set apply_updates = yes and upgrade_type = security in "
        "/etc/dnf/automatic.conf; systemctl enable --now dnf-automatic.timer"
    )
    yield ctx.warned(
        HOST,
        f"Security updates are not installed automatically ({p.auto_updates_detail}): meeting the patch "
        "window then depends on someone running them by hand.",
        evidence,
        fix,
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.9 Host firewall

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


def _vm_bridges(ctx: CheckContext, network: NetworkFacts | None) -> set[str]:
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


def _allowed_ports(ctx: CheckContext) -> list[PortSpec]:
    return [PortSpec.parse(p) for p in ctx.profile.thresholds.firewall_allowed_ports]


@dataclass
class _FirewallView:
    """The evaluated input filter: the chains that drop by default and what they still admit."""

    analyses: list[ChainAnalysis]
    drop_chains: list[ChainAnalysis]
    openings: list[Opening]
    unclear: list[str]


def _firewall_view(fw: FirewallFacts) -> _FirewallView:
    analyses = analyse_input(fw)
    drops = [a for a in analyses if a.default_drop]
    if not drops:
        return _FirewallView(analyses, [], [], [])
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
    return _FirewallView(analyses, drops, openings, [u for a in drops for u in a.unclear])


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
    vm_bridges = _vm_bridges(ctx, network)
    view = _firewall_view(fw)
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


# --------------------------------------------------------------------------------------------------------
# 11.4.10 Standard log format; secure, read-only, restricted access; change detection


def _log_output_types(value: str) -> list[str]:
    """Output types of a libvirt ``log_outputs`` string (``"3:syslog:libvirtd 1:file:/path"``)."""
    types = []
    for token in value.split():
        parts = token.split(":")
        if len(parts) >= 2:
            types.append(parts[1])
    return types


@check("11.4.10", id="kvm.libvirt-log-format", reads=("host.libvirtd_conf.log_outputs",))
def libvirt_log_format(ctx: CheckContext) -> Iterator[Finding]:
    """The hypervisor daemon's log is in a standard format (syslog/journald), not libvirt's own files only.

    Fail: libvirtd.conf ``log_outputs`` is set and sends the daemon log only to libvirt's own file/stderr
    format (no ``syslog`` or ``journald`` output). Pass: a syslog/journald output, or libvirt's default
    (journald when run by systemd). Transport, permissions and change detection are
    ``host.log-protection``.
    """
    lconf = _libvirtd(ctx)
    outputs = lconf.get("log_outputs")
    evidence: dict[str, Any] = {"log_outputs": outputs.evidence()}
    if outputs.explicit:
        types = _log_output_types(outputs.as_str())
        evidence["log_output_types"] = types
        if not {"syslog", "journald"} & set(types):
            yield ctx.failed(
                HOST,
                f"libvirtd writes its log only in libvirt's own format ({', '.join(types) or 'no output'})"
                ", not to syslog/journald, so standard log tools and forwarding never see it.",
                evidence,
                f'{outputs.where()}: log_outputs = "3:syslog:libvirtd" (keep a file output beside it if '
                "wanted)\n" + restart_note(),
            )
            return
        yield ctx.passed(HOST, f"libvirtd logs to {', '.join(types)} (standard syslog format).", evidence)
        return
    yield ctx.passed(
        HOST,
        "libvirtd uses its default log output (journald when started by systemd): standard format, "
        "forwarded with the rest of the system log.",
        evidence,
    )


def _rsyslog_fix(target: str | None, port: int | None) -> str:
    tgt = target or "loghost.example.com"
    return (
        "/etc/rsyslog.d/90-remote-tls.conf (validate with rsyslogd -N1, then restart rsyslog):\n"
        'global(DefaultNetstreamDriverCAFile="/etc/rsyslog.d/ca.pem")\n'
        f'action(type="omfwd" target="{tgt}" port="{port or 6514}" protocol="tcp"\n'
        '       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"\n'
        f'       StreamDriverPermittedPeers="{tgt}"\n'
        '       queue.type="LinkedList" queue.filename="fwd_remote" action.resumeRetryCount="-1")'
    )


_GOOD_AUTH = ("x509/name", "x509/fingerprint", "kerberos", "x509/ca")


def forward_problem(f: LogForward) -> str | None:
    """Why a remote forward is not a secure, authenticated channel (None when it is)."""
    if f.daemon == "audisp-remote":
        return None if f.tls else f"{f.where()}: audisp-remote sends audit records in clear (transport = tcp)"
    if not f.tls:
        if f.protocol == "udp":
            return f"{f.where()}: {f.text} sends logs over UDP, unencrypted and unauthenticated"
        drv = f" (StreamDriver {f.driver}, mode 0)" if f.driver and f.driver != "ptcp" else ""
        return f"{f.where()}: {f.text} sends logs over {f.protocol.upper()} without TLS{drv}"
    auth = (f.auth_mode or "").lower()
    if f.daemon == "syslog-ng":
        if "required-trusted" in auth or "yes" in auth:
            return None
        return f"{f.where()}: TLS without verifying the server ({f.auth_mode})"
    if any(auth.startswith(g) for g in _GOOD_AUTH):
        if auth == "x509/name" and not f.permitted_peers and f.daemon == "rsyslog":
            return f"{f.where()}: x509/name without StreamDriverPermittedPeers (no name is checked)"
        return None
    if not auth:
        return f"{f.where()}: TLS without an explicit StreamDriverAuthMode (x509/name needed)"
    return f"{f.where()}: TLS with authentication mode {f.auth_mode}: the server's identity is not checked"


def _logging_facts(ctx: CheckContext, what: str) -> LoggingFacts:
    """``host.operations.logging``; raises :class:`CannotEvaluate` when it is unknown or a logging
    configuration file is malformed."""
    logging: LoggingFacts = ops_group(ctx, "logging", what)
    require_well_formed("logging configuration", logging.issues)
    return logging


@check(
    "11.4.10",
    id="host.log-protection",
    reads=("host.operations.logging",),
)
def log_protection(ctx: CheckContext) -> Iterator[Finding]:
    """Logs leave the host only over TLS with server authentication, local logs are not world-readable or
    writable, and journald seals them (change detection).

    Fail: a remote forward over UDP, plain TCP, TLS mode 0, or TLS without x509/name or fingerprint
    authentication (rsyslog) / peer-verify (syslog-ng) / Kerberos (audisp-remote); a system log file
    readable by 'other' or writable by group/other; no journald Forward Secure Sealing (Seal=no, no
    sealing key, or a volatile journal). Error: a malformed rsyslog, syslog-ng or journald file (file:line).
    A second, manual finding covers access control on the log server (attestation).
    """
    logging = _logging_facts(ctx, "log forwarding and log file protection")
    remote = _remote_log_forwards(logging)
    j = logging.journald
    evidence: dict[str, Any] = {
        "forwards": [
            {
                "where": f.where(),
                "daemon": f.daemon,
                "target": f.target,
                "port": f.port,
                "protocol": f.protocol,
                "tls": f.tls,
                "auth": f.auth_mode,
                "peers": f.permitted_peers,
            }
            for f in remote[:20]
        ],
        "log_files": [stat_evidence(s) for s in logging.log_files],
        "journald": {
            "storage": j.storage.value if j.storage else "auto (default)",
            "seal": j.seal.value if j.seal else "yes (default)",
            "persistent_dir": j.persistent_dir,
            "fss_keys": j.fss_keys,
            "files": j.files,
        },
    }
    fails: list[str] = []
    fixes: list[str] = []
    insecure = [p for f in remote if (p := forward_problem(f))]
    if insecure:
        fails.append(
            "log data leaves the host without TLS and server authentication: " + "; ".join(insecure[:5])
        )
        first = next(f for f in remote if forward_problem(f))
        fixes.append(_rsyslog_fix(first.target, 6514))
    loose = []
    for s in logging.log_files:
        if s.mode is None:
            continue
        if s.mode & 0o007:
            loose.append(f"{s.path} mode {mode_text(s.mode)} gives 'other' access")
        elif s.mode & 0o020:
            loose.append(f"{s.path} mode {mode_text(s.mode)} is group-writable ({s.group})")
    if loose:
        fails.append("log files are not read-only to a restricted group: " + "; ".join(loose[:5]))
        fixes.append(
            "chmod 0640 "
            + " ".join(s.split(" mode", 1)[0] for s in loose[:5])
            + '  and in rsyslog: module(load="builtin:omfile" fileCreateMode="0640")'
        )
    seal_off = j.seal is not None and j.seal.value.lower() in ("no", "false", "0", "off")
    storage = j.storage.value.lower() if j.storage else "auto"
    persistent = storage == "persistent" or (storage == "auto" and j.persistent_dir)
    if seal_off or not persistent or not j.fss_keys:
        if seal_off and j.seal is not None:
            why = f"Seal=no ({j.seal.where()})"
        elif not persistent:
            why = f"the journal is not persistent (Storage={storage}" + (
                ")" if j.persistent_dir else ", no /var/log/journal)"
            )
        else:
            why = "no sealing key (journalctl --setup-keys was never run)"
        fails.append(f"no change detection on local logs: journald Forward Secure Sealing is off — {why}")
        fixes.append(
            "/etc/systemd/journald.conf.d/50-seal.conf: [Journal] Storage=persistent, Seal=yes; then "
            "journalctl --setup-keys (store the verification key off the host) and verify periodically with "
            "journalctl --verify --verify-key=KEY"
        )
    if fails:
        yield ctx.failed(
            HOST,
            "Log data is not protected as 11.4.10 requires: " + "; ".join(fails) + ".",
            evidence,
            "\n".join(fixes),
        )
    else:
        yield ctx.passed(
            HOST,
            ("Remote log forwards use TLS with server authentication; " if remote else "")
            + "system log files are not world-readable or group-writable; journald seals the persistent "
            "journal (Forward Secure Sealing).",
            evidence,
        )
    yield ctx.manual(
        HOST,
        "Evidence needed: on the log server, access to this host's logs is read-only and limited to the "
        "staff "
        "who need it (role list / RBAC export), and its own change-detection safeguard (SS-012).",
        {"log_servers": sorted({f.target or "?" for f in remote})},
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.11 Logs on an external server


@check(
    "11.4.11",
    id="host.remote-logging",
    reads=("host.operations.logging.forwards", "host.libvirtd_conf.log_outputs"),
)
def remote_logging(ctx: CheckContext) -> Iterator[Finding]:
    """Logs are stored on an external server.

    Pass: at least one forward (rsyslog ``omfwd``/``@@``/``@``/``omrelp``, syslog-ng network destination
    used by a log path, an enabled systemd-journal-upload, audisp-remote) to a non-local target. Fail: none,
    or only to localhost. Whether the server is reachable is not probed (audit mode sends nothing).
    """
    logging = _logging_facts(ctx, "remote log targets")
    remote = [
        f
        for f in _remote_log_forwards(logging)
        if not (f.daemon == "journal-upload" and "not enabled" in f.text)
    ]
    local = [f for f in logging.forwards if f not in remote]
    evidence: dict[str, Any] = {
        "remote": [f"{f.daemon} → {f.target}:{f.port or ''} ({f.where()})" for f in remote][:20],
        "ignored": [
            f"{f.daemon} → {f.target} ({f.where()}): "
            + ("local target" if f.target and _is_local_target(f.target) else "not enabled")
            for f in local
        ][:20],
        "rsyslog_files": logging.rsyslog_files[:20],
        "syslog_ng_files": logging.syslog_ng_files[:20],
        **_known_libvirtd(ctx.host, "log_outputs"),
    }
    if remote:
        yield ctx.passed(
            HOST,
            "Logs are sent to an external server: "
            + "; ".join(f"{f.daemon} → {f.target}" for f in remote[:5])
            + " (reachability is not probed: confirm a test message arrives).",
            evidence,
        )
        return
    yield ctx.failed(
        HOST,
        "No external log server is configured"
        + (" (only local targets: " + ", ".join(f.target or "?" for f in local) + ")" if local else "")
        + ": if the host is breached its logs can be erased.",
        evidence,
        _rsyslog_fix(None, 6514),
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.12 Management interface in a dedicated segment

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
    vm_bridges = _vm_bridges(ctx, network)
    ifaces = {i.name: i for i in network.interfaces or []}
    vm_facing = {n for n, i in ifaces.items() if n in vm_bridges or (i.master in vm_bridges)}
    view = _firewall_view(fw)
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
        **_known_libvirtd(ctx.host, "listen_addr"),
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


# --------------------------------------------------------------------------------------------------------
# 11.4.13 Multiple physical paths for VM traffic

BOND_FIX = (
    "Put the VM bridge on a bond of two physical NICs, e.g. /etc/network/interfaces:\n"
    "auto bond0\niface bond0 inet manual\n    bond-slaves eno1 eno2\n    bond-mode active-backup\n"
    "    bond-miimon 100\nauto br0\niface br0 inet manual\n    bridge-ports bond0\n"
    "(nmcli: nmcli con add type bond ifname bond0 bond.options mode=active-backup,miimon=100; "
    "nmcli con add type ethernet ifname eno1 master bond0; … eno2 master bond0; "
    "nmcli con add type bridge ifname br0; nmcli con mod bond0 master br0)"
)


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
    Fail: a single physical path. Error: interfaces not collected (offline root without sys/).
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
    for n in nets:
        vms = ", ".join(n.vms[:5])
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
    if bad:
        yield ctx.failed(
            HOST,
            "VM traffic reaches the enterprise network over a single physical path: "
            + "; ".join(bad[:6])
            + ".",
            evidence,
            BOND_FIX,
        )
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
