"""Host-setting drift as an Ansible playbook, rather than editing a host's files in place.

libvirt reads the *first* assignment of a key and ignores later ones (``virConfGetValue`` in libvirt's
``src/util/virconf.c`` walks the entries in file order and returns the first match), so the playbook
edits exactly that assignment and removes every later one (a comment line says so), rather than
``lineinfile``'s default of replacing the *last* match. Per drifted qemu.conf / libvirtd.conf key:

1. later duplicates of the key are removed (``ansible.builtin.replace`` with ``after:`` the first
   assignment; a list spanning several lines is removed whole);
2. a first assignment that is a list — possibly over several lines, which ``lineinfile`` would tear
   apart — is folded into the new one-line value (``replace``);
3. the first assignment is set (``lineinfile`` with ``firstmatch``) or, for a baseline value of ``null``,
   every assignment is removed (libvirt's default then applies).

The edits are made on a private temporary copy of each file; one ``copy`` task then installs the result
with ``backup: true`` — so a run leaves one backup per file, and only when it changes the file, reports
``changed`` only then, notifies the one handler restarting the libvirt daemon only then, and ``--check
--diff`` shows the whole change of each file. Values are tagged ``!unsafe`` so Ansible never templates
them.

Variables a run may set: ``hvguard_libvirt_conf_dir`` (default ``/etc/libvirt``),
``hvguard_libvirt_service`` (default ``libvirtd``; ``virtqemud`` on hosts with modular daemons) and
``hvguard_restart_libvirt`` (default true), ``hvguard_work_dir`` (where the working copies are made;
default the target's temporary directory).
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


def _assignment(key: str) -> str:
    """A regexp for one whole assignment of ``key``: a one-line value, or a list up to its ``]`` over any
    number of lines, with the rest of its last line."""
    return rf"^[ \t]*{key}[ \t]*=(?:[ \t]*\[[^\]]*\])?[^\n]*"


def _edits(which: str, key: str, value: Any, work: str) -> list[dict[str, Any]]:
    """The tasks that put ``key`` to ``value`` in the working copy ``work`` of the file ``which``."""
    name = _FILES[which]
    quiet = {"check_mode": False, "changed_when": False}  # a private copy: the install task reports
    if value is None:
        return [
            {
                "name": _Unsafe(f"{name}: remove every {key} (libvirt default applies)"),
                "ansible.builtin.replace": {
                    "path": work,
                    "regexp": _Unsafe(_assignment(key) + r"\n?"),
                    "replace": "",
                },
                **quiet,
            }
        ]
    line = f"{key} = {libvirt_literal(value)}"
    return [
        {
            "name": _Unsafe(f"{name}: remove later duplicates of {key} (libvirt reads the first)"),
            "ansible.builtin.replace": {
                "path": work,
                "after": _Unsafe("(?m)" + _assignment(key)),
                "regexp": _Unsafe(_assignment(key) + r"\n?"),
                "replace": _Unsafe(
                    f"# {key}: a later duplicate removed by hvguard (libvirt reads the first)\n"
                ),
            },
            **quiet,
        },
        {
            "name": _Unsafe(f"{name}: {key} as one line if it is a list"),
            "ansible.builtin.replace": {
                "path": work,
                "regexp": _Unsafe(rf"^[ \t]*{key}[ \t]*=[ \t]*\[[^\]]*\][^\n]*\n?"),
                "replace": _Unsafe(f"{line}\n"),
            },
            **quiet,
        },
        {
            "name": _Unsafe(f"{name}: {line}"),
            "ansible.builtin.lineinfile": {
                "path": work,
                "regexp": _Unsafe(rf"^[ \t]*{key}[ \t]*="),
                "firstmatch": True,
                "line": _Unsafe(line),
            },
            **quiet,
        },
    ]


def _file_tasks(which: str, keys: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Copy ``which`` to a private temporary file, edit the copy, install it with one backup."""
    name = _FILES[which]
    path = "{{ hvguard_libvirt_conf_dir | default('" + CONF_PATHS[which].rsplit("/", 1)[0] + "') }}/"
    path += name
    var = f"hvguard_work_{which}"
    work = "{{ " + var + ".path }}"
    edits: list[dict[str, Any]] = [
        {
            "name": f"{name}: copy the current file to the working copy",
            "ansible.builtin.copy": {"src": path, "dest": work, "remote_src": True},
            "check_mode": False,
            "changed_when": False,
        }
    ]
    for key, value in keys:
        edits.extend(_edits(which, key, value, work))
    edits.append(
        {
            "name": f"{name}: install the edited file (one backup of the old one, only if it changes)",
            "ansible.builtin.copy": {"src": work, "dest": path, "remote_src": True, "backup": True},
            "notify": HANDLER,
        }
    )
    return [
        {
            "name": f"{name}: a private working copy",
            "ansible.builtin.tempfile": {
                "state": "file",
                "suffix": f".{name}",
                "path": "{{ hvguard_work_dir | default(omit) }}",
            },
            "register": var,
            "check_mode": False,
            "changed_when": False,
        },
        {
            "name": f"{name}: put the drifted keys back",
            "block": edits,
            "always": [
                {
                    "name": f"{name}: remove the working copy",
                    "ansible.builtin.file": {"path": work, "state": "absent"},
                    "check_mode": False,
                    "changed_when": False,
                }
            ],
        },
    ]


def playbook(items: Sequence[DriftItem], *, hosts: str = "all", source: str = "") -> str:
    """An Ansible playbook (YAML text) that puts every drifted host config key back to the baseline."""
    per_file: dict[str, list[tuple[str, Any]]] = {}
    for which, key, value in conf_items(items):
        per_file.setdefault(which, []).append((key, value))
    tasks: list[dict[str, Any]] = []
    for which, keys in per_file.items():
        tasks.extend(_file_tasks(which, keys))
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
