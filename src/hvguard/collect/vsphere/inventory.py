"""The inventory tree: every managed entity's name, type and parent, for names, paths and hvguard's own
permission propagation (11.2.2, 11.2.3, 11.2.5, 11.4.4).

One PropertyCollector read of ``name`` and ``parent`` over every ``ManagedEntity``. A VM's second
permission parent (its resource pool) is added by the VM pass (:mod:`hvguard.collect.vsphere.vms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hvguard.collect.vsphere.api import ApiCall, guarded_call
from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.plain import moref
from hvguard.collect.vsphere.props import retrieve
from hvguard.facts import InventoryEntity, Problem

AREA = "vsphere.inventory"
PATHS = ("name", "parent")
CALLS = (
    ApiCall(
        "RetrievePropertiesEx",
        "ManagedEntity (ContainerView of the root folder)",
        PATHS,
        "names and the tree for paths and permission propagation",
    ),
)


@dataclass
class Tree:
    """The entity tree: per managed-object id its name, type and parent id."""

    names: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    read: bool = False
    """False when the read failed (its problem is under ``vsphere.inventory``)."""

    def ancestors(self, moid: str) -> list[str]:
        """The parents of ``moid``, nearest first (cycles cut: a hostile answer cannot loop)."""
        out: list[str] = []
        current = self.parents.get(moid)
        while current is not None and current not in out and current != moid:
            out.append(current)
            current = self.parents.get(current)
        return out

    def nearest(self, moid: str, *types: str) -> str | None:
        """The nearest ancestor of one of ``types`` (``Datacenter``, ``ClusterComputeResource`` …)."""
        return next((a for a in self.ancestors(moid) if self.types.get(a) in types), None)

    def name_of(self, moid: str | None) -> str | None:
        """The entity's name, None when unknown."""
        return self.names.get(moid) if moid else None

    def folder_path(self, moid: str) -> str | None:
        """The folder path of a VM under its datacenter's VM folder (``Prod/Web``; ``""`` at the top),
        None when the tree was not read or the VM lies outside a datacenter."""
        if not self.read:
            return None
        folders: list[str] = []
        for ancestor in self.ancestors(moid):
            kind = self.types.get(ancestor)
            if kind == "Datacenter":
                # The last folder collected is the datacenter's own "vm" folder: not part of the path.
                return "/".join(reversed(folders[:-1]))
            if kind == "Folder" or kind == "VirtualApp":
                folders.append(self.names.get(ancestor, ancestor))
        return None


def read_tree(conn: Connection, problems: list[Problem]) -> Tree:
    """Read the tree; a failure is a problem under ``vsphere.inventory``."""
    before = len(problems)
    read = retrieve(conn, "ManagedEntity", PATHS, problems, area=AREA)
    tree = Tree(read=len(problems) == before and bool(read.objects))
    # A ContainerView lists what is below its container, not the container: the root folder (where
    # vCenter-wide grants live) is added by hand, without a parent.
    root = conn.content.rootFolder
    tree.types[moref(root)] = "Folder"
    tree.names[moref(root)] = _root_name(conn, problems)
    for moid, props in read.objects.items():
        tree.types[moid] = read.types[moid]
        name = props.get("name")
        tree.names[moid] = str(name) if name is not None else moid
        parent = props.get("parent")
        if isinstance(parent, str):
            tree.parents[moid] = parent
    return tree


def _root_name(conn: Connection, problems: list[Problem]) -> str:
    name, _ = guarded_call(
        problems, AREA, conn.target.text, "rootFolder.name", lambda: conn.content.rootFolder.name
    )
    return str(name) if name else "Datacenters"


def entities(tree: Tree, extra_parents: dict[str, str]) -> list[InventoryEntity] | None:
    """The facts' inventory: each entity with its permission parents (``parent``, and a VM's resource
    pool from ``extra_parents``); None when the tree was not read."""
    if not tree.read:
        return None
    out = []
    for moid in sorted(tree.names):
        parents = [p for p in (tree.parents.get(moid), extra_parents.get(moid)) if p]
        out.append(
            InventoryEntity(
                moref=moid, name=tree.names[moid], type=tree.types[moid], parents=list(dict.fromkeys(parents))
            )
        )
    return out
