"""Permissions and roles (``AuthorizationManager``): what hvguard's own propagation resolves for 11.2.2,
11.2.3, 11.2.5 and 11.4.4. Read-only: ``RetrieveAllPermissions`` and the ``roleList`` property."""

from __future__ import annotations

from hvguard.collect.vsphere.api import ApiCall, guarded_call
from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.inventory import Tree
from hvguard.collect.vsphere.plain import moref
from hvguard.facts import Permission, Problem, Role

CALLS = (
    ApiCall(
        "RetrieveAllPermissions", "AuthorizationManager", why="every permission (entity, principal, role)"
    ),
    ApiCall("RetrieveProperties", "AuthorizationManager", ("roleList",), "roles and their privileges"),
)


def read_permissions(conn: Connection, tree: Tree, problems: list[Problem]) -> list[Permission] | None:
    """Every permission; None (and a problem under ``vsphere.permissions``) when not read."""
    manager = conn.content.authorizationManager
    found, _ = guarded_call(
        problems,
        "vsphere.permissions",
        conn.target.text,
        "RetrieveAllPermissions",
        manager.RetrieveAllPermissions,
    )
    if found is None:
        return None
    out = []
    for p in found:
        if p.entity is None:  # cannot be placed in the tree, so cannot be propagated: say so
            problems.append(
                Problem(
                    area="vsphere.permissions",
                    source=conn.target.text,
                    message=f"a permission of {p.principal} (role {p.roleId}) names no entity",
                )
            )
            continue
        entity = moref(p.entity)
        out.append(
            Permission(
                entity=entity,
                principal=str(p.principal),
                group=bool(p.group),
                role_id=int(p.roleId),
                propagate=bool(p.propagate),
                entity_name=tree.name_of(entity),
                entity_type=tree.types.get(entity) or str(p.entity._wsdlName),
            )
        )
    return out


def read_roles(conn: Connection, problems: list[Problem]) -> list[Role] | None:
    """Every role with its privileges; None (and a problem under ``vsphere.roles``) when not read."""
    manager = conn.content.authorizationManager
    found, _ = guarded_call(problems, "vsphere.roles", conn.target.text, "roleList", lambda: manager.roleList)
    if found is None:
        return None
    return [
        Role(
            id=int(r.roleId),
            name=str(r.name),
            system=bool(r.system),
            privileges=sorted(str(p) for p in r.privilege or ()),
        )
        for r in found
    ]
