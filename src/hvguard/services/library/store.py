"""The image library's store: a folder with its settings, key slots, keys, encrypted blobs and database.

Layout (every file owner-only, every folder 0700)::

    STORE/store.json           id, format, guest-inspection mode, signing algorithm, database URL
    STORE/keyslots/NAME.json   one Argon2id-wrapped copy of the data key per administrator
    STORE/ca.crt               the client CA (public); ca.key.sealed: its key, sealed under the data key
    STORE/signing.pub          the manifest signing key (public); signing.key.sealed: the private key
                               (or signing.pin.sealed: the PIN of the PKCS#11 token that holds it)
    STORE/blobs/XX/NAME        encrypted image blobs (NAME: HMAC of the image's SHA-256 under the data key)
    STORE/tmp/                 uploads being received (already encrypted)
    STORE/library.sqlite3      metadata (unless a PostgreSQL URL was given)
    STORE/audit.log            the hash-chained audit trail

Nothing here prints or exits: problems are :class:`StoreError` (one line).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from hvguard.services.library import audit, crypto, pki
from hvguard.services.library.db import (
    DatabaseError,
    connect,
    database_url,
    grants,
    images,
    metadata,
    settings,
    totp_steps,
    users,
)
from hvguard.services.library.names import StoreError as StoreError
from hvguard.services.library.names import check_image_name as check_image_name
from hvguard.services.library.names import check_version as check_version
from hvguard.services.library.names import group_of as group_of

STORE_FORMAT = "hvguard-library/1"
ROLES = ("reader", "publisher", "approver", "admin")
GUEST_INSPECTION = ("required", "warn", "off")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_SLOT_BYTES = 64 * 1024


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user (and key slot) name."""
    if not _USER.match(name):
        raise StoreError(f"invalid user name {name!r}: letters, digits, '.', '_', '-' (at most 64)")
    return name


def _write_private(path: Path, data: bytes, *, mode: int = 0o600, exclusive: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise StoreError(f"{path} already exists: not overwritten") from None
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir_private(path: Path) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


@dataclass(frozen=True)
class IssuedUser:
    """Files written for a new user."""

    cert: Path
    key: Path
    totp: Path


class Store:
    """An opened store (the data key unwrapped); use :func:`open_store` or :func:`init_store`."""

    def __init__(self, path: Path, meta: dict[str, Any], data_key: bytes, engine: Engine) -> None:
        self.path = path
        self.meta = meta
        self.data_key = data_key
        self.engine = engine
        self._signer: Any = None
        #: the local syslog socket the audit trail is copied to (``None``: no copy)
        self.syslog_socket: str | None = audit.SYSLOG_SOCKET

    @property
    def id(self) -> str:
        """The store's UUID."""
        return str(self.meta["id"])

    @property
    def guest_inspection(self) -> str:
        """required | warn | off."""
        return str(self.meta["guest_inspection"])

    def _aad(self, what: str) -> bytes:
        return f"hvguard-library:{self.id}:{what}".encode()

    def seal(self, what: str, plaintext: bytes) -> str:
        """``plaintext`` sealed under the data key, bound to this store and ``what``."""
        return crypto.seal(self.data_key, plaintext, self._aad(what))

    def unseal(self, what: str, sealed: str) -> bytes:
        """The plaintext of :meth:`seal`."""
        try:
            return crypto.unseal(self.data_key, sealed, self._aad(what))
        except crypto.CryptoError:
            raise StoreError(f"{what} in {self.path} does not authenticate under the data key") from None

    def _sealed_file(self, name: str) -> bytes:
        try:
            return self.unseal(name, (self.path / name).read_text(encoding="ascii"))
        except OSError as exc:
            raise StoreError(f"cannot read {self.path / name}: {exc.strerror}") from None

    def ca(self) -> tuple[bytes, bytes]:
        """The client CA: (certificate PEM, private key PEM)."""
        return (self.path / "ca.crt").read_bytes(), self._sealed_file("ca.key.sealed")

    def signing_key(self) -> Any:
        """The manifest signing key: a private key sealed in the store, or a PKCS#11 token key."""
        token = self.meta.get("pkcs11")
        if not token:
            return pki.load_private(self._sealed_file("signing.key.sealed"))
        if self._signer is None:
            from hvguard.services.library.pkcs11key import Pkcs11Signer

            pin = self._sealed_file("signing.pin.sealed").decode()
            self._signer = Pkcs11Signer(str(token["uri"]), pin, module=token.get("module"))
        return self._signer

    def public_key_pem(self) -> bytes:
        """The manifest signing key (public, PEM)."""
        return public_key_pem(self.path)

    # --- blobs -------------------------------------------------------------------------------------
    def blob_name(self, sha256: str) -> str:
        """A blob's file name: HMAC-SHA256 of the image hash, so the store does not reveal image hashes."""
        return hmac.new(self.data_key, f"blob:{sha256}".encode(), hashlib.sha256).hexdigest()

    def blob_path(self, blob: str) -> Path:
        """Where blob ``blob`` lives."""
        return self.path / "blobs" / blob[:2] / blob

    @contextmanager
    def open_blob(self, blob: str) -> Iterator[Iterator[bytes]]:
        """The decrypted, authenticated chunks of a blob."""
        with open(self.blob_path(blob), "rb") as f:
            yield crypto.read_blob(self.data_key, f)

    # --- audit ---------------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, subject: str, outcome: str = "ok", detail: str = "") -> None:
        """Append to the audit trail."""
        audit.append(
            self.path,
            self.engine,
            actor=actor,
            action=action,
            subject=subject,
            outcome=outcome,
            detail=detail,
            syslog_socket=self.syslog_socket,
        )

    # --- key slots ----------------------------------------------------------------------------------
    def add_keyslot(self, name: str, passphrase: str, *, actor: str) -> None:
        """A new key slot for administrator ``name`` (passphrase strength enforced)."""
        check_user_name(name)
        crypto.check_passphrase_strength(passphrase, user_inputs=(name, "hvguard", "library"))
        slot = crypto.wrap_slot(self.data_key, passphrase.encode(), _slot_aad(self.id, name))
        _write_private(self.path / "keyslots" / f"{name}.json", json.dumps(slot, indent=1).encode())
        self.audit(actor, "keyslot-add", name)

    def remove_keyslot(self, name: str, *, actor: str) -> None:
        """Remove a key slot (never the last one: the store could not be opened again)."""
        check_user_name(name)
        path = self.path / "keyslots" / f"{name}.json"
        if not path.exists():
            raise StoreError(f"no key slot {name!r} in {self.path}")
        if len(list_keyslots(self.path)) <= 1:
            raise StoreError("refusing to remove the last key slot: the store could not be opened again")
        path.unlink()
        self.audit(actor, "keyslot-remove", name)

    # --- users and grants -------------------------------------------------------------------------
    def add_user(
        self, name: str, role: str, cert_out: Path | None, *, actor: str, subject: str | None = None
    ) -> IssuedUser | None:
        """Add a user; with ``cert_out`` a client certificate, its key and a TOTP seed are written there
        (``NAME.crt``, ``NAME.key``, ``NAME.totp``); with ``subject`` an enterprise CA subject is mapped."""
        import pyotp

        check_user_name(name)
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        if (cert_out is None) == (subject is None):
            raise StoreError("give either --cert-out DIR (a store-issued certificate) or --subject (mapped)")
        with self.engine.connect() as conn:
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise StoreError(f"user {name!r} already exists")
        secret = pyotp.random_base32()
        issued = None
        fingerprint = None
        if cert_out is not None:
            files = [cert_out / f"{name}{ext}" for ext in (".crt", ".key", ".totp")]
            for f in files:
                if f.exists() or f.is_symlink():
                    raise StoreError(f"{f} already exists: not overwritten")
            cert_out.mkdir(mode=0o700, parents=True, exist_ok=True)
            ca_cert, ca_key = self.ca()
            cert_pem, key_pem, fingerprint = pki.issue_client_cert(ca_cert, ca_key, name)
            _write_private(files[0], cert_pem)
            _write_private(files[1], key_pem)
            _write_private(files[2], secret.encode() + b"\n")
            issued = IssuedUser(*files)
        with self.engine.begin() as conn:
            conn.execute(
                insert(users).values(
                    name=name,
                    role=role,
                    cert_sha256=fingerprint,
                    subject=subject,
                    totp_sealed=self.seal(f"totp:{name}", secret.encode()),
                    created_at=now(),
                )
            )
        self.audit(actor, "user-add", name, detail=f"role={role}")
        return issued

    def remove_user(self, name: str, *, actor: str) -> None:
        """Remove a user and their grants; their certificate is no longer accepted."""
        with self.engine.begin() as conn:
            if not conn.execute(delete(users).where(users.c.name == name)).rowcount:
                raise StoreError(f"no user {name!r}")
            conn.execute(delete(grants).where(grants.c.user == name))
        self.audit(actor, "user-remove", name)

    def list_users(self) -> list[dict[str, Any]]:
        """Users with their role and grants."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
            grant_rows = conn.execute(select(grants)).mappings().all()
        out = []
        for r in rows:
            out.append(
                {
                    "name": r["name"],
                    "role": r["role"],
                    "cert_sha256": r["cert_sha256"],
                    "subject": r["subject"],
                    "created_at": r["created_at"],
                    "grants": [
                        {"group": g["grp"], "deny": bool(g["deny"])}
                        for g in grant_rows
                        if g["user"] == r["name"]
                    ],
                }
            )
        return out

    def grant(self, name: str, group: str, *, deny: bool, actor: str) -> None:
        """Permit (or deny) ``name`` the images of ``group`` and its sub-groups (``*``: every group)."""
        if group != "*":
            check_image_name(group)
        with self.engine.begin() as conn:
            if not conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise StoreError(f"no user {name!r}")
            exists = conn.execute(
                select(grants.c.id).where(grants.c.user == name, grants.c.grp == group, grants.c.deny == deny)
            ).first()
            if not exists:
                conn.execute(insert(grants).values(user=name, grp=group, deny=deny))
        self.audit(actor, "grant", name, detail=f"{'deny' if deny else 'permit'} {group}")

    def user_by_cert(self, fingerprint: str, subject: str, issuer: str = "") -> dict[str, Any] | None:
        """The user a client certificate maps to: a store-issued one by its SHA-256 (so a removed user's
        certificate stops working), one of an enterprise CA by its subject (``--subject``)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.cert_sha256 == fingerprint)).mappings().first()
            store_issued = issuer.endswith(f"commonName=hvguard library client CA {self.id}")
            if row is None and subject and not store_issued:
                row = conn.execute(select(users).where(users.c.subject == subject)).mappings().first()
        return dict(row) if row else None

    def totp_secret(self, name: str, sealed: str) -> str:
        """A user's TOTP seed."""
        return self.unseal(f"totp:{name}", sealed).decode()

    def accept_totp_step(self, name: str, step: int) -> bool:
        """Record ``step`` as ``name``'s last accepted TOTP step, unless that step or a later one was
        accepted already (then False: the code is a replay). A compare-and-set in the database, so two
        requests or two server processes cannot both accept one code."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(totp_steps)
                .where(totp_steps.c.user == name, totp_steps.c.step < step)
                .values(step=step)
            ).rowcount
        if moved:
            return True
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(totp_steps.c.step).where(totp_steps.c.user == name)).first():
                    return False  # this step or a later one was accepted
                conn.execute(insert(totp_steps).values(user=name, step=step))
        except IntegrityError:
            return False  # another request inserted the first step at the same moment
        return True

    def may_access(self, user: str, role: str, name: str) -> bool:
        """Whether ``user`` may see image ``name``: admins always; others by grants, where any deny on a
        group containing the image wins over any permit (a deny inside a wider permit)."""
        if role == "admin":
            return True
        with self.engine.connect() as conn:
            rows = conn.execute(select(grants.c.grp, grants.c.deny).where(grants.c.user == user)).all()
        group = group_of(name)

        def covers(g: str) -> bool:
            return g == "*" or group == g or group.startswith(g + "/") or name == g

        if any(covers(g) for g, deny in rows if deny):
            return False
        return any(covers(g) for g, deny in rows if not deny)


def _slot_aad(store_id: str, name: str) -> bytes:
    return f"hvguard-library:{store_id}:keyslot:{name}".encode()


def read_meta(path: Path) -> dict[str, Any]:
    """``store.json`` of the store at ``path``."""
    try:
        meta = json.loads((path / "store.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path} is not an hvguard image library (no store.json)") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path / 'store.json'}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise StoreError(f"{path / 'store.json'}: not a {STORE_FORMAT} store")
    return meta


def public_key_pem(path: Path) -> bytes:
    """The store's signing public key (PEM); no passphrase needed."""
    read_meta(path)
    try:
        return (path / "signing.pub").read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path / 'signing.pub'}: {exc.strerror}") from None


def list_keyslots(path: Path) -> list[dict[str, Any]]:
    """The key slots of a store (no secret material)."""
    read_meta(path)
    out = []
    for f in sorted((path / "keyslots").glob("*.json")):
        try:
            slot = json.loads(f.read_bytes()[:_MAX_SLOT_BYTES])
            out.append(
                {
                    "name": f.stem,
                    "kdf": slot.get("kdf"),
                    "memory_kib": slot.get("memory_kib"),
                    "time_cost": slot.get("time_cost"),
                    "created_at": slot.get("created_at"),
                }
            )
        except (OSError, ValueError):
            out.append({"name": f.stem, "kdf": "unreadable"})
    return out


def engine_for(path: Path, meta: dict[str, Any], *, create: bool = False) -> Engine:
    """The metadata database engine of a store."""
    url = database_url(meta.get("db") or str(path / "library.sqlite3"))
    try:
        return connect(url, create=create)
    except DatabaseError as exc:
        raise StoreError(str(exc)) from None


def open_store(path: Path, passphrase: str, *, admin: str | None = None) -> Store:
    """Open the store with an administrator's passphrase (the slot ``admin``, else any slot it opens)."""
    meta = read_meta(path)
    slots = sorted((path / "keyslots").glob("*.json"))
    if admin is not None:
        check_user_name(admin)
        slots = [s for s in slots if s.stem == admin]
        if not slots:
            raise StoreError(f"{path} has no key slot for {admin!r} (slot file missing)")
    if not slots:
        raise StoreError(f"{path} has no key slot left: the store cannot be opened")
    for slot_file in slots:
        try:
            slot = json.loads(slot_file.read_bytes()[:_MAX_SLOT_BYTES])
            data_key = crypto.unwrap_slot(
                slot, passphrase.encode(), _slot_aad(str(meta["id"]), slot_file.stem)
            )
        except (OSError, ValueError, crypto.CryptoError):
            continue
        engine = engine_for(path, meta)
        try:  # stores created by an older hvguard lack the newer tables (TOTP steps, quarantine …)
            metadata.create_all(engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"library database: cannot add new tables ({exc.__class__.__name__})") from None
        return Store(path, meta, data_key, engine)
    raise StoreError(f"wrong passphrase: no key slot of {path} opens with it")


def init_store(
    path: Path,
    *,
    admin: str,
    passphrase: str,
    cert_out: Path,
    guest_inspection: str = "required",
    algorithm: str = "ed25519",
    db: str | None = None,
    pkcs11_uri: str | None = None,
    pkcs11_pin: str | None = None,
    pkcs11_module: str | None = None,
) -> tuple[Store, IssuedUser]:
    """Create a store, its client CA, signing key, first key slot and first (admin) user."""
    check_user_name(admin)
    if guest_inspection not in GUEST_INSPECTION:
        raise StoreError(f"--guest-inspection must be one of {', '.join(GUEST_INSPECTION)}")
    if algorithm not in pki.SIGNING_ALGORITHMS:
        raise StoreError(f"unknown signing algorithm {algorithm!r} ({', '.join(pki.SIGNING_ALGORITHMS)})")
    try:
        crypto.check_passphrase_strength(passphrase, user_inputs=(admin, "hvguard", "library"))
    except crypto.CryptoError as exc:
        raise StoreError(str(exc)) from None
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StoreError(f"{path} exists and is not an empty folder: not overwritten")
    signer = None
    if pkcs11_uri is not None:
        from hvguard.services.library.pkcs11key import Pkcs11Signer

        if not pkcs11_pin:
            raise StoreError("a pkcs11: signing key needs --pin-file")
        try:  # before anything is written: a bad URI or PIN leaves no half-made store
            signer = Pkcs11Signer(pkcs11_uri, pkcs11_pin, module=pkcs11_module, algorithm=algorithm)
        except pki.PkiError as exc:
            raise StoreError(str(exc)) from None
        algorithm = signer.algorithm
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    for sub in ("keyslots", "blobs", "tmp"):
        _mkdir_private(path / sub)
    meta = {
        "format": STORE_FORMAT,
        "id": str(uuid.uuid4()),
        "created_at": now(),
        "guest_inspection": guest_inspection,
        "signing_algorithm": algorithm,
        "db": db,
        "pkcs11": {"uri": pkcs11_uri, "module": pkcs11_module} if pkcs11_uri else None,
    }
    _write_private(path / "store.json", json.dumps(meta, indent=1).encode())
    if not db:
        _write_private(path / "library.sqlite3", b"")  # owner-only before SQLite creates it
    engine = engine_for(path, meta, create=True)
    with engine.begin() as conn:
        conn.execute(insert(settings).values(key="store_id", value=meta["id"]))
    store = Store(path, meta, crypto.new_key(), engine)
    ca_cert, ca_key = pki.make_ca(store.id)
    _write_private(path / "ca.crt", ca_cert)
    _write_private(path / "ca.key.sealed", store.seal("ca.key.sealed", ca_key).encode())
    if signer is not None:
        assert pkcs11_pin is not None
        _write_private(path / "signing.pub", pki.public_pem(signer))
        _write_private(
            path / "signing.pin.sealed", store.seal("signing.pin.sealed", pkcs11_pin.encode()).encode()
        )
    else:
        key = pki.generate_signing_key(algorithm)
        _write_private(path / "signing.pub", pki.public_pem(key))
        sealed = store.seal("signing.key.sealed", pki.private_pem(key))
        _write_private(path / "signing.key.sealed", sealed.encode())
    store.audit(admin, "init", store.id, detail=f"guest_inspection={guest_inspection} signing={algorithm}")
    store.add_keyslot(admin, passphrase, actor=admin)
    issued = store.add_user(admin, "admin", cert_out, actor=admin)
    assert issued is not None
    return store, issued


def new_image_id() -> str:
    """A new image id."""
    return str(uuid.uuid4())


def image_rows(store: Store) -> list[dict[str, Any]]:
    """Every image row."""
    with store.engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(select(images).order_by(images.c.name, images.c.version)).mappings()
        ]
