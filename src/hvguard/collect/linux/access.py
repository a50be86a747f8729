"""Access-control collector: sshd, PAM, directory integration, accounts, sudoers, libvirt ACL, polkit.

Each group has its own module (``access_sshd``, ``access_pam``, ``access_directory``,
``access_accounts``, ``access_sudoers``, ``access_polkit``); this one runs them over a
:class:`~hvguard.collect.linux.source.HostSource` — files only through ``source.fs``, commands only through
``source.run`` — so the same code reads the live host, an offline root and an SSH-fetched copy. A group
whose collector fails leaves its field ``None`` with a ``host.access.<group>`` problem; malformed files
are recorded in the group's ``errors`` (and as problems) and reported by the checks as ``error``.
"""

from __future__ import annotations

from hvguard.collect.interface import Collector, guarded
from hvguard.collect.linux.access_accounts import collect_accounts
from hvguard.collect.linux.access_directory import collect_directory
from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.access_pam import collect_pam
from hvguard.collect.linux.access_polkit import collect_polkit
from hvguard.collect.linux.access_reads import ACCESS_COMMANDS, ACCESS_READS
from hvguard.collect.linux.access_sshd import collect_sshd
from hvguard.collect.linux.access_sudoers import parse_sudoers
from hvguard.collect.linux.source import HostSource
from hvguard.collect.reader import ReadError
from hvguard.facts import AccessFacts, PamStack, Problem


def _hostname(files: HostFiles) -> str:
    """The configured host name (sudoers ``%h`` in include paths)."""
    try:
        text = files.read_text("/etc/hostname") or ""
    except ReadError:
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
    sshd = guarded(problems, "host.access.sshd", label, None, lambda: collect_sshd(source))
    no_pam: dict[str, PamStack] = {}
    pam = guarded(problems, "host.access.pam", label, no_pam, lambda: collect_pam(files)) or {}
    directory = guarded(
        problems, "host.access.directory", label, None, lambda: collect_directory(source, files)
    )
    accounts = guarded(problems, "host.access.accounts", label, None, lambda: collect_accounts(files))
    sudo = guarded(problems, "host.access.sudo", label, None, lambda: parse_sudoers(files, _hostname(files)))
    polkit = guarded(problems, "host.access.polkit", label, None, lambda: collect_polkit(files))
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


class AccessCollector(Collector[HostSource, AccessFacts]):
    """Who may reach the host and how they authenticate: sshd, PAM, directory integration, accounts,
    sudoers and polkit (the ACL probes are attached later, by the command that runs them)."""

    area = "host.access"
    reads = ACCESS_READS
    commands = ACCESS_COMMANDS

    def collect(self, source: HostSource, problems: list[Problem]) -> AccessFacts:
        """The access-control facts of ``source``."""
        return collect_access(source, problems=problems)
