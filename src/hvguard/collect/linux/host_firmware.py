"""Measured and secure boot facts: the TPM, its event log and IMA, and UEFI Secure Boot.

efivarfs files start with the 4-byte little-endian attribute word, then the variable's data.
"""

from __future__ import annotations

from hvguard.collect.linux.host_files import (
    FAILED,
    MISSING,
    Gap,
    HostRoot,
    securityfs_mounted,
    value_of,
)
from hvguard.facts import (
    SecureBootFacts,
    TpmFacts,
)

EFI_GLOBAL_GUID = "8be4df61-93ca-11d2-aa0d-e0b7f1c0e8c5"
KEYLIME_MARKERS = ("etc/keylime/agent.conf", "usr/bin/keylime_agent", "usr/local/bin/keylime_agent")
TBOOT_MARKERS = ("boot/tboot.gz",)


def collect_tpm(r: HostRoot) -> TpmFacts:
    """The host TPM, its version, event log and IMA measurements, and attestation agents."""
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
        version = value_of(major)

    event_log: bool | None = None
    ima: int | None = None
    if securityfs_mounted(r):
        event_log = r.exists("sys/kernel/security/tpm0/binary_bios_measurements")
        if r.is_dir("sys/kernel/security/ima"):
            counted = r.count_lines("sys/kernel/security/ima/ascii_runtime_measurements", area)
            if counted is MISSING:
                r.problem(
                    area, "sys/kernel/security/ima", "no ascii_runtime_measurements in the IMA directory"
                )
            ima = value_of(counted)
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


def _efi_flag(r: HostRoot, name: str, area: str) -> tuple[bool | Gap, str]:
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
        if isinstance(data, Gap):
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


def collect_secure_boot(r: HostRoot) -> SecureBootFacts:
    """UEFI boot and the Secure Boot and setup-mode variables."""
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
        enabled=False if enabled is MISSING else value_of(enabled),
        setup_mode=None if isinstance(setup, Gap) else setup,
        source=source,
    )
