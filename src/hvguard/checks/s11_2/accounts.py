"""Checks for SS-009 11.2.4.

11.2.4 Minimal number of accounts with direct host access

Checks: ``direct_access_accounts``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    Conf,
)
from hvguard.checks.support.subjects import host_access
from hvguard.findings import Finding


@check(
    "11.2.4",
    id="host.direct-access-accounts",
    reads=("host.access.accounts", "host.access.sudo", "host.libvirtd_conf.unix_sock_group"),
)
def direct_access_accounts(ctx: CheckContext) -> Iterator[Finding]:
    """Accounts with direct host access are limited to those necessary.

    The accounts: local accounts with a login shell, members of the privileged groups (sudo, wheel, admin,
    libvirt, kvm, libvirt-qemu, qemu) and users named in sudo rules. With the profile's
    ``approved_host_accounts``: fail for every account not on it (with the commands that remove its
    access), else pass. Without a list: warn above ``max_host_accounts``, else manual with the list to
    approve. Sudo grants to groups /etc/group cannot enumerate (directory groups, netgroups) add a manual
    finding. Malformed passwd/group lines are errors (file:line).
    """
    host = ctx.host
    access = host_access(ctx)
    if access is None or access.accounts is None:
        if access is not None and ctx.problems("host.access.accounts"):
            yield ctx.error(HOST, "the host's accounts (/etc/passwd, /etc/group)", "host.access.accounts")
            return
        evidence: dict[str, Any] = {"accounts": "not collected (an older bundle or no host facts)"}
        if host is not None and host.libvirtd_conf.error is None:
            evidence["libvirtd unix_sock_group"] = (
                Conf(host.libvirtd_conf, "libvirtd_conf").get("unix_sock_group").evidence()
            )
        yield ctx.manual(
            HOST,
            "Evidence needed: the approved list of accounts with direct access to this host, compared "
            "with (a) accounts with a login shell in /etc/passwd, (b) members of sudo/wheel and the libvirt "
            "socket group (unix_sock_group; its members manage VMs without root), (c) sshd "
            "AllowUsers/AllowGroups "
            "(sshd -T) and (d) /etc/sudoers and /etc/sudoers.d grants. Every extra account needs a "
            "justification.",
            evidence,
        )
        return
    accounts = access.accounts
    for error in accounts.errors:
        yield ctx.error(HOST, f"an account entry ({error})", evidence={"parse_error": error})
    unread = ae.sudo_unreadable_error(ctx, "the accounts that sudo grants reach")
    if unread is not None:
        yield unread
    principals = ae.direct_access(access)
    th = ctx.profile.thresholds
    approved = set(th.approved_host_accounts)
    evidence = {
        "accounts": {n: p.evidence() for n, p in sorted(principals.items())},
        "count": len(principals),
        "approved_host_accounts": sorted(approved) or "not set in the profile",
        "max_host_accounts": th.max_host_accounts,
    }
    names = sorted(principals)
    if approved:
        extra = [n for n in names if n not in approved]
        if extra:
            fixes = [f"{n}: {fix}" for n in extra for fix in principals[n].fixes]
            yield ctx.failed(
                HOST,
                f"{len(extra)} account(s) have direct access to the host but are not on the approved list: "
                + "; ".join(f"{n} ({', '.join(principals[n].reasons[:2])})" for n in extra[:10])
                + ".",
                evidence,
                "Remove their access, or add them to approved_host_accounts with a justification:\n"
                + "\n".join(fixes[:40]),
            )
        elif unread is None:  # accounts named only in unreadable sudoers files are unknown: no pass
            yield ctx.passed(
                HOST,
                f"All {len(names)} account(s) with direct access are on the approved list: "
                + ", ".join(names)
                + ".",
                evidence,
            )
    elif len(names) > th.max_host_accounts:
        yield ctx.warned(
            HOST,
            f"{len(names)} accounts have direct access to the host (more than max_host_accounts = "
            f"{th.max_host_accounts}): {', '.join(names[:20])}. No approved list is configured "
            "(approved_host_accounts), so hvguard cannot tell which are necessary.",
            evidence,
            "List the necessary accounts in the profile (thresholds: approved_host_accounts: [root, …]) "
            "and remove the others:\n"
            + "\n".join(f"{n}: {fix}" for n in names for fix in principals[n].fixes)[:4000],
        )
    else:
        yield ctx.manual(
            HOST,
            f"{len(names)} account(s) have direct access to the host: {', '.join(names) or 'none'}. Evidence "
            "needed: the approved list with a justification per account — or set approved_host_accounts in "
            "the profile and hvguard decides.",
            evidence,
        )
    unresolved = ae.unresolved_sudo_groups(access.sudo, accounts)
    if unresolved:
        yield ctx.manual(
            HOST,
            "sudo grants go to groups that /etc/group cannot list (directory groups or netgroups): "
            + ", ".join(unresolved)
            + ". Evidence needed: their membership from the directory, matched against the approved list.",
            {"groups": unresolved},
        )
