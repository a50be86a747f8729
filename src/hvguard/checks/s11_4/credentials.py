"""Checks for SS-009 11.4.5.

11.4.5 Hypervisor credentials separate from applications and data

Checks: ``admin_credential_separation``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.support import access as ae
from hvguard.checks.support.subjects import host_access
from hvguard.findings import Finding


@check("11.4.5", id="host.admin-credential-separation", reads=("host.access",))
def admin_credential_separation(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor credentials give no access to guest applications or data — attestation, with the
    hypervisor administration groups and accounts hvguard found named in the evidence."""
    access = host_access(ctx)
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
