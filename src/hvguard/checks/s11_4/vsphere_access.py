"""Checks for SS-009 11.4.1, 11.4.2, 11.4.3, 11.4.5 and 11.4.6 on vSphere: administrative access to hosts.

11.4.1 hosts joined to the directory (ESXI-80-000049) without the default "ESX Admins" group
(ESXI-80-000241); 11.4.2 management services reachable only from listed networks (ESXI-80-000239);
11.4.3 MFA (vCenter SSO is not readable through the vSphere API: attested, with lockdown as evidence,
VCSA-80-000060); 11.4.5 separation of hypervisor and guest credentials (attested); 11.4.6 the service
console: SSH and the ESXi Shell off, shell and DCUI timeouts, DCUI access, the MOB off, account lockout.

Checks: ``vsphere.directory``, ``vsphere.admin-endpoints``, ``vsphere.mfa``,
``vsphere.credential-separation``, ``vsphere.remote-console``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import (
    OptionRule,
    as_int,
    each_host,
    facts,
    host_cli,
    need,
    option,
    ps,
    rules_finding,
    service,
    set_option_fix,
    stop_service_fix,
    top_subject,
    truthy,
)
from hvguard.facts import OptionValue, VsphereHost, host_area
from hvguard.findings import Finding

DEFAULT_ADMIN_GROUP = "ESX Admins"
#: Rulesets of the host's management services (SSH, the vSphere Client/API, the web client).
MANAGEMENT_RULESETS = ("sshServer", "vSphereClient", "webAccess", "vpxHeartbeats", "sshClient")


def _between(low: int, high: int) -> Callable[[OptionValue], bool]:
    def ok(value: OptionValue) -> bool:
        n = as_int(value)
        return n is not None and low <= n <= high

    return ok


def _at_least(low: int) -> Callable[[OptionValue], bool]:
    def ok(value: OptionValue) -> bool:
        n = as_int(value)
        return n is not None and n >= low

    return ok


#: The 11.4.6 advanced options, with the ESXi 8 STIG values.
CONSOLE_RULES = (
    OptionRule("UserVars.ESXiShellTimeOut", _between(1, 600), "1–600 s", 600, "ESXI-80-000195"),
    OptionRule("UserVars.ESXiShellInteractiveTimeOut", _between(1, 900), "1–900 s", 900, "ESXI-80-000068"),
    OptionRule("UserVars.DcuiTimeOut", _between(1, 600), "1–600 s", 600, "ESXI-80-000196"),
    OptionRule(
        "Config.HostAgent.plugins.solo.enableMob", lambda v: not truthy(v), "false", False, "ESXI-80-000047"
    ),
    OptionRule("Security.AccountLockFailures", _between(1, 3), "1–3", 3, "ESXI-80-000005"),
    OptionRule("Security.AccountUnlockTime", _at_least(900), "≥ 900 s", 900, "ESXI-80-000111"),
)
#: The console services: (service key, what it is, STIG id).
CONSOLE_SERVICES = (("TSM-SSH", "SSH", "ESXI-80-000193"), ("TSM", "ESXi Shell", "ESXI-80-000194"))


@check(
    "11.4.1", id="vsphere.directory", reads=("vsphere.hosts[].active_directory", "vsphere.hosts[].options")
)
def directory(ctx: CheckContext) -> Iterator[Finding]:
    """Each host is joined to Active Directory with membership status ``ok`` (ESXI-80-000049) and its
    administrators group is not the well-known default "ESX Admins" (ESXI-80-000241)."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        ad = need(
            host.active_directory,
            subject,
            "the host's directory membership",
            host_area(host.moref, "active_directory"),
        )
        group = str(option(host, subject, "Config.HostAgent.plugins.hostsvc.esxAdminsGroup"))
        evidence = {
            "joined_domain": ad.joined_domain,
            "membership_status": ad.membership_status,
            "esx_admins_group": group,
            "stig": ["ESXI-80-000049", "ESXI-80-000241"],
        }
        failed: list[str] = []
        fixes: list[str] = []
        if not ad.joined_domain or ad.enabled is False:
            failed.append("not joined to a directory domain")
            fixes.append(
                f"{host_cli(ctx, host)} | Get-VMHostAuthentication | Set-VMHostAuthentication -JoinDomain "
                "-Domain 'corp.example.org' -Credential (Get-Credential) -Confirm:$false"
            )
        elif ad.membership_status not in (None, "ok"):
            failed.append(f"domain membership status {ad.membership_status!r}")
            fixes.append("Rejoin the domain (Set-VMHostAuthentication -LeaveDomain, then -JoinDomain).")
        if group.strip().lower() == DEFAULT_ADMIN_GROUP.lower():
            failed.append(f"administrators group is the default {DEFAULT_ADMIN_GROUP!r}")
            fixes.append(
                set_option_fix(ctx, host, "Config.HostAgent.plugins.hostsvc.esxAdminsGroup", "hv-esx-admins")
            )
        if failed:
            yield ctx.failed(
                subject,
                "host accounts not integrated with the directory: " + "; ".join(failed),
                evidence,
                "\n".join(fixes),
            )
        else:
            yield ctx.passed(
                subject, f"joined to {ad.joined_domain} (status ok), admins group {group!r}", evidence
            )

    yield from each_host(ctx, judge)


@check("11.4.2", id="vsphere.admin-endpoints", reads=("vsphere.hosts[].firewall",))
def admin_endpoints(ctx: CheckContext) -> Iterator[Finding]:
    """Each enabled, user-configurable firewall ruleset of the host's services accepts only listed
    addresses or networks (``allowedHosts.allIp`` false with IPs/networks, ESXI-80-000239), so
    administration is possible only from the defined management endpoints."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        fw = need(host.firewall, subject, "the host's firewall", host_area(host.moref, "firewall"))
        inbound = [
            r
            for r in fw.rulesets
            if r.enabled
            and r.user_configurable is not False
            and (r.key in MANAGEMENT_RULESETS or any(x.endswith("/inbound") for x in r.rules))
        ]
        open_sets = [r for r in inbound if r.all_ip is not False or not (r.ip_addresses or r.ip_networks)]
        evidence = {
            "rulesets": {
                r.key: {"all_ip": r.all_ip, "ip_addresses": r.ip_addresses, "ip_networks": r.ip_networks}
                for r in inbound
            },
            "stig": ["ESXI-80-000239"],
        }
        if open_sets:
            yield ctx.failed(
                subject,
                "management services accept connections from any address: "
                + ", ".join(r.key for r in open_sets),
                evidence,
                "\n".join(
                    f"{host_cli(ctx, host)} | Get-VMHostFirewallException | Where-Object "
                    f"{{$_.ExtensionData.Key -eq {ps(r.key)}}} "
                    "| ForEach-Object { $fw = Get-View "
                    f"({host_cli(ctx, host)}).ExtensionData.ConfigManager.FirewallSystem; "
                    "$spec = New-Object VMware.Vim.HostFirewallRulesetRulesetSpec; $spec.AllowedHosts = "
                    "New-Object "
                    "VMware.Vim.HostFirewallRulesetIpList; $spec.AllowedHosts.AllIp = $false; $n = "
                    "New-Object "
                    "VMware.Vim.HostFirewallRulesetIpNetwork; $n.Network = 'MGMT_NET'; $n.PrefixLength = "
                    "'PREFIX'; "
                    f"$spec.AllowedHosts.IpNetwork = @($n); $fw.UpdateRuleset({ps(r.key)}, $spec) }}"
                    for r in open_sets
                ),
            )
        else:
            yield ctx.passed(
                subject, f"{len(inbound)} inbound ruleset(s), each limited to listed addresses", evidence
            )

    yield from each_host(ctx, judge)


@check("11.4.3", id="vsphere.mfa", reads=("vsphere.hosts[].lockdown", "vsphere.hosts[].smart_card_auth"))
def mfa(ctx: CheckContext) -> Iterator[Finding]:
    """vCenter's identity federation / smart-card settings are not readable through the vSphere API, so MFA
    is attested (``manual``, VCSA-80-000060); as evidence, which hosts bypass vCenter (lockdown off) or
    take smart cards directly."""
    vs = facts(ctx)
    yield ctx.manual(
        top_subject(ctx),
        "Show that every administrative login requires multiple factors: vCenter identity federation to an "
        "IdP "
        "enforcing MFA, or smart-card authentication (VCSA-80-000060); hosts in lockdown mode so direct "
        "logins "
        "are refused (ESXI-80-000008), or smart-card authentication on the host.",
        {
            "lockdown": {h.name: h.lockdown.mode if h.lockdown else None for h in vs.hosts},
            "smart_card_auth": {h.name: h.smart_card_auth for h in vs.hosts},
            "stig": ["VCSA-80-000060", "ESXI-80-000008"],
        },
    )


@check("11.4.5", id="vsphere.credential-separation", reads=("vsphere.permissions",))
def credential_separation(ctx: CheckContext) -> Iterator[Finding]:
    """Whether hypervisor administrators' credentials reach guests or applications is a directory
    question: attested (``manual``), with the principals holding vSphere permissions as evidence
    (VCSA-80-000298)."""
    vs = facts(ctx)
    principals = sorted({p.principal for p in vs.permissions or []})
    yield ctx.manual(
        top_subject(ctx),
        "Show that the accounts and groups administering vSphere are separate from guest-OS, application and "
        "data accounts (different identity source or directory groups), VCSA-80-000298.",
        {"vsphere_principals": principals[:50], "stig": ["VCSA-80-000298"]},
    )


@check("11.4.6", id="vsphere.remote-console", reads=("vsphere.hosts[].services", "vsphere.hosts[].options"))
def remote_console(ctx: CheckContext) -> Iterator[Finding]:
    """Per host: SSH (``TSM-SSH``, ESXI-80-000193) and the ESXi Shell (``TSM``, ESXI-80-000194) stopped with
    policy off; shell and DCUI timeouts; ``DCUI.Access`` root only (ESXI-80-000189); the MOB off; account
    lockout after 3 failures for 15 minutes."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        failed: list[str] = []
        fixes: list[str] = []
        evidence: dict[str, object] = {}
        for key, what, stig in CONSOLE_SERVICES:
            state = service(host, subject, key)
            running, policy = state if state is not None else (False, "off")
            evidence[key] = {"running": running, "policy": policy}
            if running or (policy or "off") != "off":
                failed.append(f"{what} ({key}) running={running} policy={policy} [{stig}]")
                fixes.append(stop_service_fix(ctx, host, key))
        dcui = str(option(host, subject, "DCUI.Access"))
        if [u.strip() for u in dcui.split(",") if u.strip()] != ["root"]:
            failed.append(f"DCUI.Access = {dcui!r}, wanted root only [ESXI-80-000189]")
            fixes.append(set_option_fix(ctx, host, "DCUI.Access", "root"))
        evidence["DCUI.Access"] = dcui
        evidence["stig_services"] = ["ESXI-80-000193", "ESXI-80-000194", "ESXI-80-000189"]
        yield rules_finding(
            ctx,
            host,
            subject,
            CONSOLE_RULES,
            "service console access",
            extra_failed=failed,
            extra_fixes=fixes,
            extra_evidence=evidence,
        )

    yield from each_host(ctx, judge)
