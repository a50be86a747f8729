"""Checks for SS-009 11.2.2 and 11.2.3.

11.2.2 Granular access control per permission and per VM or VM group
11.2.3 Deny specific VMs within a permitted VM group

Checks: ``libvirt_access_driver``, ``libvirt_deny_rules``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_2.common import (
    POLKIT_ACL_FIX,
    STATIC_CAVEAT,
    access_driver,
    polkit_errors,
    polkit_unreadable,
)
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    MODULAR_NOTE,
    Setting,
    fmt_value,
)
from hvguard.checks.support.subjects import capped, host_access
from hvguard.facts import (
    AccessFacts,
)
from hvguard.findings import Finding


def _acl_verdict(
    ctx: CheckContext, access: AccessFacts, drivers: Setting, evidence: dict[str, Any], *, deny: bool
) -> Iterator[Finding]:
    """11.2.2 (``deny`` False: per-VM grants) or 11.2.3 (``deny`` True: per-VM denials) from the ACL
    probes when they decide, else from the polkit rules."""
    yield from polkit_errors(ctx, access)
    probes = access.probes
    evidence["probes"] = (
        ae.probe_evidence(probes) if probes else "none run (hvguard scan --probe-acl USER:VM decides)"
    )
    rules = ae.libvirt_rules(access)
    evidence["libvirt_polkit_rules"] = capped([ae.rule_summary(f, r) for f, r in rules], 30)
    split = ae.differentiated_users(probes)
    if split:
        user, (allowed, denied) = sorted(split.items())[0]
        what = "denies specific VMs to a user who manages others" if deny else "scopes permissions per VM"
        yield ctx.passed(
            HOST,
            f"Decided by probe: libvirt allowed {user} to read {', '.join(allowed)} and denied "
            f"{', '.join(denied)}, so the access control {what}.",
            evidence,
            method="probe",
        )
        return
    if polkit_unreadable(access):
        return  # the rules read may be overridden by those that could not be: no static verdict
    if deny:
        lines = [ae.loc(f.path, n) for f, r in rules for n in r.domain_denies]
    else:
        lines = [ae.loc(f.path, n) for f, r in rules for n in (*r.domain_allows, *r.domain_denies)]
    if lines:
        what = (
            "return polkit.Result.NO for particular domains (a deny inside what a group may manage)"
            if deny
            else "decide per domain (action.lookup of domain_name/domain_uuid)"
        )
        yield ctx.passed(
            HOST,
            f"polkit rules {what}: {', '.join(lines[:10])}." + STATIC_CAVEAT,
            evidence,
            method="static-analysis",
        )
        return
    if deny:
        message = (
            "No polkit rule returns polkit.Result.NO depending on the domain, so no VM can be denied to a "
            "group that manages the others."
        )
    elif rules:
        message = (
            "polkit rules grant libvirt permissions ("
            + ", ".join(ae.loc(f.path, r.line) for f, r in rules[:5])
            + ") without testing the domain: a grant covers every VM."
        )
    else:
        message = (
            "No polkit rule handles org.libvirt.api.* actions: libvirt's default policy applies (read-only "
            "actions allowed to every connected client, the rest only to administrators), so nothing is "
            "scoped to a VM or VM group."
        )
    yield ctx.failed(
        HOST,
        message + STATIC_CAVEAT,
        evidence,
        POLKIT_ACL_FIX.format(where=drivers.where()),
        method="static-analysis",
    )


@check(
    "11.2.2",
    id="kvm.libvirt-access-driver",
    reads=("host.libvirtd_conf.access_drivers", "host.access.polkit", "host.access.probes"),
)
def libvirt_access_driver(ctx: CheckContext) -> Iterator[Finding]:
    """libvirt's API access control can grant permissions per VM or VM group.

    Fail: libvirtd.conf ``access_drivers`` lacks "polkit" — the default "nop" driver does no access
    control once a client is connected. With polkit: pass when an ACL probe shows one user allowed on a VM
    and denied on another (``method=probe``), else when polkit rules decide libvirt API actions per domain
    (``action.lookup("domain_name"/"domain_uuid")`` in the conditions of their YES/NO returns; static
    analysis, ``method=static-analysis``); fail when no rule does. An unparsable rules file is an error.
    Manual when the polkit rules were not collected. Sources: libvirtd.conf.in, docs/acl.rst,
    docs/aclpolkit.rst.
    """
    drivers, polkit = access_driver(ctx)
    evidence: dict[str, Any] = {"access_drivers": drivers.evidence(), "note": MODULAR_NOTE}
    if not polkit:
        yield ctx.failed(
            HOST,
            "libvirt has no per-VM access control: access_drivers is "
            + (
                "unset (the default 'nop' driver does no checks)"
                if not drivers.explicit
                else f'{fmt_value(drivers.value)} without "polkit"'
            )
            + ", so any client that can connect may manage every VM.",
            evidence,
            POLKIT_ACL_FIX.format(where=drivers.where()),
        )
        return
    access = host_access(ctx)
    if access is None or access.polkit is None:
        yield ctx.manual(
            HOST,
            "access_drivers includes polkit, so libvirt can scope permissions per VM. Evidence needed: "
            'the rules in /etc/polkit-1/rules.d/*.rules that test action.lookup("domain_name") or '
            '("domain_uuid") '
            "for org.libvirt.api.domain.* actions, mapping each admin group to a VM or VM group "
            "(function/location), and a probe such as `runuser -u OPERATOR -- virsh -c qemu:///system "
            "dominfo VM` showing allow/deny.",
            evidence,
        )
        return
    yield from _acl_verdict(ctx, access, drivers, evidence, deny=False)


@check(
    "11.2.3",
    id="kvm.libvirt-deny-rules",
    reads=("host.libvirtd_conf.access_drivers", "host.access.polkit", "host.access.probes"),
)
def libvirt_deny_rules(ctx: CheckContext) -> Iterator[Finding]:
    """Specific VMs can be denied inside a permitted group.

    Fail: ``access_drivers`` lacks "polkit" — without an access driver nothing can be denied per VM. With
    polkit: pass when an ACL probe shows a user allowed on one VM and denied on another (``method=probe``),
    else when a polkit rule returns ``polkit.Result.NO`` under a condition on the domain
    (``method=static-analysis``); fail when none does. Static analysis cannot see rule order across files
    (polkitd stops at the first rule that answers), which the probe settles. Source: docs/aclpolkit.rst.
    """
    drivers, polkit = access_driver(ctx)
    evidence: dict[str, Any] = {"access_drivers": drivers.evidence(), "note": MODULAR_NOTE}
    if not polkit:
        yield ctx.failed(
            HOST,
            "No VM can be denied to a group that manages the rest: libvirt's access_drivers "
            + ("is unset (default 'nop': no checks)" if not drivers.explicit else 'lacks "polkit"')
            + ".",
            evidence,
            POLKIT_ACL_FIX.format(where=drivers.where()),
        )
        return
    access = host_access(ctx)
    if access is None or access.polkit is None:
        yield ctx.manual(
            HOST,
            "access_drivers includes polkit, so a per-VM deny is possible. Evidence needed: the polkit "
            'rule returning polkit.Result.NO for the named sensitive domains (action.lookup("domain_name")) '
            "before "
            "the group-wide polkit.Result.YES, and a probe by a group member against a denied VM "
            "(virsh dominfo SENSITIVE-VM → access denied) alongside an allowed one.",
            evidence,
        )
        return
    yield from _acl_verdict(ctx, access, drivers, evidence, deny=True)
