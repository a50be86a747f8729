"""``scan``/``collect`` options that read an hvguard image library into the facts (``--library URL``
with a reader's ``--cert``, ``--key`` and the ``--ca`` that signed the library's server certificate)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hvguard.cli.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


def _verifier() -> Callable[[Any, bytes], dict[str, Any] | str]:
    """Verify a signed manifest with the library's key (the per-VM disk records need it)."""
    try:
        from hvguard.services.library import manifest, pki
    except ImportError as exc:
        raise UserError(f"--library needs hvguard[library] installed ({exc.name} is missing)") from None

    def verify(envelope: Any, public_key_pem: bytes) -> dict[str, Any] | str:
        try:
            return manifest.verify_envelope(envelope, public_key_pem)
        except pki.PkiError as exc:
            return str(exc) or "the signature does not verify"

    return verify


def library_options(fn: F) -> F:
    """Add ``--library/--cert/--key/--ca`` and pass them as one ``library`` argument
    (a :class:`~hvguard.collect.library.LibrarySource`, or None)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        library_url: str | None,
        library_cert: Path | None,
        library_key: Path | None,
        library_ca: Path | None,
        **kwargs: Any,
    ) -> Any:
        source = None
        given = [v for v in (library_cert, library_key, library_ca) if v is not None]
        if library_url is None:
            if given:
                raise UserError("--cert/--key/--ca are for --library URL: give the library's URL")
        else:
            if len(given) != 3:
                raise UserError("--library needs --cert, --key and --ca (a reader's client certificate)")
            if not library_url.startswith("https://"):
                raise UserError(f"--library {library_url}: the image library is served over https:// only")
            from hvguard.collect.library import LibrarySource

            assert library_cert and library_key and library_ca
            source = LibrarySource(library_url, library_cert, library_key, library_ca, verify=_verifier())
        return fn(*args, library=source, **kwargs)

    for decorator in reversed(
        [
            click.option("--library", "library_url", metavar="URL", help="hvguard image library to assess."),
            click.option("--cert", "library_cert", type=_FILE, help="Client certificate for --library."),
            click.option("--key", "library_key", type=_FILE, help="Its private key."),
            click.option("--ca", "library_ca", type=_FILE, help="CA of the library's server certificate."),
        ]
    ):
        wrapper = decorator(wrapper)
    return wrapper  # type: ignore[return-value]
