"""The library's audit trail: an append-only, hash-chained JSON-lines log, copied to syslog.

Each record holds ``prev`` (the hash of the record before it; 64 zeros for the first) and ``hash``
(SHA-256 of its own canonical JSON without ``hash``). The sequence number and hash of the last record
are also kept in the metadata database, so cutting records off the end is detected as well as editing,
deleting or reordering records in the middle. ``verify`` returns the problems found (empty: intact).

Each record is also sent, one datagram per record, to the local syslog socket (``/dev/log`` unless
``library serve --syslog-socket PATH``), facility AUTHPRIV; see :func:`syslog_line`. The file is
written first: a syslog that cannot be reached loses only the copy.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from hvguard.services.library.db import settings

AUDIT_FILE = "audit.log"
_GENESIS = "0" * 64
_HEAD_KEY = "audit_head"
_LOCK = threading.Lock()
_LOG = logging.getLogger("hvguard.library")
_SYSLOG_FAILED: set[str] = set()
#: Where the syslog copy goes unless ``library serve --syslog-socket`` says otherwise.
SYSLOG_SOCKET = "/dev/log"
SYSLOG_TAG = "hvguard-library"
FACILITY_AUTHPRIV = 10
SEVERITY_WARNING = 4
SEVERITY_NOTICE = 5


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        value = conn.execute(select(settings.c.value).where(settings.c.key == _HEAD_KEY)).scalar()
    if not value:
        return 0, _GENESIS
    seq, _, digest = str(value).partition(":")
    return int(seq), digest


def append(
    store: Path,
    engine: Engine,
    *,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    detail: str = "",
    syslog_socket: str | None = SYSLOG_SOCKET,
) -> dict[str, Any]:
    """Append one record (and send its copy to the syslog socket); returns the record."""
    with _LOCK:
        seq, prev = _head(engine)
        record: dict[str, Any] = {
            "seq": seq + 1,
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "outcome": outcome,
            "detail": detail,
            "prev": prev,
        }
        record["hash"] = _record_hash(record)
        fd = os.open(store / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, _canonical(record) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with engine.begin() as conn:
            value = f"{record['seq']}:{record['hash']}"
            updated = conn.execute(settings.update().where(settings.c.key == _HEAD_KEY).values(value=value))
            if not updated.rowcount:
                conn.execute(settings.insert().values(key=_HEAD_KEY, value=value))
    _to_syslog(record, syslog_socket)
    return record


def _printable(value: object) -> str:
    # actors and subjects can come from a request: no control character may split or forge a line
    return "".join(c if c.isprintable() else "?" for c in str(value))


def syslog_line(record: dict[str, Any], *, pid: int | None = None) -> bytes:
    """The datagram for one record, in the format the C library's ``syslog()`` sends to ``/dev/log``:
    ``<PRI>Mmm dd hh:mm:ss hvguard-library[PID]: seq=… actor=… action=… subject=… outcome=… hash=…``,
    facility AUTHPRIV (a security trail), severity notice for ``ok`` and warning otherwise."""
    severity = SEVERITY_NOTICE if record["outcome"] == "ok" else SEVERITY_WARNING
    stamp = datetime.now().strftime("%b %e %H:%M:%S")  # local time, as syslog() writes it
    text = " ".join(
        f"{key}={_printable(record[key])}" for key in ("seq", "actor", "action", "subject", "outcome", "hash")
    )
    pid = os.getpid() if pid is None else pid
    return f"<{FACILITY_AUTHPRIV * 8 + severity}>{stamp} {SYSLOG_TAG}[{pid}]: {text}".encode()


def _to_syslog(record: dict[str, Any], address: str | None) -> None:
    """Send the record's syslog copy to the local datagram socket ``address`` (``None``: no copy). A
    host without a reachable syslog socket loses only the copy, never the record in the file: the
    first failure is logged as a warning (unless the default ``/dev/log`` does not exist at all: a
    host without a local syslog), later ones are not repeated."""
    if not address:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            sock.send(syslog_line(record))
    except OSError as exc:
        if address == SYSLOG_SOCKET and exc.errno == errno.ENOENT:
            return  # the default, on a host with no local syslog (a container): nothing to warn about
        if address not in _SYSLOG_FAILED:
            _SYSLOG_FAILED.add(address)
            _LOG.warning(
                "audit: syslog copy to %s failed (%s); the audit log file keeps every record",
                address,
                exc.strerror or exc,
            )


def verify(store: Path, engine: Engine) -> list[str]:
    """Problems with the audit log (empty list: the chain is intact and ends at the recorded head)."""
    problems: list[str] = []
    path = store / AUDIT_FILE
    head_seq, head_hash = _head(engine)
    prev, expected_seq = _GENESIS, 1
    try:
        lines = path.read_bytes().splitlines() if path.exists() else []
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror}"]
    for lineno, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            problems.append(f"line {lineno}: not a JSON record")
            continue
        if record.get("seq") != expected_seq:
            problems.append(f"line {lineno}: sequence {record.get('seq')} where {expected_seq} was expected")
        if record.get("prev") != prev:
            problems.append(f"line {lineno}: does not follow the record before it (chain broken)")
        if record.get("hash") != _record_hash(record):
            problems.append(f"line {lineno}: record was edited (its hash does not match)")
        prev = str(record.get("hash"))
        expected_seq = (
            int(record.get("seq", expected_seq)) + 1
            if isinstance(record.get("seq"), int)
            else expected_seq + 1
        )
    if (expected_seq - 1, prev) != (head_seq, head_hash):
        problems.append(
            f"log ends at record {expected_seq - 1} but the database's head is record {head_seq}: "
            "records were removed or added"
        )
    return problems
