"""Hypervisor facts from the ``virsh`` answers the SSH script brought back.

The script runs ``virsh -c qemu:///system`` on the target with ``echo MARKER NAME`` between the
commands, so one virsh session answers everything; this module splits those answers on the markers
and builds the same :class:`~hvguard.facts.HypervisorFacts` the libvirt API collector builds for a
local scan (the equality test in tests/test_ssh_transport.py holds the two together).
"""

from __future__ import annotations

import re

import msgspec

from hvguard.collect.interface import CollectError
from hvguard.collect.libvirt.domain_xml import CapabilitiesError, parse_capabilities_xml, parse_domain_xml
from hvguard.collect.ssh.records import Virsh
from hvguard.collect.ssh.script import REMOTE_LIBVIRT_URI
from hvguard.facts import HypervisorFacts, NodeInfo, Problem, VmFacts

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_NODEINFO_KEYS = {
    "CPU model": "model",
    "CPU(s)": "cpus",
    "CPU frequency": "mhz",
    "CPU socket(s)": "sockets",
    "Core(s) per socket": "cores",
    "Thread(s) per core": "threads",
    "NUMA cell(s)": "numa_nodes",
    "Memory size": "memory_kib",
}


class NodeInfoError(CollectError, ValueError):
    """``virsh nodeinfo`` output hvguard cannot read."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def sections(output: str, boundary: str) -> list[tuple[str, str]]:
    """Split virsh output on the script's ``echo HVGM<boundary> NAME`` lines: (NAME, text) pairs.

    virsh prints a blank line after each command's output; that one newline is dropped, so a
    section holds exactly what the command printed (``dumpxml`` → the XML as ``XMLDesc`` returns it).
    """
    marker = f"HVGM{boundary} "
    found: list[tuple[str, str]] = []
    name: str | None = None
    body: list[str] = []
    for line in output.splitlines(keepends=True):
        if line.startswith(marker) and line.endswith("\n"):
            if name is not None:
                found.append((name, "".join(body)))
            name, body = line[len(marker) :].strip(), []
        elif name is not None:
            body.append(line)
    if name is not None:
        found.append((name, "".join(body)))
    return [(key, text[:-1] if text.endswith("\n") else text) for key, text in found]


def parse_nodeinfo(text: str) -> NodeInfo:
    """``virsh nodeinfo`` (C locale) → :class:`NodeInfo`; raise :class:`NodeInfoError` when incomplete."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in _NODEINFO_KEYS:
            values[_NODEINFO_KEYS[key.strip()]] = value.strip()
    missing = sorted(set(_NODEINFO_KEYS.values()) - set(values))
    if missing:
        raise NodeInfoError(f"virsh nodeinfo: no {', '.join(missing)}")

    def number(key: str, unit: str = "") -> int:
        word = values[key].removesuffix(unit).strip()
        if not word.isdigit():
            raise NodeInfoError(f"virsh nodeinfo: {key} is {values[key][:30]!r}")
        return int(word)

    # The libvirt API's virNodeGetInfo reports memory in MiB (Python binding); virsh prints the KiB the
    # C struct holds. Rounding down to whole MiB keeps both collectors' facts identical.
    memory_kib = number("memory_kib", "KiB") // 1024 * 1024
    return NodeInfo(
        model=values["model"],
        memory_kib=memory_kib,
        cpus=number("cpus"),
        mhz=number("mhz", "MHz"),
        numa_nodes=number("numa_nodes"),
        sockets=number("sockets"),
        cores=number("cores"),
        threads=number("threads"),
    )


def _version_line(text: str, label: str) -> tuple[str | None, str | None]:
    """``Running hypervisor: QEMU 7.2.0`` → ("QEMU", "7.2.0")."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == label:
            words = value.split()
            if len(words) == 2:
                return words[0], words[1]
    return None, None


def _connect_error(stderr: str) -> str:
    """virsh's reason, worded as the libvirt API words it (without virsh's own preamble)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line.removeprefix("error: ") for line in lines]
    lines = [line for line in lines if line != "failed to connect to the hypervisor"]
    return _one_line(" ".join(lines)) or "virsh failed without a message"


def connection_error(virsh: Virsh) -> str:
    """Why virsh did not connect: the read-write reason, plus the read-only one when it differs."""
    if not virsh.installed:
        return "virsh is not installed on the target"
    rw = _connect_error(virsh.errors.get("rw", ""))
    if "ro" not in virsh.errors:
        return rw
    ro = _connect_error(virsh.errors["ro"])
    return rw if ro == rw else f"{rw}; read-only: {ro}"


def hypervisor_facts(virsh: Virsh, boundary: str, problems: list[Problem]) -> HypervisorFacts:
    """HypervisorFacts from a connected virsh session (``virsh.mode`` is ``rw`` or ``ro``)."""
    parts = dict(sections(virsh.host_output, boundary))
    if virsh.mode == "ro":
        # The same wording (and consequence) as the libvirt API collector's read-only fallback.
        problems.append(
            Problem(
                area="hypervisor",
                source="virConnectOpenReadOnly",
                message=f"read-write access refused ({_connect_error(virsh.errors.get('rw', ''))}); on a "
                "read-only connection console passwords are hidden, so Graphics.password_set is False "
                "for every VM",
            )
        )
    hv_type, hv_version = _version_line(parts.get("version", ""), "Running hypervisor")
    _, lib_version = _version_line(parts.get("version", ""), "Using library")
    if hv_type is None:
        problems.append(
            Problem(area="hypervisor", source="virsh version", message="no 'Running hypervisor' line")
        )
    hostname = parts.get("hostname", "").strip() or None
    if hostname is None:
        problems.append(Problem(area="hypervisor", source="virsh hostname", message="no host name"))

    node: NodeInfo | None = None
    try:
        node = parse_nodeinfo(parts.get("nodeinfo", ""))
    except NodeInfoError as exc:
        problems.append(Problem(area="hypervisor.node", source="virsh nodeinfo", message=str(exc)))

    capabilities = None
    try:
        capabilities = parse_capabilities_xml(parts.get("capabilities", ""))
    except CapabilitiesError as exc:
        problems.append(
            Problem(area="hypervisor.capabilities", source="virsh capabilities", message=str(exc))
        )

    return HypervisorFacts(
        uri=REMOTE_LIBVIRT_URI,
        driver="qemu",
        hypervisor_type=hv_type,
        hypervisor_version=hv_version,
        libvirt_version=lib_version,
        hostname=hostname,
        node=node,
        capabilities=capabilities,
        vms=_vms(virsh, boundary, parts, problems),
    )


def _uuids(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if _UUID.fullmatch(line.strip())]


def _vms(virsh: Virsh, boundary: str, parts: dict[str, str], problems: list[Problem]) -> list[VmFacts]:
    if "all" not in parts:
        problems.append(Problem(area="hypervisor.domains", source="virsh list --all", message="no answer"))
        return []
    persistent: set[str] | None = None
    if "persistent" in parts:
        persistent = set(_uuids(parts["persistent"]))
    else:
        problems.append(
            Problem(area="hypervisor.domains", source="virsh list --all --persistent", message="no answer")
        )
    xml_by_uuid: dict[str, str] = {}
    for output in virsh.domain_outputs:
        for name, text in sections(output, boundary):
            kind, _, uuid = name.partition(" ")
            if kind == "dom":
                xml_by_uuid[uuid] = text
    stderr = " ".join(virsh.errors.values())
    vms: list[VmFacts] = []
    for uuid in _uuids(parts["all"]):
        is_persistent = None if persistent is None else uuid in persistent
        xml = xml_by_uuid.get(uuid, "")
        if not xml.strip():
            if f"failed to get domain '{uuid}'" in stderr:
                continue  # undefined or destroyed (transient) between the listing and now
            message = f"virsh dumpxml {uuid} printed nothing"
            problems.append(Problem(area=f"vm:{uuid}", source="virsh dumpxml", message=message))
            vms.append(VmFacts(name=uuid, persistent=is_persistent, error=message))
            continue
        vm = parse_domain_xml(xml, name_hint=None)
        if vm.error is not None:
            vm = msgspec.structs.replace(vm, name=uuid if vm.name == "?" else vm.name)
            problems.append(Problem(area=f"vm:{vm.name}", source="domain XML", message=vm.error or ""))
        vms.append(msgspec.structs.replace(vm, persistent=is_persistent))
    vms.sort(key=lambda vm: vm.name)
    return vms
