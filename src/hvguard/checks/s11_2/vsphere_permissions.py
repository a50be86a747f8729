"""Checks for SS-009 11.2.2, 11.2.3 and 11.2.5 on vSphere: permissions and roles.

11.2.2 granular assignment (roles on folders, resource pools or single VMs, not only the root); 11.2.3 a
VM denied inside a group's grant (``NoAccess`` on the VM, resolved by hvguard's own propagation); 11.2.5
least privilege (no one but the built-in administrators holds Admin on the whole inventory).

Checks: ``vsphere.granular-permissions``, ``vsphere.deny-within-group``, ``vsphere.least-privilege``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.subjects import capped
from hvguard.checks.support.vsphere import facts, need, ps, top_subject, vm_subjects
from hvguard.checks.support.vsphere_permissions import ADMIN, NO_ACCESS, PermissionIndex
from hvguard.facts import Permission, VsphereFacts
from hvguard.findings import Finding

#: Principals that hold Admin on the root by design: vCenter's SSO administrators, ESXi's root and the
#: vCenter agent account on a managed host.
BUILTIN_ADMINS = frozenset(
    {"VSPHERE.LOCAL\\Administrator", "VSPHERE.LOCAL\\Administrators", "root", "vpxuser", "dcui"}
)


def _index(ctx: CheckContext, vs: VsphereFacts) -> PermissionIndex:
    top = top_subject(ctx)
    inventory = need(vs.inventory, top, "the inventory tree", "vsphere.inventory")
    permissions = need(vs.permissions, top, "the permissions (RetrieveAllPermissions)", "vsphere.permissions")
    roles = need(vs.roles, top, "the roles (AuthorizationManager.roleList)", "vsphere.roles")
    return PermissionIndex(inventory, permissions, roles)


def _grant_row(index: PermissionIndex, p: Permission) -> dict[str, object]:
    return {
        "entity": p.entity_name or index.name(p.entity),
        "principal": p.principal,
        "group": p.group,
        "role": index.role_name(p.role_id),
        "propagate": p.propagate,
    }


@check(
    "11.2.2",
    id="vsphere.granular-permissions",
    reads=("vsphere.permissions", "vsphere.roles", "vsphere.inventory"),
)
def granular_permissions(ctx: CheckContext) -> Iterator[Finding]:
    """VM-administering roles are assigned below the inventory root — on datacenters, folders, resource
    pools or single VMs — so a permission can target one VM or a group of VMs (VCSA-80-000095). Fails when
    every VM-administering grant sits on the root only."""
    vs = facts(ctx)
    top = top_subject(ctx)
    index = _index(ctx, vs)
    perms = vs.permissions or []
    vm_admin = [p for p in perms if p.role_id != NO_ACCESS and index.grants_vm_admin(p.role_id)]
    scoped = [p for p in vm_admin if not index.is_root(p.entity)]
    evidence = {
        "vm_admin_grants": capped([_grant_row(index, p) for p in vm_admin]),
        "scoped_grants": len(scoped),
        "stig": ["VCSA-80-000095"],
    }
    if scoped:
        yield ctx.passed(
            top,
            f"{len(scoped)} VM-administering grant(s) scoped below the root (e.g. "
            f"{index.role_name(scoped[0].role_id)} for {scoped[0].principal} on "
            f"{index.name(scoped[0].entity)})",
            evidence,
        )
        return
    yield ctx.failed(
        top,
        "VM administration is granted only on the inventory root: no permission targets a folder, resource "
        "pool or single VM",
        evidence,
        "Create a role with only the VM privileges the team needs and grant it on their VM folder, e.g.:\n"
        "New-VIRole -Name 'VM Operator' -Privilege (Get-VIPrivilege -Id VirtualMachine.Interact.PowerOn,"
        "VirtualMachine.Interact.PowerOff)\n"
        "New-VIPermission -Entity (Get-Folder -Name 'FOLDER' -Type VM) -Principal 'DOMAIN\\group' "
        "-Role 'VM Operator' -Propagate:$true",
    )


@check(
    "11.2.3",
    id="vsphere.deny-within-group",
    reads=("vsphere.permissions", "vsphere.roles", "vsphere.inventory"),
)
def deny_within_group(ctx: CheckContext) -> Iterator[Finding]:
    """A VM can be denied inside a group's grant: a ``NoAccess`` permission for a group on a VM that the
    group's propagating grant on a folder or resource pool would otherwise cover. hvguard resolves each
    such deny with vSphere's inheritance rules: effective → ``pass`` per denied VM; overridden (another
    permission of the group on the same VM grants access) → ``fail``. No deny at all → ``manual`` (vSphere
    offers it; attest that no VM of a group needs one)."""
    vs = facts(ctx)
    top = top_subject(ctx)
    index = _index(ctx, vs)
    subjects = vm_subjects(vs)
    vm_ids = {vm.moref for vm in vs.vms}
    denies = [p for p in vs.permissions or [] if p.role_id == NO_ACCESS and p.entity in vm_ids]
    found = False
    for deny in denies:
        # The group's grant the deny carves out: the nearest propagating non-NoAccess one above the VM.
        covering = [
            p
            for p in vs.permissions or []
            if p.principal == deny.principal
            and p.propagate
            and p.role_id != NO_ACCESS
            and deny.entity in index.descendants(p.entity)
        ]
        if not covering:
            continue
        found = True
        subject = subjects[deny.entity]
        grant = index.resolve(deny.principal, deny.entity)
        evidence = {
            "principal": deny.principal,
            "group": deny.group,
            "covering_grants": [_grant_row(index, p) for p in covering],
            "effective": [_grant_row(index, p) for p in grant.permissions],
        }
        if grant.denied:
            yield ctx.passed(
                subject,
                f"{deny.principal} is denied this VM (NoAccess) despite its "
                f"{index.role_name(covering[0].role_id)} grant on {index.name(covering[0].entity)}",
                evidence,
            )
        else:
            yield ctx.failed(
                subject,
                f"the NoAccess permission of {deny.principal} on this VM is overridden by another "
                "permission on "
                "the same VM",
                evidence,
                f"Get-VIPermission -Entity (Get-VM -Name {ps(index.name(deny.entity))}) -Principal "
                f"{ps(deny.principal)} "
                "| Where-Object {$_.Role -ne 'NoAccess'} | Remove-VIPermission -Confirm:$false",
            )
    if not found:
        groups = [
            p for p in vs.permissions or [] if p.group and p.propagate and index.grants_vm_admin(p.role_id)
        ]
        yield ctx.manual(
            top,
            "vSphere can deny a VM inside a group's grant (the NoAccess role on the VM), but no VM is denied "
            "here. Attest that no VM in a group's scope needs to be withheld, or add the deny: "
            "New-VIPermission -Entity (Get-VM -Name 'VM') -Principal 'DOMAIN\\group' -Role 'NoAccess'",
            {"group_grants": capped([_grant_row(index, p) for p in groups]), "noaccess_on_vms": len(denies)},
        )


@check(
    "11.2.5",
    id="vsphere.least-privilege",
    reads=("vsphere.permissions", "vsphere.roles", "vsphere.inventory"),
)
def least_privilege(ctx: CheckContext) -> Iterator[Finding]:
    """Least privilege: only the built-in administrators (SSO Administrator(s), ESXi root) hold Admin on the
    inventory root; anyone else with it fails. Otherwise the grants are listed for the need-to-know review
    VCSA-80-000095 asks for (``manual``)."""
    vs = facts(ctx)
    top = top_subject(ctx)
    index = _index(ctx, vs)
    perms = vs.permissions or []
    approved = set(ctx.profile.thresholds.approved_host_accounts) | BUILTIN_ADMINS
    broad = [
        p for p in perms if p.role_id == ADMIN and index.is_root(p.entity) and p.principal not in approved
    ]
    rows = capped([_grant_row(index, p) for p in perms])
    evidence = {"grants": rows, "grant_count": len(perms), "stig": ["VCSA-80-000095"]}
    if broad:
        yield ctx.failed(
            top,
            "full administration of the whole inventory granted to "
            + ", ".join(sorted({p.principal for p in broad})),
            {**evidence, "admin_on_root": [_grant_row(index, p) for p in broad]},
            "\n".join(
                f"Get-VIPermission -Entity (Get-Folder -NoRecursion) -Principal {ps(p.principal)} | "
                "Remove-VIPermission -Confirm:$false  # then grant a narrower role where it is needed"
                for p in broad
            ),
        )
        return
    yield ctx.manual(
        top,
        "Only built-in administrators hold Admin on the root. Attest the need-to-know review of the "
        "remaining "
        f"{len(perms)} grant(s) and {len(index.roles)} role(s) (Get-VIPermission; Get-VIRole).",
        evidence,
    )
