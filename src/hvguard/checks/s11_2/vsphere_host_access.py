"""Checks for SS-009 11.2.4 on vSphere: few accounts with direct access to each ESXi host.

Lockdown mode on (ESXI-80-000008) so hosts are managed through vCenter only; the lockdown exception list
empty or approved (ESXI-80-000201); ``DCUI.Access`` only ``root`` (ESXI-80-000189); the local accounts
within the approved list (``approved_host_accounts``) or, without one, no more than ``max_host_accounts``.

Checks: ``vsphere.host-accounts``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import each_host, host_cli, need, option, ps, set_option_fix
from hvguard.facts import VsphereHost, host_area
from hvguard.findings import Finding

#: Local accounts every ESXi host has and hvguard does not count: the DCUI service account and the
#: vCenter agent account (ESXi creates both; neither is a person).
SERVICE_ACCOUNTS = frozenset({"dcui", "vpxuser"})


@check(
    "11.2.4",
    id="vsphere.host-accounts",
    reads=("vsphere.hosts[].lockdown", "vsphere.hosts[].accounts", "vsphere.hosts[].options"),
)
def host_accounts(ctx: CheckContext) -> Iterator[Finding]:
    """Per host: lockdown mode normal or strict, no unapproved lockdown exception users, ``DCUI.Access``
    = ``root`` only, and local accounts within the approved list (or at most ``max_host_accounts``)."""
    thresholds = ctx.profile.thresholds
    approved = set(thresholds.approved_host_accounts)

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        lockdown = need(host.lockdown, subject, "the host's lockdown mode", host_area(host.moref, "lockdown"))
        accounts = need(
            host.accounts, subject, "the host's local accounts", host_area(host.moref, "accounts")
        )
        dcui = str(option(host, subject, "DCUI.Access"))
        people = [a for a in accounts if a not in SERVICE_ACCOUNTS]
        evidence = {
            "lockdown_mode": lockdown.mode,
            "exception_users": lockdown.exception_users,
            "dcui_access": dcui,
            "local_accounts": accounts,
            "stig": ["ESXI-80-000008", "ESXI-80-000189", "ESXI-80-000201"],
        }
        failed: list[str] = []
        fixes: list[str] = []
        if lockdown.mode in (None, "lockdownDisabled"):
            failed.append(f"lockdown mode {lockdown.mode or 'unknown'} [ESXI-80-000008]")
            fixes.append(f"({host_cli(ctx, host)} | Get-View).EnterLockdownMode()")
        extra_exceptions = [u for u in lockdown.exception_users or [] if u not in approved]
        if extra_exceptions:
            failed.append(
                f"lockdown exception users not approved: {', '.join(extra_exceptions)} [ESXI-80-000201]"
            )
            fixes.append(
                f"$am = Get-View ({host_cli(ctx, host)}).ExtensionData.ConfigManager.HostAccessManager; "
                "$am.UpdateLockdownExceptions(@("
                + ", ".join(
                    ps(u) for u in sorted(set(lockdown.exception_users or []) - set(extra_exceptions))
                )
                + "))"
                "  # or add them to approved_host_accounts in the profile"
            )
        dcui_users = [u.strip() for u in dcui.split(",") if u.strip()]
        if dcui_users != ["root"]:
            failed.append(f"DCUI.Access = {dcui!r}, wanted root only [ESXI-80-000189]")
            fixes.append(set_option_fix(ctx, host, "DCUI.Access", "root"))
        if approved:
            unapproved = [a for a in people if a not in approved]
            if unapproved:
                failed.append(f"local accounts not approved: {', '.join(unapproved)}")
                fixes.extend(
                    f"Remove-VMHostAccount -HostAccount (Get-VMHostAccount -Id {ps(a)}) -Confirm:$false  "
                    f"# connected to {host.name} directly"
                    for a in unapproved
                )
        elif len(people) > thresholds.max_host_accounts:
            failed.append(
                f"{len(people)} local accounts, more than max_host_accounts ({thresholds.max_host_accounts})"
            )
            fixes.append(
                "Remove the local accounts nobody needs (Remove-VMHostAccount), or list the approved ones "
                "in approved_host_accounts in the profile."
            )
        if failed:
            yield ctx.failed(
                subject, "direct host access not limited: " + "; ".join(failed), evidence, "\n".join(fixes)
            )
        else:
            yield ctx.passed(
                subject,
                f"lockdown {lockdown.mode}, DCUI.Access root only, {len(people)} local account(s) "
                f"({', '.join(people)})",
                evidence,
            )

    yield from each_host(ctx, judge)
