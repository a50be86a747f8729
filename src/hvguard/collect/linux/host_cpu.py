"""CPU and memory facts from ``proc/cpuinfo``, sysfs CPU topology and ``proc/meminfo``."""

from __future__ import annotations

import re

from hvguard.collect.linux.host_files import (
    MISSING,
    Gap,
    HostRoot,
)
from hvguard.facts import (
    CpuFacts,
    MemoryFacts,
)


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _sys_topology(r: HostRoot, area: str) -> tuple[set[str], set[tuple[str, str]]] | None:
    """(packages, (package, core) pairs) from sysfs, or None when sysfs has no topology."""
    entries = r.listdir("sys/devices/system/cpu", area)
    if isinstance(entries, Gap):
        return None
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for entry in entries:
        if not re.fullmatch(r"cpu[0-9]+", entry):
            continue
        base = f"sys/devices/system/cpu/{entry}/topology"
        package = r.read_word(f"{base}/physical_package_id", area)
        core = r.read_word(f"{base}/core_id", area)
        if isinstance(package, Gap) or isinstance(core, Gap):
            continue  # an offline CPU has no topology directory
        packages.add(package)
        cores.add((package, core))
    return (packages, cores) if cores else None


def collect_cpu(r: HostRoot) -> CpuFacts:
    """Vendor, model, flags and core topology (cpuinfo, else sysfs topology, else cpu cores)."""
    area = "host.cpu"
    rel = "proc/cpuinfo"
    text = r.read_text(rel, area)
    if text is MISSING:
        if r.has_proc:
            r.problem(area, rel, "file not found")
        else:
            r.runtime_missing(area, "proc")
        return CpuFacts(source=r.shown(rel))
    if isinstance(text, Gap):
        return CpuFacts(source=r.shown(rel))

    processors = [block for block in _cpuinfo_blocks(text) if "processor" in block]
    if not processors:
        r.problem(area, rel, "no 'processor' entries")
        return CpuFacts(source=r.shown(rel))

    flags: set[str] = set()
    for block in processors:
        # x86 calls them flags, arm64 Features; both end up here.
        flags.update(block.get("flags", "").split())
        flags.update(block.get("Features", "").split())
    vendor = next((b["vendor_id"] for b in processors if b.get("vendor_id")), None)
    model = next((b["model name"] for b in processors if b.get("model name")), None)

    source = r.shown(rel)
    sockets: int | None = None
    physical: int | None = None
    if all("physical id" in b and "core id" in b for b in processors):
        sockets = len({b["physical id"] for b in processors})
        physical = len({(b["physical id"], b["core id"]) for b in processors})
    else:
        topology = _sys_topology(r, area)
        if topology is not None:
            sockets, physical = len(topology[0]), len(topology[1])
            source = f"{source} + {r.shown('sys/devices/system/cpu')}"
        else:
            if all("physical id" in b for b in processors):
                sockets = len({b["physical id"] for b in processors})
            per_socket = next((b["cpu cores"] for b in processors if b.get("cpu cores")), None)
            if sockets is not None and per_socket is not None and per_socket.isdigit():
                physical = int(per_socket) * sockets
    if physical is None:
        r.problem(area, rel, "no core topology (physical id/core id, sysfs topology or cpu cores)")
    return CpuFacts(
        vendor=vendor,
        model=model,
        flags=sorted(flags),
        sockets=sockets,
        physical_cores=physical,
        logical_cpus=len(processors),
        source=source,
    )


def collect_memory(r: HostRoot) -> MemoryFacts:
    """Total memory from proc/meminfo."""
    area = "host.memory"
    rel = "proc/meminfo"
    text = r.read_text(rel, area)
    if text is MISSING:
        if r.has_proc:
            r.problem(area, rel, "file not found")
        else:
            r.runtime_missing(area, "proc")
    if isinstance(text, str):
        for line in text.splitlines():
            match = re.fullmatch(r"MemTotal:\s*(\d+)\s*kB", line.strip())
            if match:
                return MemoryFacts(total_kib=int(match.group(1)), source=r.shown(rel))
        r.problem(area, rel, "no 'MemTotal: N kB' line")
    return MemoryFacts(source=r.shown(rel))
