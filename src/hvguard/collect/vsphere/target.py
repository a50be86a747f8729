"""``vsphere://USER@HOST[:PORT]`` targets and how hvguard gets their password and trusts their certificate.

The user part is percent-decoded, so ``vsphere://administrator%40vsphere.local@vc.example`` logs in as
``administrator@vsphere.local``. The password never comes from the command line (it would be visible in
``ps`` and shell history) and is never logged; it comes, first match wins, from:

1. ``--credentials FILE``: a YAML mapping of target (as typed) → password file, for multi-target runs;
2. ``--password-file FILE``;
3. the environment variable ``HVGUARD_VSPHERE_PASSWORD``.

Password files and the credentials file must be regular files readable by their owner only (mode
``0600`` or stricter): a secret that other accounts can read is refused, not warned about.
Certificates are always verified; ``--tls-ca FILE`` adds a private CA, and ``--tls-insecure`` turns
verification off as an explicit choice that is reported on stderr and recorded in the report.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hvguard.collect.interface import CollectError
from hvguard.filekind import InputFileError, kind_of, read_regular_file
from hvguard.yamlsafe import YamlInputError, load_yaml

SCHEME = "vsphere"
DEFAULT_PORT = 443
PASSWORD_ENV = "HVGUARD_VSPHERE_PASSWORD"  # noqa: S105 - the variable's name, not a password
#: A password file or credentials file larger than this is not a secret file.
SECRET_FILE_LIMIT = 64 * 1024


class VsphereTargetError(CollectError, ValueError):
    """A ``vsphere://`` target, option or secret file hvguard cannot use (a usage error, exit 2)."""


@dataclass(frozen=True)
class VsphereTarget:
    """One parsed ``vsphere://`` target: the decoded user, the host and the port."""

    text: str
    """The target as given (the key of ``--credentials`` and the report's target id)."""
    user: str
    host: str
    port: int = DEFAULT_PORT


@dataclass(frozen=True)
class VsphereOptions:
    """How ``vsphere://`` targets are reached (``--password-file``, ``--credentials``, ``--tls-ca``,
    ``--tls-insecure``)."""

    password_file: Path | None = None
    credentials: Path | None = None
    tls_ca: Path | None = None
    tls_insecure: bool = False

    def __post_init__(self) -> None:
        if self.tls_insecure and self.tls_ca is not None:
            raise VsphereTargetError("--tls-ca and --tls-insecure contradict each other: give one")


def is_vsphere_target(target: str) -> bool:
    """True for ``vsphere://…`` target strings."""
    return target.startswith(f"{SCHEME}://")


def parse_vsphere_target(target: str) -> VsphereTarget:
    """Parse ``vsphere://USER@HOST[:PORT]``; raise :class:`VsphereTargetError` for anything else."""
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError as exc:  # a bad port or an unclosed IPv6 bracket
        raise VsphereTargetError(f"{target}: not a valid vsphere:// target ({exc})") from None
    if parts.scheme != SCHEME:
        raise VsphereTargetError(f"{target}: not a vsphere:// target")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise VsphereTargetError(
            f"{target}: a vsphere:// target is vsphere://USER@HOST[:PORT], nothing after"
        )
    if parts.password is not None:
        raise VsphereTargetError(
            f"{SCHEME}://{parts.hostname}: a password in the target is refused (it would show in ps and "
            f"shell history); use {PASSWORD_ENV}, --password-file or --credentials"
        )
    if not parts.username:
        raise VsphereTargetError(f"{target}: name the user: vsphere://USER@HOST[:PORT]")
    if not parts.hostname:
        raise VsphereTargetError(f"{target}: no host: vsphere://USER@HOST[:PORT]")
    return VsphereTarget(
        text=target, user=unquote(parts.username), host=parts.hostname, port=port or DEFAULT_PORT
    )


def read_secret_file(path: Path, what: str) -> bytes:
    """The bytes of a secret file that only its owner can read; :class:`VsphereTargetError` otherwise."""
    try:
        mode = os.stat(path).st_mode
        data = read_regular_file(path, SECRET_FILE_LIMIT)
    except FileNotFoundError:
        raise VsphereTargetError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise VsphereTargetError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except InputFileError as exc:
        if exc.problem == "special":
            raise VsphereTargetError(f"{what} {path}: {kind_of(exc.mode)}, not a regular file") from None
        if exc.problem == "too_large":
            raise VsphereTargetError(f"{what} {path}: larger than {SECRET_FILE_LIMIT} bytes") from None
        raise VsphereTargetError(f"{what} {path}: {exc.text}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VsphereTargetError(
            f"{what} {path}: readable by group or others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
        )
    return data


def _password_from_file(path: Path, what: str) -> str:
    try:
        text = read_secret_file(path, what).decode()
    except UnicodeDecodeError:
        raise VsphereTargetError(f"{what} {path}: not UTF-8 text") from None
    password = text.rstrip("\r\n")  # an editor's final newline is not part of the password
    if not password:
        raise VsphereTargetError(f"{what} {path}: empty")
    return password


def _credentials(path: Path) -> Mapping[str, object]:
    raw = read_secret_file(path, "--credentials")
    try:
        data = load_yaml(raw.decode("utf-8", errors="strict"), str(path))
    except (YamlInputError, UnicodeDecodeError) as exc:
        raise VsphereTargetError(f"--credentials {path}: {exc}") from None
    if not isinstance(data, Mapping):
        raise VsphereTargetError(f"--credentials {path}: must map each target to its password file")
    return data


def password_for(
    target: VsphereTarget, options: VsphereOptions, environ: Mapping[str, str] | None = None
) -> str:
    """The password for ``target`` (see the module's order); :class:`VsphereTargetError` when none."""
    env = os.environ if environ is None else environ
    if options.credentials is not None:
        entry = _credentials(options.credentials).get(target.text)
        if entry is not None:
            if not isinstance(entry, str) or not entry:
                raise VsphereTargetError(
                    f"--credentials {options.credentials}: {target.text}: "
                    "the value must be a password file path"
                )
            file = Path(entry)
            if not file.is_absolute():  # relative to the credentials file, not to the current directory
                file = options.credentials.parent / file
            return _password_from_file(file, f"password file for {target.text}:")
    if options.password_file is not None:
        return _password_from_file(options.password_file, "--password-file")
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    raise VsphereTargetError(
        f"{target.text}: no password: set {PASSWORD_ENV}, or give --password-file FILE or --credentials FILE"
    )
