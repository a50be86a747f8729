"""A resolved Ansible inventory, whichever reader produced it: its groups (direct hosts and children) and
each host's variables already merged the way Ansible merges them.

Both readers (``ansible-inventory --list`` in :mod:`hvguard.collect.inventory_ansible` and hvguard's own
YAML reader in :mod:`hvguard.collect.inventory_yaml`) fill this one shape, so host groups, ``--limit``
and the conversion to targets are computed once, the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Ansible's implicit groups: every host is in ``all``, hosts in no other group are in ``ungrouped``.
#: Neither is reported as a group of a target.
IMPLICIT_GROUPS = frozenset({"all", "ungrouped"})


class InventoryError(ValueError):
    """An inventory (or a ``--limit`` pattern) hvguard cannot use: one line, exit 2."""


@dataclass
class Inventory:
    """Groups and hosts of one or more inventory files, merged.

    ``children[g]`` and ``hosts[g]`` are group ``g``'s child groups and the hosts listed directly in it;
    ``hostvars[h]`` the variables of host ``h`` after Ansible's precedence (``all`` < groups by depth,
    priority and name < the host's own).
    """

    children: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def group_names(self) -> set[str]:
        """Every group named anywhere (implicit ones included)."""
        names = set(self.children) | set(self.hosts)
        for kids in self.children.values():
            names.update(kids)
        return names

    def parents(self) -> dict[str, set[str]]:
        """Group → the groups that list it as a child."""
        out: dict[str, set[str]] = {}
        for parent, kids in self.children.items():
            for kid in kids:
                out.setdefault(kid, set()).add(parent)
        return out

    def host_groups(self) -> dict[str, tuple[str, ...]]:
        """Host → its groups, sorted: those listing it and their ancestors, without all/ungrouped."""
        parents = self.parents()
        out: dict[str, set[str]] = {name: set() for name in self.hostvars}
        for group, members in self.hosts.items():
            ancestors = _ancestors(group, parents)
            for host in members:
                out.setdefault(host, set()).update(ancestors)
        return {host: tuple(sorted(g - IMPLICIT_GROUPS)) for host, g in out.items()}

    def members(self, group: str) -> set[str]:
        """The hosts of ``group`` and of all its descendants (``all``: every host)."""
        if group == "all":
            return set(self.hostvars)
        seen: set[str] = set()
        stack = [group]
        found: set[str] = set()
        while stack:
            g = stack.pop()
            if g in seen:
                continue
            seen.add(g)
            found.update(self.hosts.get(g, ()))
            stack.extend(self.children.get(g, ()))
        return found


def _ancestors(group: str, parents: dict[str, set[str]]) -> set[str]:
    """``group`` and every group above it (iteratively: a cycle cannot loop)."""
    seen: set[str] = set()
    stack = [group]
    while stack:
        g = stack.pop()
        if g in seen:
            continue
        seen.add(g)
        stack.extend(parents.get(g, ()))
    return seen
