"""``guard status``: what the installed guard does and whether libvirt will run it — mode, on-error,
domains, the hook and its pin, the pinned policy files, the snapshot's age, the last decisions and the
active break-glass entries. A ``hvguard.guard-status/1`` document (``--format json``) or text.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Literal

import msgspec

from hvguard.digest import sha256_file
from hvguard.guard import breakglass, hookdir
from hvguard.guard.statefile import DECISIONS_FILE, POLICY_KINDS, StateError, read_state

SCHEMA = "hvguard.guard-status/1"


class HookStatus(msgspec.Struct, kw_only=True):
    """The hook file and whether libvirt will run it."""

    path: str
    present: bool
    executable: bool
    unchanged: bool
    """The file's sha256 is the one install wrote (``state.json`` ``hook_sha256``)."""
    libvirtd_pid: int | None
    libvirt_calls_hook: Literal["yes", "no", "unknown"]
    """libvirt looks for hooks at start and on SIGHUP only; ``why`` says how this was judged."""
    why: str


class PinnedFile(msgspec.Struct, kw_only=True):
    """A policy file copied and pinned at install."""

    source: str | None
    """Where it was copied from; null for the packaged default profile."""
    path: str
    sha256: str | None
    matches: bool
    """The pinned copy still has the pinned sha256 (else the hook applies on-error)."""
    source_changed: bool | None
    """The source differs from the pin (``install --update`` re-pins); null when there is no source."""


class SnapshotStatus(msgspec.Struct, kw_only=True):
    """The host snapshot the hook decides against."""

    path: str
    sha256: str | None
    matches: bool
    taken_at: str | None
    age_seconds: int | None


class BreakGlass(msgspec.Struct, kw_only=True):
    """An ``hvguard.guard-break-glass/1`` entry (also a line of break-glass.jsonl and decisions.jsonl)."""

    schema: str
    domain: str
    until: str
    reason: str
    by: str
    at: str


class WarmStatus(msgspec.Struct, kw_only=True):
    """The warm decider (:mod:`hvguard.guard.warm`): allowed by ``state.json``, and the process serving
    now, if any."""

    enabled: bool
    pid: int | None
    """The decider's PID when one is serving (``warm.pid`` names a live hvguard process)."""
    running: bool


class GuardStatus(msgspec.Struct, kw_only=True):
    """``hvguard guard status --format json``: the installed guard, its hook, pinned policy, snapshot,
    active break-glass entries and last decisions."""

    schema: str = SCHEMA
    state_dir: str
    mode: Literal["audit", "enforce"]
    on_error: Literal["deny", "allow"]
    domains: str
    timeout_seconds: int
    installed_at: str | None
    warm: WarmStatus
    hook: HookStatus
    policy: dict[Literal["profile", "exceptions", "attestations"], PinnedFile | None]
    host_facts: SnapshotStatus
    break_glass: list[BreakGlass]
    decisions: list[dict[str, Any]]
    """The last lines of decisions.jsonl, oldest first: ``hvguard.guard-decision/1`` records and
    ``hvguard.guard-break-glass/1`` entries."""


#: How much of the end of decisions.jsonl is read for the last decisions (it only grows).
TAIL_BYTES = 1 << 20


def _parse_iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def last_decisions(state_dir: Path, n: int) -> list[dict[str, Any]]:
    """The last ``n`` records of ``decisions.jsonl`` (decisions and break-glass entries), oldest first."""
    if n <= 0:
        return []
    path = state_dir / DECISIONS_FILE
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line read is probably cut
    out: list[dict[str, Any]] = []
    for line in reversed(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
            if len(out) == n:
                break
    return out[::-1]


def _file_pin(state_dir: Path, rel: str, pinned: str | None) -> dict[str, Any]:
    path = state_dir / rel
    try:
        actual: str | None = sha256_file(path)
    except OSError:
        actual = None
    return {"path": str(path), "sha256": pinned, "matches": actual is not None and actual == pinned}


def policy_status(state_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Each pinned policy file: its source, pinned sha256, whether the pinned copy still matches it,
    and whether the source changed since (``install --update`` re-pins)."""
    out: dict[str, Any] = {}
    for kind in POLICY_KINDS:
        entry = (state.get("policy") or {}).get(kind)
        if not isinstance(entry, dict):
            out[kind] = None
            continue
        rec = _file_pin(state_dir, entry.get("copied", ""), entry.get("sha256"))
        source = entry.get("source")
        changed: bool | None = None
        if source:
            try:
                changed = sha256_file(Path(source)) != entry.get("sha256")
            except OSError:
                changed = None  # the source is gone or unreadable: the pinned copy is what counts
        out[kind] = {"source": source, **rec, "source_changed": changed}
    return out


def hook_status(state: dict[str, Any]) -> dict[str, Any]:
    """The hook file (present, executable, unchanged) and whether libvirt will call it, with why."""
    hook = Path(state["hook_path"])
    present = hook.is_file()
    try:
        actual: str | None = sha256_file(hook) if present else None
    except OSError:
        actual = None
    executable = present and os.access(hook, os.X_OK)
    unchanged = actual is not None and actual == state.get("hook_sha256")
    daemon = hookdir.running_libvirtd()
    called, why = _libvirt_calls(state, present and executable, daemon)
    return {
        "path": str(hook),
        "present": present,
        "executable": executable,
        "unchanged": unchanged,
        "libvirtd_pid": daemon.pid if daemon else None,
        "libvirt_calls_hook": called,
        "why": why,
    }


def _libvirt_calls(state: dict[str, Any], usable: bool, daemon: hookdir.Daemon | None) -> tuple[str, str]:
    """yes / no / unknown: libvirtd looks for qemu hooks only at start and on SIGHUP."""
    if not usable:
        return "no", "the hook file is missing or not executable"
    version = (state.get("previous") or {}).get("libvirt_version")
    parts = version.split(".") if isinstance(version, str) else []
    old = (
        all(x.isdigit() for x in parts) and len(parts) > 0 and tuple(map(int, parts)) < hookdir.DROPIN_VERSION
    )
    if old and Path(state["hook_path"]).parent.name == "qemu.d":
        return "no", f"libvirt {version} has no qemu.d drop-in directory"
    hook_dir = Path(state["hook_path"]).parent
    if hookdir.DEFAULT_HOOK_DIR not in (hook_dir, hook_dir.parent):
        return "unknown", f"{hook_dir} is not libvirt's hook directory {hookdir.DEFAULT_HOOK_DIR}"
    if daemon is None:
        return (
            "unknown",
            "no running libvirtd found from /run/libvirtd.pid (it finds the hook when it starts)",
        )
    installed = _parse_iso(state.get("installed_at"))
    if installed is not None and daemon.started_at >= installed.timestamp():
        return "yes", "libvirtd started after the hook was installed"
    reloaded = state.get("reloaded") or {}
    if reloaded.get("pid") == daemon.pid:
        return "yes", f"libvirtd (pid {daemon.pid}) got SIGHUP at {reloaded.get('at')}"
    before = (state.get("previous") or {}).get("hooks_before") or []
    if before:
        return "yes", f"libvirtd already ran qemu hooks ({before[0]}) and lists qemu.d at every call"
    return "no", (
        f"libvirtd (pid {daemon.pid}) started before the hook was installed and has not reloaded since: "
        "hvguard guard install --update --reload-libvirtd (or systemctl reload libvirtd)"
    )


def warm_status(state_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
    """Whether a warm decider is allowed, and the one serving now (a live hvguard process in warm.pid)."""
    from hvguard.guard.warm import SOCKET_FILE, running_pid

    pid = running_pid(str(state_dir)) if (state_dir / SOCKET_FILE).exists() else None
    return {"enabled": state.get("warm", True) is not False, "pid": pid, "running": pid is not None}


def status(state_dir: Path, *, last: int = 10, now: dt.datetime | None = None) -> dict[str, Any]:
    """The ``hvguard.guard-status/1`` document of the guard installed in ``state_dir``."""
    t = now or dt.datetime.now(dt.UTC)
    state = read_state(state_dir)
    host = state.get("host_facts") or {}
    taken = _parse_iso(host.get("taken_at"))
    snapshot = {
        **_file_pin(state_dir, host.get("path", ""), host.get("sha256")),
        "taken_at": host.get("taken_at"),
        "age_seconds": int((t - taken).total_seconds()) if taken else None,
    }
    doc = {
        "schema": SCHEMA,
        "state_dir": str(state_dir),
        "mode": state.get("mode"),
        "on_error": state.get("on_error"),
        "domains": state.get("domains"),
        "timeout_seconds": state.get("timeout_seconds"),
        "installed_at": state.get("installed_at"),
        "warm": warm_status(state_dir, state),
        "hook": hook_status(state),
        "policy": policy_status(state_dir, state),
        "host_facts": snapshot,
        "break_glass": breakglass.active_entries(state_dir, t),
        "decisions": last_decisions(state_dir, last),
    }
    # through the model: what the JSON Schema (hvguard schema guard-status) describes is what is printed
    try:
        built: dict[str, Any] = msgspec.to_builtins(msgspec.convert(doc, GuardStatus, strict=False))
    except msgspec.ValidationError as e:
        raise StateError(f"{state_dir}/state.json does not describe an installed guard: {e}") from e
    return built


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _warm_text(warm: dict[str, Any]) -> str:
    if not warm["enabled"]:
        return "off (every VM start runs a cold hook; install --update --warm turns it on)"
    if warm["running"]:
        return f"decider running (pid {warm['pid']})"
    return "on, no decider running (the next VM start decides cold and starts one)"


def render_text(doc: dict[str, Any]) -> str:
    """``guard status`` as text."""
    hook = doc["hook"]
    lines = [
        f"mode:        {doc['mode']} (on error: {doc['on_error']}; timeout {doc['timeout_seconds']} s)",
        f"domains:     {doc['domains']}",
        f"warm:        {_warm_text(doc['warm'])}",
        f"hook:        {hook['path']} ({'present' if hook['present'] else 'MISSING'}"
        f"{'' if hook['unchanged'] or not hook['present'] else ', CHANGED since install'})",
        f"libvirt:     calls the hook: {hook['libvirt_calls_hook']} — {hook['why']}",
        f"state:       {doc['state_dir']}",
        "policy:",
    ]
    for kind, rec in doc["policy"].items():
        if rec is None:
            lines.append(f"  {kind:<13} none")
            continue
        ok = "ok" if rec["matches"] else "MISMATCH (hook applies on-error)"
        src = rec["source"] or "built-in default"
        note = "; source changed since install (install --update)" if rec["source_changed"] else ""
        lines.append(f"  {kind:<13} sha256 {rec['sha256']} {ok} — from {src}{note}")
    snap = doc["host_facts"]
    lines.append(
        f"host facts:  taken {snap['taken_at']} ({_age(snap['age_seconds'])} ago), "
        f"{'ok' if snap['matches'] else 'MISMATCH'} — hvguard guard refresh renews it"
    )
    lines.append(f"break-glass: {len(doc['break_glass'])} active")
    for bg in doc["break_glass"]:
        lines.append(f"  {bg['domain']} until {bg['until']} by {bg.get('by')}: {bg.get('reason')}")
    lines.append(f"decisions:   last {len(doc['decisions'])}")
    for rec in doc["decisions"]:
        if rec.get("schema") == breakglass.SCHEMA:
            lines.append(f"  {rec.get('at')} break-glass {rec.get('domain')} until {rec.get('until')}")
            continue
        measures = ",".join(sorted({str(v.get("measure")) for v in rec.get("violations") or []}))
        lines.append(
            f"  {rec.get('at')} {rec.get('outcome')} {rec.get('domain')} ({rec.get('operation')}, "
            f"{rec.get('reason')}{': ' + measures if measures else ''})"
        )
    return "\n".join(lines) + "\n"
