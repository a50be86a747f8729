"""Read and write the scan history (SQLAlchemy Core): SQLite by default, PostgreSQL by URL.

Every database problem — unreachable server, locked or corrupt file, missing driver, a schema written by
a newer hvguard — becomes a :class:`HistoryError` with one line saying what is wrong, never a traceback.
Passwords in URLs are never echoed (SQLAlchemy's ``hide_password`` rendering).
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from sqlalchemy import Engine, create_engine, event, func, insert, inspect, select
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from hvguard import __version__
from hvguard.collect.migrate import can_migrate, migrate_target
from hvguard.engine import Evaluation
from hvguard.facts import FACTS_VERSION, TargetFacts
from hvguard.history.migrate import migrate
from hvguard.history.records import ScanSummary, StoredFinding, StoredScan, StoredTarget
from hvguard.history.schema import (
    SCHEMA_VERSION,
    findings,
    metadata,
    register_entries,
    scan_targets,
    scans,
    schema_version,
    target_summaries,
)
from hvguard.history.summaries import register_rows, summary_rows

#: Facts JSON larger than this is stored zlib-compressed (a 1000-VM estate is megabytes of JSON).
COMPRESS_ABOVE = 64 * 1024
#: How long a write waits for another hvguard holding the SQLite lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 5.0
PG_CONNECT_TIMEOUT = 10

#: Connection info flag: open this connection's next transaction as a writer (SQLite ``BEGIN IMMEDIATE``).
_WRITER = "hvguard_writer"

_REF = re.compile(r"(?P<id>[0-9]+)|latest(?:~(?P<back>[0-9]+))?|(?P<previous>previous)")


class HistoryError(Exception):
    """The history database cannot be used for this request (one line, shown to the user)."""


def default_database() -> Path:
    """``history.sqlite3`` in the user data directory (``~/.local/share/hvguard`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("hvguard")) / "history.sqlite3"


def database_url(value: str | None) -> URL:
    """The database ``--db``/``$HVGUARD_DB`` names: a SQLAlchemy URL, a SQLite file path, or the default.

    Only SQLite and PostgreSQL (psycopg 3) are supported, the two hvguard is tested with; a bare
    ``postgresql://`` URL is taken as ``postgresql+psycopg://``.
    """
    if not value:
        return URL.create("sqlite", database=str(default_database()))
    if "://" not in value:
        return URL.create("sqlite", database=str(Path(value).expanduser().absolute()))
    try:
        url = make_url(value)
    except ArgumentError:
        # The value may hold a password: do not echo it.
        raise HistoryError("--db: not a database URL (expected e.g. postgresql+psycopg://…)") from None
    backend = url.get_backend_name()
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if backend not in {"sqlite", "postgresql"}:
        raise HistoryError(
            f"--db: unsupported database {backend!r} (use a SQLite path or postgresql+psycopg://…)"
        )
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise HistoryError("--db: an in-memory SQLite database cannot keep a history; give a file path")
    return url


def _one_line(exc: BaseException) -> str:
    """The driver's own message, first line only (SQLAlchemy appends SQL and a link)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class HistoryStore:
    """An open history database. Use :meth:`open` as a context manager."""

    def __init__(self, engine: Engine | None, label: str) -> None:
        self._engine = engine
        self.label = label
        """The database as shown to the user (password hidden)."""

    # ---------------------------------------------------------------------------------------------
    # opening

    @classmethod
    def open(cls, value: str | None, *, create: bool) -> HistoryStore:
        """Open the database ``value`` names (see :func:`database_url`).

        ``create`` (the scan side) makes the file and tables on first use; without it (history, diff) a
        database that does not exist yet reads as empty and nothing is created.
        """
        url = database_url(value)
        label = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite":
            path = Path(url.database or "")
            label = str(path)
            if not path.exists():
                if not create:
                    return cls(None, label)
                _create_private_file(path)
            connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT}
        else:
            connect_args = {"connect_timeout": PG_CONNECT_TIMEOUT}
        try:
            engine = create_engine(
                url,
                connect_args=connect_args,
                json_serializer=_json_dumps,
                json_deserializer=msgspec.json.decode,
            )
        except (NoSuchModuleError, ImportError) as exc:
            hint = " (install hvguard[postgres] for psycopg)" if "postgres" in url.drivername else ""
            raise HistoryError(f"{label}: database driver not available: {_one_line(exc)}{hint}") from exc
        if url.get_backend_name() == "sqlite":
            _transactional_sqlite(engine, immediate=create)
        store = cls(engine, label)
        try:
            if not store._check_schema(create=create):
                store.close()
                return cls(None, label)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the connections."""
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn any database error inside the block into a one-line :class:`HistoryError`."""
        try:
            yield
        except HistoryError:
            raise
        except SQLAlchemyError as exc:
            raise HistoryError(f"{self.label}: cannot {doing}: {_one_line(exc)}") from exc

    def _check_schema(self, *, create: bool) -> bool:
        """Verify (or on first use create) the schema; False when there is no history yet."""
        found = self._version_or_create(create=create)
        if found is None:
            return False
        if found > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.label}: history schema version {found} is newer than this hvguard supports "
                f"({SCHEMA_VERSION}); upgrade hvguard or use another --db"
            )
        if found < SCHEMA_VERSION:
            self._migrate(found)
        return True

    def _migrate(self, found: int) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION` in one transaction (any command that opens
        the database does it once; the old scans stay readable). A concurrent hvguard migrating at the
        same moment makes this one fail: the version is then checked once more."""
        assert self._engine is not None
        for attempt in (1, 2):
            try:
                with self._engine.connect() as outer:
                    # A reader opened it (history, diff): this transaction writes, so on SQLite it takes
                    # the write lock up front and a second hvguard migrating at the same moment waits
                    # for it on the busy timeout instead of failing on a lock upgrade.
                    outer.info[_WRITER] = True
                    try:
                        with outer.begin():
                            self._migrate_in(outer)
                    finally:
                        outer.info.pop(_WRITER, None)
                return
            except SQLAlchemyError as exc:
                if attempt == 2:
                    raise HistoryError(
                        f"{self.label}: cannot migrate history schema {found} to {SCHEMA_VERSION}: "
                        f"{_one_line(exc)}"
                    ) from exc

    def _migrate_in(self, conn: Connection) -> None:
        """Migrate inside ``conn``'s transaction, unless another hvguard did it meanwhile."""
        now = self._schema_version(conn)
        if now is not None and now < SCHEMA_VERSION:
            migrate(conn, now)
            conn.execute(
                insert(schema_version).values(
                    version=SCHEMA_VERSION, applied_at=datetime.now(UTC), tool_version=__version__
                )
            )

    def _version_or_create(self, *, create: bool) -> int | None:
        """The schema version, creating the schema first when ``create`` and there is none.

        Check and creation share one transaction (on SQLite an immediate one, so a second hvguard
        starting at the same moment waits and then finds the tables). Should a concurrent creation
        still collide (PostgreSQL), the check is made once more.
        """
        assert self._engine is not None
        for attempt in (1, 2):
            creating = False
            try:
                with self._engine.begin() as conn:
                    found = self._schema_version(conn)
                    if found is None and create:
                        creating = True
                        metadata.create_all(conn)
                        conn.execute(
                            insert(schema_version).values(
                                version=SCHEMA_VERSION, applied_at=datetime.now(UTC), tool_version=__version__
                            )
                        )
                        found = SCHEMA_VERSION
                    return found
            except SQLAlchemyError as exc:
                if attempt == 2 or not creating:
                    reason = _one_line(exc)
                    raise HistoryError(f"{self.label}: cannot use the history database: {reason}") from exc
        raise AssertionError("unreachable")

    def _schema_version(self, conn: Connection) -> int | None:
        """The recorded schema version; None for a database without hvguard tables."""
        names = set(inspect(conn).get_table_names())
        if schema_version.name not in names:
            if names & {t.name for t in metadata.sorted_tables}:
                raise HistoryError(f"{self.label}: hvguard tables without a schema version: not usable")
            return None
        found = conn.scalar(select(func.max(schema_version.c.version)))
        if found is None:
            raise HistoryError(f"{self.label}: the schema version table is empty: not a usable history")
        return int(found)

    @contextmanager
    def reading(self, doing: str) -> Iterator[Connection | None]:
        """A connection for the read-only views (``history.estate``): None when there is no history
        yet; database errors become one-line :class:`HistoryError` errors saying what was being done."""
        if self._engine is None:
            yield None
            return
        with self._guard(doing), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self, doing: str) -> Iterator[Connection]:
        """One transaction for a change to the stored history (``history prune``)."""
        if self._engine is None:
            raise HistoryError(f"no scans recorded in {self.label}")
        with self._guard(doing), self._engine.connect() as conn:
            conn.info[_WRITER] = True  # a writer: queue on the SQLite lock, never fail on its upgrade
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_WRITER, None)

    def vacuum_sqlite(self, *, min_free_share: float) -> tuple[int, int] | None:
        """``VACUUM`` a SQLite database whose free pages make up at least ``min_free_share`` of it: its
        size in bytes before and after; None when not SQLite or not worth it."""
        if self._engine is None or self._engine.dialect.name != "sqlite":
            return None
        path = Path(self.label)
        with self._guard("reclaim free space"):
            raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            pages = int(cur.execute("PRAGMA page_count").fetchone()[0])
            free = int(cur.execute("PRAGMA freelist_count").fetchone()[0])
            if not pages or free / pages < min_free_share:
                return None
            before = path.stat().st_size
            # Outside any transaction (the connection is in autocommit mode, see
            # _transactional_sqlite): VACUUM refuses to run inside one.
            cur.execute("VACUUM")
            return before, path.stat().st_size
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"{self.label}: cannot reclaim free space: {_one_line(exc)}") from exc
        finally:
            raw.close()

    # ---------------------------------------------------------------------------------------------
    # writing

    def save(self, ev: Evaluation, *, command: str, inputs: Sequence[str], at: datetime | None = None) -> int:
        """Store one evaluation (scan record, per-target facts, every finding, and the estate rows: a
        summary per target and the register entries applied) in one transaction, as made ``at`` (aware;
        default now: importing older results, benchmarks)."""
        if self._engine is None:
            raise HistoryError(f"{self.label}: not opened for writing")
        with _gc_paused():
            return self._save(ev, command=command, inputs=inputs, at=at or datetime.now(UTC))

    def _save(self, ev: Evaluation, *, command: str, inputs: Sequence[str], at: datetime) -> int:
        assert self._engine is not None
        profile = ev.profile
        scan_row = {
            "created_at": at.astimezone(UTC),
            "tool_version": __version__,
            "command": command,
            "inputs": list(inputs),
            "targets": [t.id for t in ev.targets],
            "catalog_version": ev.catalog.version,
            "profile_name": profile.name,
            "profile_source": profile.source,
            "profile_tailored": profile.tailored,
            "profile_deviations": list(profile.deviations),
            "by_status": ev.by_status,
            "by_measure": {m: s.value for m, s in ev.by_measure.items()},
        }
        seen: set[str] = set()
        target_rows = []
        for t in ev.targets:
            if t.id not in seen:  # the same target named twice was evaluated twice; its facts once
                seen.add(t.id)
                target_rows.append(_target_row(t))
        created_at = scan_row["created_at"]
        summaries = [{**r, "created_at": created_at} for r in summary_rows(ev)]
        entries = register_rows(ev)
        finding_rows = [
            {
                "target": f.target,
                "subject": f.subject,
                "measure": f.measure,
                "check_id": f.check,
                "method": f.method,
                "status": f.status.value,
                "original_status": f.original_status.value if f.original_status else None,
                "message": f.message,
                "remediation": f.remediation,
                "waiver_id": _str_or_none((f.waiver or {}).get("id")),
                "attestation_id": _str_or_none((f.attestation or {}).get("id")),
                "evidence": f.evidence,
            }
            for f in ev.findings
        ]
        with self._guard("save the scan"), self._engine.begin() as conn:
            key = conn.execute(insert(scans).values(**scan_row)).inserted_primary_key
            assert key is not None
            scan_id = int(key[0])
            if target_rows:
                conn.execute(insert(scan_targets), [{**r, "scan_id": scan_id} for r in target_rows])
            if finding_rows:
                _insert_findings(conn, [{**r, "scan_id": scan_id} for r in finding_rows])
            if summaries:
                conn.execute(insert(target_summaries), [{**r, "scan_id": scan_id} for r in summaries])
            if entries:
                conn.execute(insert(register_entries), [{**r, "scan_id": scan_id} for r in entries])
        return scan_id

    # ---------------------------------------------------------------------------------------------
    # reading

    def list_scans(self, *, target: str | None = None, limit: int = 20) -> list[ScanSummary]:
        """The newest ``limit`` scans, newest first; with ``target`` only scans of it, counted for it."""
        if self._engine is None:
            return []
        query = select(scans).order_by(scans.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(scans.c.id.in_(_scans_of(target)))
        with self._guard("list scans"), self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            counts: dict[int, dict[str, int]] = {}
            if target is not None and rows:
                grouped = conn.execute(
                    select(findings.c.scan_id, findings.c.status, func.count())
                    .where(findings.c.target == target, findings.c.scan_id.in_([r["id"] for r in rows]))
                    .group_by(findings.c.scan_id, findings.c.status)
                )
                for scan_id, status, n in grouped:
                    counts.setdefault(scan_id, {})[status] = n
        out = []
        for r in rows:
            by_status = dict(r["by_status"])
            if target is not None:
                by_status = {s: counts.get(r["id"], {}).get(s, 0) for s in by_status}
            out.append(_summary(r, by_status))
        return out

    def resolve(self, ref: str, *, target: str | None = None) -> int:
        """A scan id from ``ref``: a number, ``latest``, ``previous`` (= ``latest~1``) or ``latest~N``;
        with ``target``, counted among the scans of that target only."""
        m = _REF.fullmatch(ref.strip())
        if m is None:
            raise HistoryError(f"{ref!r} is not a scan reference (use an id, latest, previous or latest~N)")
        of = f" of target {target}" if target is not None else ""
        if self._engine is None:
            raise HistoryError(f"no scans recorded in {self.label}")
        with self._guard("look up scans"), self._engine.connect() as conn:
            if m["id"] is not None:
                query = select(scans.c.id).where(scans.c.id == int(m["id"]))
                if target is not None:
                    query = query.where(scans.c.id.in_(_scans_of(target)))
                found = conn.scalar(query)
                if found is None:
                    raise HistoryError(f"no scan {m['id']}{of} in {self.label}")
                return int(found)
            back = 1 if m["previous"] else int(m["back"] or 0)
            query = select(scans.c.id).order_by(scans.c.id.desc()).offset(back).limit(1)
            if target is not None:
                query = query.where(scans.c.id.in_(_scans_of(target)))
            found = conn.scalar(query)
            if found is None:
                total_query = select(func.count()).select_from(scans)
                if target is not None:
                    total_query = total_query.where(scans.c.id.in_(_scans_of(target)))
                total = conn.scalar(total_query) or 0
                raise HistoryError(f"{ref}: only {total} scan(s){of} recorded in {self.label}")
            return int(found)

    def load(self, scan_id: int, *, targets: Sequence[str] | None = None) -> StoredScan:
        """A scan with the facts and findings of ``targets`` (default: all of its targets)."""
        if self._engine is None:
            raise HistoryError(f"no scans recorded in {self.label}")
        with self._guard(f"read scan {scan_id}"), self._engine.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.id == scan_id)).mappings().first()
            if row is None:
                raise HistoryError(f"no scan {scan_id} in {self.label}")
            summary = _summary(row, dict(row["by_status"]))
            wanted = list(summary.targets if targets is None else targets)
            trows = conn.execute(
                select(scan_targets).where(
                    scan_targets.c.scan_id == scan_id, scan_targets.c.target.in_(wanted)
                )
            ).mappings()
            stored = {r["target"]: _decode_target(r, scan_id) for r in trows}
            frows = conn.execute(
                select(findings)
                .where(findings.c.scan_id == scan_id, findings.c.target.in_(wanted))
                .order_by(findings.c.id)
            ).mappings()
            found = tuple(
                StoredFinding(
                    target=f["target"],
                    subject=f["subject"],
                    measure=f["measure"],
                    check=f["check_id"],
                    status=f["status"],
                    original_status=f["original_status"],
                    message=f["message"],
                    remediation=f["remediation"],
                    waiver_id=f["waiver_id"],
                    evidence=f["evidence"],
                )
                for f in frows
            )
        return StoredScan(summary=summary, targets=stored, findings=found)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while the rows are built and written.

    Tens of thousands of fresh row objects on a heap that holds a whole estate's facts trigger full
    collections that cost more than the insert itself (up to 1 s for 1000 VMs on this 2-core machine);
    nothing built here forms reference cycles, so nothing is left for the collector to find.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _insert_findings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """One ``executemany`` straight to the driver with the evidence already JSON-encoded.

    Core's per-row parameter processing cost 4x the insert itself for the ~8 findings per VM of a
    1000-VM estate (about 200 ms per scan; bench/history_overhead.py), and this runs on every scan. The
    statement is still compiled by SQLAlchemy for the connection's dialect (``?`` for SQLite,
    ``%(name)s`` for psycopg), so it stays portable.
    """
    columns = list(rows[0])
    compiled = insert(findings).compile(dialect=conn.dialect, column_keys=columns)
    encode = msgspec.json.Encoder().encode
    for row in rows:
        row["evidence"] = encode(row["evidence"]).decode()
    if compiled.positional:
        order = compiled.positiontup or []
        conn.exec_driver_sql(str(compiled), [tuple(row[k] for k in order) for row in rows])
    else:
        conn.exec_driver_sql(str(compiled), rows)


def _scans_of(target: str) -> Any:
    return select(scan_targets.c.scan_id).where(scan_targets.c.target == target)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _summary(row: Any, by_status: dict[str, int]) -> ScanSummary:
    return ScanSummary(
        id=int(row["id"]),
        created_at=_utc(row["created_at"]),
        tool_version=row["tool_version"],
        command=row["command"],
        inputs=tuple(row["inputs"]),
        targets=tuple(row["targets"]),
        profile_name=row["profile_name"],
        profile_tailored=bool(row["profile_tailored"]),
        profile_deviations=tuple(row["profile_deviations"]),
        by_status=by_status,
    )


def _target_row(t: TargetFacts) -> dict[str, Any]:
    data = msgspec.json.encode(t)
    digest = hashlib.sha256(data).hexdigest()
    encoding = "json"
    if len(data) > COMPRESS_ABOVE:
        data, encoding = zlib.compress(data, 6), "json+zlib"
    return {
        "target": t.id,
        "platform": t.platform,
        "unreachable": t.unreachable,
        "facts_version": FACTS_VERSION,
        "facts_encoding": encoding,
        "facts": data,
        "facts_sha256": digest,
    }


def _decode_target(row: Any, scan_id: int) -> StoredTarget:
    where = f"scan {scan_id}, target {row['target']}"
    data = bytes(row["facts"])
    try:
        if row["facts_encoding"] == "json+zlib":
            data = zlib.decompress(data)
        elif row["facts_encoding"] != "json":
            raise HistoryError(f"{where}: unknown facts encoding {row['facts_encoding']!r}")
    except zlib.error as exc:
        raise HistoryError(f"{where}: stored facts are corrupt ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != row["facts_sha256"]:
        raise HistoryError(f"{where}: stored facts are corrupt (checksum mismatch)")
    try:
        facts = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise HistoryError(f"{where}: stored facts are corrupt ({exc})") from exc
    if not isinstance(facts, dict):
        raise HistoryError(f"{where}: stored facts are not a facts object")
    version = int(row["facts_version"])
    if version != FACTS_VERSION and can_migrate(version):
        facts, version = _migrated(data, facts, version)
    return StoredTarget(target=row["target"], platform=row["platform"], facts_version=version, facts=facts)


def _migrated(data: bytes, facts: dict[str, Any], version: int) -> tuple[dict[str, Any], int]:
    """Facts stored by an older hvguard in this hvguard's model, as plain data, so ``hvguard diff`` across
    an upgrade shows no derived fields as added; as stored (with their version, which the diff notes)
    when they do not fit the model."""
    try:
        target = msgspec.json.decode(data, type=TargetFacts)
    except msgspec.ValidationError:
        return facts, version
    # Through JSON, so the plain data is exactly what a newly stored scan decodes to.
    plain = msgspec.json.decode(msgspec.json.encode(migrate_target(target, version)))
    return plain, FACTS_VERSION


def _transactional_sqlite(engine: Engine, *, immediate: bool) -> None:
    """Let SQLAlchemy, not Python's sqlite3 module, open transactions, so schema creation (DDL) is
    transactional too (SQLAlchemy's documented pysqlite recipe). A writer takes the lock up front
    (``BEGIN IMMEDIATE``) so two writers queue on the busy timeout instead of one failing mid-way."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate or conn.info.get(_WRITER) else "BEGIN")


def _create_private_file(path: Path) -> None:
    """Create the SQLite file (and its folder) readable by its owner only: it holds audit evidence."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with suppress(FileExistsError):  # another hvguard made it a moment ago
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise HistoryError(f"{path}: cannot create the history database: {exc.strerror or exc}") from exc
