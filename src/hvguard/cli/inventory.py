"""``--inventory FILE`` / ``--limit PATTERN`` on ``scan`` (inventory hosts become targets, with their own
SSH key and sudo) and ``--inventory FILE`` on ``evaluate`` (bundles' targets get their inventory groups).

The reading itself is :mod:`hvguard.collect.inventory`; this module only joins its hosts to the command
line's TARGETs and SSH options, and puts the groups on the collected facts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

from hvguard.cli.errors import UserError
from hvguard.collect.ssh.target import HostSsh, SshOptions, is_ssh_target
from hvguard.facts import TargetFacts

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class InventoryTargets:
    """The targets of a run: the TARGET arguments, then the inventory hosts (each target once)."""

    targets: tuple[str, ...]
    ssh: SshOptions
    groups: dict[str, tuple[str, ...]]
    """Target → its inventory groups (targets in no group are absent)."""


def inventory_option(fn: F) -> F:
    """``--inventory FILE`` (repeatable); the command receives ``inventory: tuple[Path, ...]``."""
    decorated: F = click.option(
        "--inventory",
        "inventory",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="Ansible inventory (YAML or INI; repeatable): its hosts become ssh:// targets (ansible_host, "
        "ansible_port, ansible_user, ansible_ssh_private_key_file, ansible_become → sudo, or the "
        "hvguard_target host variable) and its groups are reported. Read through ansible-inventory "
        "when installed, else hvguard reads the YAML form itself.",
    )(fn)
    return decorated


def limit_option(fn: F) -> F:
    """``--limit PATTERN``; the command receives ``limit: str | None``."""
    decorated: F = click.option(
        "--limit",
        metavar="PATTERN",
        help="Only the inventory hosts this Ansible host pattern selects (with Ansible installed, any "
        "pattern it accepts; without, names, groups, globs, ':', ':!', ':&' and ',').",
    )(fn)
    return decorated


def inventory_targets(
    targets: Sequence[str], inventory: Sequence[Path], limit: str | None, ssh: SshOptions
) -> InventoryTargets:
    """Join the TARGET arguments and the hosts of ``inventory``; a TARGET that is also an inventory host
    is collected once, with the host's groups and SSH settings."""
    if not inventory:
        if limit is not None:
            # Also reached when a configuration file or HVGUARD_LIMIT sets `limit` for every command
            # (history's --limit N): say where to look rather than scan everything silently.
            raise UserError(
                "--limit needs --inventory (a `limit` default from a configuration file or HVGUARD_LIMIT "
                "applies to every command with --limit: set it under `commands:` instead)"
            )
        return InventoryTargets(targets=tuple(targets), ssh=ssh, groups={})
    from hvguard.collect.inventory import InventoryError, load_inventories

    try:
        hosts = load_inventories(list(inventory), limit, warn=_warn)
    except InventoryError as exc:
        raise UserError(str(exc)) from None
    joined = list(dict.fromkeys([*targets, *(h.target for h in hosts)]))
    own = {
        h.target: HostSsh(identity=_key_path(h.identity_file), sudo=h.sudo)
        for h in hosts
        if is_ssh_target(h.target) and (h.identity_file or h.sudo)
    }
    groups = {h.target: h.groups for h in hosts if h.groups}
    merged = replace(ssh, hosts={**ssh.hosts, **own})
    return InventoryTargets(targets=tuple(joined), ssh=merged, groups=groups)


def _warn(line: str) -> None:
    """One warning line on stderr (Ansible skipped part of an inventory)."""
    from hvguard.cli.console import error_console

    error_console().print(f"hvguard: {line}", highlight=False, markup=False, soft_wrap=True)


def _key_path(text: str | None) -> Path | None:
    """An inventory's key file, ``~`` expanded as Ansible expands it."""
    return Path(text).expanduser() if text else None


def with_groups(facts: Sequence[TargetFacts], groups: dict[str, tuple[str, ...]]) -> list[TargetFacts]:
    """``facts`` with each target's inventory groups set (others unchanged)."""
    return [msgspec.structs.replace(t, groups=groups[t.id]) if t.id in groups else t for t in facts]
