"""``hvguard library``: the signed, encrypted, access-controlled VM image library (SS-009 11.2.8-11.2.10,
11.3.8, 11.3.9).

Local commands work on the store folder and need an administrator's key-slot passphrase
(``--passphrase-file``, never on the command line); client commands (``library_client``) talk to
``library serve`` over mutual TLS. Exit codes: 0 success; 1 authenticated but refused (or a tampered
audit log); 2 usage, input, connection or TLS error — always one line on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, UserError
from hvguard.filekind import InputFileError, read_regular_file

F = TypeVar("F", bound=Callable[..., Any])
_SECRET_LIMIT = 4096
_FILE = click.Path(path_type=Path, dir_okay=False)
_DIR = click.Path(path_type=Path, file_okay=False)


def read_secret(path: Path, what: str) -> str:
    """The first line of a small secret file (passphrase, TOTP), without its line ending."""
    try:
        data = read_regular_file(path, _SECRET_LIMIT)
    except InputFileError as exc:
        raise UserError(f"{what} {path}: {exc.text}") from None
    try:
        text = data.decode("utf-8").splitlines()[0] if data.strip() else ""
    except UnicodeDecodeError:
        raise UserError(f"{what} {path}: not UTF-8 text") from None
    if not text:
        raise UserError(f"{what} {path}: empty")
    return text


def library_errors() -> tuple[type[Exception], ...]:
    """The library's one-line error types (imported lazily with the library)."""
    from hvguard.services.library.crypto import CryptoError
    from hvguard.services.library.pki import PkiError
    from hvguard.services.library.store import StoreError

    return (StoreError, CryptoError, PkiError)


def _open(store: Path, passphrase_file: Path, admin: str | None = None) -> Any:
    from hvguard.services.library.store import open_store

    passphrase = read_secret(passphrase_file, "--passphrase-file")
    return open_store(store, passphrase, admin=admin)


def _guard(fn: Callable[[], int | None]) -> int:
    """Run ``fn``, turning the library's own errors into one-line usage errors (exit 2)."""
    try:
        return fn() or EXIT_OK
    except library_errors() as exc:
        raise UserError(str(exc)) from None


_passphrase = click.option(
    "--passphrase-file",
    type=_FILE,
    required=True,
    help="File holding an administrator's key-slot passphrase.",
)
_admin = click.option("--admin", "admin", help="Open the store with this administrator's key slot.")


@click.group("library")
def library() -> None:
    """The VM image library: store, keys, users, the HTTPS service and its clients."""


@library.command("init")
@click.argument("store", type=_DIR)
@click.option("--admin", "admin", required=True, help="The first administrator (key slot and user).")
@_passphrase
@click.option("--cert-out", type=_DIR, required=True, help="Folder for NAME.crt, NAME.key and NAME.totp.")
@click.option(
    "--guest-inspection",
    type=click.Choice(["required", "warn", "off"]),
    default="required",
    show_default=True,
)
@click.option(
    "--signing-key-type",
    type=click.Choice(["ed25519", "ecdsa-p384", "ecdsa-p521", "rsa-pss-3072", "rsa-pss-4096"]),
    default="ed25519",
    show_default=True,
)
@click.option(
    "--metadata-db",
    "db",
    help="Metadata database: a PostgreSQL URL (default: SQLite in STORE); not --db, the scan history's.",
)
@click.option(
    "--signing-key", "signing_key", metavar="pkcs11:URI", help="Keep the signing key in a PKCS#11 token."
)
@click.option("--pin-file", type=_FILE, help="The token's user PIN (with --signing-key pkcs11:…).")
@click.option("--pkcs11-module", help="PKCS#11 module (default: SoftHSM2's libsofthsm2.so).")
def init_cmd(
    store: Path,
    admin: str,
    passphrase_file: Path,
    cert_out: Path,
    guest_inspection: str,
    signing_key_type: str,
    db: str | None,
    signing_key: str | None,
    pin_file: Path | None,
    pkcs11_module: str | None,
) -> int:
    """Create a store with its client CA, signing key, first key slot and administrator."""

    def run() -> None:
        from hvguard.services.library.store import init_store

        passphrase = read_secret(passphrase_file, "--passphrase-file")
        _, issued = init_store(
            store,
            admin=admin,
            passphrase=passphrase,
            cert_out=cert_out,
            guest_inspection=guest_inspection,
            algorithm=signing_key_type,
            db=db,
            pkcs11_uri=signing_key,
            pkcs11_pin=read_secret(pin_file, "--pin-file") if pin_file else None,
            pkcs11_module=pkcs11_module,
        )
        click.echo(f"created {store}: administrator {admin}, certificate {issued.cert}", err=True)

    return _guard(run)


@library.group("keyslot")
def keyslot() -> None:
    """The administrators' key slots (each wraps the store's data key)."""


@keyslot.command("add")
@click.argument("store", type=_DIR)
@click.argument("name")
@_passphrase
@_admin
@click.option("--new-passphrase-file", type=_FILE, required=True, help="The new slot's passphrase.")
def keyslot_add(
    store: Path, name: str, passphrase_file: Path, admin: str | None, new_passphrase_file: Path
) -> int:
    """Add a key slot for administrator NAME."""

    def run() -> None:
        opened = _open(store, passphrase_file, admin)
        opened.add_keyslot(
            name, read_secret(new_passphrase_file, "--new-passphrase-file"), actor=admin or "local"
        )

    return _guard(run)


@keyslot.command("remove")
@click.argument("store", type=_DIR)
@click.argument("name")
@_passphrase
@_admin
def keyslot_remove(store: Path, name: str, passphrase_file: Path, admin: str | None) -> int:
    """Remove administrator NAME's key slot (never the last one)."""
    return _guard(lambda: _open(store, passphrase_file, admin).remove_keyslot(name, actor=admin or "local"))


@keyslot.command("list")
@click.argument("store", type=_DIR)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of one line per slot.")
def keyslot_list(store: Path, as_json: bool) -> int:
    """List the key slots (names and KDF parameters; no secret)."""

    def run() -> None:
        from hvguard.services.library.store import list_keyslots

        slots = list_keyslots(store)
        if as_json:
            click.echo(json.dumps(slots, indent=2))
        for s in [] if as_json else slots:
            click.echo(
                f"{s['name']}\t{s['kdf']}\tmemory={s.get('memory_kib')}KiB\tpasses={s.get('time_cost')}"
            )

    return _guard(run)


@library.group("user")
def user() -> None:
    """Users (client certificates) and their roles."""


@user.command("add")
@click.argument("store", type=_DIR)
@click.argument("name")
@click.option("--role", type=click.Choice(["reader", "publisher", "approver", "admin"]), required=True)
@click.option("--cert-out", type=_DIR, help="Issue a client certificate: NAME.crt, NAME.key, NAME.totp here.")
@click.option("--subject", help="Instead: map this certificate subject of an enterprise CA to NAME.")
@_passphrase
@_admin
def user_add(
    store: Path,
    name: str,
    role: str,
    cert_out: Path | None,
    subject: str | None,
    passphrase_file: Path,
    admin: str | None,
) -> int:
    """Add user NAME with ROLE."""

    def run() -> None:
        opened = _open(store, passphrase_file, admin)
        issued = opened.add_user(name, role, cert_out, actor=admin or "local", subject=subject)
        if issued is not None:
            click.echo(f"user {name} ({role}): certificate {issued.cert}", err=True)

    return _guard(run)


@user.command("remove")
@click.argument("store", type=_DIR)
@click.argument("name")
@_passphrase
@_admin
def user_remove(store: Path, name: str, passphrase_file: Path, admin: str | None) -> int:
    """Remove user NAME (their certificate stops working at once)."""
    return _guard(lambda: _open(store, passphrase_file, admin).remove_user(name, actor=admin or "local"))


@user.command("list")
@click.argument("store", type=_DIR)
@_passphrase
@_admin
@click.option("--json", "as_json", is_flag=True)
def user_list(store: Path, passphrase_file: Path, admin: str | None, as_json: bool) -> int:
    """List users, roles and grants."""

    def run() -> None:
        rows = _open(store, passphrase_file, admin).list_users()
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            grants = ",".join(("!" if g["deny"] else "") + g["group"] for g in r["grants"]) or "-"
            click.echo(f"{r['name']}\t{r['role']}\t{grants}")

    return _guard(run)


@library.command("grant")
@click.argument("store", type=_DIR)
@click.argument("name")
@click.option("--group", "group", required=True, help="Image group (name prefix), or '*' for all.")
@click.option("--deny", is_flag=True, help="Deny this group (wins over a permit on a wider group).")
@_passphrase
@_admin
def grant_cmd(
    store: Path, name: str, group: str, deny: bool, passphrase_file: Path, admin: str | None
) -> int:
    """Permit (or deny) user NAME the images of a group."""
    return _guard(
        lambda: _open(store, passphrase_file, admin).grant(name, group, deny=deny, actor=admin or "local")
    )


@library.command("public-key")
@click.argument("store", type=_DIR)
def public_key(store: Path) -> int:
    """Print the store's signing public key (PEM)."""

    def run() -> None:
        from hvguard.services.library.store import public_key_pem

        click.echo(public_key_pem(store).decode("ascii"), nl=False)

    return _guard(run)


@library.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail."""


@audit_group.command("verify")
@click.argument("store", type=_DIR)
def audit_verify(store: Path) -> int:
    """Exit 0 if the audit log is intact, 1 (naming each problem) if it was tampered with."""

    def run() -> int:
        from hvguard.services.library import audit
        from hvguard.services.library.store import engine_for, read_meta

        meta = read_meta(store)
        problems = audit.verify(store, engine_for(store, meta))
        for p in problems:
            click.echo(f"audit log tampered: {p}", err=True)
        if problems:
            return EXIT_FINDINGS
        click.echo("audit log intact", err=True)
        return EXIT_OK

    return _guard(run)
