"""Checks for SS-009 11.3.5 and 11.3.6.

11.3.5 Introspection-based guest monitoring and autonomous signature updates
11.3.6 Monitoring solutions compliant with SS-025

Checks: ``introspection_monitoring``, ``monitoring_ss025``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.findings import Finding


@check("11.3.5", id="kvm.introspection-monitoring", reads=("hypervisor.vms[].interfaces[].filterref",))
def introspection_monitoring(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: upstream KVM has no guest introspection (VMI) interface, and the monitoring
    product, its coverage and its signature updates are not host facts. The count of VM interfaces with
    a libvirt nwfilter (traffic policy enforcement) is given as supporting evidence."""
    evidence: dict[str, object] = {}
    hv = ctx.hypervisor
    if hv is not None:
        nics = filtered = 0
        filters: set[str] = set()
        for vm in hv.vms:
            for nic in vm.interfaces:
                nics += 1
                if nic.filterref:
                    filtered += 1
                    filters.add(nic.filterref)
        evidence = {"vm_interfaces": nics, "with_nwfilter": filtered, "nwfilters": sorted(filters)[:10]}
    yield ctx.manual(
        HOST,
        "Provide: (1) the guest-monitoring mechanism — introspection product (upstream KVM has no VMI; "
        "e.g. a host-based IDS/IPS covering the VM bridges and taps), its version and which VMs and "
        "networks it covers; (2) the policy enforcement of VM traffic (e.g. libvirt nwfilter such as "
        "clean-traffic, host firewall); (3) for every anti-malware tool on the host (AV scanner, IDPS, "
        "firewall feeds) the automatic signature-update job and its last successful update time.",
        evidence,
    )


@check("11.3.6", id="kvm.monitoring-ss025", reads=())
def monitoring_ss025(ctx: CheckContext) -> Iterator[Finding]:
    """Always ``manual``: compliance with SS-025 can only be shown by an assessment (SS-025 was not
    supplied, so no technical check is possible)."""
    yield ctx.manual(
        HOST,
        "Provide the assessment showing the VM security-monitoring and policy-enforcement solution(s) named "
        "for 11.3.5 comply with SS-025 Virtualisation Security Standard (assessor, date, result, open "
        "actions). SS-025 was not supplied to hvguard, so it cannot check this.",
    )
