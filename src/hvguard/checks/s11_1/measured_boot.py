"""Checks for SS-009 11.1.3.

11.1.3 Measured launch (TPM 2.0) with attestation and chain of trust

Checks: ``tpm2_measured_boot``, ``secure_boot``, ``attestation``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.catalog.checks import static_remediation
from hvguard.checks.base import HOST, CheckContext, check
from hvguard.findings import Finding

_TPM_FIX = static_remediation("kvm.tpm2-measured-boot")  # text in hvguard/catalog/checks.yaml


@check(
    "11.1.3",
    id="kvm.tpm2-measured-boot",
    reads=("host.tpm.present", "host.tpm.version_major", "host.tpm.event_log_present"),
)
def tpm2_measured_boot(ctx: CheckContext) -> Iterator[Finding]:
    """The host has a TPM of major version 2 or later and a measured-boot event log (firmware measured the
    launch into the TPM). Sources: /sys/class/tpm/tpm0/tpm_version_major,
    /sys/kernel/security/tpm0/binary_bios_measurements; the IMA measurement count is recorded as
    evidence of runtime measurement but not required."""
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the TPM and measured boot", "host")
        return
    tpm = host.tpm
    evidence = {
        "tpm_present": tpm.present,
        "tpm_version_major": tpm.version_major,
        "event_log_present": tpm.event_log_present,
        "ima_measurements": tpm.ima_measurements,
    }
    if tpm.present is None:
        yield ctx.error(HOST, "whether the host has a TPM", "host.tpm")
        return
    if not tpm.present:
        yield ctx.failed(HOST, "no TPM: the platform cannot provide a measured launch", evidence, _TPM_FIX)
        return
    if tpm.version_major is None:
        yield ctx.error(HOST, "the TPM version", "host.tpm")
        return
    if tpm.version_major < 2:
        yield ctx.failed(
            HOST, f"TPM version {tpm.version_major}.x: TPM 2.0 or later is required", evidence, _TPM_FIX
        )
        return
    if tpm.event_log_present is None:
        yield ctx.error(HOST, "the measured-boot event log", "host.tpm")
        return
    if not tpm.event_log_present:
        yield ctx.failed(
            HOST,
            f"TPM {tpm.version_major}.0 present but no measured-boot event log: the launch was not measured",
            evidence,
            _TPM_FIX,
        )
        return
    yield ctx.passed(
        HOST, f"TPM {tpm.version_major}.0 with a measured-boot event log (measured launch)", evidence
    )


@check(
    "11.1.3",
    id="kvm.secure-boot",
    reads=("host.secure_boot.uefi", "host.secure_boot.enabled", "host.secure_boot.setup_mode"),
)
def secure_boot(ctx: CheckContext) -> Iterator[Finding]:
    """UEFI Secure Boot is enabled and enforcing (not in Setup Mode): the verified chain of trust from
    firmware to the hypervisor kernel that measures.md requires beside the measured launch. Source:
    efivars SecureBoot / SetupMode."""
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "Secure Boot", "host")
        return
    sb = host.secure_boot
    evidence = {"uefi": sb.uefi, "enabled": sb.enabled, "setup_mode": sb.setup_mode, "source": sb.source}
    fix = (
        "Enable UEFI Secure Boot in the firmware setup (UEFI boot mode, platform keys enrolled, not in "
        "Setup Mode) and boot a signed shim/GRUB/kernel; check: mokutil --sb-state"
    )
    if sb.uefi is False:
        yield ctx.failed(HOST, "legacy BIOS boot: no UEFI Secure Boot chain of trust", evidence, fix)
        return
    if sb.enabled is None:
        yield ctx.error(HOST, "the Secure Boot state", "host.secure_boot")
        return
    if not sb.enabled:
        yield ctx.failed(HOST, "UEFI Secure Boot is disabled", evidence, fix)
        return
    if sb.setup_mode:
        yield ctx.failed(
            HOST, "the firmware is in Setup Mode: no Platform Key, Secure Boot is not enforced", evidence, fix
        )
        return
    yield ctx.passed(HOST, "UEFI Secure Boot is enabled", evidence)


@check("11.1.3", id="kvm.attestation", reads=("host.tpm.attestation_agents",))
def attestation(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: "the means to provide an attestation process" is shown by the verifier's record
    for this host, which is outside the host's facts. A detected agent (e.g. keylime_agent) narrows the
    evidence asked for; without one the auditor needs the attestation mechanism itself."""
    host = ctx.host
    agents = list(host.tpm.attestation_agents) if host is not None else []
    if agents:
        yield ctx.manual(
            HOST,
            f"Attestation agent(s) detected: {', '.join(agents)}. Provide the verifier's record for this "
            "host: its enrolment (e.g. Keylime registrar entry with the TPM's EK/AK) and the latest "
            "attestation result against the expected boot measurements.",
            {"attestation_agents": agents},
        )
        return
    yield ctx.manual(
        HOST,
        "No remote-attestation agent was detected on the host"
        + ("" if host is not None else " (host facts were not collected)")
        + ". Provide evidence of the attestation process: the verifier this host is enrolled with (e.g. "
        "Keylime, or an Intel TXT/tboot launch report) and its latest attestation result for this host.",
        {"attestation_agents": agents},
    )
