"""Checks for SS-009 section 11.4: administration of the hypervisor host and software (KVM/libvirt).

From today's facts hvguard decides libvirt's half of remote console access (11.4.6), flags settings that
prove a measure unmet (unauthenticated libvirt admin access for 11.4.3, libvirt auditing switched off for
11.4.4, libvirt daemon logs kept out of syslog for 11.4.10), and otherwise reports ``manual`` with the
evidence an auditor needs and what hvguard already knows. sshd, PAM, sudoers, auditd, rsyslog, nftables,
patch and network facts come with later collectors. libvirtd.conf defaults are listed in
:mod:`hvguard.checks.s11_2` (source: libvirt ``src/remote/libvirtd.conf.in``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_2 import (
    MODULAR_NOTE,
    Conf,
    Setting,
    fix_line,
    guarded,
    load_conf,
    restart_note,
)
from hvguard.facts import HostFacts
from hvguard.findings import Finding

# --------------------------------------------------------------------------------------------------------
# Helpers


def _libvirtd(ctx: CheckContext) -> Conf | Finding:
    """libvirtd.conf with defaults, or the ``error`` finding (no host facts, malformed or unread file)."""
    host = ctx.host
    if host is None:
        return ctx.error(HOST, "libvirtd.conf settings", "host")
    return load_conf(ctx, host, "libvirtd_conf")


def _known_libvirtd(host: HostFacts | None, *keys: str) -> dict[str, Any]:
    """Evidence of libvirtd.conf keys when the file is usable (for manual findings; never decides)."""
    if host is None:
        return {"libvirtd.conf": "not collected (no host facts for this target)"}
    if host.libvirtd_conf.error is not None:
        return {"libvirtd.conf": f"unusable: {host.libvirtd_conf.error}"}
    conf = Conf(host.libvirtd_conf)
    return {k: conf.get(k).evidence() for k in keys}


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


@check("11.4.1", id="host.directory-integration", reads=("host.hostname",))
def directory_integration(ctx: CheckContext) -> Iterator[Finding]:
    """Host accounts come from the enterprise directory ("if possible … must") — manual until collected.

    Needs realm/sssd/nsswitch/keytab facts (later collector).
    """
    host = ctx.host
    yield ctx.manual(
        HOST,
        "Evidence needed: the host's directory join (`realm list` showing a kerberos-member realm, "
        "/etc/sssd/sssd.conf id_provider = ad|ipa|ldap, nsswitch passwd: sss, /etc/krb5.keytab), admin "
        "logins granted to directory groups (simple_allow_groups / AllowGroups), and the local accounts that"
        " remain (break-glass only) — or the risk-register exception explaining why integration is not "
        "possible.",
        {
            "hostname": host.hostname if host else None,
            "os": f"{host.os_id} {host.os_version}" if host else None,
        },
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.2 Administration only from defined endpoints


@check("11.4.2", id="host.admin-endpoints", reads=("host.libvirtd_conf.listen_addr",))
def admin_endpoints(ctx: CheckContext) -> Iterator[Finding]:
    """Administrative access only from approved endpoint networks/devices — manual (firewall, sshd later).

    hvguard reports libvirt's listen address and client-certificate allow-list, which identify approved
    devices for libvirt's TLS port.
    """
    yield ctx.manual(
        HOST,
        "Evidence needed: the list of approved administrative endpoints/networks and the controls enforcing "
        "it — firewall rules accepting ports 22 and 16514 only from management CIDRs, sshd AllowUsers "
        "user@CIDR or Match Address blocks, libvirt tls_allowed_dn_list naming the approved devices' "
        "certificates — plus PAW/MDM records for the approved laptops.",
        _known_libvirtd(ctx.host, "listen_addr", "listen_tcp", "listen_tls", "tls_allowed_dn_list"),
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.3 Multi-factor authentication


@check("11.4.3", id="host.admin-mfa", reads=("host.libvirtd_conf",))
@guarded
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
    lconf = _libvirtd(ctx)
    if isinstance(lconf, Finding):
        yield lconf
        yield ctx.manual(HOST, evidence_needed, {"libvirtd.conf": "not evaluated (see the error finding)"})
        return
    listen_tcp = lconf.get("listen_tcp", 0)
    auth_tcp = lconf.get("auth_tcp", "sasl")
    listen_tls = lconf.get("listen_tls", 1)
    auth_tls = lconf.get("auth_tls", "none")
    no_verify = lconf.get("tls_no_verify_certificate", 0)
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
    yield ctx.manual(HOST, evidence_needed, evidence)


# --------------------------------------------------------------------------------------------------------
# 11.4.4 Administrators cannot tamper with audit logs


@check("11.4.4", id="host.audit-log-protection", reads=("host.libvirtd_conf.audit_level",))
@guarded
def audit_log_protection(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor admins cannot modify, delete or disable the audit logs.

    Fail: libvirtd.conf ``audit_level = 0`` — libvirt's audit records (VM start/stop, device and label
    changes) are disabled. Otherwise manual: auditd immutability (``-e 2``), off-host forwarding and admin
    privileges come with the auditd/sudoers collectors.
    """
    evidence_needed = (
        "Evidence needed: auditd rules end with -e 2 (auditctl -s shows enabled 2, immutable until reboot), "
        "audit records are forwarded in real time to a log server run by a separate team, /var/log/audit is "
        "root-only (0700/0600), and hypervisor administrators do not hold sudo ALL (if they do, only the "
        "remote copy counts)."
    )
    lconf = _libvirtd(ctx)
    if isinstance(lconf, Finding):
        yield lconf
        yield ctx.manual(HOST, evidence_needed, {"libvirtd.conf": "not evaluated (see the error finding)"})
        return
    level = lconf.get("audit_level", 1)
    evidence = {"audit_level": level.evidence()}
    if level.as_int() == 0:
        yield ctx.failed(
            HOST,
            "libvirt's hypervisor audit records are disabled (audit_level = 0).",
            evidence,
            f"{fix_line(level, 2)}  (2: audit, and refuse to start if host auditing is off)\n"
            + restart_note(),
        )
        return
    yield ctx.manual(
        HOST, f"libvirt auditing is on (audit_level = {level.as_int()}). {evidence_needed}", evidence
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.5 Separation of hypervisor credentials


@check("11.4.5", id="host.admin-credential-separation", reads=())
def admin_credential_separation(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor credentials give no access to guest applications or data — attestation."""
    yield ctx.manual(
        HOST,
        "Evidence needed: a directory report showing that the hypervisor administrator identities and groups"
        " have no membership in guest OS, application or data administrator groups (intersection empty), and"
        " that hypervisor admins hold no guest credentials (no shared passwords, no SSH keys into the "
        "guests).",
        {"directory_groups": "not collected (needs directory access)"},
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
@guarded
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
    if isinstance(lconf, Finding):
        yield lconf
        return
    listen_tcp = lconf.get("listen_tcp", 0)
    auth_tcp = lconf.get("auth_tcp", "sasl")
    listen_tls = lconf.get("listen_tls", 1)
    auth_tls = lconf.get("auth_tls", "none")
    no_verify = lconf.get("tls_no_verify_certificate", 0)
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


@check("11.4.6", id="host.sshd-remote-access", reads=())
def sshd_remote_access(ctx: CheckContext) -> Iterator[Finding]:
    """The SSH half of 11.4.6 — manual until the sshd collector exists."""
    yield ctx.manual(
        HOST,
        "Evidence needed for SSH (the service console's main remote protocol): `sshd -T` showing "
        "permitrootlogin no and allowusers/allowgroups naming only the hypervisor administrators, and that "
        "sshd can be switched off entirely (systemctl disable --now ssh) with console access as fallback.",
        {"sshd": "not collected yet (sshd collector pending)"},
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


@check("11.4.8", id="host.patching", reads=("host.kernel.release", "hypervisor.libvirt_version"))
def patching(ctx: CheckContext) -> Iterator[Finding]:
    """Host and hypervisor patched per SS-033, with regular vulnerability testing — manual until collected."""
    host, hv = ctx.host, ctx.hypervisor
    yield ctx.manual(
        HOST,
        "Evidence needed: pending security updates and their age (apt list --upgradable from -security / dnf "
        f"updateinfo list --security; none older than {ctx.profile.thresholds.patch_max_age_days} days), "
        "the running kernel is the newest installed (no /var/run/reboot-required), and the date and report "
        "of the last vulnerability scan.",
        {
            "kernel.release": host.kernel.release if host else None,
            "hypervisor_version": hv.hypervisor_version if hv else None,
            "libvirt_version": hv.libvirt_version if hv else None,
        },
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.9 Host firewall


@check("11.4.9", id="host.firewall", reads=("host.libvirtd_conf.listen_*",))
def firewall(ctx: CheckContext) -> Iterator[Finding]:
    """The host firewall admits only what enabled services need — manual until nftables is collected.

    hvguard lists the libvirt listeners the ruleset may need to admit.
    """
    yield ctx.manual(
        HOST,
        "Evidence needed: the host firewall ruleset (nft list ruleset: input chain with policy drop, or "
        "iptables INPUT DROP) accepting only enabled services — 22/tcp, 16514/tcp if libvirt TLS is used, "
        "49152-49215/tcp for migration from peer hosts only, 5900+ only with vnc_tls — and `ss -Hltnu` "
        "showing no other non-loopback listener.",
        _known_libvirtd(ctx.host, "listen_tcp", "listen_tls", "tcp_port", "tls_port", "listen_addr"),
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
@guarded
def libvirt_log_format(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor logs are in a standard format, accessed securely and read-only, with change detection.

    Fail: libvirtd.conf ``log_outputs`` is set and sends the daemon log only to libvirt's own file/stderr
    format (no ``syslog`` or ``journald`` output). Otherwise manual: TLS transport, read-only restricted
    access and tamper detection need the rsyslog/journald collectors.
    """
    evidence_needed = (
        "Evidence needed: logs reach the log server via syslog over TLS 1.2+ (rsyslog omfwd with "
        "StreamDriver gtls, StreamDriverMode 1, x509/name auth), log files are read-only to the few staff "
        "who need them (/var/log permissions, log-server RBAC), and a change-detection safeguard (journald "
        "Seal=yes with journalctl --verify, or a hash-chained archive) per SS-012."
    )
    lconf = _libvirtd(ctx)
    if isinstance(lconf, Finding):
        yield lconf
        yield ctx.manual(HOST, evidence_needed, {"libvirtd.conf": "not evaluated (see the error finding)"})
        return
    outputs = lconf.get("log_outputs", "libvirt default (journald under systemd)")
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
        yield ctx.manual(
            HOST, f"libvirtd logs to {', '.join(types)} (standard format). {evidence_needed}", evidence
        )
        return
    yield ctx.manual(HOST, evidence_needed, evidence)


# --------------------------------------------------------------------------------------------------------
# 11.4.11 Logs on an external server


@check("11.4.11", id="host.remote-logging", reads=("host.libvirtd_conf.log_outputs",))
def remote_logging(ctx: CheckContext) -> Iterator[Finding]:
    """Logs are stored on an external server — manual until rsyslog/journald-upload are collected."""
    yield ctx.manual(
        HOST,
        "Evidence needed: a remote log target configured for this host (rsyslog omfwd / @@loghost, "
        "systemd-journal-upload URL, or audisp-remote for auditd) that is not localhost, and proof the "
        "server receives this host's messages (a test message found on the log server). libvirt's "
        "log_outputs syslog/journald output feeds that pipeline.",
        _known_libvirtd(ctx.host, "log_outputs"),
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.12 Management interface in a dedicated segment


@check(
    "11.4.12",
    id="host.management-segment",
    reads=("host.libvirtd_conf.listen_addr", "hypervisor.vms[].interfaces"),
)
def management_segment(ctx: CheckContext) -> Iterator[Finding]:
    """The management interface sits in a dedicated, firewalled segment — manual until network is collected.

    hvguard lists libvirt's listen address and the networks/bridges VMs use (the management interface
    must not be a port of any of them).
    """
    evidence = _known_libvirtd(ctx.host, "listen_addr")
    evidence["vm_networks"] = _vm_networks(ctx)
    yield ctx.manual(
        HOST,
        "Evidence needed: the management interface (the address sshd and libvirtd listen on) is on a "
        "dedicated VLAN/subnet and is not a port of any bridge or OVS switch carrying VM traffic, and the "
        "firewall admits management traffic only from the designated enterprise subnets (network diagram "
        "plus ruleset).",
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.4.13 Multiple physical paths for VM traffic


@check("11.4.13", id="host.vm-uplink-redundancy", reads=("hypervisor.vms[].interfaces",))
def vm_uplink_redundancy(ctx: CheckContext) -> Iterator[Finding]:
    """VM traffic has at least two physical paths — manual until bridge/bond facts are collected."""
    yield ctx.manual(
        HOST,
        "Evidence needed: for each VM-facing bridge or network listed, a bond/team uplink with at least two "
        "physical NICs (/proc/net/bonding/BOND 'Slave Interface' entries, ovs-appctl bond/show or teamdctl), "
        "and for NAT networks a bonded default-route interface.",
        {"vm_networks": _vm_networks(ctx)},
    )
