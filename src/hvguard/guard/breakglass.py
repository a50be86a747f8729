"""Break-glass: an administrator lets one domain start for a bounded time whatever the guard decides
(SS-009 11.2.1: admins can bypass a fault). Each entry is a ``hvguard.guard-break-glass/1`` line in
``break-glass.jsonl`` (read by the hook's decision), also appended to ``decisions.jsonl`` and sent to
syslog, so the bypass itself is evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hvguard.guard.statefile import BREAK_GLASS_FILE, DECISIONS_FILE, append_line, read_state

SCHEMA = "hvguard.guard-break-glass/1"
MAX_MINUTES = 1440
MAX_REASON = 500
SYSLOG_APP = "hvguard-guard"
SD_ID = "hvguard@32473"


class BreakGlassError(Exception):
    """The break-glass cannot be granted as asked; the message is one line."""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def invoking_user() -> str:
    """Who asked: the sudo caller when run through sudo, else the account of the real uid."""
    sudo = os.environ.get("SUDO_USER")
    try:
        me = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        me = str(os.getuid())
    return f"{sudo} (via sudo as {me})" if sudo and sudo != me else me


def _sd_escape(value: str) -> str:
    """An RFC 5424 PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped, no control characters."""
    value = "".join(c if ord(c) >= 32 else " " for c in value)
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def send_syslog(message: str, params: dict[str, str], socket: str | None, msgid: str) -> str | None:
    """Send one RFC 5424 line with ``logger`` (the same tool the hook script uses); None when sent,
    else why not."""
    logger = shutil.which("logger")
    if logger is None:
        return "logger (util-linux) is not installed"
    argv = [logger, "--rfc5424", "-t", SYSLOG_APP, "-p", "auth.notice", "--msgid", msgid, "--sd-id", SD_ID]
    if socket:
        argv[1:1] = ["-u", socket]
    for key, value in params.items():
        argv += ["--sd-param", f'{key}="{_sd_escape(value)}"']
    argv += ["--", message.replace("\n", " ")]
    try:
        proc = subprocess.run(  # noqa: S603 (argv list, no shell; values after --sd-param/--)
            argv, capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"logger: {e}"
    if proc.returncode != 0:
        return "logger: " + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0]
    return None


def grant(
    state_dir: Path, domain: str, minutes: int, reason: str, *, now: dt.datetime | None = None
) -> tuple[dict[str, Any], str | None]:
    """Record a break-glass for ``domain``; return the entry and a syslog warning (None when logged)."""
    if os.geteuid() != 0:
        raise BreakGlassError("break-glass is for administrators: run it as root")
    if not domain or any(ord(c) < 32 for c in domain) or "/" in domain:
        raise BreakGlassError(f"--domain must be a libvirt domain name, not {domain!r}")
    if not 1 <= minutes <= MAX_MINUTES:
        raise BreakGlassError(f"--minutes must be 1..{MAX_MINUTES}, not {minutes}")
    reason = " ".join(reason.split())
    if not reason:
        raise BreakGlassError("--reason is required: say why the guard is bypassed")
    if len(reason) > MAX_REASON:
        raise BreakGlassError(f"--reason is {len(reason)} characters; at most {MAX_REASON}")
    state = read_state(state_dir)
    at = now or dt.datetime.now(dt.UTC)
    entry = {
        "schema": SCHEMA,
        "domain": domain,
        "until": _iso(at + dt.timedelta(minutes=minutes)),
        "reason": reason,
        "by": invoking_user(),
        "at": _iso(at),
    }
    append_line(state_dir / BREAK_GLASS_FILE, entry)
    append_line(state_dir / DECISIONS_FILE, entry)
    warning = send_syslog(
        f"break-glass for {domain} until {entry['until']} by {entry['by']}: {reason}",
        {"domain": domain, "until": entry["until"], "by": entry["by"]},
        state.get("syslog_socket"),
        "break-glass",
    )
    return entry, warning


def read_entries(state_dir: Path) -> list[dict[str, Any]]:
    """Every well-formed entry of ``break-glass.jsonl`` (others are skipped)."""
    try:
        lines = (state_dir / BREAK_GLASS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fields = ("domain", "until", "reason", "by", "at")
        if (
            isinstance(rec, dict)
            and rec.get("schema") == SCHEMA
            and all(isinstance(rec.get(f), str) for f in fields)
        ):
            out.append(rec)
    return out


def active_entries(state_dir: Path, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The entries not yet expired at ``now``."""
    t = now or dt.datetime.now(dt.UTC)
    active = []
    for rec in read_entries(state_dir):
        until, at = _parse_iso(rec.get("until")), _parse_iso(rec.get("at"))
        if until is not None and until > t and (at is None or at <= t):
            active.append(rec)
    return active
