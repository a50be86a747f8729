"""Checks for SS-009 11.4.10 and 11.4.11.

11.4.10 Standard log format, secure read-only restricted access, change detection
11.4.11 Logs stored on an external server

Checks: ``libvirt_log_format``, ``log_protection``, ``remote_logging``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_4.common import (
    is_local_target,
    known_libvirtd,
    libvirtd_conf,
    remote_log_forwards,
)
from hvguard.checks.support.libvirt_conf import (
    restart_note,
)
from hvguard.checks.support.ops import (
    mode_text,
    ops_group,
    require_well_formed,
    stat_evidence,
)
from hvguard.facts import (
    AuditFacts,
    LogForward,
    LoggingFacts,
)
from hvguard.findings import Finding


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
    lconf = libvirtd_conf(ctx)
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
        # x509/name with no permitted peers: rsyslog checks the certificate against the target's name.
        return None
    if not auth:
        return f"{f.where()}: TLS without an explicit StreamDriverAuthMode (x509/name needed)"
    return f"{f.where()}: TLS with authentication mode {f.auth_mode}: the server's identity is not checked"


#: Groups that may read the audit logs (auditd.conf ``log_group``: root by default, adm on Debian-style
#: log-reader setups); any other group reading them is not a restricted audience.
AUDIT_READ_GROUPS = ("root", "adm")


def audit_log_read_access(audit: AuditFacts) -> list[str]:
    """Who besides root and the log readers' group can read the audit logs (empty when no one):
    'other' access to the directory or files, group write, a group other than root/adm with read, a
    POSIX ACL (whose entries are not collected)."""
    out: list[str] = []
    stats = ([audit.log_dir] if audit.log_dir is not None and audit.log_dir.exists else []) + audit.log_files
    for st in stats:
        if st.mode is None:
            continue
        if st.mode & 0o007:
            what = "lets 'other' list or enter it" if st.is_dir else "gives 'other' access"
            out.append(f"{st.path} mode {mode_text(st.mode)} {what}")
        if st.mode & 0o020:
            out.append(f"{st.path} mode {mode_text(st.mode)} is group-writable ({st.group})")
        elif st.mode & 0o040 and st.group not in AUDIT_READ_GROUPS:
            out.append(f"{st.path} is readable by group {st.group} (not root or adm)")
        if st.has_acl:
            out.append(f"{st.path} carries a POSIX ACL that may widen access (getfacl)")
    return out


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
    (or a file rsyslog writes, wherever it is) readable by 'other' or writable by group/other; a file
    rsyslog creates so (its effective ``fileCreateMode``/``$FileCreateMode`` less ``$Umask``); any file
    below /var/log (subdirectories included) writable by everyone; the audit log directory or files
    open to 'other', group-writable, readable by a group other than root/adm, or carrying a POSIX ACL;
    no journald Forward Secure Sealing (Seal=no, no sealing key, or a volatile journal). Error: a
    malformed rsyslog, syslog-ng or journald file (file:line).
    A second, manual finding covers access control on the log server (attestation).
    """
    logging = _logging_facts(ctx, "log forwarding and log file protection")
    remote = remote_log_forwards(logging)
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
        "files_written": [
            {
                "file": t.file,
                "where": t.where(),
                "create_mode": mode_text(t.effective_mode()),
                "create_mode_from": t.create_mode_from,
                "umask": t.umask_from,
            }
            for t in logging.files_written[:20]
        ],
        "other_log_files_examined": len(logging.other_log_files),
        "other_log_files_truncated": logging.other_log_files_truncated,
        "audit_logs": [
            stat_evidence(s)
            for s in (
                [logging.audit.log_dir] if logging.audit.log_dir and logging.audit.log_dir.exists else []
            )
            + logging.audit.log_files[:5]
        ],
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
    creates = []
    for t in logging.files_written:
        mode = t.effective_mode()
        if mode is not None and mode & 0o027:
            umask = f", umask {t.umask_from}" if t.umask_from else ""
            creates.append(f"{t.daemon} creates {t.file} ({t.where()}) with mode {mode_text(mode)} "
                           f"({t.create_mode_from}{umask})")  # fmt: skip
    if creates:
        fails.append(
            "new log files are created readable by 'other' or group-writable: " + "; ".join(creates[:5])
        )
        fixes.append(
            'rsyslog: module(load="builtin:omfile" fileCreateMode="0640") for action(type="omfile") and '
            "$FileCreateMode 0640 before the legacy file actions (each reaches only its own kind), or "
            'fileCreateMode="0640" on the action'
        )
    everyone = [s for s in logging.other_log_files if s.mode is not None and s.mode & 0o002]
    if everyone:
        fails.append(
            "log files anyone can write (forge or erase entries): "
            + "; ".join(f"{s.path} mode {mode_text(s.mode)}" for s in everyone[:5])
            + (f" (and {len(everyone) - 5} more)" if len(everyone) > 5 else "")
        )
        fixes.append("chmod o-w " + " ".join(s.path for s in everyone[:5]))
    audit_loose = audit_log_read_access(logging.audit)
    if audit_loose:
        fails.append(
            "audit logs are not restricted to root and the log readers: " + "; ".join(audit_loose[:5])
        )
        fixes.append(
            f"chmod o-rwx,g-w {posixpath.dirname(logging.audit.log_file)} {logging.audit.log_file}* "
            "(0700/0600, or 0750/0640 with log_group = adm in /etc/audit/auditd.conf)"
        )
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
            + "system log files and the files rsyslog writes are not world-readable or group-writable "
            "(nor created so), no file below /var/log is world-writable"
            + (
                f" (of the {len(logging.other_log_files)} examined: files deeper than three levels or beyond "
                "5000 were not)"
                if logging.other_log_files_truncated
                else ""
            )
            + "; journald seals the persistent journal (Forward Secure Sealing).",
            evidence,
        )
    yield ctx.manual(
        HOST,
        "Evidence needed: on the log server, access to this host's logs is read-only and limited to the "
        "staff "
        "who need it (role list / RBAC export), and its own change-detection safeguard (SS-012).",
        {"log_servers": sorted({f.target or "?" for f in remote})},
    )


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
        for f in remote_log_forwards(logging)
        if not (f.daemon == "journal-upload" and "not enabled" in f.text)
    ]
    local = [f for f in logging.forwards if f not in remote]
    evidence: dict[str, Any] = {
        "remote": [f"{f.daemon} → {f.target}:{f.port or ''} ({f.where()})" for f in remote][:20],
        "ignored": [
            f"{f.daemon} → {f.target} ({f.where()}): "
            + ("local target" if f.target and is_local_target(f.target) else "not enabled")
            for f in local
        ][:20],
        "rsyslog_files": logging.rsyslog_files[:20],
        "syslog_ng_files": logging.syslog_ng_files[:20],
        **known_libvirtd(ctx.host, "log_outputs"),
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
