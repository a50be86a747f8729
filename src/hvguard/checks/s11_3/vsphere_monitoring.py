"""Checks for SS-009 11.3.5–11.3.9 on vSphere: monitoring, change notification and the image library.

11.3.5 introspection-based monitoring (NSX Guest Introspection: not visible through the vSphere API) and
11.3.6 SS-025 compliance are attestations; 11.3.7 an alarm on VM reconfiguration with a notification
action, and event/task retention ≥ 30 days (VCSA-80-000293); 11.3.8 library items scanned against SS-025
(attested, with the inventory); 11.3.9 libraries verify OVF signatures (VCSA-80-000296).

Checks: ``vsphere.introspection``, ``vsphere.monitoring-ss025``, ``vsphere.change-notification``,
``vsphere.library-images``, ``vsphere.library-signing``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.vsphere import as_int, facts, is_esxi, need, top_subject
from hvguard.findings import Finding

RECONFIG_EVENTS = ("VmReconfiguredEvent",)
#: vCenter advanced settings of event and task retention (days) and the minimum (VCSA-80-000293).
RETENTION_KEYS = ("event.maxAge", "task.maxAge")
MIN_RETENTION_DAYS = 30


@check("11.3.5", id="vsphere.introspection", reads=("vsphere.hosts[]",))
def introspection(ctx: CheckContext) -> Iterator[Finding]:
    """Guest introspection (NSX Guest Introspection / a partner's agentless AV through ESX Agent Manager)
    and signature updates are not visible through the vSphere API: ``manual``."""
    vs = facts(ctx)
    yield ctx.manual(
        top_subject(ctx),
        "Show the introspection-based monitoring of the guests (NSX Guest Introspection or a partner "
        "agentless "
        "anti-malware/IDPS service deployed through ESX Agent Manager) covering every host, and its "
        "autonomous "
        "signature updates (update schedule and last update time).",
        {"hosts": [h.name for h in vs.hosts]},
    )


@check("11.3.6", id="vsphere.monitoring-ss025", reads=())
def monitoring_ss025(ctx: CheckContext) -> Iterator[Finding]:
    """Compliance of the monitoring solution with SS-025 is an attestation (``manual``)."""
    facts(ctx)
    yield ctx.manual(
        top_subject(ctx),
        "Show the SS-025 compliance record of the security monitoring and enforcement solution used for "
        "these VMs.",
    )


@check("11.3.7", id="vsphere.change-notification", reads=("vsphere.alarms", "vsphere.vcenter_options"))
def change_notification(ctx: CheckContext) -> Iterator[Finding]:
    """vCenter notifies administrators of VM configuration changes: an enabled alarm triggered by
    ``VmReconfiguredEvent`` with an e-mail, SNMP or script action; and events and tasks are kept at least
    30 days (``event.maxAge``/``task.maxAge``, VCSA-80-000293). On an ESXi host without such an alarm the
    finding is ``manual``: run ``hvguard watch`` against it, or manage it from vCenter."""
    vs = facts(ctx)
    top = top_subject(ctx)
    alarms = need(vs.alarms, top, "the alarm definitions", "vsphere.alarms")
    notifying = [
        a
        for a in alarms
        if a.enabled is not False and a.actions and any(e.endswith(RECONFIG_EVENTS) for e in a.event_types)
    ]
    evidence: dict[str, object] = {
        "reconfiguration_alarms": [
            {"name": a.name, "actions": a.actions, "entity": a.entity} for a in notifying
        ],
        "stig": ["VCSA-80-000293"],
    }
    failed: list[str] = []
    fixes: list[str] = []
    if not is_esxi(ctx):
        opts = need(vs.vcenter_options, top, "vCenter's advanced settings", "vsphere.vcenter_options")
        for key in RETENTION_KEYS:
            value = opts.values.get(key)
            days = as_int(value) if value is not None else None
            evidence[key] = value
            if days is None:
                failed.append(f"{key} not readable ({opts.unreadable.get(key, 'not returned')})")
            elif days < MIN_RETENTION_DAYS:
                failed.append(f"{key} = {days} days, wanted ≥ {MIN_RETENTION_DAYS}")
            if days is None or days < MIN_RETENTION_DAYS:
                fixes.append(
                    f"Get-AdvancedSetting -Entity $global:DefaultVIServer -Name '{key}' | "
                    f"Set-AdvancedSetting -Value {MIN_RETENTION_DAYS} -Confirm:$false"
                )
    alarm_fix = (
        "$spec = New-Object VMware.Vim.AlarmSpec; $spec.Name = 'VM reconfigured'; $spec.Enabled = $true; "
        "$exp = New-Object VMware.Vim.EventAlarmExpression; $exp.EventType = 'VmReconfiguredEvent'; "
        "$exp.ObjectType = 'VirtualMachine'; $exp.Status = 'yellow'; $spec.Expression = New-Object "
        "VMware.Vim.OrAlarmExpression; $spec.Expression.Expression = @($exp); "
        "(Get-View AlarmManager).CreateAlarm((Get-Folder -NoRecursion).ExtensionData.MoRef, $spec); "
        "then: Get-AlarmDefinition -Name 'VM reconfigured' | New-AlarmAction -Email -To "
        "'hv-admins@example.org'"
    )
    if not notifying and is_esxi(ctx) and not failed:
        yield ctx.manual(
            top,
            "No alarm notifies VM reconfiguration on this ESXi host. Show the notification path: manage the "
            "host "
            "from vCenter with a VmReconfiguredEvent alarm, or run `hvguard watch` against it with a "
            "notification channel.",
            evidence,
        )
        return
    if not notifying:
        failed.insert(0, "no enabled alarm with a notification action triggers on VmReconfiguredEvent")
        fixes.insert(0, alarm_fix)
    if failed:
        yield ctx.failed(
            top,
            "VM configuration changes are not logged and notified: " + "; ".join(failed),
            evidence,
            "\n".join(fixes),
        )
    else:
        yield ctx.passed(
            top,
            f"alarm {notifying[0].name!r} notifies VM reconfiguration ({', '.join(notifying[0].actions)})",
            evidence,
        )


@check("11.3.8", id="vsphere.library-images", reads=("vsphere.content_libraries",))
def library_images(ctx: CheckContext) -> Iterator[Finding]:
    """Every image kept in a content library must meet SS-025: hvguard lists the items; their scan
    records are attested (``manual``). ESXi: images on datastores, attested likewise."""
    vs = facts(ctx)
    top = top_subject(ctx)
    if is_esxi(ctx):
        yield ctx.manual(
            top,
            "Show SS-025 scan records for the VM images and templates kept on this host's datastores.",
            {"templates": [vm.name for vm in vs.vms if vm.template]},
        )
        return
    libraries = need(vs.content_libraries, top, "the content libraries", "vsphere.content_libraries")
    items = {lib.name: [i.name for i in lib.items] if lib.items is not None else None for lib in libraries}
    unlisted = [name for name, listed in items.items() if listed is None]
    if unlisted:
        yield ctx.error(
            top, f"the items of content librar(ies) {', '.join(unlisted)}", "vsphere.content_libraries"
        )
    count = sum(len(v) for v in items.values() if v)
    yield ctx.manual(
        top,
        f"Show an SS-025 compliance scan record for each of the {count} content-library item(s) and the "
        "templates; "
        "non-compliant images must be removed.",
        {"items": items, "templates": [vm.name for vm in vs.vms if vm.template]},
    )


@check("11.3.9", id="vsphere.library-signing", reads=("vsphere.content_libraries",))
def library_signing(ctx: CheckContext) -> Iterator[Finding]:
    """Each local content library applies the OVF security policy (``security_policy_id`` set,
    VCSA-80-000296) so only signed OVF templates with a trusted certificate are kept, and no item fails
    its verification (``security_compliance`` false). ESXi has no library: ``manual``."""
    vs = facts(ctx)
    top = top_subject(ctx)
    if is_esxi(ctx):
        yield ctx.manual(
            top,
            "Show the signature (and its key strength, SS-002/SS-007) of every VM image kept for this host.",
        )
        return
    libraries = need(vs.content_libraries, top, "the content libraries", "vsphere.content_libraries")
    if not libraries:
        yield ctx.manual(
            top, "No content library: show the signatures of VM images kept elsewhere.", {"libraries": 0}
        )
        return
    for lib in libraries:
        bad = [i.name for i in lib.items or [] if i.security_compliance is False]
        evidence = {
            "library": lib.name,
            "type": lib.type,
            "security_policy_id": lib.security_policy_id,
            "non_compliant_items": bad,
            "stig": ["VCSA-80-000296"],
        }
        if lib.type == "LOCAL" and not lib.security_policy_id:
            yield ctx.failed(
                top,
                f"content library {lib.name!r} does not enforce the OVF security policy: unsigned images "
                "are accepted",
                evidence,
                "vSphere Client: Content Libraries > LIBRARY > Edit Settings > Apply security policy (OVF "
                "default "
                'policy); or vAPI PATCH /api/content/local-library/{id} {"security_policy_id": POLICY_ID}',
            )
        elif bad:
            yield ctx.failed(
                top,
                f"library {lib.name!r}: item(s) failing signature verification: {', '.join(bad)}",
                evidence,
                "Delete or re-sign the items: vSphere Client > Content Libraries > LIBRARY > item > Delete",
            )
        else:
            yield ctx.passed(top, f"library {lib.name!r} verifies OVF signatures", evidence)
