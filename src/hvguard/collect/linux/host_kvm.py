"""KVM and IOMMU facts: modules, ``/dev/kvm``, EPT/NPT and IOMMU groups and switches."""

from __future__ import annotations

import os
import stat

from hvguard.collect.linux.host_files import (
    MISSING,
    Accounts,
    HostRoot,
    populated,
    value_of,
)
from hvguard.facts import (
    IommuFacts,
    KvmFacts,
)

IOMMU_CMDLINE_PREFIXES = ("intel_iommu=", "amd_iommu=", "iommu=", "iommu.passthrough=")


def collect_kvm(r: HostRoot, accounts: Accounts) -> KvmFacts:
    """KVM modules, /dev/kvm (mode and group) and EPT/NPT."""
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
    if not r.live and not populated(r, "dev", area):
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
        ept=value_of(ept),
        npt=value_of(npt),
    )


def collect_iommu(r: HostRoot, cmdline: str | None) -> IommuFacts:
    """IOMMU groups and the IOMMU switches on the kernel command line."""
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
