"""The collectors behind the contract (:mod:`hvguard.collect.interface`) and how a host's are run.

Every transport — a local scan, an offline root, an SSH target's answer — runs the same host collectors
over one :class:`~hvguard.collect.linux.source.HostSource` through :func:`collect_host_facts`, and names the
target's platform from what the hypervisor collector found (:func:`platform_of`).
"""

from __future__ import annotations

import msgspec

from hvguard.collect.libvirt.collector import LibvirtCollector
from hvguard.collect.linux.access import AccessCollector
from hvguard.collect.linux.host import LinuxHostCollector
from hvguard.collect.linux.operations import OperationsCollector
from hvguard.collect.linux.source import HostSource
from hvguard.collect.timing import timed
from hvguard.facts import HostFacts, HypervisorFacts, Problem

LINUX_HOST = LinuxHostCollector()
ACCESS = AccessCollector()
OPERATIONS = OperationsCollector()
HYPERVISOR = LibvirtCollector()


def collect_host_facts(source: HostSource, *, problems: list[Problem]) -> HostFacts:
    """Every host collector over one source: the base host facts, access control and operations."""
    with timed(f"collector linux-host ({source.label})"):
        host = LINUX_HOST.collect(source, problems)
    with timed(f"collector access ({source.label})"):
        access = ACCESS.collect(source, problems)
    with timed(f"collector operations ({source.label})"):
        operations = OPERATIONS.collect(source, problems)
    return msgspec.structs.replace(host, access=access, operations=operations)


def platform_of(hv: HypervisorFacts | None) -> str:
    """The platform id of a target, from its hypervisor driver."""
    if hv is None:
        return "linux-host"
    driver = (hv.driver or "").lower()
    if driver in {"qemu", "kvm", "test"}:
        return "kvm-libvirt"
    return f"libvirt-{driver or 'unknown'}"
