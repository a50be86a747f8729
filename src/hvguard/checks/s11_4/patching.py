"""Checks for SS-009 11.4.8.

11.4.8 Patched with recent tested code; regular vulnerability testing

Checks: ``patching``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.support.ops import (
    days,
    epoch_of,
    ops_group,
    require_well_formed,
)
from hvguard.facts import (
    PatchFacts,
)
from hvguard.findings import Finding


def _age_days(now: float | None, then: float | None) -> float | None:
    if now is None or then is None:
        return None
    return max(0.0, days(now - then))


@check(
    "11.4.8",
    id="host.patching",
    reads=("host.operations.patches", "host.kernel.release", "hypervisor.libvirt_version"),
)
def patching(ctx: CheckContext) -> Iterator[Finding]:
    """Host and hypervisor patched per SS-033: no security update pending longer than the window.

    Pass: no pending security update, package lists refreshed within ``patch_max_age_days`` and no
    reboot pending longer than that. apt answers with ``apt-get -s --ignore-hold dist-upgrade``, only as new
    as the package lists: lists older than the window fail, lists of unknown age are an error, never a
    pass. Fail: a pending security update older than the window (dnf: advisory issue date; apt records
    no release date, so an update pending while the lists are older than the window is at least that
    old), package lists not refreshed within the window, or reboot-required older than the window.
    Manual: apt security updates pending with lists fresher than the window (their release dates are
    not recorded: show they are newer than the window, or install them). Error: pending updates could
    not be determined (offline root without the package manager's answer), or the lists' age is
    unknown. A second finding covers automatic updates (warn when off) and a third the
    vulnerability-scan evidence (attestation).
    """
    window = ctx.profile.thresholds.patch_max_age_days
    host, hv = ctx.host, ctx.hypervisor
    known = {
        "kernel.release": host.kernel.release if host else None,
        "hypervisor_version": hv.hypervisor_version if hv else None,
        "libvirt_version": hv.libvirt_version if hv else None,
    }
    try:
        patches: PatchFacts = ops_group(ctx, "patches", "pending security updates")
    except CannotEvaluate as signal:  # the vulnerability-scan attestation below stands all the same
        yield ctx.error_for(signal)
    else:
        yield from _patch_state(ctx, patches, window, known)
        yield from _auto_updates(ctx, patches)
    yield ctx.manual(
        HOST,
        "Evidence needed: the date and report of the last vulnerability scan of this host (SS-033 "
        "'regular vulnerability management testing'), and that updates are tested before rollout.",
        known,
    )


def _patch_state(ctx: CheckContext, p: PatchFacts, window: int, known: dict[str, Any]) -> Iterator[Finding]:
    try:
        require_well_formed("patch automation configuration", p.issues)
    except CannotEvaluate as signal:  # reported, and the pending updates are judged all the same
        yield ctx.error_for(signal)
    now = epoch_of(ctx.target.collection.collected_at)
    lists_age = _age_days(now, p.lists_updated)
    reboot_age = _age_days(now, p.reboot_required_since)
    evidence: dict[str, Any] = {
        **known,
        "package_manager": p.manager,
        "source": p.source,
        "window_days": window,
        "lists_updated_days_ago": None if lists_age is None else round(lists_age, 1),
        "lists_updated_source": p.lists_updated_source,
        "reboot_required": p.reboot_required,
        "reboot_required_days": None if reboot_age is None else round(reboot_age, 1),
        "reboot_packages": p.reboot_packages[:20],
    }
    if p.pending is None:
        yield ctx.error(
            HOST,
            f"pending security updates ({p.pending_note or 'no package manager answer'})",
            evidence=evidence,
        )
        return
    security = [u for u in p.pending if u.security]
    kept = [u.package for u in p.pending if u.kept_back]
    evidence["pending_updates"] = len(p.pending)
    evidence["kept_back"] = kept[:50]
    evidence["pending_security"] = [
        {
            "package": u.package,
            "installed": u.installed,
            "candidate": u.candidate,
            "suite": u.suite,
            "advisory": u.advisory,
            "issued": u.issued,
        }
        for u in security[:50]
    ]
    fails: list[str] = []
    unknown_age: list[str] = []
    for u in security:
        issued = epoch_of(u.issued) if u.issued else None
        age = _age_days(now, issued)
        if age is not None:
            if age > window:
                fails.append(
                    f"{u.package} ({u.advisory or u.candidate}, issued {u.issued}, {age:.0f} days ago)"
                )
        elif lists_age is not None and lists_age > window:
            fails.append(f"{u.package} {u.candidate} (pending at least {lists_age:.0f} days: lists that old)")
        else:
            unknown_age.append(f"{u.package} {u.candidate}")
    problems: list[str] = []
    if fails:
        problems.append(
            f"{len(fails)} security update(s) pending longer than {window} days: " + ", ".join(fails[:10])
        )
    if lists_age is not None and lists_age > window:
        problems.append(
            f"the package lists were last refreshed {lists_age:.0f} days ago ({p.lists_updated_source}): "
            "newer security updates are invisible to the host"
        )
    if p.reboot_required and reboot_age is not None and reboot_age > window:
        problems.append(
            f"a reboot has been pending for {reboot_age:.0f} days (/var/run/reboot-required"
            + (f": {', '.join(p.reboot_packages[:5])}" if p.reboot_packages else "")
            + "): the patched code is not running"
        )
    if problems:
        fix = (
            "apt-get update && apt-get upgrade (or unattended-upgrade -v), then reboot when "
            "/var/run/reboot-required exists"
            if p.manager == "apt"
            else "dnf upgrade --security, then reboot if needs-restarting -r says so"
        )
        yield ctx.failed(
            HOST, "The host is not patched per SS-033: " + "; ".join(problems) + ".", evidence, fix
        )
        return
    if unknown_age or kept:
        parts: list[str] = []
        if unknown_age:
            parts.append(
                f"{len(unknown_age)} security update(s) are pending ({', '.join(unknown_age[:8])}); apt "
                f"records no release date. Evidence needed: they were released less than {window} days ago "
                "(Debian security tracker / DSA dates), or install them now (apt-get upgrade)."
            )
        if kept:
            parts.append(
                f"{len(kept)} update(s) are kept back ({', '.join(kept[:8])}): apt cannot install them "
                "(unmet dependencies) and does not show their archive. Evidence needed: none is a security "
                "update, or resolve and install them (apt-get dist-upgrade / apt-get install PACKAGE)."
            )
        yield ctx.manual(HOST, " ".join(parts), evidence)
        return
    if p.manager == "apt" and lists_age is None:
        # apt answers from its package lists alone: with none (or none whose age is known) "nothing
        # pending" establishes nothing
        yield ctx.error(
            HOST,
            "the age of the package lists (no /var/lib/apt/periodic/update-success-stamp and no "
            "/var/lib/apt/lists/*Release): apt judges pending updates from those lists alone, so its "
            "'no security update pending' establishes nothing",
            evidence=evidence,
        )
        return
    reboot_note = ""
    if p.reboot_required:
        reboot_note = f" A reboot is pending since {reboot_age or 0:.0f} day(s) ago (within the window)."
    if p.reboot_required is None:
        reboot_note = " Whether a reboot is pending is not known for this host."
    yield ctx.passed(
        HOST,
        f"No security update is pending ({len(p.pending)} other update(s)) in package lists refreshed "
        + (
            f"{lists_age:.0f} day(s) ago ({p.lists_updated_source}; within the {window}-day window)."
            if lists_age is not None
            else "at an unknown time."
        )
        + reboot_note,
        evidence,
    )


def _auto_updates(ctx: CheckContext, p: PatchFacts) -> Iterator[Finding]:
    evidence = {"auto_updates": p.auto_updates, "source": p.auto_updates_at, "detail": p.auto_updates_detail}
    if p.auto_updates is None:
        return
    if p.auto_updates:
        yield ctx.passed(HOST, f"Security updates install automatically ({p.auto_updates_detail}).", evidence)
        return
    fix = (
        'apt-get install unattended-upgrades && printf \'APT::Periodic::Update-Package-Lists "1";\\n'
        'APT::Periodic::Unattended-Upgrade "1";\\n\' > /etc/apt/apt.conf.d/20auto-upgrades'
        if p.manager == "apt"
        else "dnf install dnf-automatic; set apply_updates = yes and upgrade_type = security in "
        "/etc/dnf/automatic.conf; systemctl enable --now dnf-automatic.timer"
    )
    yield ctx.warned(
        HOST,
        f"Security updates are not installed automatically ({p.auto_updates_detail}): meeting the patch "
        "window then depends on someone running them by hand.",
        evidence,
        fix,
    )
