"""Checks for SS-009 11.2.5.

11.2.5 Least privilege and need to know for hypervisor access

Checks: ``libvirt_socket_access``, ``libvirt_role_model``, ``sudo_least_privilege``.
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
    fix_line,
    load_conf,
    restart_note,
)
from hvguard.checks.support.subjects import capped, host_access
from hvguard.facts import (
    SudoRule,
)
from hvguard.findings import Finding


@check(
    "11.2.5",
    id="kvm.libvirt-socket-access",
    reads=("host.libvirtd_conf.unix_sock_*", "host.libvirtd_conf.auth_unix_*"),
)
def libvirt_socket_access(ctx: CheckContext) -> Iterator[Finding]:
    """Local access to libvirt's sockets follows least privilege and need to know.

    Fail: a socket any local user can connect to (others-write bit in ``unix_sock_*_perms``) with
    ``auth_*`` "none" — on the read-only socket any user reads every VM's definition; on the read-write or
    admin socket any user controls libvirt. Manual: a world-connectable read-only socket guarded by polkit
    (or the build default) — polkit's shipped ``org.libvirt.unix.monitor`` allows any user unless a local
    rule restricts it. Pass: the read-only socket is group-restricted or uses SASL. Sources:
    libvirtd.conf.in (ro "0777", rw "0770", admin "0700"; auth_unix_* = build default).
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "libvirt socket permissions (libvirtd.conf)", "host")
        return
    lconf = load_conf(ctx, host, "libvirtd_conf")
    ro_perms = lconf.get("unix_sock_ro_perms")
    rw_perms = lconf.get("unix_sock_rw_perms")
    admin_perms = lconf.get("unix_sock_admin_perms")
    group = lconf.get("unix_sock_group")
    auth_ro = lconf.get("auth_unix_ro")
    auth_rw = lconf.get("auth_unix_rw")
    evidence: dict[str, Any] = {
        s.key: s.evidence() for s in (ro_perms, rw_perms, admin_perms, group, auth_ro, auth_rw)
    }
    evidence["note"] = MODULAR_NOTE
    fails: list[str] = []
    fixes: list[str] = []

    def world(s: Setting) -> bool:
        return bool(s.as_mode() & 0o002)

    if world(ro_perms) and auth_ro.explicit and auth_ro.as_str() == "none":
        fails.append(
            f'the read-only socket is world-connectable ({ro_perms.value}) with auth_unix_ro = "none": '
            "any local user can list every VM and read its definition"
        )
        fixes += [fix_line(ro_perms, "0770"), fix_line(group, "hv-operators"), fix_line(auth_ro, "polkit")]
    if world(rw_perms) and auth_rw.explicit and auth_rw.as_str() == "none":
        fails.append(
            f'the read-write socket is world-connectable ({rw_perms.value}) with auth_unix_rw = "none": '
            "any local user has full control of every VM"
        )
        fixes += [fix_line(rw_perms, "0770"), fix_line(auth_rw, "polkit")]
    if world(admin_perms):
        fails.append(
            f"the admin socket is world-connectable ({admin_perms.value}): any local user can reconfigure "
            "the daemon"
        )
        fixes.append(fix_line(admin_perms, "0700"))
    if fails:
        yield ctx.failed(
            HOST,
            "Local libvirt access is not least-privilege: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    ro_auth = auth_ro.as_str() if auth_ro.explicit else None
    if world(ro_perms) and ro_auth != "sasl":
        yield ctx.manual(
            HOST,
            f"The read-only socket is world-connectable ({ro_perms.value}, {ro_perms.source}) and "
            "authorised by "
            + (
                f'auth_unix_ro = "{ro_auth}"'
                if ro_auth
                else "the build default (polkit on distribution builds)"
            )
            + ". polkit's shipped org.libvirt.unix.monitor action allows any local user, so every user "
            "can read every VM definition unless a local rule restricts it. Evidence needed: the polkit "
            "rule limiting org.libvirt.unix.monitor to the monitoring group, or set "
            'unix_sock_ro_perms = "0770" with unix_sock_group = a need-to-know group.',
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "libvirt's local sockets are restricted: the read-only socket is "
        + ("group-only" if not world(ro_perms) else "SASL-authenticated")
        + ", the read-write and admin sockets are not open to unauthenticated local users.",
        evidence,
    )


@check(
    "11.2.5",
    id="kvm.libvirt-role-model",
    reads=("host.libvirtd_conf.access_drivers", "host.access.polkit"),
)
def libvirt_role_model(ctx: CheckContext) -> Iterator[Finding]:
    """Hypervisor access is granted by role (least privilege) with need-to-know scope.

    Fail: ``access_drivers`` lacks "polkit" — every client that connects read-write holds every
    permission on every VM. With polkit: pass when some libvirt grant (``polkit.Result.YES``) is limited
    to particular actions (``org.libvirt.api.domain.start`` …) or to particular domains — roles narrower
    than full administration exist (static analysis, ``method=static-analysis``); fail when the rules only
    grant whole action families, or grant nothing (then only root manages and every connected client reads
    every VM). The need-to-know justification of each role stays attestation.
    """
    drivers, polkit = access_driver(ctx)
    evidence: dict[str, Any] = {"access_drivers": drivers.evidence(), "note": MODULAR_NOTE}
    if not polkit:
        yield ctx.failed(
            HOST,
            "No least-privilege roles are possible in libvirt: without the polkit access driver every "
            "connected read-write client holds every permission (start, stop, edit, delete) on every VM.",
            evidence,
            POLKIT_ACL_FIX.format(where=drivers.where())
            + "\nGive operators only org.libvirt.api.domain.start/stop/read; keep write/delete for admins.",
        )
        return
    access = host_access(ctx)
    if access is None or access.polkit is None:
        yield ctx.manual(
            HOST,
            "Evidence needed: the role model (who may do what on which VMs: e.g. operators limited to "
            "org.libvirt.api.domain.start/stop/read, admins full) with its need-to-know justification, "
            "matched against the polkit rules in /etc/polkit-1/rules.d, sudoers grants and libvirt socket "
            "group "
            "members.",
            evidence,
        )
        return
    yield from polkit_errors(ctx, access)
    if polkit_unreadable(access):
        return
    rules = ae.libvirt_rules(access)
    grants = [(f, r) for f, r in rules if any(x.value == "YES" for x in r.results)]
    narrow = [
        (f, r) for f, r in grants if r.domain_allows or any(ae.is_specific_action(a.value) for a in r.actions)
    ]
    evidence["libvirt_polkit_rules"] = capped([ae.rule_summary(f, r) for f, r in rules], 30)
    if narrow:
        roles = sorted(
            {g.value for _, r in narrow for g in r.groups} | {u.value for _, r in narrow for u in r.users}
        )
        yield ctx.passed(
            HOST,
            "libvirt permissions are granted by role: rules at "
            + ", ".join(ae.loc(fl.path, r.line) for fl, r in narrow[:8])
            + " grant particular actions or particular VMs"
            + (f" to {', '.join(roles)}" if roles else "")
            + ". The need-to-know justification of each role remains attestation."
            + STATIC_CAVEAT,
            evidence,
            method="static-analysis",
        )
        return
    if grants:
        message = (
            "polkit grants libvirt permissions only as whole families ("
            + ", ".join(ae.loc(fl.path, r.line) for fl, r in grants[:5])
            + "): every grantee holds every permission on every VM it reaches — one role, not least "
            "privilege."
        )
    else:
        message = (
            "No polkit rule grants libvirt API permissions: only administrators (auth_admin) may change "
            "VMs and every connected client reads every VM — there are no operator or auditor roles."
        )
    yield ctx.failed(
        HOST,
        message + STATIC_CAVEAT,
        evidence,
        POLKIT_ACL_FIX.format(where=drivers.where())
        + "\nGive operators only org.libvirt.api.domain.start/stop/read (and getattr), auditors only "
        "read; keep write/delete/save for administrators.",
        method="static-analysis",
    )


@check("11.2.5", id="host.sudo-least-privilege", reads=("host.access.sudo", "host.access.accounts"))
def sudo_least_privilege(ctx: CheckContext) -> Iterator[Finding]:
    """sudo grants follow least privilege.

    Fail: a rule gives commands to every user (``ALL`` as the user list); a rule gives every command
    without re-authentication (``NOPASSWD: ALL``) to anyone but root — any process of that account is
    root; with ``approved_host_accounts`` set, a full-root grant (``ALL`` commands) reaches an account
    not on the list. Manual: full-root grants to named accounts or groups without an approved list (their
    need-to-know justification). Pass: no full-root grant beyond root, or all within the approved list.
    Malformed sudoers lines are errors (file:line). Source: sudoers(5).
    """
    access = host_access(ctx)
    if access is None:
        return
    sudo = access.sudo
    if sudo is None:
        if ctx.problems("host.access.sudo"):
            yield ctx.error(HOST, "the sudo configuration (/etc/sudoers)", "host.access.sudo")
        return
    unread = ae.sudo_unreadable_error(ctx, "the sudo grants")
    read_failures = set(ae.sudo_read_failures(sudo)) if unread else set()
    for error in sudo.errors:
        if error in read_failures:
            continue  # reported once, by ``unread``
        yield ctx.error(
            HOST, f"a sudoers entry ({error}); sudo rejects or skips it", evidence={"parse_error": error}
        )
    if unread is not None:
        yield unread
    if not sudo.present:
        yield ctx.passed(
            HOST, "There is no /etc/sudoers: sudo grants nobody anything.", {"sudoers": "absent"}
        )
        return

    def show(rule: SudoRule) -> dict[str, Any]:
        return {
            "where": ae.loc(rule.file, rule.line),
            "users": rule.principals,
            "runas": rule.runas,
            "commands": rule.commands[:20],
            "nopasswd": rule.nopasswd,
        }

    full = [r for r in ae.full_root_rules(sudo) if r.principals != ["root"]]
    evidence: dict[str, Any] = {"sudoers_files": sudo.files, "full_root_grants": [show(r) for r in full]}
    fails: list[str] = []
    fixes: list[str] = []
    for rule in sudo.rules:
        if "ALL" in rule.principals:
            fails.append(f"{ae.loc(rule.file, rule.line)} lets every user run {', '.join(rule.commands[:3])}")
            fixes.append(
                f"visudo -f {rule.file}: line {rule.line} — name the users or a group instead of ALL"
            )
    for rule in full:
        if rule.nopasswd:
            fails.append(
                f"{ae.loc(rule.file, rule.line)} gives {rule.written} every command without a password "
                "(NOPASSWD: ALL)"
            )
            fixes.append(
                f"visudo -f {rule.file}: line {rule.line} — drop NOPASSWD, and replace ALL with a "
                "Cmnd_Alias of the commands the role needs (e.g. Cmnd_Alias VIRT_OPS = "
                "/usr/bin/virsh start *, "
                "/usr/bin/virsh shutdown *)"
            )
    approved = set(ctx.profile.thresholds.approved_host_accounts)
    accounts = access.accounts
    if approved and accounts is not None:
        members = ae.group_members(accounts)
        for rule in full:
            reach: set[str] = set()
            for p in rule.principals:
                if p.startswith("!"):
                    continue
                if p.startswith("%") and not p.startswith("%#"):
                    reach |= members.get(p.lstrip("%:"), set())
                elif p[:1] not in ("%", "+", "#") and p != "ALL":
                    reach.add(p)
            outside = sorted(reach - approved)
            if outside:
                fails.append(
                    f"{ae.loc(rule.file, rule.line)} gives full root to {', '.join(outside)}, not on "
                    "the approved list"
                )
                fixes.append(f"visudo -f {rule.file}: line {rule.line} — remove {', '.join(outside)}")
    if fails:
        yield ctx.failed(
            HOST,
            "sudo grants exceed least privilege: " + "; ".join(fails[:10]) + ".",
            evidence,
            "\n".join(dict.fromkeys(fixes)),
        )
        return
    if unread is not None:
        return  # the grants in what could not be read are unknown: no pass, no manual on part of them
    if full and not approved:
        yield ctx.manual(
            HOST,
            "Full root through sudo (ALL commands) is granted to "
            + "; ".join(f"{r.written} ({ae.loc(r.file, r.line)})" for r in full[:10])
            + ". Evidence needed: the need-to-know justification for each (or set approved_host_accounts in "
            "the profile and hvguard checks the grantees).",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "sudo grants full root to nobody beyond "
        + ("the approved accounts" if full else "root")
        + "; narrower grants are listed in the evidence.",
        {**evidence, "other_grants": [show(r) for r in sudo.rules if not r.all_commands][:30]},
    )
