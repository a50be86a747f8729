"""Checks for SS-009 section 11.2: device emulation and access control (KVM/libvirt).

Automated from the facts collected today: driver signing and QEMU confinement (11.2.1), libvirt's access
driver with its polkit rules and ACL probes (11.2.2, 11.2.3), accounts with direct access against the
profile's approved list (11.2.4), libvirt socket access, polkit roles and sudo grants (11.2.5),
unprivileged device emulation (11.2.6), per-VM confinement (11.2.7), disk-image encryption (11.2.9) and
image transport (11.2.10). Access-control evaluations shared with 11.4 live in
:mod:`hvguard.checks.support.access`. What facts cannot show is reported ``manual`` with the evidence an
auditor needs.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check, vm_subject
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    MODULAR_NOTE,
    Conf,
    Setting,
    fix_line,
    fmt_value,
    load_conf,
    restart_note,
)
from hvguard.checks.support.ops import (
    LOCAL_POOL_TYPES,
    REMOTE_FS,
    mode_text,
    mount_for,
    mount_transport,
    ops_group,
    pool_transport,
    require_well_formed,
    stat_evidence,
)
from hvguard.checks.support.qemu import (
    MAC_MODELS,
    acl_extra,
    dac_label_is_root,
    judge_qemu_conf,
    mac_state,
    qemu_user_state,
)
from hvguard.checks.support.subjects import capped, vms_or_not_applicable
from hvguard.facts import (
    AccessFacts,
    AuditRule,
    Disk,
    FileStat,
    StorageFacts,
    SudoRule,
)
from hvguard.findings import Finding

#: /proc/sys/kernel/tainted bit 13 ('E'): an unsigned module was loaded.
TAINT_UNSIGNED_MODULE = 1 << 13
ENFORCING_LOCKDOWN = frozenset({"integrity", "confidentiality"})


def lockdown_mode(raw: str | None) -> str | None:
    """The active lockdown mode from ``/sys/kernel/security/lockdown`` (``none [integrity] …`` or a word)."""
    if raw is None:
        return None
    m = re.search(r"\[(\w+)\]", raw)
    return (m.group(1) if m else raw.strip()).lower()



# --------------------------------------------------------------------------------------------------------
# 11.2.1 Boot option to disallow non-certified drivers (must); confined QEMU (should); bypass (must)


@check("11.2.1", id="kvm.driver-signing", reads=("host.secure_boot", "host.kernel"))
def driver_signing(ctx: CheckContext) -> Iterator[Finding]:
    """Only signed ("certified") kernel drivers can load, from a verified boot (the "must" boot option).

    Pass: UEFI Secure Boot enabled, module signatures enforced (``sig_enforce=Y`` or kernel lockdown
    ``integrity``/``confidentiality``, which implies it), and no unsigned module loaded (taint bit 13, value
    8192, clear). Sources: efivars SecureBoot, /sys/module/module/parameters/sig_enforce,
    /sys/kernel/security/lockdown, /proc/sys/kernel/tainted (kernel docs "Tainted kernels": bit 13 'E').
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "driver signing (Secure Boot, module signature enforcement)", "host")
        return
    sb, kernel = host.secure_boot, host.kernel
    mode = lockdown_mode(kernel.lockdown)
    # The collector reports "none" when the lockdown LSM is absent, so None means "could not be read".
    enforced: bool | None
    if kernel.sig_enforce is True or mode in ENFORCING_LOCKDOWN:
        enforced = True
    elif kernel.sig_enforce is False and mode is not None:
        enforced = False
    else:
        enforced = None
    taint = kernel.tainted
    unsigned_loaded = None if taint is None else bool(taint & TAINT_UNSIGNED_MODULE)
    evidence: dict[str, Any] = {
        "secure_boot.uefi": sb.uefi,
        "secure_boot.enabled": sb.enabled,
        "secure_boot.source": sb.source,
        "kernel.sig_enforce": kernel.sig_enforce,
        "kernel.lockdown": kernel.lockdown,
        "kernel.tainted": taint,
        "unsigned_module_taint_bit13": unsigned_loaded,
    }
    problems: list[str] = []
    fixes: list[str] = []
    if sb.enabled is False:
        if sb.uefi is False:
            problems.append("the host boots in legacy BIOS mode, so Secure Boot cannot verify the boot chain")
            fixes.append(
                "Switch the firmware to UEFI boot and enable Secure Boot (reinstall the bootloader "
                "as EFI: grub-install --target=x86_64-efi, shim-signed on Debian)."
            )
        else:
            problems.append("UEFI Secure Boot is disabled")
            fixes.append(
                "Enable Secure Boot in the firmware setup (the distribution's signed shim/GRUB "
                "boot it); check with: mokutil --sb-state"
            )
    if enforced is False:
        problems.append("unsigned kernel modules are allowed to load (sig_enforce=N, no lockdown)")
        fixes.append(
            "Add module.sig_enforce=1 (or lockdown=integrity) to GRUB_CMDLINE_LINUX in "
            "/etc/default/grub, run update-grub (Debian) or grub2-mkconfig -o /boot/grub2/grub.cfg "
            "(RHEL) and reboot; check: cat /sys/module/module/parameters/sig_enforce"
        )
    if unsigned_loaded:
        problems.append("an unsigned module is loaded now (kernel taint bit 13 'E')")
        fixes.append(
            "Find it with: grep -l E /sys/module/*/taint; unload it (modprobe -r MODULE) and "
            "blacklist it, or sign it with a key enrolled in the MOK list (mokutil --import)."
        )
    unknown = [
        name
        for name, v in (
            ("Secure Boot state", sb.enabled),
            ("module signature enforcement", enforced),
            ("kernel taint flags", unsigned_loaded),
        )
        if v is None
    ]
    if problems:
        yield ctx.failed(
            HOST,
            "Non-certified drivers are not disallowed: "
            + "; ".join(problems)
            + "."
            + (f" Not determinable: {', '.join(unknown)}." if unknown else ""),
            evidence,
            "\n".join(fixes),
        )
        return
    if unknown:
        yield ctx.error(HOST, ", ".join(unknown), "host.secure_boot", "host.kernel")
        return
    how = f"lockdown={mode}" if mode in ENFORCING_LOCKDOWN else "module.sig_enforce=Y"
    yield ctx.passed(
        HOST,
        f"Secure Boot is on and only signed kernel modules can load ({how}); no unsigned "
        "module is loaded (taint bit 13 clear).",
        evidence,
    )


@check("11.2.1", id="kvm.driver-bypass", reads=("host.kernel.module_blacklist", "host.kernel.cmdline"))
def driver_bypass(ctx: CheckContext) -> Iterator[Finding]:
    """Administrators can bypass a faulty driver (the second "must" of 11.2.1).

    Pass: always on a Linux KVM host — the kernel command line ``module_blacklist=`` (set at the boot menu)
    and ``/etc/modprobe.d`` ``blacklist``/``install MODULE /bin/false`` keep a driver from loading. The
    evidence lists what is blacklisted now; the runbook that shows administrators how to do it is the
    record an auditor asks for.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the driver bypass mechanism (kernel command line, modprobe.d)", "host")
        return
    kernel = host.kernel
    yield ctx.passed(
        HOST,
        "Faulty drivers can be bypassed: module_blacklist=MODULE on the kernel command line (edit the entry "
        "at the boot menu) or 'blacklist MODULE' / 'install MODULE /bin/false' in /etc/modprobe.d. Keep the "
        "runbook for doing this (and proof it was exercised) with the audit records.",
        {
            "kernel.module_blacklist": kernel.module_blacklist,
            "kernel.cmdline": kernel.cmdline,
            "mechanism": ["kernel cmdline module_blacklist=", "/etc/modprobe.d blacklist / install"],
        },
    )


@check(
    "11.2.1",
    id="kvm.qemu-confinement",
    reads=("host.qemu_conf", "host.qemu_processes", "hypervisor.capabilities.secmodels"),
)
def qemu_confinement(ctx: CheckContext) -> Iterator[Finding]:
    """QEMU (the device-emulation process) is confined — the "should" part of 11.2.1, so unmet is ``warn``.

    KVM cannot run each VM's QEMU inside its own unprivileged VM; libvirt's process confinement is the
    closest control. Pass: QEMU not root, a MAC security driver (SELinux/AppArmor) active and not "none",
    ``security_default_confined`` and ``security_require_confined`` on, ``seccomp_sandbox`` on,
    ``namespaces`` includes "mount". Sources: qemu.conf (defaults from qemu.conf.in), running QEMU
    processes, libvirt capabilities ``<secmodel>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "QEMU confinement (qemu.conf, QEMU processes)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    user = qemu_user_state(host, qconf)
    mac = mac_state(ctx, qconf)
    default_confined = qconf.get("security_default_confined")
    require_confined = qconf.get("security_require_confined")
    seccomp = qconf.get("seccomp_sandbox")
    namespaces = qconf.get("namespaces")
    evidence: dict[str, Any] = {
        "qemu_user_basis": user.basis,
        **user.evidence,
        **mac.evidence,
        "security_default_confined": default_confined.evidence(),
        "security_require_confined": require_confined.evidence(),
        "seccomp_sandbox": seccomp.evidence(),
        "namespaces": namespaces.evidence(),
    }
    unmet: list[str] = []
    fixes: list[str] = []
    if user.root:
        unmet.append(f"QEMU runs as root ({user.basis})")
        fixes.append(
            f'{qconf.get("user").where()}: user = "libvirt-qemu" (Debian) or "qemu" (RHEL); '
            f"{qconf.get('group').where()}: group = the same"
        )
    conf_unmet, conf_fixes = judge_qemu_conf(
        "11.2.1",
        qconf,
        ("mac", "security_default_confined", "security_require_confined", "seccomp_sandbox", "namespaces"),
        mac,
    )
    unmet += conf_unmet
    fixes += conf_fixes
    if unmet:
        yield ctx.warned(
            HOST,
            "QEMU confinement (advisory part of 11.2.1) is only partly met: " + "; ".join(unmet) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if mac.active is None:
        yield ctx.error(
            HOST, "whether a MAC security driver confines QEMU (libvirt capabilities)", "hypervisor"
        )
        return
    if user.root is None:
        yield ctx.manual(
            HOST,
            "QEMU confinement is configured (sVirt " + "/".join(mac.active) + ", seccomp, mount namespace, "
            "confinement required), but the account QEMU runs as is unknown: qemu.conf has no 'user' key and "
            "no QEMU process runs, so the build-time default applies. Evidence needed: `virsh capabilities` "
            "DAC <baselabel> (must not be +0:+0) or `ps -o user= -C qemu-system-x86_64` with a VM running.",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "QEMU is confined as far as KVM allows (process-level, not a separate VM): non-root, sVirt "
        + "/".join(mac.active)
        + ", confinement required, seccomp sandbox and a private mount namespace.",
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.2.2 / 11.2.3 Granular access control for VM administration

POLKIT_ACL_FIX = (
    '1. {where}: access_drivers = [ "polkit" ]  — then restart libvirtd (virtqemud on modular hosts).\n'
    "2. /etc/polkit-1/rules.d/100-libvirt-acl.rules (libvirt ships no rules; read-only permissions default "
    "to allow):\n"
    "polkit.addRule(function(action, subject) {{\n"
    '    if (action.id.indexOf("org.libvirt.api.domain.") !== 0) return polkit.Result.NOT_HANDLED;\n'
    '    var vm = action.lookup("domain_name");\n'
    '    if (subject.isInGroup("hv-web-ops")) {{\n'
    '        if (vm === "web-payments") return polkit.Result.NO;           // denied inside the group\n'
    '        if (vm && vm.indexOf("web-") === 0) return polkit.Result.YES;  // the group\'s VMs\n'
    "    }}\n"
    "    return polkit.Result.NO;\n"
    "}});\n"
    "Also allow org.libvirt.api.connect.getattr (and connect.search-domains) for the groups that connect. "
    "Verify: runuser -u OPERATOR -- virsh -c qemu:///system dominfo web-payments  → access denied."
)


def _access_driver(ctx: CheckContext) -> tuple[Setting, bool]:
    """libvirtd.conf ``access_drivers`` and whether it includes polkit (raises when it is unknown)."""
    host = ctx.host
    if host is None:
        raise CannotEvaluate(HOST, "libvirt's API access control (libvirtd.conf access_drivers)", "host")
    lconf = load_conf(ctx, host, "libvirtd_conf")
    drivers = lconf.get("access_drivers")
    return drivers, "polkit" in drivers.as_list()


def _access_facts(ctx: CheckContext) -> AccessFacts | None:
    """The host's access-control facts (None for targets or bundles without them)."""
    return ctx.host.access if ctx.host is not None else None


def _polkit_errors(ctx: CheckContext, access: AccessFacts) -> Iterator[Finding]:
    """One ``error`` per polkit rules file polkitd cannot parse (it skips the file, so its rules are off)."""
    for file in ae.active_files(access):
        if file.error is not None:
            yield ctx.error(
                HOST,
                f"the polkit rules in {file.path} ({file.error}); polkitd skips a file it cannot parse, so "
                "none of its rules apply",
                evidence={"file": file.path, "parse_error": file.error},
            )


_STATIC_CAVEAT = (
    " Decided by static analysis of the polkit JavaScript (tree-sitter parse), which cannot decide every "
    "program; `hvguard scan --probe-acl USER:VM` (a group member against an allowed and a denied VM) "
    "decides by running libvirt as that user."
)


def _acl_verdict(
    ctx: CheckContext, access: AccessFacts, drivers: Setting, evidence: dict[str, Any], *, deny: bool
) -> Iterator[Finding]:
    """11.2.2 (``deny`` False: per-VM grants) or 11.2.3 (``deny`` True: per-VM denials) from the ACL
    probes when they decide, else from the polkit rules."""
    yield from _polkit_errors(ctx, access)
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
            f"polkit rules {what}: {', '.join(lines[:10])}." + _STATIC_CAVEAT,
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
        message + _STATIC_CAVEAT,
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
    drivers, polkit = _access_driver(ctx)
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
    access = _access_facts(ctx)
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
    drivers, polkit = _access_driver(ctx)
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
    access = _access_facts(ctx)
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


# --------------------------------------------------------------------------------------------------------
# 11.2.4 Minimal accounts with direct host access


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
    access = _access_facts(ctx)
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
        else:
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


# --------------------------------------------------------------------------------------------------------
# 11.2.5 Least privilege and need to know


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
    drivers, polkit = _access_driver(ctx)
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
    access = _access_facts(ctx)
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
    yield from _polkit_errors(ctx, access)
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
            + _STATIC_CAVEAT,
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
        message + _STATIC_CAVEAT,
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
    access = _access_facts(ctx)
    if access is None:
        return
    sudo = access.sudo
    if sudo is None:
        if ctx.problems("host.access.sudo"):
            yield ctx.error(HOST, "the sudo configuration (/etc/sudoers)", "host.access.sudo")
        return
    for error in sudo.errors:
        yield ctx.error(
            HOST, f"a sudoers entry ({error}); sudo rejects or skips it", evidence={"parse_error": error}
        )
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


# --------------------------------------------------------------------------------------------------------
# 11.2.6 Device drivers in user mode / lower privilege


@check(
    "11.2.6",
    id="kvm.qemu-unprivileged",
    reads=("host.qemu_processes", "host.qemu_conf", "hypervisor.vms[].seclabels"),
)
def qemu_unprivileged(ctx: CheckContext) -> Iterator[Finding]:
    """Device emulation (QEMU, user space) runs without root privileges.

    Pass: every running QEMU process has uid ≠ 0 (runtime truth; else qemu.conf ``user``/``group`` not
    root), ``seccomp_sandbox`` ≠ 0, ``clear_emulator_capabilities`` ≠ 0 (libvirt taints such domains
    "high-privileges"), and no VM overrides its DAC label to root. Manual when the QEMU account is the
    unknown build-time default. In-kernel back-ends (vhost-net) are noted for attestation. Sources:
    /proc (QEMU processes), qemu.conf, domain ``<seclabel model='dac'>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the privileges of QEMU processes (qemu.conf, /proc)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    user = qemu_user_state(host, qconf)
    seccomp = qconf.get("seccomp_sandbox")
    clear_caps = qconf.get("clear_emulator_capabilities")
    evidence: dict[str, Any] = {
        "qemu_user_basis": user.basis,
        **user.evidence,
        "seccomp_sandbox": seccomp.evidence(),
        "clear_emulator_capabilities": clear_caps.evidence(),
        "kernel_mode_backends": "vhost-net/vhost-scsi run in the kernel when used (not collected)",
    }
    # Per-VM DAC overrides run that VM's QEMU as root even when qemu.conf does not.
    hv = ctx.hypervisor
    root_vms = [
        vm for vm in (hv.vms if hv is not None else []) if any(dac_label_is_root(s) for s in vm.seclabels)
    ]
    for vm in root_vms:
        label = next(s.label for s in vm.seclabels if dac_label_is_root(s))
        yield ctx.failed(
            vm_subject(vm),
            f"This VM's domain XML runs its QEMU as root: <seclabel model='dac' type='static'> "
            f"label {label}.",
            {"seclabel.dac.label": label},
            f"virsh edit {vm.name}: remove the <seclabel type='static' model='dac'> element (or set a "
            "non-root +UID:+GID label), then restart the VM.",
        )
    fails: list[str] = []
    fixes: list[str] = []
    if user.root:
        fails.append(f"QEMU runs as root ({user.basis})")
        fixes.append(f'{qconf.get("user").where()}: user = "libvirt-qemu" (Debian) or "qemu" (RHEL)')
        fixes.append(f"{qconf.get('group').where()}: group = the same non-root group")
    seccomp_unmet, seccomp_fixes = judge_qemu_conf("11.2.6", qconf, ("seccomp_sandbox",))
    fails += seccomp_unmet
    fixes += seccomp_fixes
    if clear_caps.explicit and clear_caps.as_int() == 0:
        fails.append(
            "clear_emulator_capabilities = 0: QEMU keeps root capabilities (releases without this "
            "option ignore it — delete the line either way)"
        )
        fixes.append(f"{clear_caps.where()}: delete the clear_emulator_capabilities line (default 1)")
    if fails:
        yield ctx.failed(
            HOST,
            "Device emulation runs with elevated privilege: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if user.root is None:
        yield ctx.manual(
            HOST,
            "QEMU's seccomp sandbox and capability dropping are on, but its account is unknown: qemu.conf "
            "sets no 'user' and no QEMU process runs, so libvirt's build-time default applies (Debian "
            "builds use libvirt-qemu, some builds root). Evidence needed: `virsh capabilities` DAC "
            "<baselabel> (not +0:+0) or `ps -o user=,uid= -C qemu-system-x86_64` with a VM running; and "
            "a justified list of in-kernel back-ends (vhost-net) in use.",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        f"Device emulation runs in unprivileged user-space QEMU ({user.basis}), with the seccomp sandbox and "
        "capabilities dropped. In-kernel back-ends such as vhost-net remain kernel mode (attest if used)."
        + (f" {len(root_vms)} VM(s) override this to root (see their findings)." if root_vms else ""),
        evidence,
    )


# --------------------------------------------------------------------------------------------------------
# 11.2.7 ACL restricting each VM process to its own devices


@check(
    "11.2.7",
    id="kvm.device-acl-host",
    reads=("host.qemu_conf", "hypervisor.capabilities.secmodels"),
)
def device_acl_host(ctx: CheckContext) -> Iterator[Finding]:
    """The host enforces a per-VM device ACL: sVirt MAC labels, cgroup device ACL and a private /dev.

    Pass: a MAC security driver (SELinux/AppArmor) is active (libvirt capabilities), ``security_driver`` is
    not "none", ``security_default_confined`` ≠ 0, ``dynamic_ownership`` ≠ 0, ``namespaces`` includes
    "mount", ``cgroup_device_acl`` adds nothing to libvirt's default list and ``cgroup_controllers`` (when
    set) keeps "devices". DAC alone runs every VM under one account, so one VM's QEMU can open another
    VM's images: that fails. Sources: qemu.conf / qemu.conf.in defaults, capabilities ``<secmodel>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the per-VM device ACL settings (qemu.conf)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    mac = mac_state(ctx, qconf)
    default_confined = qconf.get("security_default_confined")
    require_confined = qconf.get("security_require_confined")
    dyn = qconf.get("dynamic_ownership")
    namespaces = qconf.get("namespaces")
    acl = qconf.get("cgroup_device_acl")
    controllers = qconf.get("cgroup_controllers")
    extra = acl_extra(acl)
    evidence: dict[str, Any] = {
        "mac_basis": mac.basis,
        **mac.evidence,
        "security_default_confined": default_confined.evidence(),
        "security_require_confined": require_confined.evidence(),
        "dynamic_ownership": dyn.evidence(),
        "namespaces": namespaces.evidence(),
        "cgroup_device_acl": acl.evidence(),
        "cgroup_device_acl_extra": extra,
        "cgroup_controllers": controllers.evidence(),
    }
    fails, fixes = judge_qemu_conf(
        "11.2.7",
        qconf,
        (
            "mac",
            "security_default_confined",
            "dynamic_ownership",
            "namespaces",
            "cgroup_device_acl",
            "cgroup_controllers",
        ),
        mac,
    )
    if fails:
        yield ctx.failed(
            HOST,
            "VM processes are not restricted to their own devices: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if mac.active is None:
        yield ctx.error(
            HOST, "which security drivers confine VMs (libvirt capabilities <secmodel>)", "hypervisor"
        )
        return
    note = (
        ""
        if require_confined.as_int()
        else " security_require_confined = 0 still lets an unconfined VM be defined (see 11.2.1)."
    )
    yield ctx.passed(
        HOST,
        "Each VM process gets its own sVirt label ("
        + "/".join(mac.active)
        + "), a cgroup device ACL limited to "
        "libvirt's default list plus its assigned devices, and a private /dev (mount namespace)." + note,
        evidence,
    )


def _disk_name(d: Disk) -> str:
    return d.target or d.source_path or d.source_name or "?"


@check(
    "11.2.7",
    id="kvm.vm-confined",
    reads=("hypervisor.vms[].seclabels", "hypervisor.vms[].disks[].seclabels", "hypervisor.vms[].hostdevs"),
)
def vm_confined(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's definition keeps it confined to its own devices (per VM, subject ``vm:NAME``).

    Fail: a ``<seclabel type='none'>`` (or model "none"); a dynamic MAC label with ``relabel='no'``; a static
    MAC label shared with another VM; a writable, non-shareable disk whose ``<seclabel relabel='no'>`` keeps
    its image from getting the VM's label. Manual: a unique static MAC label without relabelling (image
    labels must be shown). Passed-through host devices are listed in the evidence. The host-level part
    (MAC driver active, cgroup ACL, namespace) is the ``kvm.device-acl-host`` finding.
    """
    hv = ctx.hypervisor
    static_labels: Counter[tuple[str, str]] = Counter()
    if hv is not None:
        for vm in hv.vms:
            for s in vm.seclabels:
                if s.type == "static" and s.model in MAC_MODELS and s.label:
                    static_labels[(s.model, s.label)] += 1
    for item in vms_or_not_applicable(ctx, count_evidence=True):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        subject = vm_subject(vm)
        fails: list[str] = []
        fixes: list[str] = []
        manual: list[str] = []
        for s in vm.seclabels:
            if s.type == "none" or s.model == "none":
                fails.append(
                    f"<seclabel type='{s.type}'{f' model={s.model!r}' if s.model else ''}> disables "
                    "confinement"
                )
                fixes.append(
                    f"virsh edit {vm.name}: delete the <seclabel type='none'> element (libvirt then "
                    "assigns a dynamic label); set security_require_confined = 1 in /etc/libvirt/qemu.conf"
                )
            elif s.model in MAC_MODELS or s.model is None:
                if s.type == "dynamic" and s.relabel is False:
                    fails.append("dynamic label with relabel='no': images keep a label other VMs can use")
                    fixes.append(f"virsh edit {vm.name}: set relabel='yes' on the domain <seclabel>")
                elif s.type == "static" and s.label and s.model is not None:
                    if static_labels[(s.model, s.label)] > 1:
                        fails.append(f"static {s.model} label {s.label} is shared with another VM")
                        fixes.append(
                            f"virsh edit {vm.name}: give the VM a unique label (e.g. a distinct MCS "
                            "category pair) or use <seclabel type='dynamic'/>"
                        )
                    elif s.relabel is False:
                        manual.append(f"static {s.model} label {s.label} without relabelling")
        for d in vm.disks:
            if d.readonly or d.shareable:
                continue
            for s in d.seclabels:
                if s.relabel is False and (s.model is None or s.model in MAC_MODELS):
                    fails.append(
                        f"disk {_disk_name(d)} has <seclabel relabel='no'>: its image does not get this "
                        "VM's label"
                    )
                    fixes.append(
                        f"virsh edit {vm.name}: remove <seclabel relabel='no'/> from disk {_disk_name(d)}"
                    )
        evidence: dict[str, Any] = {
            "seclabels": [
                {"type": s.type, "model": s.model, "relabel": s.relabel, "label": s.label}
                for s in vm.seclabels
            ],
            "hostdevs": [f"{h.type or '?'}:{h.source}" for h in vm.hostdevs],
        }
        if fails:
            yield ctx.failed(
                subject,
                "VM is not confined to its own devices: " + "; ".join(fails) + ".",
                evidence,
                "\n".join(dict.fromkeys(fixes)),
            )
        elif manual:
            yield ctx.manual(
                subject,
                "VM uses "
                + "; ".join(manual)
                + ". Evidence needed: `ls -Z` (SELinux) or the AppArmor profile "
                f"libvirt-{vm.uuid or 'UUID'} showing that only this VM's label can open its images and "
                "devices.",
                evidence,
            )
        else:
            mac = [x for x in vm.seclabels if x.model in MAC_MODELS]
            how = (
                ", ".join(f"{x.type or 'dynamic'} {x.model} label" for x in mac)
                if mac
                else "no MAC <seclabel>: the host's default sVirt confinement applies"
            )
            passthrough = (
                f"; passed-through devices: {', '.join(evidence['hostdevs'])}" if vm.hostdevs else ""
            )
            yield ctx.passed(
                subject, f"VM definition does not opt out of confinement ({how}){passthrough}.", evidence
            )


# --------------------------------------------------------------------------------------------------------
# 11.2.8 Image library access control

#: Groups that stand for "everyone" on common distributions: write access for them is no restriction.
BROAD_GROUPS = frozenset({"users", "staff", "everyone", "domain users", "100"})


def _image_dir_problems(st: FileStat) -> list[str]:
    out: list[str] = []
    if st.mode is None:
        return out
    if st.uid not in (0, None):
        out.append(
            f"{st.path} is owned by {st.owner}: that account can add or remove images and change the mode"
        )
    if st.mode & 0o002:
        out.append(f"{st.path} mode {mode_text(st.mode)}: every account can add or remove images")
    if st.mode & 0o020 and (st.group or "").lower() in BROAD_GROUPS:
        out.append(f"{st.path} is writable by the broad group {st.group}")
    return out


def _watched(path: str, watches: list[AuditRule]) -> AuditRule | None:
    for w in watches:
        base = w.watch.rstrip("/") or "/"
        if (path == base or path.startswith(base + "/")) and ("w" in w.perms or "a" in w.perms):
            return w
    return None


@check(
    "11.2.8",
    id="kvm.image-library-access",
    reads=(
        "host.operations.storage.image_dirs",
        "host.operations.storage.images",
        "host.operations.logging.audit.watches",
        "hypervisor.vms[].disks[].source_path",
    ),
)
def image_library_access(ctx: CheckContext) -> Iterator[Finding]:
    """Only image administrators can check images into or out of the image library (pool directories).

    Fail: an image directory (each file-based storage pool's target, and /var/lib/libvirt/images) not
    owned by root, writable by 'other' or by a broad group (users, staff); an image file readable or
    writable by 'other' (anyone could copy it out or alter it). Warn: no auditd watch (``-w DIR -p wa``)
    records check-ins and removals. A second, manual finding covers libvirt's own API path (polkit rules
    on storage-vol operations) and the approval records for check-ins.
    """
    hv = ctx.hypervisor
    dirs: set[str] = set()
    pools: set[str] = set()
    if hv is not None:
        for vm in hv.vms:
            for d in vm.disks:
                if d.source_path and d.source_protocol is None and d.type in (None, "file"):
                    dirs.add(posixpath.dirname(d.source_path))
                if d.source_pool:
                    pools.add(d.source_pool)
    api_side = ctx.manual(
        HOST,
        "Evidence needed for libvirt's API path into the image library: polkit rules limiting "
        "org.libvirt.api.storage-vol.create / delete / upload and storage-pool.* (pool_name, vol_name) to "
        "the image administrators, and the approval records of image check-ins/check-outs.",
        {"vm_image_directories": sorted(dirs)[:50], "vm_storage_pools": sorted(pools)[:50]},
    )
    try:
        storage: StorageFacts = ops_group(ctx, "storage", "image directory permissions")
        require_well_formed("storage pool definitions", storage.issues)
    except CannotEvaluate as signal:
        # The manual finding on libvirt's API path stands whatever the directories show.
        yield ctx.error_for(signal)
        yield api_side
        return
    host = ctx.host
    ops = host.operations if host else None
    watches = ops.logging.audit.watches if ops and ops.logging else []
    image_dirs = [s for s in storage.image_dirs if s.exists and s.is_dir]
    if not image_dirs:
        yield ctx.not_applicable(
            HOST,
            "no image directory on this host (no file-based storage pool, no /var/lib/libvirt/images)",
            {"pools": [p.name for p in storage.pools]},
        )
        yield api_side
        return
    problems: list[str] = []
    for st in image_dirs:
        problems += _image_dir_problems(st)
    open_files = [
        f"{f.path} mode {mode_text(f.mode)}"
        for f in storage.images
        if not f.is_dir and f.mode is not None and f.mode & 0o006
    ]
    if open_files:
        problems.append("image files open to 'other' (copy-out or tampering): " + ", ".join(open_files[:5]))
    unwatched = [s.path for s in image_dirs if _watched(s.path, watches) is None]
    acl = [s.path for s in image_dirs if s.has_acl]
    evidence: dict[str, Any] = {
        "image_dirs": [stat_evidence(s) for s in image_dirs],
        "images_checked": len(storage.images),
        "images_truncated": storage.images_truncated,
        "audit_watches": [f"{w.watch} -p {w.perms} ({w.path}:{w.line})" for w in watches][:20],
        "pools": [f"{p.name} ({p.type}) {p.target_path or ''}".strip() for p in storage.pools][:50],
    }
    if problems:
        d0 = image_dirs[0].path
        yield ctx.failed(
            HOST,
            "The image library is not restricted to image administrators: " + "; ".join(problems[:6]) + ".",
            evidence,
            f"groupadd -f hv-image-admins; chown root:hv-image-admins {d0}; chmod 2770 {d0}; "
            f"chmod o-rwx {d0}/*   (repeat for each pool directory; members of hv-image-admins are the "
            f"only writers besides root)\nAudit check-ins: echo '-w {d0} -p wa -k image_lib' > "
            "/etc/audit/rules.d/50-image-lib.rules && augenrules --load",
        )
    elif unwatched:
        yield ctx.warned(
            HOST,
            "Image directories are restricted, but no audit watch records check-ins and removals in "
            + ", ".join(unwatched[:5])
            + ".",
            evidence,
            "\n".join(
                f"echo '-w {p} -p wa -k image_lib' >> /etc/audit/rules.d/50-image-lib.rules"
                for p in unwatched[:5]
            )
            + "\naugenrules --load",
        )
    elif acl:
        yield ctx.manual(
            HOST,
            "Image directories are root-owned, not world-writable and audited, but carry POSIX ACLs that may "
            f"grant more writers ({', '.join(acl[:5])}). Evidence needed: getfacl output naming only image "
            "administrators.",
            evidence,
        )
    else:
        yield ctx.passed(
            HOST,
            "Only root (and, where group-writable, the owning image-admin group) can add or remove images ("
            + ", ".join(f"{s.path} {s.owner}:{s.group} {mode_text(s.mode)}" for s in image_dirs[:4])
            + "), image files are closed to 'other', and auditd watches every image directory.",
            evidence,
        )
    yield api_side


# --------------------------------------------------------------------------------------------------------
# 11.2.9 Images on encrypted devices


def _storage_or_none(ctx: CheckContext) -> StorageFacts | None:
    """The host's storage facts when collected (checks fall back to the VM definition alone)."""
    host = ctx.host
    if host is None or host.operations is None:
        return None
    return host.operations.storage


def _disk_host_path(d: Disk, storage: StorageFacts) -> str | None:
    """The host path holding a disk's data: its file, or its pool's target directory."""
    if d.source_path and d.source_path.startswith("/"):
        return d.source_path
    if d.source_pool:
        pool = next((p for p in storage.pools if p.name == d.source_pool), None)
        if pool is not None and pool.target_path:
            return pool.target_path
    return None


def _encrypted_backing(d: Disk, storage: StorageFacts) -> tuple[bool | None, str] | None:
    """(encrypted?, how) for the file system holding a local disk; None when it cannot be placed."""
    path = _disk_host_path(d, storage)
    if path is None or storage.mounts is None:
        return None
    m = mount_for(path, storage.mounts)
    if m is None:
        return None
    where = f"{path} on {m.mountpoint} ({m.fstype} {m.source})"
    if m.fstype in REMOTE_FS:
        return None  # judged as an image server (network disk rules), not as local encryption
    if m.encrypted:
        return True, f"{where}: dm-crypt — {' → '.join(m.crypt_chain)}"
    if m.encrypted is None:
        return None, where
    return False, f"{where}: not dm-crypt ({' → '.join(m.crypt_chain) or 'no device-mapper layer'})"


#: libvirt ``<encryption format=…>`` values that mean LUKS (strong, passphrase-protected keyslots).
LUKS_FORMATS = frozenset({"luks", "luks2", "luks-any"})

_ENCRYPT_FIX = (
    "Encrypt the image with LUKS and give libvirt the passphrase as a secret:\n"
    "  virsh secret-define secret.xml  (<secret ephemeral='no' private='yes'><usage type='volume'>"
    "<volume>/var/lib/libvirt/images/VM.qcow2</volume></usage></secret>)\n"
    "  virsh secret-set-value UUID --file passphrase.txt\n"
    "  qemu-img convert --object secret,id=s0,file=passphrase.txt -O qcow2 "
    "-o encrypt.format=luks,encrypt.key-secret=s0 OLD.qcow2 NEW.qcow2\n"
    "  virsh edit VM: <source file='NEW.qcow2'><encryption format='luks'><secret type='passphrase' "
    "uuid='UUID'/></encryption></source>\n"
    "Or keep the images on a LUKS2 device (cryptsetup luksFormat --type luks2 DEVICE) opened only by the "
    "image administrators. If another access-control mechanism protects the image files (11.2.9 applies "
    "only without one), record it as an exception."
)


@check(
    "11.2.9",
    id="kvm.vm-disk-encryption",
    reads=("hypervisor.vms[].disks[].encryption", "hypervisor.vms[].disks[].source_*"),
)
def vm_disk_encryption(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's disk images are encrypted (per VM).

    Pass: every local disk (``device`` disk/lun; cdrom/floppy ignored) has ``<encryption format='luks'>``
    (luks/luks2/luks-any), or lives on a dm-crypt (LUKS) backed file system — the mount holding the file
    (or the pool's target directory, for pool volumes) has a ``CRYPT-`` device-mapper device beneath it.
    Fail: a local disk on unencrypted storage without ``<encryption>``, or with the broken legacy qcow AES
    format. Manual: a network disk without ``<encryption>`` (the image server's storage is not visible),
    an unrecognised format, or storage whose device chain could not be followed. Whether another
    access-control mechanism makes 11.2.9 inapplicable is shown by an exception. Passphrase holders and
    complexity are attestation.
    """
    storage = _storage_or_none(ctx)
    for item in vms_or_not_applicable(ctx, count_evidence=True):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        subject = vm_subject(vm)
        disks = [
            d
            for d in vm.disks
            if d.device not in ("cdrom", "floppy")
            and (d.source_path or d.source_protocol or d.source_name or d.source_volume)
        ]
        if not disks:
            yield ctx.not_applicable(
                subject,
                "VM has no disk images (no disk with a source; cdrom/floppy ignored)",
                {"disks": [{"device": d.device, "target": d.target} for d in vm.disks]},
            )
            continue
        plain: list[str] = []
        weak: list[str] = []
        remote: list[str] = []
        odd: list[str] = []
        per_disk: dict[str, Any] = {}
        for d in disks:
            name = _disk_name(d)
            enc = d.encryption
            network = d.source_protocol is not None or d.type == "network"
            if network:
                source = f"{d.source_protocol}://{','.join(d.source_hosts)}/{d.source_name or ''}"
            else:
                source = d.source_path or f"pool {d.source_pool}/{d.source_volume}"
            per_disk[name] = {
                "source": source,
                "encryption": None
                if enc is None
                else {"format": enc.format, "secret_uuid": enc.secret_uuid, "secret_usage": enc.secret_usage},
            }
            if enc is None and not network and storage is not None:
                backing = _encrypted_backing(d, storage)
                if backing is not None:
                    per_disk[name]["backing"] = backing[1]
                    if backing[0] is True:
                        continue
                    if backing[0] is None:
                        odd.append(f"{name} (storage encryption unknown: {backing[1]})")
                        continue
            if enc is None:
                (remote if network else plain).append(name)
            elif enc.format in LUKS_FORMATS:
                continue
            elif enc.format == "qcow":
                weak.append(name)
            else:
                odd.append(f"{name} ({enc.format})")
        evidence = {"disks": per_disk}
        if plain or weak:
            parts = []
            if plain:
                parts.append("unencrypted: " + ", ".join(plain))
            if weak:
                parts.append("legacy qcow AES encryption (weak, deprecated by QEMU): " + ", ".join(weak))
            yield ctx.failed(
                subject,
                "VM image files are not kept encrypted — " + "; ".join(parts) + ".",
                evidence,
                _ENCRYPT_FIX,
            )
        elif remote or odd:
            yield ctx.manual(
                subject,
                "Encryption at rest cannot be shown from the VM definition for: "
                + ", ".join([*(f"{n} (network disk)" for n in remote), *odd])
                + ". Evidence needed: the image server's storage is on an encrypted device (e.g. LUKS), "
                "and who holds its passphrases.",
                evidence,
            )
        else:
            on_crypt = [n for n, v in per_disk.items() if v.get("backing") and v.get("encryption") is None]
            yield ctx.passed(
                subject,
                "Every disk image is LUKS-encrypted"
                + (
                    f" (on dm-crypt storage: {', '.join(on_crypt)}; the rest with a libvirt secret)"
                    if on_crypt
                    else " with a libvirt secret"
                )
                + " — passphrase holders and complexity remain attestation.",
                evidence,
            )


# --------------------------------------------------------------------------------------------------------
# 11.2.10 Secure protocol to image servers

#: Network disk protocols and what they mean for transport security (libvirt ``<source protocol=…>``).
SECURE_PROTOCOLS = {"https": "HTTPS (TLS)", "ftps": "FTPS (TLS)", "ssh": "SSH"}
CLEARTEXT_PROTOCOLS = {
    "http": "HTTP is cleartext",
    "ftp": "FTP is cleartext",
    "tftp": "TFTP is cleartext",
    "iscsi": "iSCSI has no transport encryption (CHAP only authenticates)",
    "nfs": "QEMU's NFS client (libnfs) uses AUTH_SYS without encryption",
    "sheepdog": "Sheepdog has no transport encryption",
}
EVIDENCE_PROTOCOLS = {
    "rbd": "Ceph: show msgr2 secure mode (ms_client_mode = secure, ms_mon_client_mode = secure in ceph.conf)",
    "gluster": "Gluster: show TLS on the volume (client.ssl on, server.ssl on)",
    "vxhs": "VxHS: show TLS (vxhs_tls = 1); QEMU dropped VxHS in 5.2",
}


def _local_disk_transport(d: Disk, storage: StorageFacts | None) -> tuple[bool | None, str] | None:
    """For a disk given by path or pool volume: whether its storage reaches a server securely (None when
    the storage is local or unknown)."""
    if storage is None:
        return None
    if d.source_pool:
        pool = next((p for p in storage.pools if p.name == d.source_pool), None)
        if pool is None:
            return None
        ok, why = pool_transport(pool, storage.mounts)
        return (ok, f"pool {pool.name} ({pool.type}): {why}") if pool.type not in LOCAL_POOL_TYPES else None
    if d.source_path and storage.mounts is not None:
        m = mount_for(d.source_path, storage.mounts)
        if m is not None and m.fstype in REMOTE_FS:
            ok, why = mount_transport(m.fstype, m.options)
            return ok, f"{d.source_path} is on {m.fstype} mount {m.mountpoint} ({m.source}): {why}"
    return None


def _nbd_default(ctx: CheckContext) -> Setting | None:
    """qemu.conf ``nbd_tls`` (the default for NBD disks without ``tls=``), or None (no host); raises
    :class:`CannotEvaluate` when qemu.conf is unusable."""
    host = ctx.host
    if host is None:
        return None
    return load_conf(ctx, host, "qemu_conf").get("nbd_tls")


@check(
    "11.2.10",
    id="kvm.vm-image-transport",
    reads=(
        "hypervisor.vms[].disks[].source_protocol",
        "hypervisor.vms[].disks[].source_tls",
        "host.qemu_conf.nbd_tls",
    ),
)
def vm_image_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM reaches the servers holding its images over a secure protocol (per VM).

    Pass: only local file/block disks, or network disks over https/ftps/ssh, or NBD with TLS (``tls='yes'``
    on the source, else qemu.conf ``nbd_tls = 1``). Fail: http, ftp, tftp, iSCSI, NFS (libnfs), sheepdog,
    NBD without TLS; a local path or pool volume whose storage is a remote mount or pool without
    encryption (NFS without sec=krb5p/xprtsec=tls, SMB without seal, iSCSI). Manual: rbd, gluster (TLS is
    configured outside libvirt), pools whose definition is not on the host. Covers cdrom sources too: an
    ISO fetched over http is an image in transit.
    """
    storage = _storage_or_none(ctx)
    nbd_unreadable: str | None = None
    try:
        nbd = _nbd_default(ctx)
    except CannotEvaluate as signal:
        # Only the VMs with NBD disks that name no tls= need qemu.conf: they report it, the others not.
        nbd, nbd_unreadable = None, ctx.error_message(signal.what, *signal.areas)
    nbd_tls: bool | None = None
    if nbd is not None:
        nbd_tls = nbd.as_int() != 0
    for item in vms_or_not_applicable(ctx, count_evidence=True):
        if isinstance(item, Finding):
            yield item
            continue
        vm = item
        subject = vm_subject(vm)
        bad: list[str] = []
        manual: list[str] = []
        unknown: list[str] = []
        per_disk: dict[str, Any] = {}
        for d in vm.disks:
            proto = d.source_protocol
            name = _disk_name(d)
            if proto is None and d.type != "network":
                local = _local_disk_transport(d, storage)
                if local is not None:
                    ok, why = local
                    per_disk[name] = {"storage": why}
                    if ok is False:
                        bad.append(f"{name}: {why}")
                    elif ok is None:
                        manual.append(f"{name}: {why}")
                elif d.type == "volume" or d.source_pool:
                    manual.append(
                        f"{name}: pool {d.source_pool} volume {d.source_volume} — show the pool's "
                        "type and transport (virsh pool-dumpxml)"
                    )
                    per_disk[name] = {"pool": d.source_pool, "volume": d.source_volume}
                continue
            hosts = ",".join(d.source_hosts) or "?"
            per_disk[name] = {
                "protocol": proto,
                "hosts": d.source_hosts,
                "name": d.source_name,
                "tls": d.source_tls,
            }
            if proto is None:
                manual.append(f"{name}: network disk without a protocol")
            elif proto in SECURE_PROTOCOLS:
                continue
            elif proto == "nbd":
                tls = d.source_tls if d.source_tls is not None else nbd_tls
                if d.source_tls is None and isinstance(nbd, Setting):
                    per_disk[name]["tls_from"] = {"nbd_tls": nbd.evidence()}
                if tls is True:
                    continue
                if tls is False:
                    bad.append(f"{name}: nbd://{hosts} without TLS")
                else:
                    unknown.append(name)
            elif proto in CLEARTEXT_PROTOCOLS:
                bad.append(f"{name}: {proto}://{hosts} — {CLEARTEXT_PROTOCOLS[proto]}")
            elif proto in EVIDENCE_PROTOCOLS:
                manual.append(f"{name}: {proto}://{hosts} — {EVIDENCE_PROTOCOLS[proto]}")
            else:
                manual.append(f"{name}: {proto}://{hosts} — show the transport is encrypted")
        evidence = {"network_disks": per_disk}
        if bad:
            yield ctx.failed(
                subject,
                "VM images are fetched over insecure protocols: " + "; ".join(bad) + ".",
                evidence,
                f"virsh edit {vm.name}: serve images over HTTPS (<source protocol='https' …>"
                "<ssl verify='yes'/>) or NBD with TLS (<source protocol='nbd' … tls='yes'> and nbd_tls = 1 "
                "with nbd_tls_x509_cert_dir in /etc/libvirt/qemu.conf); iSCSI/NFS only inside an encrypted "
                "tunnel (IPsec/WireGuard), recorded as an exception.",
            )
        elif unknown:
            what = (
                "whether NBD disks " + ", ".join(unknown) + " use TLS (no tls= attribute; qemu.conf nbd_tls"
            )
            if nbd_unreadable is not None:
                yield ctx.error(subject, f"{what} unreadable: {nbd_unreadable})")
            else:
                yield ctx.error(subject, what + ")", "host")
        elif manual:
            yield ctx.manual(
                subject,
                "Transport security of these image sources is configured outside libvirt: "
                + "; ".join(manual)
                + ".",
                evidence,
            )
        else:
            msg = (
                "Every network image source uses a secure protocol (https/ftps/ssh or NBD with TLS)."
                if per_disk
                else "No image server is used: every disk is a local file or block device"
                + (" on local storage." if storage is not None else " (mounts not collected).")
            )
            yield ctx.passed(subject, msg, evidence)


@check(
    "11.2.10",
    id="kvm.storage-transport",
    reads=("host.operations.storage.pools", "host.operations.storage.mounts"),
)
def storage_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Storage pools and network mounts that hold images reach their servers over encrypted transports.

    Per pool (libvirt storage pool definitions): local types pass; netfs NFS needs ``sec=krb5p`` or
    ``xprtsec=tls|mtls`` (on the live mount, else in the pool's mount options), netfs CIFS needs ``seal``;
    iSCSI and sheepdog fail (no transport encryption); rbd and gluster need evidence of their own TLS.
    Network mounts (nfs, cifs, glusterfs, ceph) holding a pool directory or /var/lib/libvirt/images are
    judged the same way.
    """
    storage: StorageFacts = ops_group(ctx, "storage", "storage pools and network mounts")
    require_well_formed("storage pool definitions", storage.issues)
    results: list[tuple[bool | None, str]] = []
    pool_paths: set[str] = set()
    for pool in storage.pools:
        ok, why = pool_transport(pool, storage.mounts)
        results.append((ok, f"pool {pool.name} ({pool.type}, {pool.path}): {why}"))
        if pool.target_path:
            pool_paths.add(pool.target_path)
    image_dirs = {s.path for s in storage.image_dirs} | pool_paths
    for m in storage.mounts or []:
        if m.fstype not in REMOTE_FS:
            continue
        holds = [p for p in image_dirs if mount_for(p, [m]) is not None]
        if not holds or any(
            p.target_path and mount_for(p.target_path, [m]) for p in storage.pools if p.type == "netfs"
        ):
            continue
        ok, why = mount_transport(m.fstype, m.options)
        results.append(
            (ok, f"{m.fstype} mount {m.source} on {m.mountpoint} (holds {', '.join(holds)}): {why}")
        )
    evidence = {"storage": [w for _, w in results][:50]}
    if not results:
        yield ctx.not_applicable(
            HOST,
            "no storage pool is defined and no network mount holds images",
            {"mounts_known": storage.mounts is not None},
        )
        return
    fails = [w for ok, w in results if ok is False]
    unknown = [w for ok, w in results if ok is None]
    if fails:
        yield ctx.failed(
            HOST,
            "Image storage is reached over unencrypted transports: " + "; ".join(fails[:6]) + ".",
            evidence,
            "NFS: mount with sec=krb5p (Kerberos privacy) or xprtsec=mtls (RPC-with-TLS, kernel 6.5+); for a "
            "libvirt netfs pool add <fs:mount_opts><fs:option name='sec=krb5p'/></fs:mount_opts> "
            "(xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'). SMB: mount option seal (SMB3 "
            "encryption). iSCSI: only inside an encrypted tunnel (IPsec), recorded as an exception.",
        )
    elif unknown:
        yield ctx.manual(
            HOST,
            "Transport security of this image storage is configured outside the host's view: "
            + "; ".join(unknown[:6])
            + ".",
            evidence,
        )
    else:
        yield ctx.passed(
            HOST, "Every storage pool and image mount is local or encrypted in transit.", evidence
        )


@check(
    "11.2.10",
    id="kvm.libvirt-remote-transport",
    reads=("host.libvirtd_conf", "host.qemu_conf"),
)
def libvirt_remote_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Remote access to this host (which stores VM images) goes over TLS or authenticated, encrypted channels.

    Fail: ``listen_tcp = 1`` with ``auth_tcp = "none"`` (cleartext, unauthenticated);
    ``tls_no_verify_certificate = 1``; ``default_tls_x509_verify``, ``migrate_tls_x509_verify`` or
    ``backup_tls_x509_verify`` = 0 (migration/backup TLS servers — which stream disk images — accept any
    client). Manual: ``listen_tcp = 1`` with SASL (the mechanism list in /etc/sasl2/libvirt.conf decides:
    GSSAPI encrypts, DIGEST-MD5 is obsolete). Sources: libvirtd.conf.in, qemu.conf.in.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "libvirt remote-access transport settings (libvirtd.conf, qemu.conf)", "host")
        return
    confs: list[Conf] = []
    unusable: list[Finding] = []
    for which in ("libvirtd_conf", "qemu_conf"):
        try:
            confs.append(load_conf(ctx, host, which))
        except CannotEvaluate as signal:  # both files' problems are reported, not only the first
            unusable.append(ctx.error_for(signal))
    if unusable:
        yield from unusable
        return
    lconf, qconf = confs
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    verify = {
        k: qconf.get(k)
        for k in ("default_tls_x509_verify", "migrate_tls_x509_verify", "backup_tls_x509_verify")
    }
    nbd_tls = qconf.get("nbd_tls")
    migrate_force = qconf.get("migrate_tls_force")
    evidence: dict[str, Any] = {
        s.key: s.evidence()
        for s in (listen_tcp, auth_tcp, listen_tls, no_verify, nbd_tls, migrate_force, *verify.values())
    }
    evidence["note"] = MODULAR_NOTE
    fails: list[str] = []
    fixes: list[str] = []
    tcp_on = listen_tcp.as_int() != 0
    if tcp_on and auth_tcp.as_str() == "none":
        fails.append('listen_tcp = 1 with auth_tcp = "none": cleartext, unauthenticated remote access')
        fixes += [fix_line(listen_tcp, 0), fix_line(listen_tls, 1)]
    if no_verify.as_int() != 0:
        fails.append("tls_no_verify_certificate = 1: TLS clients are not authenticated")
        fixes.append(fix_line(no_verify, 0))
    for s in verify.values():
        if s.explicit and s.as_int() == 0:
            fails.append(f"{s.key} = 0: QEMU's TLS servers accept clients without a certificate")
            fixes.append(fix_line(s, 1))
    if fails:
        yield ctx.failed(
            HOST,
            "Remote access to this image-holding host is not secure: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    force_note = (
        ""
        if migrate_force.as_int()
        else " Migrations are encrypted only when requested (virsh migrate --tls); migrate_tls_force = 1 "
        "in /etc/libvirt/qemu.conf makes TLS mandatory."
    )
    if tcp_on:
        yield ctx.manual(
            HOST,
            f'listen_tcp = 1 with auth_tcp = "{auth_tcp.as_str()}": the SASL mechanism decides whether the '
            "channel is encrypted. Evidence needed: /etc/sasl2/libvirt.conf mech_list: gssapi (Kerberos; "
            "DIGEST-MD5 is obsolete, RFC 6331) and tcp_min_ssf ≥ 112 — or disable TCP (listen_tcp = 0) "
            "in favour of TLS." + force_note,
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "libvirt's remote access is TLS with verified client certificates (or SSH-tunnelled); no cleartext "
        "TCP listener is configured." + force_note,
        evidence,
    )
