"""The gold-configuration file (``hvguard.baseline/1``): its typed model and a loader that names lines.

A baseline is YAML. ``hvguard baseline capture`` writes one; people edit or write them by hand, so every
mistake must be reported with its line and nothing may be ignored: unknown keys, duplicate keys, wrong
types and invalid values are errors (a typo must never silently switch a check off).

Semantics a reader of a baseline needs (also documented in the file ``capture`` writes):

- In a fixed group (``vcpu``, ``memory``, ``cputune``, ``memtune``, a bandwidth direction, a seclabel,
  ``devices`` …) a key that is **absent is not governed**; a key set to ``null`` must be **unset** on the
  VM; any other value must be equal.
- ``disks`` and ``interfaces`` are keyed by disk target (``vda``) and interface MAC; the key ``"*"``
  governs every disk of device ``disk`` / every interface not listed by name. Disks and interfaces not
  covered are not governed.
- ``iotune`` and ``blkiotune.devices`` are whole values: exactly the limits listed, no others.
- VM classes are matched in file order and the **first match wins** (like firewall rules); a VM that
  matches a later class too is reported as a lint warning, never silently merged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml
from msgspec import UNSET, UnsetType

from hvguard.yamlsafe import YamlInputError, compose_yaml, read_yaml_file

SCHEMA = "hvguard.baseline/1"

#: libvirt's config-file key syntax (virconf.c): an ASCII letter, then letters, digits and ``_``.
CONF_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

#: Host facts a baseline may govern: dotted paths into the host facts model (the facts the checks read
#: that are configuration, not hardware or load).
HOST_FACT_PATHS: tuple[str, ...] = (
    "os_id",
    "os_version",
    "default_target",
    "kernel.lockdown",
    "kernel.sig_enforce",
    "kernel.module_blacklist",
    "secure_boot.enabled",
    "kvm.modules",
    "kvm.dev_kvm_mode",
    "kvm.dev_kvm_group",
    "kvm.ept",
    "kvm.npt",
    "iommu.cmdline_flags",
    "tpm.present",
    "tpm.version_major",
    "tpm.attestation_agents",
)

#: ``<iotune>`` limits libvirt knows (docs: formatdomain "Block I/O Tuning"); all are integers.
IOTUNE_KEYS: tuple[str, ...] = (
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
    "total_bytes_sec_max",
    "read_bytes_sec_max",
    "write_bytes_sec_max",
    "total_iops_sec_max",
    "read_iops_sec_max",
    "write_iops_sec_max",
    "size_iops_sec",
    "total_bytes_sec_max_length",
    "read_bytes_sec_max_length",
    "write_bytes_sec_max_length",
    "total_iops_sec_max_length",
    "read_iops_sec_max_length",
    "write_iops_sec_max_length",
)

#: The key that governs every disk / interface not listed by name.
ALL = "*"

OptInt = int | None | UnsetType
OptStr = str | None | UnsetType
OptBool = bool | None | UnsetType


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base: immutable, keyword-only, unknown keys are errors; ``UNSET`` keys are left out of
    ``msgspec.to_builtins`` (so "not governed" never turns into "must be unset")."""


class Match(_Strict, frozen=True, kw_only=True):
    """Which VMs a class governs: a shell-style name pattern and/or hvguard metadata tags (all must hold).

    ``metadata: {class: web}`` matches ``<hvguard:policy><tag name="class">web</tag>`` in the domain's
    ``<metadata>`` (namespace ``https://hvguard.dev/xmlns/policy/1``)."""

    name: str | UnsetType = UNSET
    metadata: dict[str, str] | UnsetType = UNSET


class Vcpu(_Strict, frozen=True, kw_only=True):
    """``<vcpu>``: the maximum (element text) and the number enabled at boot (``current``)."""

    maximum: int | UnsetType = UNSET
    current: int | UnsetType = UNSET


class Memory(_Strict, frozen=True, kw_only=True):
    """``<memory>`` (maximum at boot) and ``<currentMemory>``, in KiB."""

    maximum_kib: int | UnsetType = UNSET
    current_kib: int | UnsetType = UNSET


class CpuTune(_Strict, frozen=True, kw_only=True):
    """``<cputune>`` scalars (µs for periods and quotas)."""

    shares: OptInt = UNSET
    period: OptInt = UNSET
    quota: OptInt = UNSET
    global_period: OptInt = UNSET
    global_quota: OptInt = UNSET
    emulator_period: OptInt = UNSET
    emulator_quota: OptInt = UNSET


class MemTune(_Strict, frozen=True, kw_only=True):
    """``<memtune>`` limits in KiB. ``min_guarantee`` is deliberately absent: QEMU refuses it."""

    hard_limit_kib: OptInt = UNSET
    soft_limit_kib: OptInt = UNSET
    swap_hard_limit_kib: OptInt = UNSET


class BlkioDevice(_Strict, frozen=True, kw_only=True):
    """A ``<blkiotune><device>`` entry (keyed by host device path in ``BlkioTune.devices``)."""

    weight: int | None = None
    read_bytes_sec: int | None = None
    write_bytes_sec: int | None = None
    read_iops_sec: int | None = None
    write_iops_sec: int | None = None


class BlkioTune(_Strict, frozen=True, kw_only=True):
    """``<blkiotune>``: the VM's weight and (as a whole) its per-host-device throttles."""

    weight: OptInt = UNSET
    devices: dict[str, BlkioDevice] | UnsetType = UNSET


class DiskSettings(_Strict, frozen=True, kw_only=True):
    """One disk's settings: its ``<iotune>`` limits (as a whole: exactly these, others unset)."""

    iotune: dict[str, int] | UnsetType = UNSET


class Bandwidth(_Strict, frozen=True, kw_only=True):
    """One direction of ``<bandwidth>``: KiB/s for average/peak/floor, KiB for burst."""

    average: OptInt = UNSET
    peak: OptInt = UNSET
    burst: OptInt = UNSET
    floor: OptInt = UNSET


class InterfaceSettings(_Strict, frozen=True, kw_only=True):
    """One interface's QoS; ``null`` for a direction means no limit in that direction."""

    inbound: Bandwidth | UnsetType | None = UNSET
    outbound: Bandwidth | UnsetType | None = UNSET


class SecLabel(_Strict, frozen=True, kw_only=True):
    """A domain ``<seclabel>``. Labels of ``type: dynamic`` are generated at start and never compared."""

    model: OptStr = UNSET
    type: OptStr = UNSET
    relabel: OptBool = UNSET
    label: OptStr = UNSET
    imagelabel: OptStr = UNSET


class Graphics(_Strict, frozen=True, kw_only=True):
    """A console: type, listen addresses, whether a password is set (never the password) and TLS."""

    type: str
    listen: list[str] | UnsetType = UNSET
    password_set: bool | UnsetType = UNSET
    tls: OptBool = UNSET


class Tpm(_Strict, frozen=True, kw_only=True):
    """A virtual TPM."""

    model: str | None = None
    backend: str | None = None
    version: str | None = None


class Hostdev(_Strict, frozen=True, kw_only=True):
    """A device passed through from the host."""

    mode: str | None = None
    type: str | None = None
    source: str = ""
    managed: bool | None = None


class Devices(_Strict, frozen=True, kw_only=True):
    """Attack-surface devices (compared, never changed automatically: the plan lists them as manual)."""

    usb_controllers: list[str] | UnsetType = UNSET
    usb_devices: int | UnsetType = UNSET
    redirdevs: int | UnsetType = UNSET
    serials: int | UnsetType = UNSET
    parallels: int | UnsetType = UNSET
    channels: int | UnsetType = UNSET
    consoles: int | UnsetType = UNSET
    floppies: int | UnsetType = UNSET
    cdroms: int | UnsetType = UNSET
    sounds: list[str] | UnsetType = UNSET
    smartcards: int | UnsetType = UNSET
    watchdogs: list[str] | UnsetType = UNSET
    graphics: list[Graphics] | UnsetType = UNSET
    videos: list[str] | UnsetType = UNSET
    rngs: list[str] | UnsetType = UNSET
    memballoon: OptStr = UNSET
    tpms: list[Tpm] | UnsetType = UNSET
    hostdevs: list[Hostdev] | UnsetType = UNSET


class SharesSetting(_Strict, frozen=True, kw_only=True):
    """A priority: vSphere's level (``low``/``normal``/``high``/``custom``) and the number of shares."""

    level: Literal["low", "normal", "high", "custom"]
    value: int | None = None


class DiskLimits(_Strict, frozen=True, kw_only=True):
    """One virtual disk's limit, keyed by its name (vSphere ``Hard disk 1``, libvirt ``vda``)."""

    total_iops_sec: OptInt = UNSET


class NicLimits(_Strict, frozen=True, kw_only=True):
    """One network adapter's limit without a direction (vSphere ``resourceAllocation.limit``), bytes/s,
    keyed by MAC address."""

    adapter_bytes_sec: OptInt = UNSET


class ResourceSettings(_Strict, frozen=True, kw_only=True):
    """Platform-neutral resource controls (``VmResources``): what a vSphere VM class governs.

    Units as in the facts model: bytes, MHz, IOPS, bytes/s; ``null`` = unset (vSphere: unlimited / no
    reservation). ``disks`` and ``nics`` may use the key ``"*"`` for every disk / adapter not listed."""

    vcpus: int | UnsetType = UNSET
    memory_bytes: int | UnsetType = UNSET
    cpu_reservation_mhz: OptInt = UNSET
    cpu_limit_mhz: OptInt = UNSET
    cpu_shares: SharesSetting | UnsetType | None = UNSET
    memory_reservation_bytes: OptInt = UNSET
    memory_limit_bytes: OptInt = UNSET
    memory_shares: SharesSetting | UnsetType | None = UNSET
    disks: dict[str, DiskLimits] | UnsetType = UNSET
    nics: dict[str, NicLimits] | UnsetType = UNSET


class VmSettings(_Strict, frozen=True, kw_only=True):
    """Everything a class may govern on a VM; a group left out is not governed. ``resources`` is the
    platform-neutral group (the only one a vSphere VM has); the others are libvirt's domain XML."""

    type: str | UnsetType = UNSET
    vcpu: Vcpu | UnsetType = UNSET
    memory: Memory | UnsetType = UNSET
    cputune: CpuTune | UnsetType = UNSET
    memtune: MemTune | UnsetType = UNSET
    blkiotune: BlkioTune | UnsetType = UNSET
    disks: dict[str, DiskSettings] | UnsetType = UNSET
    interfaces: dict[str, InterfaceSettings] | UnsetType = UNSET
    seclabels: list[SecLabel] | UnsetType = UNSET
    devices: Devices | UnsetType = UNSET
    resources: ResourceSettings | UnsetType = UNSET


class VmClass(_Strict, frozen=True, kw_only=True):
    """A named set of settings and the VMs it governs."""

    name: str
    match: Match
    settings: VmSettings
    description: str | UnsetType = UNSET


ConfScalarValue = str | int | list[str] | None


class HostSettings(_Strict, frozen=True, kw_only=True):
    """Host settings: libvirt config keys (``null`` = key absent, libvirt's default) and host facts."""

    qemu_conf: dict[str, ConfScalarValue] | UnsetType = UNSET
    libvirtd_conf: dict[str, ConfScalarValue] | UnsetType = UNSET
    facts: dict[str, Any] | UnsetType = UNSET


#: An ESXi advanced option's value as the API types it.
OptionSetting = bool | int | float | str


class VsphereHostClass(_Strict, frozen=True, kw_only=True):
    """ESXi hosts (``match``: a shell pattern on the host name; first class in file order wins) and the
    advanced options (``OptionManager``) they must have, key → value."""

    name: str
    match: str
    advanced_options: dict[str, OptionSetting] = {}
    description: str | UnsetType = UNSET


class Baseline(_Strict, frozen=True, kw_only=True):
    """A gold configuration: host settings, VM classes and (vSphere targets) ESXi host classes."""

    schema: Literal["hvguard.baseline/1"]
    description: str | UnsetType = UNSET
    host: HostSettings | UnsetType = UNSET
    vm_classes: list[VmClass] = []
    vsphere_hosts: list[VsphereHostClass] | UnsetType = UNSET


# --------------------------------------------------------------------------------------------------------
# Loading


class BaselineError(ValueError):
    """A baseline file that cannot be used; the message is one line naming the file and line."""


@dataclass(frozen=True)
class LoadedBaseline:
    """A validated baseline, where it came from, and the lint warnings found while loading."""

    baseline: Baseline
    source: str
    warnings: tuple[str, ...] = ()


def load_baseline(path: Path) -> LoadedBaseline:
    """Read and validate a baseline file; raise :class:`BaselineError` with ``FILE line N: reason``."""
    try:
        text = read_yaml_file(path)
    except YamlInputError as exc:
        raise BaselineError(str(exc)) from exc
    return parse_baseline(text, str(path))


def parse_baseline(text: str, source: str) -> LoadedBaseline:
    """Validate baseline YAML ``text`` (``source`` names it in messages)."""
    # libyaml's loader (a 1000-VM baseline: ~1 s instead of ~30 s), guarded; duplicate keys refused.
    try:
        node, data = compose_yaml(text, source)
    except YamlInputError as exc:
        raise BaselineError(str(exc)) from exc
    if node is None:
        raise BaselineError(f"{source}: empty file (expected a mapping with schema: {SCHEMA})")
    if not isinstance(data, dict):
        raise BaselineError(f"{source} line {node.start_mark.line + 1}: expected a mapping at the top")
    if data.get("schema") != SCHEMA:
        schema_line = _line_of(node, ["schema"]) or node.start_mark.line + 1
        raise BaselineError(
            f"{source} line {schema_line}: schema must be {SCHEMA!r} (got {data.get('schema')!r})"
        )
    try:
        baseline = msgspec.convert(data, type=Baseline, strict=True)
    except msgspec.ValidationError as exc:
        raise BaselineError(_located(str(exc), node, source, data)) from exc
    problems = list(_semantic_errors(baseline))
    if problems:
        at, message = problems[0]
        at_line = _line_of(node, at)
        raise BaselineError(f"{source}{f' line {at_line}' if at_line else ''}: {message}")
    return LoadedBaseline(baseline=baseline, source=source, warnings=tuple(_lint(baseline)))


_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[(.+?)\]")


def _parse_error_path(path: str) -> list[str | int]:
    """``$.vm_classes[0].settings`` → ``["vm_classes", 0, "settings"]`` (msgspec's error path syntax)."""
    out: list[str | int] = []
    for m in _PATH_TOKEN.finditer(path.removeprefix("$")):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            key = m.group(3)
            out.append(key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key)
    return out


def _node_at(node: yaml.Node, path: list[str | int]) -> yaml.Node | None:
    """The YAML node at ``path`` (None when the path leaves the document)."""
    current: yaml.Node = node
    for step in path:
        if isinstance(current, yaml.MappingNode):
            found = None
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                    found = value
                    break
            if found is None:
                return None
            current = found
        elif isinstance(current, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(current.value):
                return None
            current = current.value[step]
        else:
            return None
    return current


def _key_line(node: yaml.Node | None, key: str) -> int | None:
    if isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return int(k.start_mark.line) + 1
    return None


def _line_of(root: yaml.Node, path: list[str | int]) -> int | None:
    """1-based line of the value at ``path``, else of its nearest ancestor."""
    for cut in range(len(path), -1, -1):
        found = _node_at(root, path[:cut])
        if found is not None:
            if cut == len(path) and cut > 0 and isinstance(path[-1], str):
                parent = _node_at(root, path[:-1])
                line = _key_line(parent, path[-1])
                if line is not None:
                    return line
            return int(found.start_mark.line) + 1
    return None


_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`")
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>[^`]*)`")


_HIDDEN_KEY = "..."


def _error_parts(message: str) -> tuple[str, list[str | int]]:
    reason, sep, where = message.rpartition(" - at `")
    if not sep:
        reason, where = message, "$`"
    return reason, _parse_error_path(where.rstrip("`"))


def _reveal_keys(path: list[str | int], reason: str, data: Any) -> list[str | int]:
    """msgspec writes a mapping key in an error path as ``[...]``; find the real key by validating the
    document with that mapping cut down to one key at a time (the first that fails the same way)."""
    for _ in range(path.count(_HIDDEN_KEY)):
        at = path.index(_HIDDEN_KEY)
        parent: Any = data
        for step in path[:at]:
            parent = parent[step]
        if not isinstance(parent, dict):
            break
        original = dict(parent)
        found: str | None = None
        try:
            for key in original:
                parent.clear()
                parent[key] = original[key]
                try:
                    msgspec.convert(data, type=Baseline, strict=True)
                except msgspec.ValidationError as exc:
                    again_reason, again_path = _error_parts(str(exc))
                    same_place = len(again_path) == len(path) and all(
                        a in (b, _HIDDEN_KEY) for a, b in zip(again_path, path, strict=True)
                    )
                    if again_reason == reason and same_place:
                        found = str(key)
                        break
        finally:
            parent.clear()
            parent.update(original)
        if found is None:
            break
        path = [*path[:at], found, *path[at + 1 :]]
    return path


def _located(message: str, root: yaml.Node, source: str, data: Any) -> str:
    """msgspec's ``reason - at `$.a[0].b``` as ``FILE line N: reason (at a.0.b)``."""
    reason, path = _error_parts(message)
    if _HIDDEN_KEY in path:
        path = _reveal_keys(path, reason, data)
    line: int | None
    unknown = _UNKNOWN_FIELD.match(reason)
    if unknown:
        field = unknown.group("field")
        line = _key_line(_node_at(root, path), field) or _line_of(root, path)
        reason = f"unknown key {field!r}" + _hint(field, path)
        shown = ".".join(str(p) for p in [*path, field])
    else:
        line = _line_of(root, path)
        missing = _MISSING_FIELD.match(reason)
        if missing:
            reason = f"missing required key {missing.group('field')!r}"
        shown = ".".join(str(p) for p in path) or "top level"
    return f"{source}{f' line {line}' if line else ''}: {reason} (at {shown})"


def _hint(field: str, path: list[str | int]) -> str:
    if field == "min_guarantee_kib" or field == "min_guarantee":
        return ": <min_guarantee> is not valid for QEMU/KVM and cannot be part of a baseline"
    return ""


def _semantic_errors(b: Baseline) -> Iterator[tuple[list[str | int], str]]:
    """Rules a type cannot express: each as (path, message)."""
    names: dict[str, int] = {}
    for i, cls in enumerate(b.vm_classes):
        here: list[str | int] = ["vm_classes", i]
        if not cls.name.strip():
            yield [*here, "name"], "a class needs a non-empty name"
        if cls.name in names:
            yield (
                [*here, "name"],
                f"class name {cls.name!r} is used twice (first: vm_classes[{names[cls.name]}])",
            )
        names.setdefault(cls.name, i)
        m = cls.match
        if m.name is UNSET and m.metadata is UNSET:
            yield [*here, "match"], "match needs 'name' (a pattern) and/or 'metadata' (tags)"
        if isinstance(m.name, str) and not m.name:
            yield [*here, "match", "name"], "match.name must not be empty (use '*' for every VM)"
        if isinstance(m.metadata, dict) and not m.metadata:
            yield [*here, "match", "metadata"], "match.metadata must name at least one tag"
        yield from _settings_errors(cls.settings, [*here, "settings"])
    yield from _host_class_errors(b)
    if isinstance(b.host, HostSettings):
        for which in ("qemu_conf", "libvirtd_conf"):
            values = getattr(b.host, which)
            if isinstance(values, dict):
                for key, value in values.items():
                    if not CONF_KEY.fullmatch(key):
                        yield ["host", which, key], f"{key!r} is not a libvirt configuration key"
                    elif isinstance(value, str) and '"' in value and "'" in value:
                        yield (
                            ["host", which, key],
                            f"{key}: a libvirt string cannot hold both quote characters",
                        )
                    elif isinstance(value, list) and any('"' in v for v in value):
                        yield ["host", which, key], f"{key}: list items cannot contain '\"'"
        if isinstance(b.host.facts, dict):
            for key in b.host.facts:
                if key not in HOST_FACT_PATHS:
                    yield (
                        ["host", "facts", key],
                        f"unknown host fact {key!r} (known: {', '.join(HOST_FACT_PATHS)})",
                    )


def _host_class_errors(b: Baseline) -> Iterator[tuple[list[str | int], str]]:
    names: dict[str, int] = {}
    for i, cls in enumerate(b.vsphere_hosts if isinstance(b.vsphere_hosts, list) else []):
        here: list[str | int] = ["vsphere_hosts", i]
        if not cls.name.strip():
            yield [*here, "name"], "a host class needs a non-empty name"
        if cls.name in names:
            yield [*here, "name"], f"host class name {cls.name!r} is used twice"
        names.setdefault(cls.name, i)
        if not cls.match:
            yield [*here, "match"], "match must not be empty (use '*' for every host)"
        for key in cls.advanced_options:
            if not key.strip() or any(ch.isspace() or ord(ch) < 32 for ch in key):
                yield [*here, "advanced_options", key], f"{key!r} is not an advanced option name"


def _resource_errors(r: ResourceSettings, here: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    for name in ("cpu_shares", "memory_shares"):
        shares = getattr(r, name)
        if isinstance(shares, SharesSetting) and shares.level == "custom" and shares.value is None:
            yield [*here, name, "level"], f"resources.{name}: level custom needs a value"
    if isinstance(r.vcpus, int) and r.vcpus < 1:
        yield [*here, "vcpus"], "resources.vcpus must be at least 1"
    for f in msgspec.structs.fields(r):
        v = getattr(r, f.name)
        if isinstance(v, int) and v < 0:
            yield [*here, f.name], f"resources.{f.name} must not be negative (null: no limit)"
    for group, field_name in (("disks", "total_iops_sec"), ("nics", "adapter_bytes_sec")):
        entries = getattr(r, group)
        for key, entry in entries.items() if isinstance(entries, dict) else []:
            v = getattr(entry, field_name)
            if isinstance(v, int) and v < 0:
                yield [*here, group, key, field_name], f"{field_name} must not be negative (null: no limit)"


def _settings_errors(s: VmSettings, here: list[str | int]) -> Iterator[tuple[list[str | int], str]]:
    if isinstance(s.resources, ResourceSettings):
        yield from _resource_errors(s.resources, [*here, "resources"])
    if isinstance(s.type, str) and not re.fullmatch(r"[a-z][a-z0-9]*", s.type):
        yield [*here, "type"], f"type must be a libvirt domain type such as 'kvm' (got {s.type!r})"
    if isinstance(s.vcpu, Vcpu):
        for key in ("maximum", "current"):
            v = getattr(s.vcpu, key)
            if isinstance(v, int) and v < 1:
                yield [*here, "vcpu", key], f"vcpu.{key} must be at least 1"
        if (
            isinstance(s.vcpu.maximum, int)
            and isinstance(s.vcpu.current, int)
            and s.vcpu.current > s.vcpu.maximum
        ):
            yield [*here, "vcpu", "current"], "vcpu.current cannot exceed vcpu.maximum"
    if isinstance(s.memory, Memory):
        mx, cur = s.memory.maximum_kib, s.memory.current_kib
        if isinstance(mx, int) and isinstance(cur, int) and cur > mx:
            yield [*here, "memory", "current_kib"], "memory.current_kib cannot exceed memory.maximum_kib"
    for group in ("cputune", "memtune", "blkiotune"):
        value = getattr(s, group)
        if isinstance(value, msgspec.Struct):
            for f in msgspec.structs.fields(value):
                v = getattr(value, f.name)
                if isinstance(v, int) and v < 0 and not (group == "cputune" and "quota" in f.name):
                    yield [*here, group, f.name], f"{group}.{f.name} must not be negative"
    if isinstance(s.disks, dict):
        for target, disk in s.disks.items():
            if isinstance(disk.iotune, dict):
                for key, v in disk.iotune.items():
                    if key not in IOTUNE_KEYS:
                        yield (
                            [*here, "disks", target, "iotune", key],
                            f"unknown iotune limit {key!r} (known: {', '.join(IOTUNE_KEYS)})",
                        )
                    elif v <= 0:
                        yield (
                            [*here, "disks", target, "iotune", key],
                            f"iotune.{key} must be positive (leave it out for no limit)",
                        )


def _lint(b: Baseline) -> Iterator[str]:
    """Warnings that do not stop a run: classes that can never match after an earlier catch-all."""
    for i, cls in enumerate(b.vm_classes):
        if cls.match.name == "*" and cls.match.metadata is UNSET and i < len(b.vm_classes) - 1:
            later = ", ".join(c.name for c in b.vm_classes[i + 1 :])
            yield f"class {cls.name!r} matches every VM, so later classes never apply: {later}"
    hosts = b.vsphere_hosts if isinstance(b.vsphere_hosts, list) else []
    for i, host_cls in enumerate(hosts[:-1]):
        if host_cls.match == "*":
            later = ", ".join(c.name for c in hosts[i + 1 :])
            yield f"host class {host_cls.name!r} matches every host, so later ones never apply: {later}"
