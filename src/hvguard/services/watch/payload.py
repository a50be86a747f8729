"""The notification payload every channel carries, and its one-line human summary.

JSON shape (``schema: hvguard.watch/1``)::

    {"schema": "hvguard.watch/1", "id": "<uuid4, unique per notification: drop repeats>",
     "event": "config-changed" | "defined" | "undefined" | "live-changed" | "created" | "destroyed",
     "scope": "config" | "live", "trigger": "<libvirt event, e.g. defined/updated; vSphere event types,
     e.g. VmReconfiguredEvent; or resync:WHY>",
     "missed": <true when found by resynchronisation: the change happened while hvguard was away>,
     "uri": "...", "host": "<hypervisor host name>", "vm": "...", "uuid": "...", "time": "<detected, UTC>",
     "changes": [{"path": "cputune.shares", "old": 1024, "new": 2048, "kind": "changed"}],
     "xml_diff": "<unified diff of the canonical XML; for vsphere:// targets, of the VM's settings as JSON>",
     "findings": [{"measure": "11.3.4", "status": "pass", "subject": "vm:web1", "message": "...",
                   "remediation": null}],
     "parse_error": null | "<why the new definition could not be parsed>"}

``event``: ``config-changed`` — the persistent definition changed; ``defined``/``undefined`` — a
persistent definition appeared/disappeared; ``live-changed`` — the running configuration changed
(hot-plug, live tunables) without a restart; ``created``/``destroyed`` — a transient VM (no persistent
definition) appeared/disappeared.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from typing import Any

SCHEMA = "hvguard.watch/1"
EVENTS = ("config-changed", "defined", "undefined", "live-changed", "created", "destroyed")


def make_payload(
    *,
    event: str,
    scope: str,
    trigger: str,
    missed: bool,
    uri: str,
    host: str | None,
    vm: str,
    uuid: str,
    time: str,
    changes: list[dict[str, Any]],
    xml_diff: str,
    findings: list[dict[str, Any]],
    parse_error: str | None = None,
) -> dict[str, Any]:
    """A payload dict with a fresh unique ``id``."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    return {
        "schema": SCHEMA,
        "id": str(uuidlib.uuid4()),
        "event": event,
        "scope": scope,
        "trigger": trigger,
        "missed": missed,
        "uri": uri,
        "host": host,
        "vm": vm,
        "uuid": uuid,
        "time": time,
        "changes": changes,
        "xml_diff": xml_diff,
        "findings": findings,
        "parse_error": parse_error,
    }


def encode(payload: dict[str, Any]) -> str:
    """The exact JSON text stored in the outbox and sent (webhooks sign these bytes)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def change_text(change: dict[str, Any]) -> str:
    """``cputune.shares: 1024 → 2048`` (``+``/``-`` for added/removed values)."""
    kind = change.get("kind")
    if kind == "added":
        return f"{change['path']}: + {_short(change['new'])}"
    if kind == "removed":
        return f"{change['path']}: - {_short(change['old'])}"
    return f"{change['path']}: {_short(change['old'])} → {_short(change['new'])}"


def bad_findings(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings of the payload that need attention (fail, error, warn)."""
    return [f for f in payload.get("findings", []) if f.get("status") in ("fail", "error", "warn")]


def summary(payload: dict[str, Any], *, max_changes: int = 8) -> str:
    """One line for logs, syslog and e-mail subjects' bodies."""
    p = payload
    head = f"vm {p['vm']} ({p['uuid']}) {p['event']} on {p['uri']}"
    if p.get("missed"):
        head += " (missed while not connected; found by resynchronisation)"
    changes = p.get("changes") or []
    if p["event"] in ("defined", "undefined", "created", "destroyed"):
        parts = [f"{len(changes)} setting(s), see changes and xml_diff"] if changes else []
    else:
        parts = [change_text(c) for c in changes[:max_changes]]
        if len(changes) > max_changes:
            parts.append(f"… {len(changes) - max_changes} more")
    if not changes and p.get("xml_diff") and p["event"] in ("config-changed", "live-changed"):
        parts.append("changes outside the parsed settings: see xml_diff")
    text = head + (": " + "; ".join(parts) if parts else "")
    bad = bad_findings(p)
    if bad:
        text += " [findings: " + ", ".join(f"{f['measure']} {f['status']}" for f in bad[:6])
        text += f", … {len(bad) - 6} more]" if len(bad) > 6 else "]"
    if p.get("parse_error"):
        text += f" [new definition unparsable: {p['parse_error']}]"
    return text
