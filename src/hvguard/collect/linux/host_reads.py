"""What the Linux host collector reads (its declaration; the manifest and the SSH fetch list use it).

Plain data, so the manifest can gather it without importing the collector itself.
"""

from __future__ import annotations

from hvguard.collect.interface import Fetch, fetches

EFI_GUID = "8be4df61-93ca-11d2-aa0d-e0b7f1c0e8c5"

#: Every path the Linux host collector reads, with why. A test keeps this in step with the collector's
#: code (tests/test_ssh_script.py).
HOST_READS: tuple[Fetch, ...] = (
    *fetches("T", "which top-level directories exist; merged-/usr links (lib -> usr/lib)", "/"),
    *fetches("W", "host name", "/proc/sys/kernel/hostname"),
    *fetches("F", "host name, OS release", "/etc/hostname", "/etc/os-release", "/usr/lib/os-release"),
    *fetches(
        "F",
        "systemd default target (the link's name only)",
        "/etc/systemd/system/default.target",
        "/run/systemd/system/default.target",
        "/usr/local/lib/systemd/system/default.target",
        "/usr/lib/systemd/system/default.target",
        "/lib/systemd/system/default.target",
    ),
    *fetches("F", "CPU, memory, modules, kernel command line", "/proc/cpuinfo", "/proc/meminfo"),
    *fetches("F", "loaded kernel modules; kernel command line", "/proc/modules", "/proc/cmdline"),
    *fetches("W", "kernel release and taint", "/proc/sys/kernel/osrelease", "/proc/sys/kernel/tainted"),
    *fetches("D", "CPU topology when cpuinfo lacks it", "/sys/devices/system/cpu"),
    *fetches(
        "W",
        "CPU topology when cpuinfo lacks it",
        "/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id",
        "/sys/devices/system/cpu/cpu[0-9]*/topology/core_id",
    ),
    *fetches("D", "KVM modules (built in or loaded)", "/sys/module"),
    *fetches(
        "W",
        "EPT/NPT and module signature enforcement",
        "/sys/module/kvm_intel/parameters/ept",
        "/sys/module/kvm_amd/parameters/npt",
        "/sys/module/module/parameters/sig_enforce",
    ),
    *fetches("S", "/dev/kvm mode and group", "/dev/kvm"),
    *fetches("D", "IOMMU groups", "/sys/kernel/iommu_groups"),
    *fetches(
        "S",
        "attestation agents present",
        "/etc/keylime/agent.conf",
        "/usr/bin/keylime_agent",
        "/usr/local/bin/keylime_agent",
        "/boot/tboot.gz",
    ),
    *fetches("F", "TPM present", "/sys/class/tpm/tpm0"),
    *fetches("W", "TPM version", "/sys/class/tpm/tpm0/tpm_version_major"),
    *fetches("D", "securityfs mounted", "/sys/kernel/security"),
    *fetches("W", "kernel lockdown", "/sys/kernel/security/lockdown"),
    *fetches("S", "TPM event log present", "/sys/kernel/security/tpm0/binary_bios_measurements"),
    *fetches("F", "IMA enabled", "/sys/kernel/security/ima"),
    *fetches("N", "IMA measurement count", "/sys/kernel/security/ima/ascii_runtime_measurements"),
    *fetches("F", "UEFI boot", "/sys/firmware/efi", "/sys/firmware/efi/vars"),
    *fetches("D", "efivarfs mounted", "/sys/firmware/efi/efivars"),
    *fetches(
        "F",
        "Secure Boot and setup mode",
        f"/sys/firmware/efi/efivars/SecureBoot-{EFI_GUID}",
        f"/sys/firmware/efi/efivars/SetupMode-{EFI_GUID}",
        f"/sys/firmware/efi/vars/SecureBoot-{EFI_GUID}/data",
        f"/sys/firmware/efi/vars/SetupMode-{EFI_GUID}/data",
    ),
    *fetches(
        "D",
        "module blacklists (kmod's search path)",
        "/etc/modprobe.d",
        "/run/modprobe.d",
        "/usr/local/lib/modprobe.d",
        "/usr/lib/modprobe.d",
        "/lib/modprobe.d",
    ),
    *fetches(
        "F",
        "module blacklists (kmod's search path)",
        "/etc/modprobe.d/*.conf",
        "/run/modprobe.d/*.conf",
        "/usr/local/lib/modprobe.d/*.conf",
        "/usr/lib/modprobe.d/*.conf",
        "/lib/modprobe.d/*.conf",
    ),
    *fetches(
        "F", "libvirt daemon and QEMU driver settings", "/etc/libvirt/qemu.conf", "/etc/libvirt/libvirtd.conf"
    ),
    *fetches("F", "account and group names for uids and gids", "/etc/passwd", "/etc/group"),
    *fetches("P", "QEMU processes: comm, cmdline, status (and exe link) of those processes only", "/proc"),
    *fetches("K", "which process owns each socket: socket fd links and comm only", "/proc/[0-9]*/fd"),
)
