"""Light look-ups the hook needs even when the decision machinery cannot load: the clock and the
break-glass file (SS-009 11.2.1: administrators can bypass a fault — a broken hvguard included).

``break-glass.jsonl`` is written by ``hvguard guard break-glass``; entries are
``{"schema": "hvguard.guard-break-glass/1", "domain", "until", "reason", "by", "at"}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BREAK_GLASS_FILE = "break-glass.jsonl"
BREAK_GLASS_SCHEMA = "hvguard.guard-break-glass/1"


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second with ``Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def breakglass_active(state_dir: Path, domain: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The unexpired break-glass entry for ``domain`` in ``STATE_DIR/break-glass.jsonl`` (the one that
    lasts longest), else None. A line that is not a valid ``hvguard.guard-break-glass/1`` entry grants
    nothing; a missing file means no break-glass."""
    moment = now or datetime.now(UTC)
    try:
        lines = (state_dir / BREAK_GLASS_FILE).read_bytes().splitlines()
    except FileNotFoundError:
        return None
    import json  # only when the file exists: most VM starts have no break-glass

    best: tuple[datetime, dict[str, Any]] | None = None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("schema") != BREAK_GLASS_SCHEMA:
            continue
        until = _parse_time(entry.get("until"))
        if entry.get("domain") != domain or until is None or until <= moment:
            continue
        if best is None or until > best[0]:
            best = (until, entry)
    return best[1] if best else None
