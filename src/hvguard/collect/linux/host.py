"""Collect :class:`~hvguard.facts.HostFacts` from a Linux host's files: the running system or an offline root.

Every path is read *under* ``root`` with chroot semantics (:func:`resolve_in_root`), so an offline root — a
mounted disk image, a test fixture — is never mixed with the machine hvguard runs on.

Gaps are explicit. A file whose absence is itself the answer (no TPM, no IOMMU groups, no keylime) gives
a fact; a file that exists but cannot be read or parsed leaves the fact ``None`` and appends a
:class:`~hvguard.facts.Problem` whose ``area`` is ``host.<group>``. Runtime facts (``proc/``, ``sys/``,
``dev/``) cannot be known from an offline root that lacks them: those facts stay ``None`` with one
problem per group saying so — except ``qemu_processes``, which is simply ``None`` there (nothing runs in
an image).

Kernel interfaces read here (checked against the Linux sources):

- ``sys/module/kvm_intel/parameters/ept`` is a ``bool`` parameter (``Y``/``N``); ``kvm_amd``'s ``npt``
  was an ``int`` (``1``/``0``) and is a ``bool`` in newer kernels, so both spellings are accepted.
- ``sys/module/module/parameters/sig_enforce`` is ``module.sig_enforce`` (``bool_enable_only``), only
  present when the kernel is built with module signing (``kernel/module/signing.c``).
- ``sys/kernel/security/lockdown`` lists the levels with the active one in brackets
  (``none [integrity] confidentiality``).
- efivarfs files start with the 4-byte little-endian attribute word, then the variable's data.
- ``module_blacklist=`` is the kernel's own comma-separated list (exact names); ``modprobe.blacklist=``
  is read by kmod and behaves like a ``blacklist`` line.
"""

from __future__ import annotations

import enum
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from hvguard.collect.hostfs import HostFS, as_fs
from hvguard.collect.libvirt.config import read_libvirt_conf
from hvguard.facts import (
    ConfFile,
    CpuFacts,
    HostFacts,
    IommuFacts,
    KernelFacts,
    KvmFacts,
    MemoryFacts,
    Problem,
    QemuProcess,
    SecureBootFacts,
    TpmFacts,
)

EFI_GLOBAL_GUID = "8be4df61-93ca-11d2-aa0d-e0b7f1c0e8c5"
QEMU_CONF = "etc/libvirt/qemu.conf"
LIBVIRTD_CONF = "etc/libvirt/libvirtd.conf"

# Pseudo-files are small; anything bigger than this is not what we expect and is not read whole.
MAX_TEXT_BYTES = 16 * 1024 * 1024

IOMMU_CMDLINE_PREFIXES = ("intel_iommu=", "amd_iommu=", "iommu=", "iommu.passthrough=")

# kmod's search path (modprobe.d(5)); a file name in an earlier directory hides the same name later.
MODPROBE_DIRS = (
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
)

# systemd's unit search path, most specific first (only the directories that can hold default.target).
DEFAULT_TARGET_LINKS = (
    "etc/systemd/system/default.target",
    "run/systemd/system/default.target",
    "usr/local/lib/systemd/system/default.target",
    "usr/lib/systemd/system/default.target",
    "lib/systemd/system/default.target",
)

KEYLIME_MARKERS = ("etc/keylime/agent.conf", "usr/bin/keylime_agent", "usr/local/bin/keylime_agent")
TBOOT_MARKERS = ("boot/tboot.gz",)

_TRUE_WORDS = frozenset({"Y", "y", "1"})
_FALSE_WORDS = frozenset({"N", "n", "0"})

_T = TypeVar("_T")


class _Gap(enum.Enum):
    """Why a read produced no data: the file is absent (a fact) or it failed (a Problem was recorded)."""

    MISSING = "missing"
    FAILED = "failed"


MISSING = _Gap.MISSING
FAILED = _Gap.FAILED


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    return (exc.strerror or str(exc)).lower()


class _Root:
    """File access under a root, recording a Problem for every failed read."""

    def __init__(self, fs: HostFS, *, live: bool, problems: list[Problem]) -> None:
        self.fs = fs
        self.live = live
        self.problems = problems
        self._flagged: set[str] = set()
        self.has_proc = self.is_dir("proc")
        self.has_sys = self.is_dir("sys")

    # -- paths and problems ----------------------------------------------------------------------------

    def shown(self, rel: str) -> str:
        """The path as reported in facts and problems: where it lives under the root, unresolved."""
        return self.fs.shown(rel)

    def problem(self, area: str, rel: str, message: str) -> None:
        self.problems.append(Problem(area=area, source=self.shown(rel), message=message))
        self._flagged.add(area)

    def flagged(self, area: str) -> bool:
        """True when a problem has already been recorded for ``area``."""
        return area in self._flagged

    def runtime_missing(self, area: str, fs: str) -> None:
        """Record, once per area, that a runtime filesystem (proc/sys/dev) is absent under the root."""
        key = f"{area}\0{fs}"
        if key in self._flagged:
            return
        self._flagged.add(key)
        self.problem(area, fs, f"no {fs}/ under the root: this fact needs the running system")

    # -- reads -----------------------------------------------------------------------------------------

    def _stat(self, rel: str) -> os.stat_result | None:
        try:
            return self.fs.stat(rel)
        except OSError:
            return None

    def exists(self, rel: str) -> bool:
        return self._stat(rel) is not None

    def is_dir(self, rel: str) -> bool:
        st = self._stat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def stat(self, rel: str, area: str) -> os.stat_result | _Gap:
        try:
            return self.fs.stat(rel)
        except FileNotFoundError:
            return MISSING
        except OSError as exc:
            self.problem(area, rel, f"cannot stat: {_reason(exc)}")
            return FAILED

    def read_bytes(self, rel: str, area: str) -> bytes | _Gap:
        try:
            # Never one large request: proc sysctl files allocate a kernel buffer as big as the request
            # and fail with ENOMEM for large ones (HostFS reads in 64 KiB requests).
            data = self.fs.read(rel, MAX_TEXT_BYTES + 1)
        except (FileNotFoundError, ProcessLookupError):
            # ESRCH: a proc/PID file whose process exited between open and read; it is simply gone.
            return MISSING
        except OSError as exc:
            self.problem(area, rel, f"cannot read: {_reason(exc)}")
            return FAILED
        if len(data) > MAX_TEXT_BYTES:
            self.problem(area, rel, f"larger than {MAX_TEXT_BYTES} bytes; not read")
            return FAILED
        return data

    def read_text(self, rel: str, area: str) -> str | _Gap:
        data = self.read_bytes(rel, area)
        if isinstance(data, _Gap):
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            self.problem(area, rel, f"line {line}: not valid UTF-8 text")
            return FAILED

    def read_word(self, rel: str, area: str) -> str | _Gap:
        """A one-value pseudo-file (sysfs attribute), stripped."""
        text = self.read_text(rel, area)
        return text.strip() if isinstance(text, str) else text

    def read_int(self, rel: str, area: str) -> int | _Gap:
        word = self.read_word(rel, area)
        if isinstance(word, _Gap):
            return word
        try:
            return int(word)
        except ValueError:
            self.problem(area, rel, f"expected an integer, found {word[:40]!r}")
            return FAILED

    def read_flag(self, rel: str, area: str) -> bool | _Gap:
        """A kernel boolean parameter: Y/N (bool params) or 1/0 (int params)."""
        word = self.read_word(rel, area)
        if isinstance(word, _Gap):
            return word
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        self.problem(area, rel, f"expected Y/N or 1/0, found {word[:40]!r}")
        return FAILED

    def listdir(self, rel: str, area: str) -> list[str] | _Gap:
        try:
            return sorted(self.fs.listdir(rel))
        except FileNotFoundError:
            return MISSING
        except OSError as exc:
            self.problem(area, rel, f"cannot list: {_reason(exc)}")
            return FAILED

    def readlink(self, rel: str) -> str | None:
        """The text of the symlink at ``rel`` (not followed); None when it is not a link or is absent."""
        try:
            return self.fs.readlink(rel)
        except OSError:
            return None

    def count_lines(self, rel: str, area: str) -> int | _Gap:
        """Count lines without reading the whole file (IMA logs grow without bound)."""
        try:
            return self.fs.count_lines(rel)
        except FileNotFoundError:
            return MISSING
        except OSError as exc:
            self.problem(area, rel, f"cannot read: {_reason(exc)}")
            return FAILED


def _value(result: _T | _Gap) -> _T | None:
    return None if isinstance(result, _Gap) else result


# --------------------------------------------------------------------------------------------------------
# Accounts (the root's own passwd/group: an offline root's ids mean nothing on this machine)


class _Accounts:
    """uid/gid → name from the root's ``etc/passwd`` and ``etc/group``, read once."""

    def __init__(self, r: _Root) -> None:
        self._r = r
        self._tables: dict[str, dict[int, str]] = {}

    def _table(self, rel: str, area: str) -> dict[int, str]:
        if rel not in self._tables:
            table: dict[int, str] = {}
            text = self._r.read_text(rel, area)
            if isinstance(text, str):
                for line in text.splitlines():
                    fields = line.split(":")
                    if len(fields) >= 3 and fields[2].isdigit():
                        table.setdefault(int(fields[2]), fields[0])
            self._tables[rel] = table
        return self._tables[rel]

    def user(self, uid: int, area: str) -> str:
        """The account name, or the number as text when the root has no such account."""
        return self._table("etc/passwd", area).get(uid, str(uid))

    def group(self, gid: int, area: str) -> str:
        """The group name, or the number as text when the root has no such group."""
        return self._table("etc/group", area).get(gid, str(gid))


# --------------------------------------------------------------------------------------------------------
# Identity


def _hostname(r: _Root) -> str | None:
    area = "host.hostname"
    # The kernel's name is the live truth; an offline root only has the configured one.
    order = ("proc/sys/kernel/hostname", "etc/hostname")
    if not r.live:
        order = ("etc/hostname", "proc/sys/kernel/hostname")
    for rel in order:
        text = r.read_text(rel, area)
        if isinstance(text, _Gap):
            continue
        for line in text.splitlines():
            # hostname(5): comment lines are ignored.
            name = line.strip()
            if name and not name.startswith("#"):
                return name
    if not r.flagged(area):
        r.problem(area, order[0], f"no host name in {order[0]} or {order[1]}")
    return None


_OS_RELEASE_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _os_release(r: _Root) -> tuple[str | None, str | None]:
    area = "host.os"
    # os-release(5): /etc/os-release wins, /usr/lib/os-release is the fallback.
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = r.read_text(rel, area)
        if text is MISSING:
            continue
        if isinstance(text, _Gap):
            return None, None
        fields: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            match = _OS_RELEASE_LINE.match(line.strip())
            if not match:
                continue
            try:
                words = shlex.split(match.group(2), comments=False, posix=True)
            except ValueError:
                r.problem(area, rel, f"line {number}: unbalanced quotes")
                continue
            fields[match.group(1)] = " ".join(words)
        os_id = fields.get("ID") or None
        if os_id is None and not r.flagged(area):
            r.problem(area, rel, "no ID= line")
        # Rolling releases have no VERSION_ID: that is an answer, not a gap.
        return os_id, fields.get("VERSION_ID") or None
    r.problem(area, "etc/os-release", "neither etc/os-release nor usr/lib/os-release exists")
    return None, None


def _default_target(r: _Root) -> str | None:
    area = "host.default_target"
    for rel in DEFAULT_TARGET_LINKS:
        link = r.readlink(rel)
        if link is not None:
            # The unit name is the link's last component; following it could leave the root.
            name = link.rstrip("/").rpartition("/")[2]
            if name:
                return name
            r.problem(area, rel, f"link target {link!r} names no unit")
            return None
        if r.exists(rel):
            # A real file called default.target is itself the default unit (systemctl get-default).
            return "default.target"
    r.problem(area, DEFAULT_TARGET_LINKS[0], "no default.target in any systemd unit directory")
    return None


# --------------------------------------------------------------------------------------------------------
# CPU and memory


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


def _sys_topology(r: _Root, area: str) -> tuple[set[str], set[tuple[str, str]]] | None:
    """(packages, (package, core) pairs) from sysfs, or None when sysfs has no topology."""
    entries = r.listdir("sys/devices/system/cpu", area)
    if isinstance(entries, _Gap):
        return None
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for entry in entries:
        if not re.fullmatch(r"cpu[0-9]+", entry):
            continue
        base = f"sys/devices/system/cpu/{entry}/topology"
        package = r.read_word(f"{base}/physical_package_id", area)
        core = r.read_word(f"{base}/core_id", area)
        if isinstance(package, _Gap) or isinstance(core, _Gap):
            continue  # an offline CPU has no topology directory
        packages.add(package)
        cores.add((package, core))
    return (packages, cores) if cores else None


def _cpu(r: _Root) -> CpuFacts:
    area = "host.cpu"
    rel = "proc/cpuinfo"
    text = r.read_text(rel, area)
    if text is MISSING:
        if r.has_proc:
            r.problem(area, rel, "file not found")
        else:
            r.runtime_missing(area, "proc")
        return CpuFacts(source=r.shown(rel))
    if isinstance(text, _Gap):
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


def _memory(r: _Root) -> MemoryFacts:
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


# --------------------------------------------------------------------------------------------------------
# KVM, IOMMU


def _kvm(r: _Root, accounts: _Accounts) -> KvmFacts:
    area = "host.kvm"
    modules: set[str] = set()
    text = r.read_text("proc/modules", area)
    if isinstance(text, str):
        for line in text.splitlines():
            name = line.split(" ", 1)[0]
            if name.startswith("kvm"):
                modules.add(name)
    elif not r.has_proc:
        r.runtime_missing(area, "proc")
    # No proc/modules with proc present: the kernel has no loadable-module support, so KVM is built in.
    # Built-in code with parameters still appears under sys/module, which also covers that case.
    if r.has_sys:
        entries = r.listdir("sys/module", area)
        if isinstance(entries, list):
            modules.update(name for name in entries if name.startswith("kvm"))
    else:
        r.runtime_missing(area, "sys")

    present: bool | None = None
    mode: str | None = None
    group: str | None = None
    # An image's dev/ is empty (devtmpfs fills it at boot), so absence there proves nothing.
    if not r.live and not _populated(r, "dev", area):
        r.runtime_missing(area, "dev")
    else:
        st = r.stat("dev/kvm", area)
        if st is MISSING:
            present = False
        elif isinstance(st, os.stat_result):
            present = True
            mode = f"{stat.S_IMODE(st.st_mode):04o}"
            group = accounts.group(st.st_gid, area)

    ept = r.read_flag("sys/module/kvm_intel/parameters/ept", area)
    npt = r.read_flag("sys/module/kvm_amd/parameters/npt", area)
    return KvmFacts(
        modules=sorted(modules),
        dev_kvm_present=present,
        dev_kvm_mode=mode,
        dev_kvm_group=group,
        # Absent means the vendor module is not loaded (an AMD host has no kvm_intel): not applicable.
        ept=_value(ept),
        npt=_value(npt),
    )


def _populated(r: _Root, rel: str, area: str) -> bool:
    entries = r.listdir(rel, area)
    return isinstance(entries, list) and bool(entries)


def _iommu(r: _Root, cmdline: str | None) -> IommuFacts:
    area = "host.iommu"
    groups: int | None = None
    if r.has_sys:
        entries = r.listdir("sys/kernel/iommu_groups", area)
        if entries is MISSING:
            groups = 0  # no directory: the kernel has no IOMMU groups at all
        elif isinstance(entries, list):
            groups = len(entries)
    else:
        r.runtime_missing(area, "sys")
    flags: list[str] = []
    if not r.has_proc:
        r.runtime_missing(area, "proc")
    elif cmdline is None:
        r.problem(area, "proc/cmdline", "kernel command line unavailable; IOMMU switches unknown")
    else:
        flags = [word for word in cmdline.split() if word.startswith(IOMMU_CMDLINE_PREFIXES)]
    return IommuFacts(groups=groups, cmdline_flags=flags)


# --------------------------------------------------------------------------------------------------------
# TPM, Secure Boot


def _securityfs_mounted(r: _Root) -> bool:
    """securityfs mounted at sys/kernel/security: the sysfs mount point alone is an empty directory."""
    return _populated(r, "sys/kernel/security", "host.kernel")


def _tpm(r: _Root) -> TpmFacts:
    area = "host.tpm"
    agents: list[str] = []
    if any(r.exists(rel) for rel in KEYLIME_MARKERS):
        agents.append("keylime")
    if any(r.exists(rel) for rel in TBOOT_MARKERS):
        agents.append("tboot")
    if not r.has_sys:
        r.runtime_missing(area, "sys")
        return TpmFacts(attestation_agents=agents)

    present = r.exists("sys/class/tpm/tpm0")
    version: int | None = None
    if present:
        major = r.read_int("sys/class/tpm/tpm0/tpm_version_major", area)
        if major is MISSING:
            r.problem(area, "sys/class/tpm/tpm0/tpm_version_major", "absent (kernel older than 5.6?)")
        version = _value(major)

    event_log: bool | None = None
    ima: int | None = None
    if _securityfs_mounted(r):
        event_log = r.exists("sys/kernel/security/tpm0/binary_bios_measurements")
        if r.is_dir("sys/kernel/security/ima"):
            counted = r.count_lines("sys/kernel/security/ima/ascii_runtime_measurements", area)
            if counted is MISSING:
                r.problem(
                    area, "sys/kernel/security/ima", "no ascii_runtime_measurements in the IMA directory"
                )
            ima = _value(counted)
        else:
            ima = 0  # kernel without IMA: nothing is measured
    else:
        r.problem(area, "sys/kernel/security", "securityfs is not mounted: event log and IMA unknown")
    return TpmFacts(
        present=present,
        version_major=version,
        event_log_present=event_log,
        ima_measurements=ima,
        attestation_agents=agents,
    )


def _efi_flag(r: _Root, name: str, area: str) -> tuple[bool | _Gap, str]:
    """An EFI global boolean variable: (value, path used); MISSING when the firmware lacks it."""
    var = f"{name}-{EFI_GLOBAL_GUID}"
    candidates = (
        # efivarfs: 4-byte attribute header, then the data byte.
        (f"sys/firmware/efi/efivars/{var}", 4),
        # The legacy sysfs interface exposes the bare data.
        (f"sys/firmware/efi/vars/{var}/data", 0),
    )
    for rel, offset in candidates:
        data = r.read_bytes(rel, area)
        if data is MISSING:
            continue
        if isinstance(data, _Gap):
            return FAILED, r.shown(rel)
        if len(data) <= offset:
            r.problem(area, rel, f"{len(data)} bytes: too short for an EFI boolean")
            return FAILED, r.shown(rel)
        byte = data[offset]
        if byte not in (0, 1):
            r.problem(area, rel, f"value byte is {byte}, expected 0 or 1")
            return FAILED, r.shown(rel)
        return byte == 1, r.shown(rel)
    return MISSING, r.shown(candidates[0][0])


def _secure_boot(r: _Root) -> SecureBootFacts:
    area = "host.secure_boot"
    if not r.has_sys:
        r.runtime_missing(area, "sys")
        return SecureBootFacts()
    if not r.is_dir("sys/firmware/efi"):
        return SecureBootFacts(uefi=False, enabled=False, source=r.shown("sys/firmware/efi"))
    mounted = r.listdir("sys/firmware/efi/efivars", area)
    legacy = r.is_dir("sys/firmware/efi/vars")
    if not (isinstance(mounted, list) and mounted) and not legacy:
        r.problem(area, "sys/firmware/efi/efivars", "efivarfs is not mounted: Secure Boot state unknown")
        return SecureBootFacts(uefi=True, source=r.shown("sys/firmware/efi/efivars"))
    enabled, source = _efi_flag(r, "SecureBoot", area)
    setup, _ = _efi_flag(r, "SetupMode", area)
    return SecureBootFacts(
        uefi=True,
        # No SecureBoot variable: the firmware does not implement Secure Boot, so it is off.
        enabled=False if enabled is MISSING else _value(enabled),
        setup_mode=None if isinstance(setup, _Gap) else setup,
        source=source,
    )


# --------------------------------------------------------------------------------------------------------
# Kernel


def _read_cmdline(r: _Root) -> str | None:
    text = r.read_text("proc/cmdline", "host.kernel")
    if text is MISSING:
        if r.has_proc:
            r.problem("host.kernel", "proc/cmdline", "file not found")
        else:
            r.runtime_missing("host.kernel", "proc")
    return text.strip() if isinstance(text, str) else None


def _modprobe_lines(text: str) -> Iterable[str]:
    """Logical lines of a modprobe.d file: kmod joins a line ending in a backslash with the next."""
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def _modprobe_blacklist(r: _Root) -> list[str]:
    area = "host.kernel"
    chosen: dict[str, str] = {}
    seen_dirs: set[tuple[int, int]] = set()
    for directory in MODPROBE_DIRS:
        try:
            st = r.fs.stat(directory)
        except OSError:
            continue
        real = (st.st_dev, st.st_ino)
        if real in seen_dirs:
            continue  # lib → usr/lib on merged-/usr systems
        seen_dirs.add(real)
        entries = r.listdir(directory, area)
        if not isinstance(entries, list):
            continue
        for name in entries:
            if name.endswith(".conf"):
                chosen.setdefault(name, f"{directory}/{name}")
    names: set[str] = set()
    for name in sorted(chosen):
        text = r.read_text(chosen[name], area)
        if not isinstance(text, str):
            continue
        for line in _modprobe_lines(text):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "blacklist" and len(words) >= 2:
                names.add(_kmod_name(words[1]))
            elif words[0] == "install" and len(words) >= 3:
                command = words[2].rpartition("/")[2]
                # install NAME /bin/false (or /bin/true) makes every load of NAME a no-op.
                if command in {"false", "true"}:
                    names.add(_kmod_name(words[1]))
    return sorted(names)


def _kmod_name(name: str) -> str:
    # kmod treats - and _ in module names as the same character and stores the _ form.
    return name.replace("-", "_")


def _cmdline_blacklist(cmdline: str) -> list[str]:
    names: list[str] = []
    for word in cmdline.split():
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if key == "module_blacklist":
            # The kernel compares these verbatim with the module's name.
            names.extend(item for item in value.split(",") if item)
        elif key == "modprobe.blacklist":
            names.extend(_kmod_name(item) for item in value.split(",") if item)
    return names


def _kernel(r: _Root, cmdline: str | None) -> KernelFacts:
    area = "host.kernel"
    release: str | None = None
    tainted: int | None = None
    lockdown: str | None = None
    sig_enforce: bool | None = None
    if r.has_proc:
        osrelease = r.read_word("proc/sys/kernel/osrelease", area)
        if osrelease is MISSING:
            r.problem(area, "proc/sys/kernel/osrelease", "file not found")
        release = _value(osrelease) or None
        taint = r.read_int("proc/sys/kernel/tainted", area)
        if taint is MISSING:
            r.problem(area, "proc/sys/kernel/tainted", "file not found")
        tainted = _value(taint)
    else:
        r.runtime_missing(area, "proc")

    if r.has_sys:
        if _securityfs_mounted(r):
            text = r.read_word("sys/kernel/security/lockdown", area)
            if text is MISSING:
                lockdown = "none"  # securityfs is up but the lockdown LSM is not: nothing is locked down
            elif isinstance(text, str):
                match = re.search(r"\[([a-z]+)\]", text)
                if match:
                    lockdown = match.group(1)
                else:
                    r.problem(area, "sys/kernel/security/lockdown", f"no [level] in {text[:60]!r}")
        else:
            r.problem(area, "sys/kernel/security", "securityfs is not mounted: lockdown state unknown")

        flag = r.read_flag("sys/module/module/parameters/sig_enforce", area)
        if flag is MISSING:
            if r.exists("proc/modules"):
                sig_enforce = False  # modules load, and this kernel was built without signature checking
            else:
                r.problem(
                    area,
                    "sys/module/module/parameters/sig_enforce",
                    "absent and no proc/modules: the kernel has no loadable-module support",
                )
        else:
            sig_enforce = _value(flag)
    else:
        r.runtime_missing(area, "sys")

    blacklist = set(_modprobe_blacklist(r))
    if cmdline is not None:
        blacklist.update(_cmdline_blacklist(cmdline))
    return KernelFacts(
        release=release,
        cmdline=cmdline,
        lockdown=lockdown,
        sig_enforce=sig_enforce,
        tainted=tainted,
        module_blacklist=sorted(blacklist),
    )


# --------------------------------------------------------------------------------------------------------
# libvirt configuration


def _conf(r: _Root, rel: str, area: str) -> ConfFile:
    conf = read_libvirt_conf(r.fs, rel)
    if conf.error is not None:
        r.problems.append(Problem(area=area, source=conf.path, message=conf.error))
    return conf


# --------------------------------------------------------------------------------------------------------
# QEMU processes


def _is_qemu_name(name: str) -> bool:
    return name.startswith(("qemu-system", "qemu-kvm")) or name == "kvm"


def split_qemu_opts(text: str) -> list[str]:
    """Split a QEMU option string on commas; ``,,`` is an escaped literal comma."""
    items: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == ",":
            if text.startswith(",,", index):
                current.append(",")
                index += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        index += 1
    items.append("".join(current))
    return items


def qemu_vm_name(args: list[str]) -> str | None:
    """The guest name from a QEMU command line: ``-name guest=NAME,...`` or ``-name NAME[,...]``."""
    for index, arg in enumerate(args[:-1]):
        if arg not in {"-name", "--name"}:
            continue
        for position, item in enumerate(split_qemu_opts(args[index + 1])):
            key, sep, value = item.partition("=")
            if sep and key == "guest":
                return value or None
            if not sep and position == 0:
                return item or None  # the first bare item is QEMU's implied "guest" key
        return None
    return None


def _process(r: _Root, pid: str, accounts: _Accounts, area: str) -> QemuProcess | None:
    base = f"proc/{pid}"
    comm_raw = r.read_bytes(f"{base}/comm", area)
    cmdline_raw = r.read_bytes(f"{base}/cmdline", area)
    if isinstance(comm_raw, _Gap) or isinstance(cmdline_raw, _Gap) or not cmdline_raw:
        return None  # gone mid-scan, or a kernel thread (empty cmdline)
    comm = comm_raw.decode("utf-8", "replace").strip()
    exe = r.readlink(f"{base}/exe") or ""
    exe_name = exe.removesuffix(" (deleted)").rpartition("/")[2]
    if not (_is_qemu_name(comm) or _is_qemu_name(exe_name)):
        return None
    status = r.read_text(f"{base}/status", area)
    if isinstance(status, _Gap):
        return None
    uid: int | None = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                uid = int(fields[1])  # the real uid: the account QEMU runs as
            break
    if uid is None:
        r.problem(area, f"{base}/status", "no readable Uid: line")
        return None
    args = [arg.decode("utf-8", "replace") for arg in cmdline_raw.rstrip(b"\0").split(b"\0")]
    return QemuProcess(pid=int(pid), user=accounts.user(uid, area), uid=uid, vm_name=qemu_vm_name(args))


def _qemu_processes(r: _Root, accounts: _Accounts) -> list[QemuProcess] | None:
    area = "host.qemu_processes"
    if not r.has_proc:
        return None  # an offline root runs nothing; not a gap
    entries = r.listdir("proc", area)
    if not isinstance(entries, list):
        return None
    processes: list[QemuProcess] = []
    for pid in entries:
        if pid.isdigit():
            found = _process(r, pid, accounts, area)
            if found is not None:
                processes.append(found)
    return sorted(processes, key=lambda p: p.pid)


# --------------------------------------------------------------------------------------------------------
# Entry point


def _guard(r: _Root, area: str, default: _T, collect: Callable[[], _T]) -> _T:
    """Run one group's collector; a bug in it becomes a Problem instead of aborting the whole host."""
    try:
        return collect()
    except Exception as exc:  # the collector promises never to raise
        r.problems.append(
            Problem(area=area, source=r.fs.label, message=f"internal error: {type(exc).__name__}: {exc}")
        )
        return default


def collect_host(
    root: Path | HostFS = Path("/"), *, problems: list[Problem], live: bool | None = None
) -> HostFacts:
    """Read every host fact from ``root`` (``/`` for this machine, an offline root, or any
    :class:`HostFS`); never raises.

    ``live`` says whether ``root`` is the running system; by default it is when ``root`` is a directory
    that resolves to ``/``. Either way only the root's files are read. Each gap appends a
    :class:`Problem` with area ``host.<group>`` to ``problems`` and leaves the fact ``None``.
    """
    if live is None:
        live = isinstance(root, Path) and root.resolve() == Path("/")
    fs = as_fs(root)
    r = _Root(fs, live=live, problems=problems)
    accounts = _Accounts(r)
    no_os: tuple[str | None, str | None] = (None, None)
    os_id, os_version = _guard(r, "host.os", no_os, lambda: _os_release(r))
    cmdline = _guard(r, "host.kernel", None, lambda: _read_cmdline(r))
    return HostFacts(
        root=fs.label,
        hostname=_guard(r, "host.hostname", None, lambda: _hostname(r)),
        os_id=os_id,
        os_version=os_version,
        default_target=_guard(r, "host.default_target", None, lambda: _default_target(r)),
        cpu=_guard(r, "host.cpu", CpuFacts(), lambda: _cpu(r)),
        memory=_guard(r, "host.memory", MemoryFacts(), lambda: _memory(r)),
        kvm=_guard(r, "host.kvm", KvmFacts(), lambda: _kvm(r, accounts)),
        iommu=_guard(r, "host.iommu", IommuFacts(), lambda: _iommu(r, cmdline)),
        tpm=_guard(r, "host.tpm", TpmFacts(), lambda: _tpm(r)),
        secure_boot=_guard(r, "host.secure_boot", SecureBootFacts(), lambda: _secure_boot(r)),
        kernel=_guard(r, "host.kernel", KernelFacts(), lambda: _kernel(r, cmdline)),
        qemu_conf=_guard(
            r,
            "host.qemu_conf",
            ConfFile(path=r.shown(QEMU_CONF)),
            lambda: _conf(r, QEMU_CONF, "host.qemu_conf"),
        ),
        libvirtd_conf=_guard(
            r,
            "host.libvirtd_conf",
            ConfFile(path=r.shown(LIBVIRTD_CONF)),
            lambda: _conf(r, LIBVIRTD_CONF, "host.libvirtd_conf"),
        ),
        qemu_processes=_guard(r, "host.qemu_processes", None, lambda: _qemu_processes(r, accounts)),
    )
