"""hvguard's own resolution of vSphere permissions (11.2.2, 11.2.3, 11.2.5, 11.4.4, 11.2.8).

vSphere's rules, as documented for vCenter ("Hierarchical Inheritance of Permissions", "Multiple
Permission Settings"): a permission on an object applies to it and, when it propagates, to its
descendants; a permission set on an object overrides one inherited from a parent for the same principal;
a virtual machine inherits from its VM folder and from its host/cluster/resource pool at the same time
(the union of what both paths grant). hvguard applies these rules to the collected permissions, so a
``NoAccess`` deny under a group grant is judged without asking vCenter (the simulator's
``HasUserPrivilegeOnEntities`` always grants, and asking is I/O a check may not do).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hvguard.facts import InventoryEntity, Permission, Role

NO_ACCESS = -5
ADMIN = -1
#: Privilege prefixes that administer VMs (11.2.2/11.2.3 look at grants of these).
VM_ADMIN_PREFIXES = ("VirtualMachine.",)


@dataclass(frozen=True)
class Grant:
    """What resolution found for one principal on one entity: the permissions that apply (nearest on
    each inheritance path) and whether the principal is denied (a NoAccess on the entity itself, or the
    only thing every path grants)."""

    permissions: tuple[Permission, ...]
    denied: bool


class PermissionIndex:
    """The permissions and inventory of one target, indexed for resolution."""

    def __init__(
        self, inventory: Iterable[InventoryEntity], permissions: Iterable[Permission], roles: Iterable[Role]
    ):
        self.entities = {e.moref: e for e in inventory}
        self.by_entity: dict[str, list[Permission]] = {}
        for p in permissions:
            self.by_entity.setdefault(p.entity, []).append(p)
        self.roles = {r.id: r for r in roles}

    def role_name(self, role_id: int) -> str:
        """The role's name (``role 123`` when the role list lacks it)."""
        role = self.roles.get(role_id)
        return role.name if role is not None else f"role {role_id}"

    def privileges(self, role_id: int) -> frozenset[str]:
        """The role's privileges (Admin holds all: ``*``)."""
        if role_id == ADMIN:
            return frozenset({"*"})
        role = self.roles.get(role_id)
        return frozenset(role.privileges) if role is not None else frozenset()

    def grants_vm_admin(self, role_id: int) -> bool:
        """True when the role administers VMs (Admin, or any ``VirtualMachine.*`` privilege beyond read)."""
        privs = self.privileges(role_id)
        return "*" in privs or any(p.startswith(VM_ADMIN_PREFIXES) for p in privs)

    def is_root(self, moref: str) -> bool:
        """True for the root of the inventory (an entity with no parent)."""
        entity = self.entities.get(moref)
        return entity is not None and not entity.parents

    def name(self, moref: str) -> str:
        """The entity's name, or its moref when the inventory lacks it."""
        entity = self.entities.get(moref)
        return entity.name if entity is not None else moref

    def resolve(self, principal: str, moref: str) -> Grant:
        """The permissions of ``principal`` (a user or group, as named in permissions) effective on
        ``moref``: the one set on it, else on each inheritance path the nearest propagating one."""
        own = [p for p in self.by_entity.get(moref, []) if p.principal == principal]
        if own:
            return Grant(tuple(own), all(p.role_id == NO_ACCESS for p in own))
        found: list[Permission] = []
        entity = self.entities.get(moref)
        for parent in entity.parents if entity is not None else []:
            nearest = self._nearest(principal, parent, set())
            if nearest is not None:
                found.append(nearest)
        return Grant(tuple(found), bool(found) and all(p.role_id == NO_ACCESS for p in found))

    def _nearest(self, principal: str, moref: str, seen: set[str]) -> Permission | None:
        if moref in seen:
            return None  # a cycle in a hostile inventory: stop
        seen.add(moref)
        mine = [p for p in self.by_entity.get(moref, []) if p.principal == principal and p.propagate]
        if mine:
            return mine[0]
        entity = self.entities.get(moref)
        for parent in entity.parents if entity is not None else []:
            hit = self._nearest(principal, parent, seen)
            if hit is not None:
                return hit
        return None

    def descendants(self, moref: str) -> list[str]:
        """Every entity below ``moref`` (through any parent link)."""
        children: dict[str, list[str]] = {}
        for e in self.entities.values():
            for parent in e.parents:
                children.setdefault(parent, []).append(e.moref)
        out: list[str] = []
        stack = [moref]
        seen = {moref}
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in seen:
                    seen.add(child)
                    out.append(child)
                    stack.append(child)
        return out
