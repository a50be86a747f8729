"""Checks for SS-009 11.4.4.

11.4.4 Administrators cannot modify, delete or disable audit logs

Checks: ``audit_log_protection``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_4.common import (
    libvirtd_conf,
    remote_log_forwards,
)
from hvguard.checks.support.libvirt_conf import (
    fix_line,
    restart_note,
)
from hvguard.checks.support.ops import (
    mode_text,
    ops_group,
    require_well_formed,
    stat_evidence,
)
from hvguard.facts import (
    FileStat,
    HostFacts,
    LoggingFacts,
)
from hvguard.findings import Finding

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


def _writable_bits(st: FileStat) -> list[str]:
    """Who besides root could modify, delete or replace this file or directory (empty when no one).

    Read access is not 11.4.4's matter (it is 11.4.10's): only a non-root owner, group/other write and
    a POSIX ACL (which may grant write; its entries are not collected) count here."""
    out: list[str] = []
    if st.mode is None:
        return out
    if st.uid not in (0, None):
        out.append(f"{st.path} is owned by {st.owner} (not root)")
    if st.mode & 0o022:
        out.append(f"{st.path} mode {mode_text(st.mode)} lets group/other write")
    if st.has_acl:
        out.append(f"{st.path} carries a POSIX ACL that may grant write access (getfacl)")
    return out


def _audit_forwarded(logging: LoggingFacts) -> tuple[bool, str]:
    """Whether audit records leave the host, and how."""
    audit = logging.audit
    remote = remote_log_forwards(logging)
    if audit.remote_plugin_active and audit.remote_server is not None:
        return True, f"audisp-remote to {audit.remote_server.value} ({audit.remote_server.where()})"
    syslog_fwd = [f for f in remote if f.daemon in ("rsyslog", "syslog-ng")]
    if audit.syslog_plugin_active and syslog_fwd:
        return True, f"audisp syslog plugin → {syslog_fwd[0].daemon} forward to {syslog_fwd[0].target}"
    if any(p.startswith(posixpath.dirname(audit.log_file)) for p in logging.rsyslog_imfile) and syslog_fwd:
        return True, f"rsyslog imfile reads {audit.log_file} → forward to {syslog_fwd[0].target}"
    refused = f" ({audit.remote_plugin_refused})" if audit.remote_plugin_refused else ""
    return (
        False,
        f"no audisp-remote{refused}, audisp syslog plugin or rsyslog imfile feeding a remote forward",
    )


def _admins_with_all(host: HostFacts) -> list[str] | None:
    """sudoers grants of ALL commands to non-root principals (None when sudoers was not collected)."""
    access = host.access
    if access is None or access.sudo is None or access.sudo.unreadable:
        return None  # not collected, or not whole (an unreadable sudoers file)
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
    someone besides root can write the audit log directory or files, or /etc/audit, auditd.conf or the
    rule files (a non-root owner, group/other write, a POSIX ACL; who may *read* them is 11.4.10's
    ``host.log-protection``); or
    records are not copied off the host in real time (audisp-remote, or the audisp syslog plugin / rsyslog
    imfile feeding a remote forward). With sudoers collected, administrators holding ``ALL`` are listed:
    they can still stop auditd or edit local files, so the off-host copy is what keeps the record.
    """
    lconf = libvirtd_conf(ctx)
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
        "config_files": [stat_evidence(f) for f in audit.config_files[:10]],
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
            loose += _writable_bits(audit.log_dir)
        for f in audit.log_files:
            loose += _writable_bits(f)
        if loose:
            fails.append("others than root can modify or delete the audit logs: " + "; ".join(loose[:5]))
            fixes.append(
                f"chown root {posixpath.dirname(audit.log_file)} {audit.log_file}* && chmod go-w "
                f"{posixpath.dirname(audit.log_file)} {audit.log_file}*   (and setfacl -b on any ACL)"
            )
        conf_loose = [p for st in audit.config_files for p in _writable_bits(st)]
        if conf_loose:
            fails.append(
                "others than root can change auditd's configuration or rules (and so disable auditing): "
                + "; ".join(conf_loose[:5])
            )
            fixes.append("chown -R root /etc/audit && chmod -R go-w /etc/audit   (and setfacl -b on any ACL)")
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
        "Audit rules are immutable (-e 2), only root can write the audit logs and auditd's configuration, "
        "records are copied off the host "
        f"({evidence['off_host_copy']}) and libvirt auditing is on.{note}",
        evidence,
    )
