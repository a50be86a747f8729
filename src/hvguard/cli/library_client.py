"""``hvguard library serve`` and the client commands (push, approve, pull, list, delete, regate, status)
plus the offline ``library verify``.

Exit codes (scripting contract): 0 success; 1 authenticated but refused (gate, role, grant, TOTP, own
approval, signature); 2 usage, connection or TLS-handshake error — always one line on stderr. ``push``
prints the new image id as its only stdout line; ``serve`` prints its base URL as its first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hvguard.cli.errors import EXIT_FINDINGS, EXIT_OK, UserError
from hvguard.cli.library import library, library_errors, read_secret
from hvguard.filekind import InputFileError, read_regular_file

_FILE = click.Path(path_type=Path, dir_okay=False)
_DIR = click.Path(path_type=Path, file_okay=False)
_MAX_MANIFEST = 4 * 1024 * 1024


def _client_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option("--cert", type=_FILE, required=True, help="Your client certificate (PEM)."),
            click.option("--key", type=_FILE, required=True, help="Its private key (PEM)."),
            click.option("--ca", type=_FILE, required=True, help="CA that signed the server's certificate."),
            click.option(
                "--totp-file",
                type=_FILE,
                help="TOTP base32 secret or current code (admin calls). A code is accepted once: with the "
                "secret, a second admin call in the same 30-second step waits for the next code (-v says "
                "so); a typed code used before is refused.",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def _totp(path: Path | None) -> tuple[str | None, str | None]:
    """The code to send and, when the file holds the base32 secret rather than a typed code, the secret
    (so a code already used in this 30-second step can be replaced by the next one)."""
    if path is None:
        return None, None
    value = read_secret(path, "--totp-file").strip().replace(" ", "")
    if value.isdigit() and 6 <= len(value) <= 8:
        return value, None
    import pyotp

    secret = value.upper()
    try:
        return str(pyotp.TOTP(secret).now()), secret
    except Exception:  # pyotp raises binascii/ValueError variants for a bad seed
        raise UserError(f"--totp-file {path}: neither a TOTP code nor a base32 secret") from None


def _call(
    url: str, cert: Path, key: Path, ca: Path, totp_file: Path | None, fn: Callable[[Any], int | None]
) -> int:
    """Run ``fn(client)``: refusals are one line and exit 1, connection/TLS errors one line and exit 2."""
    from hvguard.services.library.client import Client, ConnectError, Credentials, RefusedError

    try:
        client = Client(url, Credentials(cert, key, ca, *_totp(totp_file)))
        return fn(client) or EXIT_OK
    except RefusedError as exc:
        click.echo(f"hvguard: refused: {exc.reason}", err=True)
        return EXIT_FINDINGS
    except ConnectError as exc:
        raise UserError(str(exc)) from None
    except library_errors() as exc:
        raise UserError(str(exc)) from None


@library.command("serve")
@click.argument("store", type=_DIR)
@click.option("--listen", required=True, help="HOST:PORT to listen on (port 0: any free port).")
@click.option("--tls-cert", type=_FILE, required=True, help="The server's certificate (PEM).")
@click.option("--tls-key", type=_FILE, required=True, help="Its private key (PEM).")
@click.option("--passphrase-file", type=_FILE, required=True, help="A key-slot passphrase (opens the store).")
@click.option("--admin", "admin", help="Open the store with this administrator's key slot.")
@click.option("--profile", "profile_path", type=_FILE, help="Gate profile (default: the built-in one).")
@click.option(
    "--spool", type=_DIR, help="Private spool folder for the gate, outside STORE (default: TMPDIR)."
)
@click.option(
    "--enterprise-ca",
    type=_FILE,
    help="Also accept client certificates of this CA (users mapped by --subject).",
)
@click.option(
    "--spool-max",
    metavar="BYTES",
    help="Total spool space that concurrent check-ins may hold (e.g. 20G); a push that would exceed it is "
    "refused (HTTP 507, exit 1) before anything is stored [default: 80% of the spool's free space at start].",
)
@click.option(
    "--syslog-socket",
    default="/dev/log",
    show_default=True,
    metavar="PATH",
    help="Local syslog datagram socket that gets a copy of each audit record (facility authpriv); "
    "'none': no copy. The audit log file is written either way.",
)
def serve(
    store: Path,
    listen: str,
    tls_cert: Path,
    tls_key: Path,
    passphrase_file: Path,
    admin: str | None,
    profile_path: Path | None,
    spool: Path | None,
    enterprise_ca: Path | None,
    spool_max: str | None,
    syslog_socket: str,
) -> int:
    """Serve the library over HTTPS with client certificates required; stop with SIGTERM."""
    import tempfile

    from hvguard.services.library.gate import GateProfileError, load_gate_profile
    from hvguard.services.library.server import LibraryApp, make_app
    from hvguard.services.library.spool import SpoolSizeError, parse_size
    from hvguard.services.library.store import open_store
    from hvguard.services.web.server import WebError, run, server_context

    try:
        opened = open_store(store, read_secret(passphrase_file, "--passphrase-file"), admin=admin)
        opened.syslog_socket = None if syslog_socket == "none" else syslog_socket
        profile = load_gate_profile(profile_path)
        spool_dir = (spool or Path(tempfile.gettempdir())).resolve()
        if spool_dir == store.resolve() or store.resolve() in spool_dir.parents:
            raise UserError("--spool must be outside STORE (plaintext never enters the store)")
        if not spool_dir.is_dir():
            raise UserError(f"--spool {spool_dir}: not a folder")
        ctx = server_context(tls_cert, tls_key, (store / "ca.crt").read_bytes(), enterprise_ca)
        max_upload = int(profile.rules["max_virtual_size"] * 1.1) + 64 * 1024 * 1024
        cap = parse_size(spool_max) if spool_max is not None else None
        app = make_app(LibraryApp(opened, profile, spool_dir, max_upload, cap))
        opened.audit(admin or "local", "serve", listen)
        run(app, listen, ctx)
    except (WebError, GateProfileError, SpoolSizeError) as exc:
        raise UserError(str(exc)) from None
    except library_errors() as exc:
        raise UserError(str(exc)) from None
    return EXIT_OK


@library.command("push")
@click.argument("url")
@click.argument("image", type=_FILE)
@click.option("--name", required=True, help="Image name: group/…/name.")
@click.option("--version", "version", required=True)
@_client_options
def push(
    url: str, image: Path, name: str, version: str, cert: Path, key: Path, ca: Path, totp_file: Path | None
) -> int:
    """Check IMAGE in; prints the new image id."""
    from hvguard.services.library.names import check_image_name, check_version

    def run(client: Any) -> int:
        if not image.is_file():
            raise UserError(f"{image}: not a regular file")
        answer = client.push(image, check_image_name(name), check_version(version))
        click.echo(answer["id"])
        return EXIT_OK

    return _call(url, cert, key, ca, totp_file, run)


@library.command("approve")
@click.argument("url")
@click.argument("image_id")
@_client_options
def approve(url: str, image_id: str, cert: Path, key: Path, ca: Path, totp_file: Path | None) -> int:
    """Approve a pending image (the library signs its manifest)."""

    def run(client: Any) -> None:
        signed = client.json("POST", f"/v1/images/{image_id}/approve")
        m = signed["manifest"]
        click.echo(f"approved {m['name']} {m['version']} ({signed['signature']['algorithm']})", err=True)

    return _call(url, cert, key, ca, totp_file, run)


@library.command("pull")
@click.argument("url")
@click.argument("image_id")
@click.option(
    "--output", type=_FILE, required=True, help="Where to write the image (and FILE.manifest.json)."
)
@click.option("--public-key", type=_FILE, help="Trust this signing key (default: the library's, over TLS).")
@click.option("--force", is_flag=True, help="Replace an existing FILE.")
@_client_options
def pull(
    url: str,
    image_id: str,
    output: Path,
    public_key: Path | None,
    force: bool,
    cert: Path,
    key: Path,
    ca: Path,
    totp_file: Path | None,
) -> int:
    """Check an approved image out, verifying its signature and hash before it is written."""
    pem = _read(public_key, "--public-key", 64 * 1024) if public_key else None

    def run(client: Any) -> None:
        m = client.pull(image_id, output, pem, force=force)
        click.echo(
            f"{output}: {m['name']} {m['version']} sha256 {m['sha256']} (signature verified)", err=True
        )

    return _call(url, cert, key, ca, totp_file, run)


@library.command("list")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True)
@_client_options
def list_cmd(url: str, as_json: bool, cert: Path, key: Path, ca: Path, totp_file: Path | None) -> int:
    """List the images you may see."""

    def run(client: Any) -> None:
        rows = client.json("GET", "/v1/images")
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            click.echo(f"{r['id']}\t{r['name']}\t{r['version']}\t{r['status']}\t{r['sha256'][:16]}")

    return _call(url, cert, key, ca, totp_file, run)


@library.command("status")
@click.argument("url")
@_client_options
def status(url: str, cert: Path, key: Path, ca: Path, totp_file: Path | None) -> int:
    """The library's state as JSON (what ``scan --library`` evaluates)."""
    return _call(
        url, cert, key, ca, totp_file, lambda c: click.echo(json.dumps(c.json("GET", "/v1/status"), indent=2))
    )


@library.command("delete")
@click.argument("url")
@click.argument("image_id")
@_client_options
def delete(url: str, image_id: str, cert: Path, key: Path, ca: Path, totp_file: Path | None) -> int:
    """Delete an image (administrators, with --totp-file)."""
    return _call(
        url,
        cert,
        key,
        ca,
        totp_file,
        lambda c: c.json("DELETE", f"/v1/images/{image_id}", admin=True) and None,
    )


@library.command("regate")
@click.argument("url")
@_client_options
def regate(url: str, cert: Path, key: Path, ca: Path, totp_file: Path | None) -> int:
    """Re-run the gate on every image under the server's profile (administrators, TOTP).

    Images that now fail are quarantined; quarantined images that pass again return to their status;
    approved images get a new signed manifest when they come back or when theirs names another gate
    profile (the old one is kept). One line per image: ID, name, version, pass|FAIL, status,
    re-signed|-."""

    def run(client: Any) -> int:
        rows = client.json("POST", "/v1/regate", admin=True)
        for r in rows:
            verdict = "pass" if r["passed"] else "FAIL"
            resigned = "re-signed" if r.get("resigned") else "-"
            click.echo(f"{r['id']}\t{r['name']}\t{r['version']}\t{verdict}\t{r['status']}\t{resigned}")
        return EXIT_OK

    return _call(url, cert, key, ca, totp_file, run)


@library.command("glance-properties")
@click.argument("url")
@click.argument("image_id")
@click.option("--certificate-uuid", required=True, help="The signing certificate's UUID in your key manager.")
@click.option(
    "--hash-method", type=click.Choice(["SHA-224", "SHA-256", "SHA-384", "SHA-512"]), default="SHA-256"
)
@_client_options
def glance_properties(
    url: str,
    image_id: str,
    certificate_uuid: str,
    hash_method: str,
    cert: Path,
    key: Path,
    ca: Path,
    totp_file: Path | None,
) -> int:
    """Print Glance's img_signature* properties for an approved image (RSA-PSS / ECDSA keys only)."""
    from urllib.parse import quote

    def run(client: Any) -> None:
        props = client.json(
            "GET",
            f"/v1/images/{quote(image_id, safe='')}/glance?hash_method={hash_method}"
            f"&certificate_uuid={quote(certificate_uuid, safe='')}",
        )
        click.echo(json.dumps(props, indent=2))

    return _call(url, cert, key, ca, totp_file, run)


def _read(path: Path, what: str, limit: int) -> bytes:
    try:
        return read_regular_file(path, limit)
    except InputFileError as exc:
        raise UserError(f"{what} {path}: {exc.text}") from None


@library.command("verify")
@click.argument("file", type=_FILE)
@click.option("--manifest", "manifest_path", type=_FILE, required=True, help="FILE.manifest.json")
@click.option("--public-key", type=_FILE, required=True, help="The library's signing public key (PEM).")
def verify(file: Path, manifest_path: Path, public_key: Path) -> int:
    """Verify an image against its signed manifest, offline. Exit 0 valid, 1 not."""
    from hvguard.services.library import manifest, pki

    try:
        envelope = json.loads(_read(manifest_path, "--manifest", _MAX_MANIFEST))
    except ValueError:
        raise UserError(f"--manifest {manifest_path}: not JSON") from None
    pem = _read(public_key, "--public-key", 64 * 1024)
    try:
        pki.load_public_key(pem)
    except pki.PkiError as exc:
        raise UserError(f"--public-key {public_key}: {exc}") from None
    if not file.is_file():
        raise UserError(f"{file}: not a regular file")
    try:
        m = manifest.verify_file(file, envelope, pem)
    except pki.PkiError as exc:
        click.echo(f"hvguard: refused: {exc}", err=True)
        return EXIT_FINDINGS
    click.echo(
        f"{file}: {m['name']} {m['version']} approved by {m['approver']}: signature and sha256 valid",
        err=True,
    )
    return EXIT_OK
