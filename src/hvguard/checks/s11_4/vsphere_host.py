"""Checks for SS-009 11.4.7, 11.4.8 and 11.4.9 on vSphere: gold configuration, patch level, firewall.

11.4.7 a host profile attached and compliant; 11.4.8 the ESXi and vCenter builds at or above the dated
release list's minimum for their line (ESXI-80-000221), a stale list warns; 11.4.9 the firewall blocks by
default (ESXI-80-000214) and no ruleset is open for a stopped service (CIM, SLP, SNMP: ESXI-80-000228,
ESXI-80-000231, ESXI-80-000212).

Checks: ``vsphere.gold-config``, ``vsphere.patch-level``, ``vsphere.firewall``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from hvguard.catalog.vsphere_releases import ReleaseList, packaged_releases
from hvguard.checks.base import CannotEvaluate, CheckContext, check
from hvguard.checks.support.vsphere import each_host, facts, host_cli, need, ps, service, top_subject
from hvguard.facts import VsphereHost, VsphereProduct, host_area
from hvguard.findings import Finding

#: Firewall rulesets that exist for one service: open while it is stopped means open for nothing.
RULESET_SERVICE = {
    "sshServer": ("TSM-SSH", None),
    "CIMSLP": ("slpd", "ESXI-80-000231"),
    "CIMHttpServer": ("sfcbd-watchdog", "ESXI-80-000228"),
    "CIMHttpsServer": ("sfcbd-watchdog", "ESXI-80-000228"),
    "snmp": ("snmpd", "ESXI-80-000212"),
    "ntpClient": ("ntpd", None),
}


@check("11.4.7", id="vsphere.gold-config", reads=("vsphere.hosts[].profile",))
def gold_config(ctx: CheckContext) -> Iterator[Finding]:
    """Each host has a host profile (the gold configuration) attached and was last found compliant with it
    (``complianceCheckState``)."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        state = need(host.profile, subject, "the host profile compliance", host_area(host.moref, "profile"))
        evidence = {"profile": state.profile, "compliance": state.compliance, "checked_at": state.checked_at}
        if state.profile and state.compliance == "compliant":
            yield ctx.passed(
                subject, f"host profile {state.profile!r}: compliant (checked {state.checked_at})", evidence
            )
            return
        cli = host_cli(ctx, host)
        if not state.profile:
            message = "no host profile (gold configuration) attached"
            fix = (
                "New-VMHostProfile -Name 'gold-esxi' -ReferenceHost (Get-VMHost -Name REFERENCE)\n"
                f"Invoke-VMHostProfile -Entity ({cli}) -Profile 'gold-esxi' -AssociateOnly -Confirm:$false\n"
                f"Test-VMHostProfileCompliance -VMHost ({cli})"
            )
        else:
            message = f"host profile {state.profile!r}: compliance {state.compliance or 'unknown'}"
            fix = (
                f"Test-VMHostProfileCompliance -VMHost ({cli})  # review the differences, then with the "
                "host in "
                f"maintenance mode: Invoke-VMHostProfile -Entity ({cli}) -Profile {ps(state.profile)} "
                "-Confirm:$false"
            )
        yield ctx.failed(subject, message, evidence, fix)

    yield from each_host(ctx, judge)


def _release_list(ctx: CheckContext) -> ReleaseList:
    th = ctx.profile.thresholds
    try:
        return packaged_releases().with_overrides(th.vsphere_min_builds, th.vsphere_min_builds_as_of)
    except ValueError as exc:
        raise CannotEvaluate(
            top_subject(ctx),
            f"the profile's vSphere release list ({exc})",
            evidence={"profile": ctx.profile.source},
        ) from exc


def _judge_build(
    ctx: CheckContext, releases: ReleaseList, subject: str, product: VsphereProduct, kind: str, fix: str
) -> Finding:
    line = ".".join((product.version or "").split(".")[:2])
    build = product.build or ""
    evidence: dict[str, object] = {
        "product": product.full_name or product.name,
        "version": product.version,
        "build": build,
        "release_list_as_of": releases.as_of.isoformat(),
        "release_list_source": releases.source,
    }
    if kind == "esxi":
        evidence["stig"] = ["ESXI-80-000221"]
    ref = releases.minimum(kind, line)
    if not build.isdigit() or not line:
        return ctx.error(subject, f"the {kind} build ({product.version!r} build {build!r})", "vsphere.about")
    if ref is None:
        return ctx.manual(
            subject,
            f"{kind} {line} is not in hvguard's release list: show that build {build} carries the latest "
            "security "
            f"patches (SS-033), or add the line's minimum to the profile (vsphere_min_builds: ['{kind} "
            f"{line} BUILD']).",
            evidence,
        )
    evidence.update(minimum_build=ref.build, minimum_release=ref.name, minimum_from=ref.origin)
    if int(build) >= ref.build:
        return ctx.passed(subject, f"build {build} ≥ {ref.build} ({ref.name})", evidence)
    return ctx.failed(subject, f"build {build} is older than {ref.name} (build {ref.build})", evidence, fix)


@check("11.4.8", id="vsphere.patch-level", reads=("vsphere.product", "vsphere.hosts[].product"))
def patch_level(ctx: CheckContext) -> Iterator[Finding]:
    """vCenter's build (``content.about.build``) and each host's (``config.product.build``) are at or above
    the minimum of their release line in the dated list; a list older than
    ``vsphere_release_list_max_age_days`` at collection time warns. Vulnerability-scan evidence is
    attested."""
    vs = facts(ctx)
    top = top_subject(ctx)
    releases = _release_list(ctx)
    collected = ctx.target.collection.collected_at[:10]
    try:
        age = (date.fromisoformat(collected) - releases.as_of).days
    except ValueError:
        age = None
    limit = ctx.profile.thresholds.vsphere_release_list_max_age_days
    if age is None or age > limit:
        yield ctx.warned(
            top,
            f"the vSphere release list is dated {releases.as_of.isoformat()}"
            + (f", {age} days before this collection (limit {limit})" if age is not None else "")
            + ": newer patches may exist, so a pass below only means 'at least that list's build'",
            {
                "as_of": releases.as_of.isoformat(),
                "age_days": age,
                "max_age_days": limit,
                "source": releases.source,
            },
            "Update hvguard, or set thresholds.vsphere_min_builds (and vsphere_min_builds_as_of) in the "
            "profile from "
            "Broadcom KB 316595 (ESXi) / KB 326316 (vCenter Server).",
        )
    if top != "host":
        product = need(vs.product, top, "vCenter's product (content.about)", "vsphere.about")
        yield _judge_build(
            ctx,
            releases,
            top,
            product,
            "vcenter",
            "Patch the vCenter Server Appliance: VAMI (https://VCENTER:5480) > Update > Stage and Install, "
            "or in the "
            "appliance shell: software-packages install --url --acceptEulas",
        )

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        product = need(host.product, subject, "the host's product (config.product)", host_area(host.moref))
        yield _judge_build(
            ctx,
            releases,
            subject,
            product,
            "esxi",
            f"Remediate with vSphere Lifecycle Manager (cluster image), or: {host_cli(ctx, host)} | "
            "Set-VMHost -State Maintenance; then on the host: esxcli software profile update -d DEPOT.zip "
            "-p PROFILE; reboot",
        )

    yield from each_host(ctx, judge)
    yield ctx.manual(
        top, "Show the latest vulnerability scan report of the hosts and vCenter (date, scope, findings)."
    )


@check("11.4.9", id="vsphere.firewall", reads=("vsphere.hosts[].firewall", "vsphere.hosts[].services"))
def firewall(ctx: CheckContext) -> Iterator[Finding]:
    """Each host's firewall drops traffic by default (``defaultPolicy.incomingBlocked`` and
    ``outgoingBlocked``, ESXI-80-000214) and has no ruleset enabled for a service that is not running."""

    def judge(host: VsphereHost, subject: str) -> Iterator[Finding]:
        fw = need(host.firewall, subject, "the host's firewall", host_area(host.moref, "firewall"))
        failed: list[str] = []
        fixes: list[str] = []
        stigs = {"ESXI-80-000214"}
        if fw.incoming_blocked is None or fw.outgoing_blocked is None:
            raise CannotEvaluate(subject, "the firewall default policy", host_area(host.moref, "firewall"))
        if not (fw.incoming_blocked and fw.outgoing_blocked):
            failed.append(
                f"default policy incomingBlocked={fw.incoming_blocked} outgoingBlocked={fw.outgoing_blocked}"
            )
            fixes.append(
                f"{host_cli(ctx, host)} | Get-VMHostFirewallDefaultPolicy | Set-VMHostFirewallDefaultPolicy "
                "-AllowIncoming $false -AllowOutgoing $false -Confirm:$false"
            )
        needless = []
        for rs in fw.rulesets:
            owner = RULESET_SERVICE.get(rs.key)
            if not rs.enabled or owner is None or rs.required:
                continue
            state = service(host, subject, owner[0])
            if state is not None and not state[0]:
                needless.append(rs.key)
                if owner[1]:
                    stigs.add(owner[1])
                fixes.append(
                    f"{host_cli(ctx, host)} | Get-VMHostFirewallException | Where-Object "
                    f"{{$_.ExtensionData.Key -eq "
                    f"{ps(rs.key)}}} | Set-VMHostFirewallException -Enabled $false -Confirm:$false"
                )
        if needless:
            failed.append("rulesets open for stopped services: " + ", ".join(needless))
        evidence = {
            "incoming_blocked": fw.incoming_blocked,
            "outgoing_blocked": fw.outgoing_blocked,
            "enabled_rulesets": [r.key for r in fw.rulesets if r.enabled],
            "stig": sorted(stigs),
        }
        if failed:
            yield ctx.failed(
                subject,
                "firewall allows more than the enabled services need: " + "; ".join(failed),
                evidence,
                "\n".join(fixes),
            )
        else:
            yield ctx.passed(
                subject,
                "firewall blocks by default; every enabled ruleset serves a running service",
                evidence,
            )

    yield from each_host(ctx, judge)
