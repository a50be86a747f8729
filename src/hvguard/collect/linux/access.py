"""Access-control collector: sshd, PAM, directory integration, accounts, sudoers, libvirt ACL, polkit.

Each group has its own module (``access_sshd``, ``access_pam``, ``access_directory``,
``access_accounts``, ``access_sudoers``, ``access_polkit``); this one runs them over a
:class:`~hvguard.collect.source.HostSource` — files only through ``source.fs``, commands only through
``source.run`` — so the same code reads the live host, an offline root and an SSH-fetched copy. A group
whose collector fails leaves its field ``None`` with a ``host.access.<group>`` problem; malformed files
are recorded in the group's ``errors`` (and as problems) and reported by the checks as ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hvguard.collect.linux.access_accounts import collect_accounts
from hvguard.collect.linux.access_directory import collect_directory
from hvguard.collect.linux.access_files import FileReadError, HostFiles
from hvguard.collect.linux.access_pam import collect_pam
from hvguard.collect.linux.access_polkit import collect_polkit
from hvguard.collect.linux.access_sshd import collect_sshd
from hvguard.collect.linux.access_sudoers import parse_sudoers
from hvguard.collect.source import HostSource
from hvguard.facts import AccessFacts, PamStack, Problem

_T = TypeVar("_T")


def _guard(problems: list[Problem], area: str, source: str, fn: Callable[[], _T]) -> _T | None:
    """Run one group's collector; an unexpected failure becomes a problem, never a crash."""
    try:
        return fn()
    except Exception as exc:  # the collector promises never to raise
        problems.append(
            Problem(area=area, source=source, message=f"internal error: {type(exc).__name__}: {exc}")
        )
        return None


def _hostname(files: HostFiles) -> str:
    """The configured host name (sudoers ``%h`` in include paths)."""
    try:
        text = files.read_text("/etc/hostname") or ""
    except FileReadError:
        return ""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    return ""


def _report(problems: list[Problem], area: str, errors: list[str]) -> None:
    for error in errors:
        path = error.split(" line ", 1)[0].split(": ", 1)[0]
        problems.append(Problem(area=area, source=path, message=error))


def collect_access(source: HostSource, *, problems: list[Problem]) -> AccessFacts:
    """Read who may reach the host and how they authenticate."""
    files = HostFiles(source.fs)
    label = source.label
    sshd = _guard(problems, "host.access.sshd", label, lambda: collect_sshd(source))
    pam: dict[str, PamStack] = _guard(problems, "host.access.pam", label, lambda: collect_pam(files)) or {}
    directory = _guard(problems, "host.access.directory", label, lambda: collect_directory(source, files))
    accounts = _guard(problems, "host.access.accounts", label, lambda: collect_accounts(files))
    sudo = _guard(problems, "host.access.sudo", label, lambda: parse_sudoers(files, _hostname(files)))
    polkit = _guard(problems, "host.access.polkit", label, lambda: collect_polkit(files))
    if sshd is not None:
        _report(problems, "host.access.sshd", sshd.errors)
    for stack in pam.values():
        _report(problems, "host.access.pam", stack.errors)
    if directory is not None:
        _report(problems, "host.access.directory", directory.errors)
    if accounts is not None:
        _report(problems, "host.access.accounts", accounts.errors)
    if sudo is not None:
        _report(problems, "host.access.sudo", sudo.errors)
    if polkit is not None:
        _report(problems, "host.access.polkit", [f.error for f in polkit.files if f.error])
    return AccessFacts(
        sshd=sshd, pam=pam, directory=directory, accounts=accounts, sudo=sudo, polkit=polkit, probes=[]
    )
