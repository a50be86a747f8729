"""The guard's state directory: where it is, ``state.json`` (``hvguard.guard-state/1``) and small file
helpers (atomic writes, appending one JSON line; the pins' sha256 is :func:`hvguard.digest.sha256_file`).

Layout (the contract in docs/contracts.md, "Issue 14"): ``state.json``, ``policy/{profile,exceptions,
attestations}.yaml`` (pinned copies), ``host-facts.json`` (the host snapshot), ``compiled.*``,
``decisions.jsonl`` and ``break-glass.jsonl``. The directory is 0700 and its files 0600.

This module is on the hook's path (every VM start) for its names alone, so ``json`` is imported where it
is used.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path("/var/lib/hvguard/guard")
STATE_ENV = "HVGUARD_GUARD_DIR"
STATE_SCHEMA = "hvguard.guard-state/1"
STATE_FILE = "state.json"
DECISIONS_FILE = "decisions.jsonl"
BREAK_GLASS_FILE = "break-glass.jsonl"
POLICY_KINDS = ("profile", "exceptions", "attestations")


class StateError(Exception):
    """The state directory is missing, unreadable or not hvguard's."""


def state_dir(option: str | os.PathLike[str] | None) -> Path:
    """The state directory: ``--state-dir``, else ``$HVGUARD_GUARD_DIR``, else the default."""
    if option:
        return Path(option).absolute()
    env = os.environ.get(STATE_ENV)
    return Path(env).absolute() if env else DEFAULT_STATE_DIR


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename, so readers see old or new."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line (one write, O_APPEND, created 0600)."""
    import json

    line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def make_state_dir(path: Path) -> bool:
    """Create the state directory (0700, parents 0755); True when it did not exist before."""
    existed = path.is_dir()
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    (path / "policy").mkdir(mode=0o700, exist_ok=True)
    return not existed


def read_state(path: Path) -> dict[str, Any]:
    """The parsed ``state.json`` of the state directory ``path``."""
    import json

    f = path / STATE_FILE
    try:
        raw = f.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"the guard is not installed here: no {f} (see `hvguard guard install`)") from None
    except OSError as e:
        raise StateError(f"cannot read {f}: {e.strerror}") from e
    try:
        state = json.loads(raw)
    except ValueError as e:
        raise StateError(f"{f} is not valid JSON: {e}") from e
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise StateError(f"{f} is not a {STATE_SCHEMA} document")
    return state


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state.json`` atomically."""
    import json

    write_atomic(path / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
