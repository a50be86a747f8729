"""Host-setting drift as an Ansible playbook, rather than editing a host's files in place.

Each drifted qemu.conf / libvirtd.conf key becomes an ``ansible.builtin.lineinfile`` task (regexp on the
key's assignment, ``line: key = value`` in libvirt's syntax, ``backup: true``) that notifies one handler
restarting the libvirt daemon. A key whose baseline value is ``null`` is removed (libvirt's default then
applies). List values may span several lines in libvirt files, which ``lineinfile`` (one line at a time)
would tear apart, so for lists an ``ansible.builtin.replace`` task first folds the whole existing list
into the new one-line value. Values are tagged ``!unsafe`` so Ansible never templates them.

Variables a run may set: ``hvguard_libvirt_conf_dir`` (default ``/etc/libvirt``),
``hvguard_libvirt_service`` (default ``libvirtd``; ``virtqemud`` on hosts with modular daemons) and
``hvguard_restart_libvirt`` (default true).

Note: libvirt reads the *first* assignment of a key, ``lineinfile`` replaces the *last* match; a file
holding the same key twice should be cleaned up by hand (hvguard's scan shows the line in effect).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from hvguard.baseline.drift import HOST, DriftItem
from hvguard.baseline.settings import CONF_PATHS

HANDLER = "restart libvirt daemon"
_FILES = {"qemu_conf": "qemu.conf", "libvirtd_conf": "libvirtd.conf"}


class _Unsafe(str):
    """A string Ansible must not template (emitted with the ``!unsafe`` tag)."""

    __slots__ = ()


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _unsafe(dumper: yaml.SafeDumper, value: _Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value), style="'")


_Dumper.add_representer(_Unsafe, _unsafe)


def libvirt_literal(value: str | int | list[str]) -> str:
    """A value in libvirt's config syntax (strings have no escapes: pick the quote the value lacks)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if '"' in value:
        return f"'{value}'"
    return f'"{value}"'


def conf_items(items: Sequence[DriftItem]) -> list[tuple[str, str, Any]]:
    """``(file key, config key, wanted value)`` for each host config-file drift item."""
    out: list[tuple[str, str, Any]] = []
    for item in items:
        if item.subject != HOST:
            continue
        which, _, key = item.path.partition(".")
        if which in _FILES and key:
            out.append((which, key, item.expected))
    return out


def _tasks(which: str, key: str, value: Any) -> list[dict[str, Any]]:
    path = "{{ hvguard_libvirt_conf_dir | default('" + CONF_PATHS[which].rsplit("/", 1)[0] + "') }}/"
    path += _FILES[which]
    assignment = rf"^[ \t]*{key}[ \t]*="
    tasks: list[dict[str, Any]] = []
    if isinstance(value, list) or value is None:
        # A list may span lines: fold the whole "key = [ ... ]" into one line (or drop it) first.
        tasks.append(
            {
                "name": _Unsafe(f"{_FILES[which]}: {key} (whole list)"),
                "ansible.builtin.replace": {
                    "path": path,
                    "regexp": _Unsafe(rf"(?m)^[ \t]*{key}[ \t]*=[ \t]*\[[^\]]*\][^\n]*\n?"),
                    "replace": _Unsafe("" if value is None else f"{key} = {libvirt_literal(value)}\n"),
                    "backup": True,
                },
                "notify": HANDLER,
            }
        )
    if value is None:
        tasks.append(
            {
                "name": _Unsafe(f"{_FILES[which]}: remove {key} (libvirt default applies)"),
                "ansible.builtin.lineinfile": {
                    "path": path,
                    "regexp": _Unsafe(assignment),
                    "state": "absent",
                    "backup": True,
                },
                "notify": HANDLER,
            }
        )
    else:
        line = f"{key} = {libvirt_literal(value)}"
        tasks.append(
            {
                "name": _Unsafe(f"{_FILES[which]}: {line}"),
                "ansible.builtin.lineinfile": {
                    "path": path,
                    "regexp": _Unsafe(assignment),
                    "line": _Unsafe(line),
                    "backup": True,
                },
                "notify": HANDLER,
            }
        )
    return tasks


def playbook(items: Sequence[DriftItem], *, hosts: str = "all", source: str = "") -> str:
    """An Ansible playbook (YAML text) that puts every drifted host config key back to the baseline."""
    tasks: list[dict[str, Any]] = []
    for which, key, value in conf_items(items):
        tasks.extend(_tasks(which, key, value))
    play: dict[str, Any] = {
        "name": "hvguard gold configuration: libvirt host settings",
        "hosts": hosts,
        "become": True,
        "gather_facts": False,
        "tasks": tasks,
        "handlers": [
            {
                "name": HANDLER,
                "ansible.builtin.service": {
                    "name": "{{ hvguard_libvirt_service | default('libvirtd') }}",
                    "state": "restarted",
                },
                "when": "hvguard_restart_libvirt | default(true) | bool",
            }
        ],
    }
    header = (
        "# Generated by hvguard remediate --emit-ansible"
        + (f" from baseline {source}" if source else "")
        + ".\n# Puts the drifted libvirt host settings back to the gold configuration (SS-009 11.4.7).\n"
        "# Check first: ansible-playbook --check --diff -i INVENTORY THIS_FILE\n"
    )
    return header + yaml.dump(
        [play], Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110
    )
