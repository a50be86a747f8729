"""Patch state: pending (security) updates, list freshness, reboot-required, automatic updates.

apt: the manifest runs ``apt-get -s --ignore-hold dist-upgrade`` (in the C locale, like every manifest
command): a simulation from the package lists that installs nothing and takes no lock, with apt-get's
stable output rather than ``apt``'s (whose CLI apt calls unstable for scripts, and which is translated);
``--ignore-hold`` because a held package's security update is pending all the same. Every
``Inst PKG [OLD] (NEW RELEASE[, RELEASE…] [ARCH])`` line is a pending update — including the new packages
a dist-upgrade pulls in (a kernel security update's new ABI package). Each RELEASE is apt's
``LABEL:VERSION/SUITE`` of an archive that has the candidate; the update is a security update when one of
them is labelled ``Debian-Security`` or its suite ends in ``-security`` (Debian ``stable-security``,
``bookworm-security``; Ubuntu ``jammy-security``).
dnf: ``dnf -q updateinfo list --security`` (advisory, severity, package)
and ``dnf -q updateinfo info --security`` (``Issued:`` date per advisory).
Lists freshness: /var/lib/apt/periodic/update-success-stamp (written by APT::Update::Post-Invoke-Success)
else the newest ``*Release`` file under /var/lib/apt/lists. Debian's update-notifier-common and
unattended-upgrades create /var/run/reboot-required (and ``.pkgs``) when an installed update needs a
reboot. Automatic updates: apt ``APT::Periodic::Unattended-Upgrade "1"`` (read with apt's own syntax —
blocks, ``::`` keys, comments, ``#clear`` — from apt.conf.d/* in apt's order then apt.conf, the last setting
winning; :mod:`~hvguard.collect.linux.aptconf`) and not switched off by ``APT::Periodic::Enable "0"``,
with unattended-upgrades installed; dnf-automatic ``apply_updates = yes`` with its timer enabled.
"""

from __future__ import annotations

import re

from hvguard.collect.linux.aptconf import AptConfig, apt_parts_order, parse_apt_conf
from hvguard.collect.linux.ops_audit import parse_kv
from hvguard.collect.linux.ops_files import OpsReader, command_output
from hvguard.facts import ConfigIssue, PatchFacts, PendingUpdate

AREA = "host.operations.patches"
_INST = re.compile(r"^Inst (?P<pkg>\S+)(?: \[(?P<old>[^\]]*)\])? \((?P<new>\S+)(?P<rel>[^)]*)\)")
_ARCH = re.compile(r"\s*\[[^\]]*\]$")
#: Release labels of security archives (the suite's ``-security`` suffix covers the rest)
SECURITY_LABELS = frozenset({"debian-security"})
_DNF_LIST = re.compile(r"^(\S+)\s+(\S+/Sec\.|security)\s+(\S+)", re.IGNORECASE)


def is_security_release(release: str) -> bool:
    """Whether one of apt's ``LABEL:VERSION/SUITE`` release strings is a security archive."""
    label, colon, rest = release.partition(":")
    if not colon:
        label, rest = "", release
    suite = rest.rsplit("/", 1)[-1].strip()
    return label.strip().lower() in SECURITY_LABELS or suite.endswith("-security")


def parse_apt_simulation(text: str) -> list[PendingUpdate]:
    """Pending updates from ``apt-get -s [--ignore-hold] dist-upgrade`` output (C locale): one per
    ``Inst`` line, plus each package listed under "The following packages have been kept back:" (an
    update the simulation cannot install, of unknown archive)."""
    out: list[PendingUpdate] = []
    kept: list[str] = []
    in_kept = False
    for line in text.splitlines():
        if line.startswith("The following packages have been kept back:"):
            in_kept = True
            continue
        if in_kept:
            if line.startswith(" "):
                kept += line.split()
                continue
            in_kept = False
        m = _INST.match(line)
        if not m:
            continue
        releases = [r.strip() for r in _ARCH.sub("", m.group("rel").strip()).split(", ") if r.strip()]
        out.append(
            PendingUpdate(
                package=m.group("pkg"),
                installed=m.group("old"),
                candidate=m.group("new"),
                suite=", ".join(releases) or None,
                security=any(is_security_release(r) for r in releases),
            )
        )
    listed = {u.package for u in out}
    out += [PendingUpdate(package=name, kept_back=True) for name in dict.fromkeys(kept) if name not in listed]
    return out


def parse_dnf_security(list_text: str, info_text: str | None) -> list[PendingUpdate]:
    """Pending security updates from ``dnf updateinfo list --security`` (+ ``info`` for dates)."""
    issued: dict[str, str] = {}
    if info_text:
        current: str | None = None
        for line in info_text.splitlines():
            key, _, value = line.strip().partition(":")
            if key.strip() == "Update ID":
                current = value.strip()
            elif key.strip() == "Issued" and current:
                issued[current] = value.strip().split()[0]
    out: list[PendingUpdate] = []
    for line in list_text.splitlines():
        m = _DNF_LIST.match(line.strip())
        if not m:
            continue
        advisory, _, nevra = m.groups()
        out.append(
            PendingUpdate(
                package=nevra,
                candidate=nevra,
                security=True,
                advisory=advisory,
                issued=issued.get(advisory),
            )
        )
    return out


def read_apt_config(r: OpsReader, issues: list[ConfigIssue]) -> AptConfig:
    """The host's apt configuration as apt reads it: ``apt.conf.d/*`` in apt's order, then ``apt.conf``
    (the last setting wins); ``#include`` followed through the same reader."""
    conf = AptConfig()

    def read(rel: str, depth: int) -> None:
        text = r.text(rel, AREA)
        if text is not None:
            parse_apt_conf(text, r.shown(rel), conf, include=include, depth=depth)

    def include(word: str, depth: int) -> None:
        rel = word.lstrip("/")
        if word.endswith("/"):
            for name in apt_parts_order(r.listdir(rel.rstrip("/"), AREA)):
                read(f"{rel.rstrip('/')}/{name}", depth)
        elif r.exists(rel):
            read(rel, depth)
        else:
            conf.issues.append((word, None, "included file cannot be read"))

    parts = "etc/apt/apt.conf.d"
    for name in apt_parts_order(r.listdir(parts, AREA)):
        read(f"{parts}/{name}", 0)
    read("etc/apt/apt.conf", 0)
    issues += [
        ConfigIssue(path=path, line=line, message=f"apt refuses this configuration: {message}")
        for path, line, message in conf.issues
    ]
    return conf


def _apt_auto(r: OpsReader, issues: list[ConfigIssue]) -> tuple[bool | None, str | None, str | None]:
    conf = read_apt_config(r, issues)
    setting = conf.get("APT::Periodic::Unattended-Upgrade")
    # the package's conffile (apt.conf.d/50unattended-upgrades) shows it is installed
    installed = r.exists("etc/apt/apt.conf.d/50unattended-upgrades")
    if setting is None:
        return False, None, "APT::Periodic::Unattended-Upgrade is not set"
    # apt.systemd.daily: APT::Periodic::Enable "0" turns every periodic job off
    enable = conf.get("APT::Periodic::Enable")
    if enable is not None and enable.value.strip() in ("0", "false", "no"):
        return (
            False,
            enable.where(),
            f'APT::Periodic::Enable "{enable.value}" turns the periodic jobs off '
            f'(APT::Periodic::Unattended-Upgrade "{setting.value}" at {setting.where()})',
        )
    enabled = setting.value.strip() not in ("0", "", "false")
    if enabled and not installed:
        return (
            False,
            setting.where(),
            "APT::Periodic::Unattended-Upgrade is set but unattended-upgrades is not installed",
        )
    return enabled, setting.where(), f'APT::Periodic::Unattended-Upgrade "{setting.value}"'


def _dnf_auto(r: OpsReader, issues: list[ConfigIssue]) -> tuple[bool | None, str | None, str | None]:
    text = r.text("etc/dnf/automatic.conf", AREA)
    timers = [
        t
        for t in ("dnf-automatic.timer", "dnf-automatic-install.timer", "dnf5-automatic.timer")
        if r.exists(f"etc/systemd/system/timers.target.wants/{t}")
    ]
    if text is None:
        return False, None, "dnf-automatic is not configured (/etc/dnf/automatic.conf absent)"
    values, iss = parse_kv(text, r.shown("etc/dnf/automatic.conf"))
    issues += iss
    apply = values.get("apply_updates")
    on = apply is not None and apply.value.lower() in ("yes", "true", "1")
    if "dnf-automatic-install.timer" in timers:
        on = True
    detail = (
        f"apply_updates = {apply.value if apply else 'no (default)'}; timers: {', '.join(timers) or 'none'}"
    )
    return on and bool(timers), apply.where() if apply else r.shown("etc/dnf/automatic.conf"), detail


def collect_patches(r: OpsReader) -> PatchFacts:
    """Read pending updates (via the manifest commands), list freshness, reboot state and automation."""
    issues: list[ConfigIssue] = []
    # Package-owned configuration files mark the package manager (small, unlike dpkg's status database).
    if r.exists("etc/dpkg/dpkg.cfg") or r.exists("etc/apt/apt.conf.d"):
        manager = "apt"
    elif r.exists("etc/dnf/dnf.conf"):
        manager = "dnf"
    else:
        manager = None

    pending: list[PendingUpdate] | None = None
    note: str | None = None
    source: str | None = None
    if manager == "apt":
        out, note = command_output(r.run("apt-get-simulate-dist-upgrade"))
        if out is not None:
            pending = parse_apt_simulation(out)
            source = "apt-get -s --ignore-hold dist-upgrade"
            note = None
    elif manager == "dnf":
        out, note = command_output(r.run("dnf-security-list"))
        if out is not None:
            info, _ = command_output(r.run("dnf-security-info"))
            pending = parse_dnf_security(out, info)
            source = "dnf -q updateinfo list --security"
            note = None
    else:
        note = "no apt or dnf package database found under the root"

    lists_updated: float | None = None
    lists_source: str | None = None
    if manager == "apt":
        stamp = "var/lib/apt/periodic/update-success-stamp"
        lists_updated = r.mtime(stamp)
        if lists_updated is not None:
            lists_source = r.shown(stamp)
        else:
            releases = [p for p in r.glob("var/lib/apt/lists/*Release", AREA)]
            times = [(t, p) for p in releases if (t := r.mtime(p)) is not None]
            if times:
                lists_updated, newest = max(times)
                lists_source = r.shown(newest)

    reboot: bool | None = None
    since: float | None = None
    pkgs: list[str] = []
    if manager == "apt":
        for rel in ("run/reboot-required", "var/run/reboot-required"):
            t = r.mtime(rel)
            if t is not None:
                reboot, since = True, t
                pkgs = sorted(set((r.text(rel + ".pkgs", AREA) or "").split()))[:50]
                break
        else:
            # Only trustworthy where the notifier exists that would have created it.
            installed = r.exists("usr/share/update-notifier/notify-reboot-required") or r.exists(
                "etc/apt/apt.conf.d/50unattended-upgrades"
            )
            reboot = False if (installed or r.live) else None

    if manager == "apt":
        auto, auto_at, auto_detail = _apt_auto(r, issues)
    elif manager == "dnf":
        auto, auto_at, auto_detail = _dnf_auto(r, issues)
    else:
        auto, auto_at, auto_detail = None, None, None

    return PatchFacts(
        manager=manager,
        source=source,
        pending=pending,
        pending_note=note,
        lists_updated=lists_updated,
        lists_updated_source=lists_source,
        reboot_required=reboot,
        reboot_required_since=since,
        reboot_packages=pkgs,
        auto_updates=auto,
        auto_updates_at=auto_at,
        auto_updates_detail=auto_detail,
        issues=issues,
    )
