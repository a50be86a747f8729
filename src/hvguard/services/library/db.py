"""The image library's metadata tables (SQLAlchemy Core): SQLite in the store by default, or PostgreSQL.

Images, users and grants live here; blobs and key slots live as files in the store. Secrets (users'
TOTP seeds) are sealed under the store's data key before they are written.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

metadata = MetaData()

users = Table(
    "library_users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("cert_sha256", String(64), nullable=True),
    #: An enterprise CA's subject mapped to this user (``--subject``), instead of a store-issued cert.
    Column("subject", String(512), nullable=True),
    Column("totp_sealed", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

grants = Table(
    "library_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user", String(128), nullable=False),
    Column("grp", String(256), nullable=False),
    Column("deny", Boolean, nullable=False),
    UniqueConstraint("user", "grp", "deny"),
)

images = Table(
    "library_images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    Column("grp", String(256), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("blob", String(64), nullable=False),
    Column("publisher", String(128), nullable=False),
    Column("pushed_at", String(40), nullable=False),
    #: pending (awaiting approval) | approved | quarantined (fails the current gate)
    Column("status", String(16), nullable=False),
    Column("approver", String(128), nullable=True),
    Column("approved_at", String(40), nullable=True),
    Column("gate", Text, nullable=False),
    Column("manifest", Text, nullable=True),
    Column("signature", Text, nullable=True),
    UniqueConstraint("name", "version"),
)

#: The last TOTP step accepted per user (RFC 6238 §5.2: a code is accepted once). In the database, not in
#: memory, so a restart or several ``serve`` processes on one database do not accept a code twice.
totp_steps = Table(
    "library_totp_steps",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("step", BigInteger, nullable=False),
)

#: Manifests replaced by a re-signed one (``regate`` under another gate profile, or an image back from
#: quarantine): kept, never edited, so what the library vouched for at any time stays auditable.
superseded_manifests = Table(
    "library_superseded_manifests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_id", String(36), nullable=False),
    Column("manifest", Text, nullable=False),
    Column("superseded_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
)

#: The status an image had before ``regate`` quarantined it (it returns to it once it passes again).
quarantine = Table(
    "library_quarantine",
    metadata,
    Column("image_id", String(36), primary_key=True),
    Column("previous_status", String(16), nullable=False),
    Column("since", String(40), nullable=False),
)

settings = Table(
    "library_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


class DatabaseError(Exception):
    """The metadata database cannot be used (one line; passwords are never echoed)."""


def database_url(value: str) -> URL:
    """A SQLAlchemy URL from a SQLite path or ``postgresql[+psycopg]://`` URL."""
    if "://" not in value:
        return URL.create("sqlite", database=value)
    try:
        url = make_url(value)
    except ArgumentError:
        raise DatabaseError("--db: not a database URL") from None
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise DatabaseError(f"--db: unsupported database {url.get_backend_name()!r}")
    return url


def connect(url: URL, *, create: bool = False) -> Engine:
    """An engine on ``url``; with ``create`` the tables are made."""
    engine = create_engine(url, future=True)
    if url.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _busy(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.execute("PRAGMA busy_timeout = 5000")

    try:
        if create:
            metadata.create_all(engine)
        else:
            with engine.connect() as conn:
                conn.execute(settings.select().limit(1))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).splitlines() or [type(cause).__name__])[0]
        raise DatabaseError(f"library database {url.render_as_string(hide_password=True)}: {first}") from None
    return engine
