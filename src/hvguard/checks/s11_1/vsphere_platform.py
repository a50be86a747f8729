"""Checks for SS-009 11.1.1–11.1.3 on vSphere (ESXi and vCenter).

11.1.1 Type 1 hypervisor; 11.1.2 hardware-assisted virtualisation (host CPU and each VM's monitor mode);
11.1.3 measured launch: TPM 2.0 attestation, Secure Boot enforcement and TPM-based configuration
encryption.

Checks: ``vsphere.type1-hypervisor``, ``vsphere.host-hw-virt``, ``vsphere.vm-hw-virt``,
``vsphere.tpm-attestation``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CannotEvaluate, CheckContext, check
from hvguard.checks.support.vsphere import each_host, each_vm, facts, host_cli, need, ps, top_subject
from hvguard.facts import VsphereHost, VsphereVm, host_area, vm_area
from hvguard.findings import Finding

#: ``AboutInfo.apiType`` values of a bare-metal ESXi host and of the vCenter that manages such hosts.
TYPE1_API_TYPES = {"HostAgent": "ESXi host agent", "VirtualCenter": "vCenter Server"}


@check("11.1.1", id="vsphere.type1-hypervisor", reads=("vsphere.product", "vsphere.hosts[].product"))
def type1_hypervisor(ctx: CheckContext) -> Iterator[Finding]:
    """ESXi is a Type 1 (bare-metal) hypervisor: the endpoint's ``AboutInfo.apiType`` is ``HostAgent`` or
    ``VirtualCenter`` and every host's ``config.product.name`` is ``VMware ESXi``. Anything else (a
    hosted VMware product answering the API) fails."""
    vs = facts(ctx)
    top = top_subject(ctx)
    product = need(vs.product, top, "the endpoint's product (content.about)", "vsphere.about")
    api_type = product.api_type or ""
    evidence = {"api_type": api_type, "product": product.full_name or product.name}
    if api_type not in TYPE1_API_TYPES:
        yield ctx.failed(
            top,
            f"the vSphere endpoint is {product.full_name or product.name!r} (apiType {api_type!r}), not an "
            "ESXi "
            "host or vCenter: a hosted (Type 2) product",
            evidence,
            "Run the VMs on VMware ESXi (bare metal) managed by vCenter Server, or record the Type 2 use as "
            "an "
            "exception on the risk register (SS-009 §5).",
        )
        return
    yield ctx.passed(
        top, f"{TYPE1_API_TYPES[api_type]} ({product.full_name or product.name}): Type 1", evidence
    )

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        if top == subject:
            return  # the ESXi endpoint is its own host: judged above
        hp = need(host.product, subject, "the host's product (config.product)", host_area(host.moref))
        ev = {"product": hp.full_name or hp.name, "product_line_id": hp.product_line_id}
        if hp.name == "VMware ESXi" or hp.product_line_id == "embeddedEsx":
            yield ctx.passed(subject, f"{hp.full_name or hp.name}: bare-metal (Type 1)", ev)
        else:
            yield ctx.failed(
                subject,
                f"host product {hp.full_name or hp.name!r} is not VMware ESXi",
                ev,
                "Replace the host with a VMware ESXi host, or record the exception on the risk register.",
            )

    yield from each_host(ctx, judge)


@check("11.1.2", id="vsphere.host-hw-virt", reads=("vsphere.hosts[].cpu",))
def host_hw_virt(ctx: CheckContext) -> Iterator[Finding]:
    """Each host's CPU offers hardware virtualisation (VT-x/AMD-V, from the feature capabilities) and a
    hardware MMU (EPT/RVI, ``capability.cpuHwMmuSupported``)."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        cpu = need(host.cpu, subject, "the host's CPU capabilities", host_area(host.moref, "cpu"))
        evidence = {
            "cpu_model": cpu.model,
            "hv_supported": cpu.hv_supported,
            "hw_mmu_supported": cpu.hw_mmu_supported,
        }
        if cpu.hv_supported is None or cpu.hw_mmu_supported is None:
            raise CannotEvaluate(
                subject, "the host's VT-x/AMD-V and EPT/RVI support", host_area(host.moref, "cpu")
            )
        missing = [
            n for n, ok in (("VT-x/AMD-V", cpu.hv_supported), ("EPT/RVI", cpu.hw_mmu_supported)) if not ok
        ]
        if missing:
            yield ctx.failed(
                subject,
                f"the host CPU lacks (or its firmware disables) {' and '.join(missing)}",
                evidence,
                "Enable Intel VT-x/EPT or AMD-V/RVI in the server firmware (BIOS/UEFI setup), then reboot: "
                f"{host_cli(ctx, host)} | Restart-VMHost -Confirm:$false (after entering maintenance mode).",
            )
        else:
            yield ctx.passed(subject, "hardware virtualisation and hardware MMU supported", evidence)

    yield from each_host(ctx, judge)


@check("11.1.2", id="vsphere.vm-hw-virt", reads=("vsphere.vms[].flags",))
def vm_hw_virt(ctx: CheckContext) -> Iterator[Finding]:
    """No VM is forced to software virtualisation: ``config.flags.virtualExecUsage`` is not ``hvOff`` and
    ``virtualMmuUsage`` is not ``off`` (``hvAuto``/``automatic`` let ESXi use VT-x and EPT/RVI)."""

    def judge(vm: VsphereVm, subject: str) -> Iterator[Finding]:
        flags = need(vm.flags, subject, "the VM's monitor flags (config.flags)", vm_area(vm.moref, "flags"))
        evidence = {
            "virtual_exec_usage": flags.virtual_exec_usage,
            "virtual_mmu_usage": flags.virtual_mmu_usage,
        }
        forced = []
        if flags.virtual_exec_usage == "hvOff":
            forced.append("virtualExecUsage=hvOff (binary translation)")
        if flags.virtual_mmu_usage == "off":
            forced.append("virtualMmuUsage=off (software MMU)")
        if forced:
            yield ctx.failed(
                subject,
                "the VM is forced to software virtualisation: " + ", ".join(forced),
                evidence,
                "$spec = New-Object VMware.Vim.VirtualMachineConfigSpec; "
                "$spec.Flags = New-Object VMware.Vim.VirtualMachineFlagInfo; "
                "$spec.Flags.VirtualExecUsage = 'hvAuto'; $spec.Flags.VirtualMmuUsage = 'automatic'; "
                f"(Get-VM -Name {ps(vm.name)}).ExtensionData.ReconfigVM($spec)",
            )
        else:
            yield ctx.passed(subject, "hardware-assisted CPU and MMU virtualisation allowed", evidence)

    yield from each_vm(ctx, judge)


@check("11.1.3", id="vsphere.tpm-attestation", reads=("vsphere.hosts[].tpm",))
def tpm_attestation(ctx: CheckContext) -> Iterator[Finding]:
    """Each host boots with a TPM 2.0 whose measured launch vCenter attests (``summary.tpmAttestation
    .status`` = ``accepted``), with UEFI Secure Boot (ESXI-80-000094), Secure Boot enforcement
    (ESXI-80-000085) and TPM-based configuration encryption (ESXI-80-000238) where the collector could
    read them."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        tpm = need(host.tpm, subject, "the host's TPM attestation", host_area(host.moref, "tpm"))
        evidence = {
            "attestation_status": tpm.attestation_status,
            "attestation_message": tpm.attestation_message,
            "tpm_supported": tpm.tpm_supported,
            "tpm_version": tpm.tpm_version,
            "uefi_secure_boot": tpm.uefi_secure_boot,
            "encryption_mode": tpm.encryption_mode,
            "require_secure_boot": tpm.require_secure_boot,
            "stig": ["ESXI-80-000085", "ESXI-80-000094", "ESXI-80-000238"],
        }
        failed: list[str] = []
        fixes: list[str] = []
        if tpm.tpm_supported is False or (tpm.tpm_version and not tpm.tpm_version.startswith("2")):
            failed.append(f"no TPM 2.0 (tpmSupported={tpm.tpm_supported}, version {tpm.tpm_version!r})")
            fixes.append(
                "Fit or enable a TPM 2.0 in the server firmware (UEFI mode), then reconnect the host."
            )
        if tpm.attestation_status != "accepted" and tpm.attestation_status is not None:
            failed.append(
                f"TPM attestation status {tpm.attestation_status!r} "
                f"({tpm.attestation_message or 'no message'})"
            )
            fixes.append(
                "Resolve the attestation failure reported in vCenter (Monitor > Security), e.g. clear and "
                "re-take "
                "ownership of the TPM, then reboot the host."
            )
        if tpm.uefi_secure_boot is False:
            failed.append("UEFI Secure Boot is off [ESXI-80-000094]")
            fixes.append("Enable UEFI Secure Boot in the server firmware.")
        if tpm.require_secure_boot is False:
            failed.append("Secure Boot is not enforced [ESXI-80-000085]")
            fixes.append("esxcli system settings encryption set --require-secure-boot=T")
        if tpm.encryption_mode is not None and tpm.encryption_mode.upper() != "TPM":
            failed.append(f"configuration encryption mode {tpm.encryption_mode!r}, not TPM [ESXI-80-000238]")
            fixes.append("esxcli system settings encryption set --mode=TPM")
        if failed:
            yield ctx.failed(
                subject, "measured launch not in place: " + "; ".join(failed), evidence, "\n".join(fixes)
            )
        elif tpm.attestation_status is None:
            raise CannotEvaluate(
                subject, "the TPM attestation status (summary.tpmAttestation)", host_area(host.moref, "tpm")
            )
        else:
            yield ctx.passed(
                subject, "TPM 2.0 measured launch attested by vCenter (status accepted)", evidence
            )

    yield from each_host(ctx, judge)
