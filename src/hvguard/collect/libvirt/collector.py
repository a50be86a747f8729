"""The hypervisor collector behind the collector contract: libvirt's answers for one connection URI."""

from __future__ import annotations

from hvguard.collect.interface import Collector
from hvguard.collect.libvirt.conn import collect_libvirt
from hvguard.collect.libvirt.files import STORED_DEFINITIONS
from hvguard.collect.timing import timed
from hvguard.facts import HypervisorFacts, Problem


class LibvirtCollector(Collector[str, HypervisorFacts | None]):
    """Hypervisor facts (node, capabilities, every domain) through the libvirt API for a URI.

    It reads no host file itself; only where the daemon gives no answer are the stored definitions read
    instead (:func:`~hvguard.collect.libvirt.files.stored_definitions_instead`), which it declares.
    Raises :class:`~hvguard.collect.libvirt.conn.TargetUnreachable` when the URI cannot be opened.
    """

    area = "hypervisor"
    reads = (STORED_DEFINITIONS,)

    def collect(self, source: str, problems: list[Problem]) -> HypervisorFacts | None:
        """The hypervisor facts of libvirt URI ``source``; None when libvirt-python is not installed."""
        with timed(f"collector libvirt ({source})"):
            return collect_libvirt(source, problems=problems)
