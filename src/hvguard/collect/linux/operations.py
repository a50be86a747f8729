"""Operations collector: audit and system logging, firewall, listening sockets, patches, network, storage.

Reads only the source's files (``source.fs``) and manifest commands through ``source.run(name)``, so the same
code serves the live host, an offline ``--root`` and a host fetched over SSH. Each group is collected
on its own: a bug or an unreadable file in one group leaves that group ``None`` with a
:class:`~hvguard.facts.Problem` under ``host.operations.<group>`` and never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hvguard.collect.interface import Collector, guarded
from hvguard.collect.linux.ops_files import OpsReader
from hvguard.collect.linux.ops_firewall import collect_firewall
from hvguard.collect.linux.ops_logging import collect_logging
from hvguard.collect.linux.ops_network import collect_network
from hvguard.collect.linux.ops_patches import collect_patches
from hvguard.collect.linux.ops_reads import OPERATIONS_COMMANDS, OPERATIONS_READS
from hvguard.collect.linux.ops_storage import collect_storage
from hvguard.collect.linux.source import HostSource
from hvguard.facts import OperationsFacts, Problem

_T = TypeVar("_T")


def _guard(r: OpsReader, group: str, collect: Callable[[OpsReader], _T]) -> _T | None:
    # A collector bug must not abort the scan; it becomes a visible problem.
    return guarded(
        r.problems,
        f"host.operations.{group}",
        r.fs.label,
        None,
        lambda: collect(r),
        doing=f" while collecting {group}",
    )


def collect_operations(source: HostSource, *, problems: list[Problem]) -> OperationsFacts:
    """Read how the host logs, filters traffic, is patched, is wired and stores VM images."""
    r = OpsReader(source, problems)
    return OperationsFacts(
        logging=_guard(r, "logging", collect_logging),
        firewall=_guard(r, "firewall", collect_firewall),
        patches=_guard(r, "patches", collect_patches),
        network=_guard(r, "network", collect_network),
        storage=_guard(r, "storage", collect_storage),
    )


class OperationsCollector(Collector[HostSource, OperationsFacts]):
    """How the host logs, filters traffic, is patched, is wired and stores VM images."""

    area = "host.operations"
    reads = OPERATIONS_READS
    commands = OPERATIONS_COMMANDS

    def collect(self, source: HostSource, problems: list[Problem]) -> OperationsFacts:
        """The operations facts of ``source``."""
        return collect_operations(source, problems=problems)
