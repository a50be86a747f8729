"""Ansible inventories as hvguard targets (``scan --inventory FILE``, ``evaluate --inventory FILE``).

:func:`load_inventories` reads one or more inventory files — through ``ansible-inventory --list`` when
Ansible is on PATH (YAML and INI, with Ansible's own merging and ``--limit`` patterns), else with
hvguard's own reader of the YAML form (:mod:`hvguard.collect.inventory_yaml`; an INI file then is one
line and exit 2) — and turns each host into an :class:`InventoryHost`: an ``ssh://`` target built from
``ansible_host``, ``ansible_port`` and ``ansible_user`` (or the ``hvguard_target`` host variable: a
libvirt or ``vsphere://`` URI), its SSH key (``ansible_ssh_private_key_file``), ``ansible_become``
(→ ``sudo -n``) and its groups (Ansible's implicit ``all`` and ``ungrouped`` are not groups here).
Hosts come sorted by inventory name, so both readers give the same list.

Every problem is an :class:`InventoryError`, one line (the CLI makes it exit 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hvguard.collect.inventory_ansible import ansible_inventory_command, limit_with_ansible, read_with_ansible
from hvguard.collect.inventory_limit import check_pattern, select_hosts
from hvguard.collect.inventory_model import Inventory, InventoryError
from hvguard.collect.inventory_yaml import Vaulted, load_yaml_inventory, read_yaml_inventories
from hvguard.collect.ssh.target import SshTargetError, is_ssh_target, parse_ssh_target
from hvguard.yamlsafe import YamlInputError

__all__ = ["InventoryError", "InventoryHost", "groups_for", "load_inventories"]

_YAML_SUFFIXES = frozenset({".yml", ".yaml", ".json"})
_INI_SUFFIXES = frozenset({".ini", ".cfg"})
# What the YAML guard refuses on purpose (not a syntax error that may just mean "this is INI").
_GUARD_REASONS = (
    "aliases expand",
    "recursive alias",
    "nested more than",
    "larger than",
    "not a regular file",
    "cannot read",
    "not UTF-8",
)
_SSH_CONNECTIONS = frozenset({"ssh", "paramiko", "smart"})


@dataclass(frozen=True)
class InventoryHost:
    """One inventory host as a target.

    ``target`` is the ``ssh://`` URI (or the ``hvguard_target`` host variable); ``groups`` its groups,
    sorted; ``sudo`` from ``ansible_become``; ``identity_file`` from ``ansible_ssh_private_key_file``;
    ``port`` and ``user`` from ``ansible_port`` and ``ansible_user`` (None when the inventory sets none).
    """

    name: str
    target: str
    groups: tuple[str, ...]
    sudo: bool
    identity_file: str | None
    port: int | None
    user: str | None


def load_inventories(
    paths: Sequence[Path], limit: str | None, *, warn: Callable[[str], None] | None = None
) -> list[InventoryHost]:
    """The hosts of the inventory files ``paths`` (merged in order, as Ansible merges several ``-i``),
    restricted to ``limit`` (an Ansible host pattern) when given. Ansible's own warnings (a part of an
    inventory it skipped) go to ``warn``. Raises :class:`InventoryError`."""
    if not paths:
        raise InventoryError("no inventory file given")
    loaded: list[tuple[Path, Any]] = []
    ini: list[Path] = []
    for path in paths:
        data, is_yaml = _sniff(path)
        if is_yaml:
            loaded.append((path, data))
        else:
            ini.append(path)
    command = ansible_inventory_command()
    if command is not None:
        inventory = read_with_ansible(command, paths, warn or _drop)
        chosen = limit_with_ansible(paths, limit) if limit is not None else None
        if limit is not None and chosen is None:
            chosen = select_hosts(inventory, limit)
    else:
        if ini:
            raise InventoryError(
                f"{ini[0]}: not a YAML inventory; INI inventories need Ansible (ansible-inventory is not on "
                "PATH): install ansible-core or use the YAML form"
            )
        if limit is not None:
            check_pattern(limit)  # a pattern hvguard cannot evaluate is refused before anything is built
        inventory = read_yaml_inventories(loaded)
        chosen = select_hosts(inventory, limit) if limit is not None else None
    return _hosts(inventory, chosen, limit)


def _drop(_line: str) -> None:
    """No warning sink given: the line is dropped."""


def _sniff(path: Path) -> tuple[Any, bool]:
    """The YAML data of ``path`` and whether it is a YAML inventory (a mapping, or a .yml/.yaml/.json
    file). Size, type, alias bombs and nesting are checked even when the file turns out to be INI:
    Ansible reads a file without a suffix as YAML first."""
    try:
        data = load_yaml_inventory(path)
    except YamlInputError as exc:
        if path.suffix in _YAML_SUFFIXES or any(r in exc.reason for r in _GUARD_REASONS):
            raise InventoryError(str(exc)) from None
        return None, False
    if path.suffix in _INI_SUFFIXES:
        return None, False  # Ansible's yaml plugin skips these names: the ini plugin reads them
    if path.suffix in _YAML_SUFFIXES or isinstance(data, dict):
        return data, True
    return None, False


def _hosts(inventory: Inventory, chosen: set[str] | None, limit: str | None) -> list[InventoryHost]:
    if not inventory.hostvars:
        raise InventoryError("the inventory lists no host")
    names = sorted(inventory.hostvars if chosen is None else chosen & set(inventory.hostvars))
    if not names:
        raise InventoryError(f"--limit {limit!r} matches no host of the inventory")
    groups = inventory.host_groups()
    hosts = [_host(name, inventory.hostvars[name], groups.get(name, ())) for name in names]
    seen: dict[str, str] = {}
    for host in hosts:
        if host.target in seen:
            raise InventoryError(
                f"inventory hosts {seen[host.target]!r} and {host.name!r} are the same target {host.target}"
            )
        seen[host.target] = host.name
    return hosts


def _host(name: str, vars_: dict[str, Any], groups: tuple[str, ...]) -> InventoryHost:
    where = f"inventory host {name!r}"
    _check_text(name, where, "its name")
    for group in groups:
        _check_text(group, where, f"group {group!r}")
    user = _text(vars_, where, "ansible_user", "ansible_ssh_user")
    port = _port(vars_, where)
    identity = _text(vars_, where, "ansible_ssh_private_key_file", "ansible_private_key_file")
    sudo = _become(vars_, where)
    explicit = _text(vars_, where, "hvguard_target")
    connection = _text(vars_, where, "ansible_connection")
    if explicit is not None:
        target = explicit
        _check_target(target, where)
    elif connection == "local":
        target = "local"
    elif connection is not None and connection not in _SSH_CONNECTIONS:
        raise InventoryError(
            f"{where}: ansible_connection {connection!r} is not SSH; "
            "set hvguard_target to a URI hvguard can use"
        )
    else:
        address = _text(vars_, where, "ansible_host", "ansible_ssh_host") or name
        shown_host = f"[{address}]" if ":" in address else address
        who = f"{user}@" if user else ""
        target = f"ssh://{who}{shown_host}" + (f":{port}" if port is not None else "")
        try:
            parse_ssh_target(target)
        except SshTargetError as exc:
            raise InventoryError(f"{where}: {exc}") from None
    return InventoryHost(
        name=name, target=target, groups=groups, sudo=sudo, identity_file=identity, port=port, user=user
    )


def _check_target(target: str, where: str) -> None:
    from hvguard.collect.targets import TargetError, validate_target  # libvirt's URI rules, loaded only now

    _check_text(target, where, "hvguard_target")
    try:
        validate_target(target)
    except TargetError as exc:
        raise InventoryError(f"{where}: hvguard_target: {exc}") from None


def _check_text(value: str, where: str, what: str) -> None:
    if any(not ch.isprintable() for ch in value):
        raise InventoryError(f"{where}: {what} contains control characters")


def _text(vars_: dict[str, Any], where: str, *keys: str) -> str | None:
    """The first of ``keys`` set to a usable text value (a number is taken as text, as Ansible does)."""
    for key in keys:
        value = vars_.get(key)
        if value is None:
            continue
        if isinstance(value, Vaulted) or (isinstance(value, dict) and "__ansible_vault" in value):
            raise InventoryError(f"{where}: {key} is vault-encrypted; hvguard does not decrypt vaults")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InventoryError(f"{where}: {key} must be text")
        text = str(value)
        _check_text(text, where, key)
        if "{{" in text or "{%" in text:
            raise InventoryError(f"{where}: {key} is a template ({text!r}); hvguard does not evaluate Jinja")
        if text.strip() != text or not text:
            raise InventoryError(f"{where}: {key} {text!r} is empty or has surrounding spaces")
        return text
    return None


def _port(vars_: dict[str, Any], where: str) -> int | None:
    for key in ("ansible_port", "ansible_ssh_port"):
        value = vars_.get(key)
        if value is None:
            continue
        text = str(value).strip() if not isinstance(value, bool) and isinstance(value, int | str) else ""
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
            raise InventoryError(f"{where}: {key} {str(value)[:40]!r} is not a port number from 1 to 65535")
        return int(text)
    return None


_TRUE = frozenset({"yes", "on", "1", "true", "y", "t"})
_FALSE = frozenset({"no", "off", "0", "false", "n", "f", ""})


def _become(vars_: dict[str, Any], where: str) -> bool:
    """``ansible_become`` as Ansible's ``boolean()`` reads it; a method other than sudo or a user other
    than root is refused (hvguard's ``--sudo`` is ``sudo -n`` as root)."""
    value = vars_.get("ansible_become")
    if value is None or value is False:
        return False
    if value is True:
        on = True
    elif isinstance(value, int | str) and str(value).strip().lower() in _TRUE | _FALSE:
        on = str(value).strip().lower() in _TRUE
    else:
        raise InventoryError(f"{where}: ansible_become {str(value)[:40]!r} is not a boolean")
    if on:
        method = _text(vars_, where, "ansible_become_method")
        if method not in (None, "sudo"):
            raise InventoryError(f"{where}: ansible_become_method {method!r} is not supported (only sudo)")
        user = _text(vars_, where, "ansible_become_user")
        if user not in (None, "root"):
            raise InventoryError(f"{where}: ansible_become_user {user!r} is not supported (only root)")
    return on


def groups_for(
    bundle_target: str,
    bundle_host_name: str | None,
    bundle_path: Path | str | None,
    hosts: Sequence[InventoryHost],
) -> tuple[str, ...]:
    """The groups of the inventory host a bundle's target belongs to, or ``()`` when none matches.

    A bundle matches, in this order: the host whose inventory name is the bundle file's stem
    (``hv1.json`` ↔ ``hv1``: what the Ansible fan-out writes); else the host whose name or address
    (``ansible_host``) is the host name collected in the bundle; else the host whose target, name or
    address is the bundle's target (or that ``ssh://`` target's host).
    """
    if bundle_path is not None:
        stem = Path(bundle_path).name.removesuffix(".json")
        for host in hosts:
            if host.name == stem:
                return host.groups
    if bundle_host_name:
        for host in hosts:
            if bundle_host_name in (host.name, _address(host)):
                return host.groups
    wanted = {bundle_target}
    if is_ssh_target(bundle_target):
        with contextlib.suppress(SshTargetError):  # a malformed target simply matches by its text
            wanted.add(parse_ssh_target(bundle_target).host)
    for host in hosts:
        if host.target == bundle_target or host.name in wanted or _address(host) in wanted:
            return host.groups
    return ()


def _address(host: InventoryHost) -> str | None:
    """The host name or address an ``ssh://`` inventory host connects to."""
    if not is_ssh_target(host.target):
        return None
    try:
        return parse_ssh_target(host.target).host
    except SshTargetError:
        return None
