"""Access-control collector: sshd, PAM, directory integration, accounts, sudoers, libvirt ACL, polkit."""

from __future__ import annotations

from hvguard.collect.source import HostSource
from hvguard.facts import AccessFacts, Problem


def collect_access(source: HostSource, *, problems: list[Problem]) -> AccessFacts:
    """Read who may reach the host and how they authenticate."""
    return AccessFacts()
