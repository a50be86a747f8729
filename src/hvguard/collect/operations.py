"""Operations collector: audit and system logging, firewall, listening sockets, patches, network, storage."""

from __future__ import annotations

from hvguard.collect.source import HostSource
from hvguard.facts import OperationsFacts, Problem


def collect_operations(source: HostSource, *, problems: list[Problem]) -> OperationsFacts:
    """Read how the host logs, filters traffic, is patched, is wired and stores VM images."""
    return OperationsFacts()
