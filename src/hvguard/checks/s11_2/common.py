"""What several 11.2 measure modules share."""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext
from hvguard.checks.support.libvirt_conf import (
    Setting,
    load_conf,
)
from hvguard.facts import (
    AccessFacts,
    Disk,
    StorageFacts,
)
from hvguard.findings import Finding

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


def access_driver(ctx: CheckContext) -> tuple[Setting, bool]:
    """libvirtd.conf ``access_drivers`` and whether it includes polkit (raises when it is unknown)."""
    host = ctx.host
    if host is None:
        raise CannotEvaluate(HOST, "libvirt's API access control (libvirtd.conf access_drivers)", "host")
    lconf = load_conf(ctx, host, "libvirtd_conf")
    drivers = lconf.get("access_drivers")
    return drivers, "polkit" in drivers.as_list()


def polkit_unreadable(access: AccessFacts) -> bool:
    """True when some polkit rules could not be read: the rules that apply are then unknown, and a check
    gives no static-analysis pass or fail (:func:`polkit_errors` has reported the error)."""
    return access.polkit is not None and bool(access.polkit.unreadable)


def polkit_errors(ctx: CheckContext, access: AccessFacts) -> Iterator[Finding]:
    """One ``error`` per polkit rules file polkitd cannot parse (it skips the file, so its rules are off),
    and one for rules this scan could not read (polkitd reads them: their rules are unknown)."""
    unread = access.polkit.unreadable if access.polkit is not None else []
    if unread:
        yield ctx.error(
            HOST,
            f"the polkit rules: {', '.join(unread[:5])} could not be read (permission denied?); polkitd "
            "reads them, so which rules apply is unknown",
            evidence={"unreadable": unread},
        )
    # Imported here: only the host-access checks call this, and the guard hook (which replays their
    # findings) need not load the access support module on every VM start.
    from hvguard.checks.support import access as ae

    for file in ae.active_files(access):
        if file.path in unread:
            continue
        if file.error is not None:
            yield ctx.error(
                HOST,
                f"the polkit rules in {file.path} ({file.error}); polkitd skips a file it cannot parse, so "
                "none of its rules apply",
                evidence={"file": file.path, "parse_error": file.error},
            )


STATIC_CAVEAT = (
    " Decided by static analysis of the polkit JavaScript (tree-sitter parse), which cannot decide every "
    "program; `hvguard scan --probe-acl USER:VM` (a group member against an allowed and a denied VM) "
    "decides by running libvirt as that user."
)


def disk_name(d: Disk) -> str:
    return d.target or d.source_path or d.source_name or "?"


def storage_or_none(ctx: CheckContext) -> StorageFacts | None:
    """The host's storage facts when collected (checks fall back to the VM definition alone)."""
    host = ctx.host
    if host is None or host.operations is None:
        return None
    return host.operations.storage
