"""Where every decision goes: ``decisions.jsonl`` in the state directory and syslog (RFC 5424).

``decisions.jsonl`` is appended with ``O_APPEND`` and one ``write`` per record (a whole line), so
concurrent hooks (two VMs starting at once) never interleave within a line; it is created ``0600``.

The syslog line is RFC 5424 sent as one datagram to ``/dev/log`` (or another Unix datagram socket, for
tests): ``<PRI>1 TIMESTAMP HOSTNAME hvguard-guard PROCID decision [hvguard@32473 outcome="…"
domain="…" measures="…" reason="…"] MESSAGE``. Facility ``daemon``; severity ``info`` for allowed,
``warning`` for refused / would-refuse, ``err`` for an hvguard failure. A syslog that is not there is
not an error of the decision (the journal line is still written); :func:`send_syslog` says whether it
was sent.
"""

from __future__ import annotations

import os
from pathlib import Path

from hvguard.guard.record import GuardDecision, encode

DECISIONS_FILE = "decisions.jsonl"
DEFAULT_SYSLOG_SOCKET = "/dev/log"
APP_NAME = "hvguard-guard"
MSGID = "decision"
#: hvguard's structured-data id (``name@private-enterprise-number``; 32473 is the number RFC 5612
#: reserves for documentation and examples).
SD_ID = "hvguard@32473"
_FACILITY_DAEMON = 3
_SEVERITY = {"allowed": 6, "would-refuse": 4, "refused": 4}
_SEVERITY_ERROR = 3
#: Datagram size kept below what every syslog daemon accepts (rsyslog: 8 KiB by default).
MAX_DATAGRAM = 4096


def append_record(state_dir: Path, record: GuardDecision) -> Path:
    """Append ``record`` as one JSON line to ``STATE_DIR/decisions.jsonl`` (created 0600) and return it."""
    path = state_dir / DECISIONS_FILE
    line = encode(record) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        written = os.write(fd, line)
        if written != len(line):  # a short write on a full disk: say so, never leave half a line silently
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
    finally:
        os.close(fd)
    return path


def _sd_value(value: str) -> str:
    """An RFC 5424 PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped, control characters replaced."""
    cleaned = "".join(c if c.isprintable() else "?" for c in value)
    return cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """A header field (HOSTNAME, APP-NAME): printable ASCII without spaces, at most ``limit`` long."""
    token = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return token or "-"


def syslog_message(record: GuardDecision) -> str:
    """The free-text part of the syslog line: outcome, domain and the measures behind it."""
    measures = ", ".join(dict.fromkeys(v.measure for v in record.violations))
    text = f"{record.outcome} {record.domain} ({record.reason}, mode {record.mode})"
    if measures:
        text += f": {measures}"
    if record.covered:
        text += "; covered by exception " + ", ".join(dict.fromkeys(c.exception for c in record.covered))
    if record.error:
        text += f"; error: {record.error}"
    return " ".join(text.split())


def format_syslog(record: GuardDecision, *, pid: int | None = None) -> bytes:
    """The RFC 5424 line of ``record`` (UTF-8, no trailing newline, at most :data:`MAX_DATAGRAM` bytes)."""
    severity = _SEVERITY_ERROR if record.reason == "hvguard-error" else _SEVERITY[record.outcome]
    pri = _FACILITY_DAEMON * 8 + severity
    measures = " ".join(dict.fromkeys(v.measure for v in record.violations))
    params = [
        ("outcome", record.outcome),
        ("reason", record.reason),
        ("domain", record.domain),
        ("mode", record.mode),
        ("operation", record.operation),
        ("measures", measures),
    ]
    if record.covered:
        params.append(("exceptions", " ".join(dict.fromkeys(c.exception for c in record.covered))))
    sd = f"[{SD_ID} " + " ".join(f'{k}="{_sd_value(v)}"' for k, v in params) + "]"
    header = (
        f"<{pri}>1 {record.at} {_header_token(record.host, 255)} {APP_NAME} "
        f"{pid if pid is not None else os.getpid()} {MSGID}"
    )
    line = f"{header} {sd} {syslog_message(record)}".encode()
    return line[:MAX_DATAGRAM]


def send_syslog(record: GuardDecision, socket_path: str = DEFAULT_SYSLOG_SOCKET) -> str | None:
    """Send the record's syslog line as one datagram to ``socket_path``; None when sent, else why not
    (one line). Never raises: syslog is a second copy of the journal, not a condition of the decision."""
    # The C module, not ``socket``: the wrapper's import (selectors, enum conversions) costs more than the
    # send, and this runs at every VM start.
    import _socket

    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    except OSError as exc:
        return f"syslog {socket_path}: {exc.strerror or exc}"
    try:
        sock.settimeout(1.0)  # a wedged syslog daemon must not hold a VM start
        sock.connect(socket_path)
        sock.send(format_syslog(record))
    except OSError as exc:
        return f"syslog {socket_path}: {exc.strerror or exc}"
    finally:
        sock.close()
    return None
