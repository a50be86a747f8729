"""Checks for SS-009 11.4.4, 11.4.10 and 11.4.11 on vSphere: audit logs and their forwarding.

11.4.4 audit records kept and forwarded so host administrators cannot erase them (ESXI-80-000232/233),
with the holders of ``Host.Config.AdvancedConfig`` (who can change that) listed for attestation;
11.4.10 syslog over TLS with certificate checks (ESXI-80-000224/234; vCenter's own forwarding is a VAMI
setting, VCSA-80-000148, attested); 11.4.11 logs stored on an external server (ESXI-80-000114/233).

Checks: ``vsphere.audit-records``, ``vsphere.audit-log-custody``, ``vsphere.syslog-tls``,
``vsphere.syslog-remote``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.subjects import capped
from hvguard.checks.support.vsphere import (
    OptionRule,
    each_host,
    facts,
    is_esxi,
    rules_finding,
    top_subject,
    truthy,
)
from hvguard.checks.support.vsphere_permissions import NO_ACCESS, PermissionIndex
from hvguard.facts import OptionValue, VsphereHost
from hvguard.findings import Finding

LOG_HOST = "Syslog.global.logHost"
AUDIT_STORAGE = OptionRule("Syslog.global.auditRecord.storageEnable", truthy, "true", True, "ESXI-80-000232")
AUDIT_REMOTE = OptionRule("Syslog.global.auditRecord.remoteEnable", truthy, "true", True, "ESXI-80-000233")
CHECK_CERTS = OptionRule("Syslog.global.certificate.checkSSLCerts", truthy, "true", True, "ESXI-80-000224")
STRICT_X509 = OptionRule(
    "Syslog.global.certificate.strictX509Compliance", truthy, "true", True, "ESXI-80-000234"
)
#: The privilege that changes advanced settings, syslog targets included.
LOG_CONTROL_PRIVILEGES = ("Host.Config.AdvancedConfig",)


def log_hosts(value: OptionValue) -> list[str]:
    """The syslog targets of ``Syslog.global.logHost`` (comma-separated ``proto://host:port`` entries)."""
    return [h.strip() for h in str(value).split(",") if h.strip()]


def _has_log_host(value: OptionValue) -> bool:
    return bool(log_hosts(value))


LOG_HOST_SET = OptionRule(
    LOG_HOST, _has_log_host, "a remote syslog target", "ssl://SYSLOG.EXAMPLE.ORG:1514", "ESXI-80-000114"
)


def _all_tls(value: OptionValue) -> bool:
    hosts = log_hosts(value)
    return bool(hosts) and all(h.lower().startswith("ssl://") for h in hosts)


LOG_HOST_TLS = OptionRule(LOG_HOST, _all_tls, "every target ssl://HOST:PORT", "ssl://SYSLOG.EXAMPLE.ORG:1514")


@check("11.4.4", id="vsphere.audit-records", reads=("vsphere.hosts[].options",))
def audit_records(ctx: CheckContext) -> Iterator[Finding]:
    """Each host keeps audit records (``auditRecord.storageEnable``, ESXI-80-000232) and forwards them off
    the host (``auditRecord.remoteEnable``, ESXI-80-000233, with a log host set), so an administrator of
    the host cannot remove the only copy."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        yield rules_finding(
            ctx,
            host,
            subject,
            [AUDIT_STORAGE, AUDIT_REMOTE, LOG_HOST_SET],
            "audit records kept and forwarded",
        )

    yield from each_host(ctx, judge)


def _controls_logs(privileges: frozenset[str]) -> bool:
    return "*" in privileges or any(x in privileges for x in LOG_CONTROL_PRIVILEGES)


@check("11.4.4", id="vsphere.audit-log-custody", reads=("vsphere.permissions", "vsphere.roles"))
def audit_log_custody(ctx: CheckContext) -> Iterator[Finding]:
    """Who can change the audit settings: holders of ``Host.Config.AdvancedConfig`` (Admin included) are
    listed; that they are not the custodians of the remote log store is attested (``manual``)."""
    vs = facts(ctx)
    top = top_subject(ctx)
    if vs.permissions is None or vs.roles is None:
        yield ctx.error(top, "who holds Host.Config.AdvancedConfig", "vsphere.permissions", "vsphere.roles")
        return
    index = PermissionIndex(vs.inventory or [], vs.permissions, vs.roles)
    holders = [
        {"principal": p.principal, "role": index.role_name(p.role_id), "entity": index.name(p.entity)}
        for p in vs.permissions
        if p.role_id != NO_ACCESS and _controls_logs(index.privileges(p.role_id))
    ]
    yield ctx.manual(
        top,
        "These principals can change the hosts' log settings (Host.Config.AdvancedConfig). Show that the "
        "remote "
        "log store is run by a different team and that none of them can modify or delete records there.",
        {"log_setting_holders": capped(holders), "holder_count": len(holders)},
    )


@check("11.4.10", id="vsphere.syslog-tls", reads=("vsphere.hosts[].options",))
def syslog_tls(ctx: CheckContext) -> Iterator[Finding]:
    """Each host sends syslog (a standard format) only over TLS (``ssl://`` targets) and verifies the
    server certificate (``checkSSLCerts``, ESXI-80-000224) strictly (``strictX509Compliance``,
    ESXI-80-000234). vCenter's own forwarding (VAMI) is attested (VCSA-80-000148)."""
    if not is_esxi(ctx):
        facts(ctx)
        yield ctx.manual(
            top_subject(ctx),
            "Show vCenter's syslog forwarding (VAMI > Syslog, or GET /api/appliance/logging/forwarding) "
            "uses TLS to "
            "the central log server, and that log access there is read-only and restricted (VCSA-80-000148).",
            {"stig": ["VCSA-80-000148"]},
        )

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        yield rules_finding(
            ctx, host, subject, [LOG_HOST_TLS, CHECK_CERTS, STRICT_X509], "syslog over verified TLS"
        )

    yield from each_host(ctx, judge)


@check("11.4.11", id="vsphere.syslog-remote", reads=("vsphere.hosts[].options",))
def syslog_remote(ctx: CheckContext) -> Iterator[Finding]:
    """Each host stores its logs on an external server: ``Syslog.global.logHost`` names one
    (ESXI-80-000114) and audit records go there too (``auditRecord.remoteEnable``, ESXI-80-000233)."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        yield rules_finding(
            ctx, host, subject, [LOG_HOST_SET, AUDIT_REMOTE], "logs sent to an external server"
        )

    yield from each_host(ctx, judge)
