"""Collect :class:`~hvguard.facts.HostFacts` from a Linux host's files: the running system or an offline root.

Every path is read *under* ``root`` with chroot semantics (:func:`resolve_in_root`), so an offline root — a
mounted disk image, a test fixture — is never mixed with the machine hvguard runs on.

Gaps are explicit. A file whose absence is itself the answer (no TPM, no IOMMU groups, no keylime) gives
a fact; a file that exists but cannot be read or parsed leaves the fact ``None`` and appends a
:class:`~hvguard.facts.Problem` whose ``area`` is ``host.<group>``. Runtime facts (``proc/``, ``sys/``,
``dev/``) cannot be known from an offline root that lacks them: those facts stay ``None`` with one
problem per group saying so — except ``qemu_processes``, which is simply ``None`` there (nothing runs in
an image).

One module per fact group: ``host_identity`` (host name, OS, default target), ``host_cpu`` (CPU,
memory), ``host_kvm`` (KVM, IOMMU), ``host_firmware`` (TPM, Secure Boot), ``host_kernel`` and
``host_qemu`` (QEMU processes), all reading through ``host_files.HostRoot``; this module runs them.

Kernel interfaces read by those modules (checked against the Linux sources):

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

from pathlib import Path

from hvguard.collect.hostfs import HostFS, as_fs
from hvguard.collect.interface import Collector, guarded
from hvguard.collect.libvirt.config import read_libvirt_conf
from hvguard.collect.linux.host_cpu import collect_cpu, collect_memory
from hvguard.collect.linux.host_files import Accounts, HostRoot
from hvguard.collect.linux.host_firmware import collect_secure_boot, collect_tpm
from hvguard.collect.linux.host_identity import read_default_target, read_hostname, read_os_release
from hvguard.collect.linux.host_kernel import collect_kernel, read_cmdline
from hvguard.collect.linux.host_kvm import collect_iommu, collect_kvm
from hvguard.collect.linux.host_qemu import collect_qemu_processes
from hvguard.collect.linux.host_reads import HOST_READS
from hvguard.collect.linux.source import HostSource
from hvguard.facts import (
    ConfFile,
    CpuFacts,
    HostFacts,
    IommuFacts,
    KernelFacts,
    KvmFacts,
    MemoryFacts,
    Problem,
    SecureBootFacts,
    TpmFacts,
)

QEMU_CONF = "etc/libvirt/qemu.conf"
LIBVIRTD_CONF = "etc/libvirt/libvirtd.conf"


def _conf(r: HostRoot, rel: str, area: str) -> ConfFile:
    conf = read_libvirt_conf(r.fs, rel)
    if conf.error is not None:
        r.problems.append(Problem(area=area, source=conf.path, message=conf.error))
    return conf


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
    r = HostRoot(fs, live=live, problems=problems)
    accounts = Accounts(r)
    label = fs.label
    no_os: tuple[str | None, str | None] = (None, None)
    os_id, os_version = guarded(problems, "host.os", label, no_os, lambda: read_os_release(r))
    cmdline = guarded(problems, "host.kernel", label, None, lambda: read_cmdline(r))
    return HostFacts(
        root=fs.label,
        hostname=guarded(problems, "host.hostname", label, None, lambda: read_hostname(r)),
        os_id=os_id,
        os_version=os_version,
        default_target=guarded(problems, "host.default_target", label, None, lambda: read_default_target(r)),
        cpu=guarded(problems, "host.cpu", label, CpuFacts(), lambda: collect_cpu(r)),
        memory=guarded(problems, "host.memory", label, MemoryFacts(), lambda: collect_memory(r)),
        kvm=guarded(problems, "host.kvm", label, KvmFacts(), lambda: collect_kvm(r, accounts)),
        iommu=guarded(problems, "host.iommu", label, IommuFacts(), lambda: collect_iommu(r, cmdline)),
        tpm=guarded(problems, "host.tpm", label, TpmFacts(), lambda: collect_tpm(r)),
        secure_boot=guarded(
            problems, "host.secure_boot", label, SecureBootFacts(), lambda: collect_secure_boot(r)
        ),
        kernel=guarded(problems, "host.kernel", label, KernelFacts(), lambda: collect_kernel(r, cmdline)),
        qemu_conf=guarded(
            problems,
            "host.qemu_conf",
            label,
            ConfFile(path=r.shown(QEMU_CONF)),
            lambda: _conf(r, QEMU_CONF, "host.qemu_conf"),
        ),
        libvirtd_conf=guarded(
            problems,
            "host.libvirtd_conf",
            label,
            ConfFile(path=r.shown(LIBVIRTD_CONF)),
            lambda: _conf(r, LIBVIRTD_CONF, "host.libvirtd_conf"),
        ),
        qemu_processes=guarded(
            problems, "host.qemu_processes", label, None, lambda: collect_qemu_processes(r, accounts)
        ),
    )


class LinuxHostCollector(Collector[HostSource, HostFacts]):
    """The base host facts (identity, CPU, memory, KVM, IOMMU, TPM, Secure Boot, kernel, libvirt
    configuration, QEMU processes) from a host source's files; it runs no commands."""

    area = "host"
    reads = HOST_READS

    def collect(self, source: HostSource, problems: list[Problem]) -> HostFacts:
        """The base host facts of ``source`` (access and operations are their own collectors)."""
        return collect_host(source.fs, problems=problems, live=source.live)
