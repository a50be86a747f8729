"""Reading inventories through Ansible itself: ``ansible-inventory -i F... --list`` for groups and merged
host variables, and ``ansible -i F... --list-hosts PATTERN`` for ``--limit`` (ansible-core 2.14's
``ansible-inventory`` has no ``--limit``; ``ansible --list-hosts`` evaluates the same host patterns and
contacts no host).

No shell: argument lists only. Ansible is told to use only its ``yaml`` and ``ini`` inventory plugins
(``ANSIBLE_INVENTORY_ENABLED``), so an executable file is never run as an inventory script and no
plugin configuration reaches a cloud API; a source Ansible cannot parse fails instead of being skipped
with a warning. Output is read up to a cap, within a time limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hvguard.collect.inventory_model import IMPLICIT_GROUPS, Inventory, InventoryError

#: Seconds ``ansible-inventory`` / ``ansible --list-hosts`` may take (start-up alone is about 0.5 s; a
#: 10,000-host inventory took 47 s here).
TIMEOUT_S = 600.0
#: Bytes of JSON read at most from ``ansible-inventory --list``.
MAX_OUTPUT_BYTES = 256 * 1024 * 1024


def ansible_inventory_command() -> str | None:
    """The ``ansible-inventory`` on PATH, or None."""
    return shutil.which("ansible-inventory")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_INVENTORY_ENABLED": "yaml,ini",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_HOST_PATTERN_MISMATCH": "ignore",
        }
    )
    return env


Warn = Callable[[str], None]


def _ignore(_line: str) -> None:
    """A warning sink that drops the line."""


def _run(argv: list[str], what: str, warn: Warn = _ignore) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - an argument list, no shell
            argv, capture_output=True, timeout=TIMEOUT_S, env=_env(), stdin=subprocess.DEVNULL, check=False
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(f"{what} did not finish within {TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise InventoryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = _last_error(done.stderr.decode("utf-8", "replace"))
        raise InventoryError(f"{what} failed (exit status {done.returncode}): {said}")
    # Ansible warns where it skips part of an inventory (an unknown key, a group that is not a
    # mapping): passed on, so nothing is skipped silently.
    # Ansible wraps a long warning over several lines: joined, then split at each marker.
    said = " ".join(done.stderr.decode("utf-8", "replace").split())
    for text in said.split("[WARNING]:")[1:]:
        if "No hosts matched" not in text and "Could not match supplied host pattern" not in text:
            warn(f"{what}: warning: {text.strip()[:400]}")
    if len(done.stdout) > MAX_OUTPUT_BYTES:
        raise InventoryError(f"{what}: its output exceeds {MAX_OUTPUT_BYTES} bytes")
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{what}: its output is not UTF-8") from None


def _last_error(stderr: str) -> str:
    """The most telling line of Ansible's error output, on one line."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR!") or "[WARNING]" in line]
    picked = errors[0] if errors else (lines[-1] if lines else "no error output")
    return picked[:400]


def _sources(paths: Sequence[Path]) -> list[str]:
    argv: list[str] = []
    for path in paths:
        argv += ["-i", str(path)]
    return argv


def read_with_ansible(command: str, paths: Sequence[Path], warn: Warn = _ignore) -> Inventory:
    """The merged inventory of ``paths`` as ``ansible-inventory --list`` reports it; Ansible's warnings
    go to ``warn``."""
    text = _run([command, *_sources(paths), "--list"], "ansible-inventory", warn)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InventoryError(f"ansible-inventory: its output is not JSON ({exc})") from None
    return _from_list(data)


def _from_list(data: Any) -> Inventory:
    if not isinstance(data, dict):
        raise InventoryError("ansible-inventory: its output is not a JSON object")
    meta = data.get("_meta", {})
    hostvars = meta.get("hostvars", {}) if isinstance(meta, dict) else {}
    if not isinstance(hostvars, dict):
        raise InventoryError("ansible-inventory: _meta.hostvars is not an object")
    inv = Inventory()
    for name, body in data.items():
        if name == "_meta" or not isinstance(body, dict):
            continue
        kids = body.get("children", [])
        members = body.get("hosts", [])
        if not isinstance(kids, list) or not isinstance(members, list):
            raise InventoryError(f"ansible-inventory: group {name!r} is malformed")
        inv.children[name] = [str(k) for k in kids]
        inv.hosts[name] = [str(h) for h in members]
    names = {h for members in inv.hosts.values() for h in members}
    for host in sorted(names | set(hostvars)):
        vars_ = hostvars.get(host, {})
        inv.hostvars[host] = dict(vars_) if isinstance(vars_, dict) else {}
    for group in IMPLICIT_GROUPS:
        inv.children.setdefault(group, [])
        inv.hosts.setdefault(group, [])
    return inv


def limit_with_ansible(paths: Sequence[Path], pattern: str) -> set[str] | None:
    """The host names ``ansible --list-hosts PATTERN`` selects, or None when ``ansible`` is not on PATH
    (hvguard's own evaluator applies the pattern then)."""
    command = shutil.which("ansible")
    if command is None:
        return None
    if pattern.startswith("-"):
        raise InventoryError(f"--limit {pattern!r}: a pattern cannot start with '-'")
    text = _run([command, *_sources(paths), "--list-hosts", pattern], "ansible --list-hosts")
    lines = text.splitlines()
    # "  hosts (N):" then one indented host name a line.
    return {line.strip() for line in lines[1:] if line.strip()}
