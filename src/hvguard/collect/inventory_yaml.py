"""hvguard's own reader of Ansible's YAML inventory form, for machines without Ansible.

It follows Ansible's ``yaml`` inventory plugin and its variable precedence (ansible-core 2.14):

* top-level keys are groups; a group has ``hosts``, ``children`` and ``vars`` (a string instead of a
  mapping names one entry); hosts may carry a ``:PORT`` and ``[a:b]`` / ``[a:b:step]`` ranges;
* a group not listed as anybody's child is a child of ``all``; a host in no group is in ``ungrouped``;
* a host's variables are ``all``'s, then its groups' sorted by (depth below ``all``,
  ``ansible_group_priority``, name), then its own — each later one replacing a key; then
  ``group_vars/`` and ``host_vars/`` files next to the inventory file, as Ansible's ``host_group_vars``
  plugin adds them (group files after every inventory group variable, host files last).

Where Ansible only warns and skips (an unknown key in a group, a group that is not a mapping) hvguard
refuses with one line: a silently skipped part of an inventory is a host silently not scanned.
The file is read through :mod:`hvguard.yamlsafe` (size cap, alias-bomb and depth guards, duplicate keys).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hvguard.collect.inventory_model import Inventory, InventoryError
from hvguard.yamlsafe import SafeYamlLoader, YamlInputError, load_yaml, read_yaml_file

#: Inventory files larger than this are refused (a 10,000-host inventory is about 1 MiB).
MAX_INVENTORY_BYTES = 16 * 1024 * 1024
#: Hosts at most, after ranges are expanded: ``hv[0:99999999]`` is refused, not built.
MAX_HOSTS = 100_000
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


class Vaulted(str):
    """A ``!vault`` value: kept as its ciphertext, never decrypted; refused where hvguard needs it."""

    __slots__ = ()


class InventoryLoader(SafeYamlLoader):
    """The safe loader plus Ansible's two YAML tags: ``!vault`` (kept encrypted) and ``!unsafe`` (text)."""


InventoryLoader.add_constructor("!vault", lambda loader, node: Vaulted(loader.construct_scalar(node)))
InventoryLoader.add_constructor("!unsafe", lambda loader, node: str(loader.construct_scalar(node)))


def load_yaml_inventory(path: Path) -> Any:
    """The data of the YAML file at ``path`` (any YAML; the caller decides what it is)."""
    text = read_yaml_file(path, limit=MAX_INVENTORY_BYTES)
    return load_yaml(text, str(path), loader=InventoryLoader)


class _Group:
    __slots__ = ("children", "hosts", "members", "name", "priority", "vars")

    def __init__(self, name: str) -> None:
        self.name = name
        self.vars: dict[str, Any] = {}
        self.children: list[str] = []
        self.hosts: list[str] = []
        self.members: set[str] = set()  # ``hosts`` as a set: membership tests on large groups
        self.priority = 1


class _Builder:
    """The in-memory inventory Ansible would build from the files, in the order it reads them."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {"all": _Group("all"), "ungrouped": _Group("ungrouped")}
        self.hostvars: dict[str, dict[str, Any]] = {}
        self.sources: list[Path] = []

    def group(self, name: str) -> _Group:
        _check_name(name, "group")
        if name not in self.groups:
            self.groups[name] = _Group(name)
        return self.groups[name]

    def parse_file(self, path: Path, data: Any) -> None:
        where = str(path)
        if not data:
            raise InventoryError(f"{where}: empty inventory")
        if not isinstance(data, dict):
            raise InventoryError(f"{where}: a YAML inventory is a mapping of groups, not {_kind(data)}")
        if "plugin" in data:
            raise InventoryError(
                f"{where}: an inventory plugin configuration needs Ansible (ansible-inventory)"
            )
        self.sources.append(path)
        for name, body in data.items():
            self._parse_group(where, _key(where, name), body)

    def _parse_group(self, where: str, name: str, body: Any) -> str:
        group = self.group(name)
        if body is None:
            return name
        if not isinstance(body, dict):
            raise InventoryError(f"{where}: group {name!r} is {_kind(body)}, not a mapping")
        for key, value in body.items():
            if key not in ("vars", "children", "hosts"):
                raise InventoryError(
                    f"{where}: group {name!r} has key {key!r}; only 'hosts', 'children' and 'vars' are valid"
                )
            if isinstance(value, str):
                value = {value: None}
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InventoryError(f"{where}: {key!r} of group {name!r} is {_kind(value)}, not a mapping")
            if key == "vars":
                for var, val in value.items():
                    self._set_group_var(where, group, _key(where, var), val)
            elif key == "children":
                for child, child_body in value.items():
                    kid = self._parse_group(where, _key(where, child), child_body)
                    if kid == name or kid == "all":
                        raise InventoryError(f"{where}: group {kid!r} cannot be a child of {name!r}")
                    if kid not in group.children:
                        group.children.append(kid)
            else:
                for pattern, host_vars in value.items():
                    self._parse_hosts(where, group, _key(where, pattern), host_vars)
        return name

    def _set_group_var(self, where: str, group: _Group, var: str, value: Any) -> None:
        if var == "ansible_group_priority":  # Ansible keeps it as the group's priority, not a variable
            text = "" if isinstance(value, bool) or not isinstance(value, int | str) else str(value).strip()
            if not (text.isascii() and text.isdigit()):
                raise InventoryError(f"{where}: ansible_group_priority of {group.name!r} must be a number")
            group.priority = int(text)
            return
        group.vars[var] = value

    def _parse_hosts(self, where: str, group: _Group, pattern: str, host_vars: Any) -> None:
        if host_vars is not None and not isinstance(host_vars, dict):
            raise InventoryError(
                f"{where}: host {pattern!r} has {_kind(host_vars)}, not a mapping of variables"
            )
        names, port = _expand_hostpattern(where, pattern)
        for host in names:
            _check_name(host, "host")
            own = self.hostvars.setdefault(host, {})
            if len(self.hostvars) > MAX_HOSTS:
                raise InventoryError(f"{where}: more than {MAX_HOSTS} hosts; not read")
            if host not in group.members:
                group.members.add(host)
                group.hosts.append(host)
            if port is not None:
                own["ansible_port"] = port
            for var, val in (host_vars or {}).items():
                own[_key(where, var)] = val

    def finish(self) -> Inventory:
        """Attach top-level groups to ``all``, fill ``ungrouped``, merge every host's variables."""
        parents: dict[str, set[str]] = {}
        for g in self.groups.values():
            for kid in g.children:
                parents.setdefault(kid, set()).add(g.name)
        for name in list(self.groups):
            if name != "all" and not parents.get(name) and name not in self.groups["all"].children:
                self.groups["all"].children.append(name)
                parents.setdefault(name, set()).add("all")
        depth = _depths(self.groups)
        direct: dict[str, set[str]] = {h: set() for h in self.hostvars}
        for g in self.groups.values():
            for h in g.hosts:
                direct[h].add(g.name)
        ungrouped = self.groups["ungrouped"]
        listed = set(ungrouped.hosts)
        for host, groups in direct.items():
            if not groups - {"all", "ungrouped"}:
                if host not in listed:
                    ungrouped.hosts.append(host)
                    listed.add(host)
                groups.add("ungrouped")
            elif host in listed:
                listed.discard(host)  # Ansible clears a host listed there and elsewhere too
                groups.discard("ungrouped")
        ungrouped.hosts = [h for h in ungrouped.hosts if h in listed]
        group_files = _vars_files(self.sources, "group_vars", list(self.groups))
        host_files = _vars_files(self.sources, "host_vars", list(self.hostvars))
        inv = Inventory(
            children={n: list(g.children) for n, g in self.groups.items()},
            hosts={n: list(g.hosts) for n, g in self.groups.items()},
        )
        parents_all = inv.parents()
        # Hosts listed in the same groups share their merged group variables: computed once per set.
        shared: dict[frozenset[str], dict[str, Any]] = {}
        for host in self.hostvars:
            key = frozenset(direct[host])
            if key not in shared:
                shared[key] = self._group_vars(key, parents_all, depth, group_files)
            merged = dict(shared[key])
            merged.update(self.hostvars[host])
            merged.update(host_files.get(host, {}))
            inv.hostvars[host] = merged
        return inv

    def _group_vars(
        self,
        direct: frozenset[str],
        parents: dict[str, set[str]],
        depth: dict[str, int],
        group_files: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        """The variables a host listed in ``direct`` gets from its groups, in Ansible's order."""
        mine: set[str] = set()
        stack = list(direct)
        while stack:
            g_name = stack.pop()
            if g_name not in mine:
                mine.add(g_name)
                stack.extend(parents.get(g_name, ()))
        ordered = sorted(
            (self.groups[g] for g in mine - {"all"}), key=lambda g: (depth[g.name], g.priority, g.name)
        )
        merged: dict[str, Any] = dict(self.groups["all"].vars)
        for g in ordered:
            merged.update(g.vars)
        merged.update(group_files.get("all", {}))
        for g in ordered:
            merged.update(group_files.get(g.name, {}))
        return merged


def read_yaml_inventories(paths: Sequence[tuple[Path, Any]]) -> Inventory:
    """The inventory of the already-loaded YAML files ``(path, data)``, merged in order as Ansible does
    for several ``-i`` sources. Raises :class:`InventoryError`."""
    builder = _Builder()
    for path, data in paths:
        builder.parse_file(path, data)
    return builder.finish()


def _depths(groups: dict[str, _Group]) -> dict[str, int]:
    """Each group's depth: its longest path below ``all`` (what Ansible sorts variables by); a cycle of
    children is refused, as Ansible refuses it."""
    depth: dict[str, int] = {"all": 0}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[tuple[str, int]] = [("all", 0)]
    order: list[str] = []
    # Iterative depth-first search for a topological order (no recursion on hostile nesting).
    while stack:
        name, index = stack.pop()
        if index == 0:
            if state.get(name) == 2:
                continue
            state[name] = 1
        kids = groups[name].children
        if index < len(kids):
            stack.append((name, index + 1))
            kid = kids[index]
            if state.get(kid) == 1:
                raise InventoryError(f"group {kid!r} is its own ancestor (a loop of children)")
            if state.get(kid) != 2:
                stack.append((kid, 0))
        else:
            state[name] = 2
            order.append(name)
    for name in groups:
        if name not in state:  # not below "all" although every parentless group was put there: a loop
            raise InventoryError(f"group {name!r} is its own ancestor (a loop of children)")
    for name in reversed(order):  # parents before children
        for kid in groups[name].children:
            depth[kid] = max(depth.get(kid, 0), depth[name] + 1)
    return depth


def _vars_files(sources: list[Path], kind: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Variables from ``group_vars/NAME[.yml|.yaml|.json]`` (or a ``NAME/`` directory of such files) next
    to each inventory file, as Ansible's ``host_group_vars`` plugin reads them."""
    out: dict[str, dict[str, Any]] = {}
    for source in sources:
        base = source.parent / kind
        if not base.is_dir():
            continue
        for name in names:
            found: list[Path] = []
            for ext in _VARS_EXTENSIONS:
                candidate = base / f"{name}{ext}"
                if candidate.is_dir():
                    found.extend(
                        sorted(p for p in candidate.iterdir() if p.is_file() and p.suffix in _VARS_EXTENSIONS)
                    )
                elif candidate.is_file():
                    found.append(candidate)
            for path in found:
                try:
                    data = load_yaml_inventory(path)
                except YamlInputError as exc:
                    raise InventoryError(str(exc)) from None
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise InventoryError(f"{path}: variables file is {_kind(data)}, not a mapping")
                out.setdefault(name, {}).update({_key(str(path), k): v for k, v in data.items()})
    return out


def _expand_hostpattern(where: str, pattern: str) -> tuple[list[str], int | None]:
    """Ansible's host pattern: ``name``, ``name:PORT``, ``[v6]:PORT``, with ``[a:b(:step)]`` ranges."""
    host, port = _split_port(pattern)
    if "[" in host and ":" in host and "]" in host:
        return _expand_range(where, host), port
    return [host], port


def _split_port(pattern: str) -> tuple[str, int | None]:
    if pattern.startswith("[") and "]:" in pattern:  # [IPv6]:port
        host, _, port = pattern[1:].rpartition("]:")
        return (host, int(port)) if port.isdigit() else (pattern, None)
    depth = 0
    colon = -1
    count = 0
    for i, ch in enumerate(pattern):
        depth += ch == "["
        depth -= ch == "]"
        if ch == ":" and depth == 0:
            colon, count = i, count + 1
    if count == 1 and pattern[colon + 1 :].isdigit() and pattern[colon + 1 :].isascii():
        return pattern[:colon], int(pattern[colon + 1 :])
    return pattern, None


def _expand_range(where: str, line: str) -> list[str]:
    """Expand ``head[beg:end(:step)]tail`` (Ansible's ``expand_hostname_range``), iteratively."""
    out: list[str] = []
    pending = [line]
    while pending:
        item = pending.pop(0)
        if not ("[" in item and ":" in item and "]" in item):
            out.append(item)
            if len(out) > MAX_HOSTS:
                raise InventoryError(f"{where}: host range {line!r} expands to more than {MAX_HOSTS} hosts")
            continue
        head, _, rest = item.partition("[")
        nrange, _, tail = rest.partition("]")
        bounds = nrange.split(":")
        if len(bounds) not in (2, 3) or not bounds[1]:
            raise InventoryError(f"{where}: host range {line!r} must be [begin:end] or [begin:end:step]")
        beg = bounds[0] or "0"
        end = bounds[1]
        try:
            step = int(bounds[2]) if len(bounds) == 3 else 1
        except ValueError:
            raise InventoryError(f"{where}: host range {line!r} has a step that is not a number") from None
        if step < 1:
            raise InventoryError(f"{where}: host range {line!r} has a step below 1")
        width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
        if width and width != len(end):
            raise InventoryError(f"{where}: host range {line!r} needs equal-length begin and end")
        letters = string.ascii_letters
        seq: list[str]
        if beg in letters and end in letters and len(beg) == len(end) == 1:
            if letters.index(beg) > letters.index(end):
                raise InventoryError(f"{where}: host range {line!r} must have begin <= end")
            seq = list(letters[letters.index(beg) : letters.index(end) + 1 : step])
        elif beg.isdigit() and end.isdigit() and beg.isascii() and end.isascii():
            lo, hi = int(beg), int(end)
            if (hi - lo) // step + len(out) + len(pending) > MAX_HOSTS:
                raise InventoryError(f"{where}: host range {line!r} expands to more than {MAX_HOSTS} hosts")
            seq = [str(n).zfill(width) for n in range(lo, hi + 1, step)]
        else:
            raise InventoryError(f"{where}: host range {line!r} is neither numeric nor alphabetic")
        pending[0:0] = [f"{head}{value}{tail}" for value in seq]
        if len(pending) + len(out) > MAX_HOSTS:
            raise InventoryError(f"{where}: host range {line!r} expands to more than {MAX_HOSTS} hosts")
    return out


def _key(where: str, key: Any) -> str:
    """A mapping key hvguard uses as a name: text, without control characters."""
    if isinstance(key, bool) or not isinstance(key, str | int | float):
        raise InventoryError(f"{where}: {_kind(key)} cannot be a group, host or variable name")
    text = str(key)
    _check_name(text, "name", where)
    return text


def _check_name(name: str, what: str, where: str = "inventory") -> None:
    if not name or any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InventoryError(f"{where}: {what} {name!r} is empty or contains spaces or control characters")


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, yaml.Node):
        return "a YAML node"
    return type(value).__name__
