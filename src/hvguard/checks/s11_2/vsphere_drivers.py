"""Checks for SS-009 11.2.1 and 11.2.6 on vSphere.

11.2.1 boot option disallowing non-certified drivers (VIB acceptance level, ``execInstalledOnly``) and a
way to bypass faulty drivers; 11.2.6 drivers in user mode — ESXi drivers are VMkernel modules, so that
part is an attestation.

Checks: ``vsphere.acceptance-level``, ``vsphere.exec-installed-only``, ``vsphere.driver-bypass``,
``vsphere.user-mode-drivers``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import (
    OptionRule,
    each_host,
    facts,
    need,
    ps,
    rules_finding,
    top_subject,
    truthy,
)
from hvguard.facts import VsphereHost, host_area
from hvguard.findings import Finding

#: Acceptance levels whose VIBs are signed by VMware or a VMware partner (``community`` is unsigned).
SIGNED_LEVELS = ("vmware_certified", "vmware_accepted", "partner")

EXEC_INSTALLED_ONLY = OptionRule("VMkernel.Boot.execInstalledOnly", truthy, "true", True, "ESXI-80-000244")


@check("11.2.1", id="vsphere.acceptance-level", reads=("vsphere.hosts[].acceptance_level",))
def acceptance_level(ctx: CheckContext) -> Iterator[Finding]:
    """Each host's image acceptance level (``HostImageConfigGetAcceptance``) admits only signed VIBs:
    VMwareCertified, VMwareAccepted or PartnerSupported; CommunitySupported fails (ESXI-80-000133)."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        level = need(
            host.acceptance_level,
            subject,
            "the host's VIB acceptance level",
            host_area(host.moref, "acceptance_level"),
        )
        evidence = {"acceptance_level": level, "stig": ["ESXI-80-000133"]}
        if level in SIGNED_LEVELS:
            yield ctx.passed(
                subject, f"acceptance level {level}: only signed drivers (VIBs) install", evidence
            )
        else:
            yield ctx.failed(
                subject,
                f"acceptance level {level!r} admits unsigned, non-certified drivers (VIBs)",
                evidence,
                f"(Get-EsxCli -VMHost {ps(host.name)} "
                f"-V2).software.acceptance.set.Invoke(@{{level='PartnerSupported'}})\n"
                "or on the host: esxcli software acceptance set --level=PartnerSupported",
            )

    yield from each_host(ctx, judge)


@check("11.2.1", id="vsphere.exec-installed-only", reads=("vsphere.hosts[].options",))
def exec_installed_only(ctx: CheckContext) -> Iterator[Finding]:
    """Each host runs only executables from installed VIBs: ``VMkernel.Boot.execInstalledOnly`` = true
    (ESXI-80-000244), the boot option that keeps an uncertified binary from running."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        yield rules_finding(ctx, host, subject, [EXEC_INSTALLED_ONLY], "execute only installed VIBs")

    yield from each_host(ctx, judge)


@check("11.2.1", id="vsphere.driver-bypass", reads=("vsphere.hosts[]",))
def driver_bypass(ctx: CheckContext) -> Iterator[Finding]:
    """ESXi lets an administrator disable a faulty driver module (``esxcli system module set
    --enabled=false``) and each VM's devices are emulated in its own VMX process; the runbook and its use
    are attested (``manual``)."""
    vs = facts(ctx)
    yield ctx.manual(
        top_subject(ctx),
        "Show the runbook for bypassing a faulty driver: esxcli system module set --enabled=false "
        "--module=MODULE on the host (then reboot), or remove the VIB (esxcli software vib remove -n NAME). "
        "Each VM's device emulation runs in its own VMX user-world process, confined to that VM.",
        {
            "hosts": [h.name for h in vs.hosts],
            "acceptance_levels": {h.name: h.acceptance_level for h in vs.hosts},
        },
    )


@check("11.2.6", id="vsphere.user-mode-drivers", reads=("vsphere.hosts[].acceptance_level",))
def user_mode_drivers(ctx: CheckContext) -> Iterator[Finding]:
    """ESXi device drivers are VMkernel modules (kernel mode), so 11.2.6 cannot be met by configuration:
    ``manual``, with the compensating controls (signed VIBs only, 11.2.1) as evidence."""
    vs = facts(ctx)
    levels = {h.name: h.acceptance_level for h in vs.hosts}
    yield ctx.manual(
        top_subject(ctx),
        "ESXi physical device drivers run in the VMkernel, not in user mode; virtual devices are emulated "
        "in each VM's user-world VMX process. Attest the accepted risk and the compensating controls: only "
        "signed VIBs (acceptance level, 11.2.1) and VMkernel.Boot.execInstalledOnly.",
        {
            "acceptance_levels": levels,
            "inventory_command": (
                "Get-VMHost | ForEach-Object { (Get-EsxCli -VMHost $_ -V2).system.module.list.Invoke() }"
            ),
        },
    )
