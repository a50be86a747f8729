"""``collect --sign KEY`` and ``evaluate --verify KEY``: detached Ed25519 signatures of evidence bundles.

An unsigned bundle proves nothing about who wrote it or whether it was edited; a bundle whose detached
signature (``BUNDLE.sig``, over the bundle file's exact bytes) verifies with the auditor's public key
was written by the holder of the private key and not changed since. Every key or signature problem is
one line and exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hvguard.cli.errors import UserError
from hvguard.cli.output import OWNER_ONLY, Destination, destination, write_output
from hvguard.collect.bundle import BundleSource, bundle_source, decode_bundle, read_bundle_file
from hvguard.collect.estate import bundle_paths, estate_targets
from hvguard.facts import Bundle, TargetFacts
from hvguard.signing import SigningError, signature_path

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

F = TypeVar("F", bound=Callable[..., Any])


def sign_option(fn: F) -> F:
    """``--sign KEY``: write a detached signature beside the bundle."""
    return click.option(
        "--sign",
        "sign_key",
        metavar="KEY",
        help="Sign the bundle with this Ed25519 private key (PEM PKCS#8, `openssl genpkey -algorithm "
        "ed25519`): writes the detached signature BUNDLE.sig beside it.",
    )(fn)


def verify_option(fn: F) -> F:
    """``--verify PUBKEY``: refuse a bundle whose detached signature does not verify."""
    return click.option(
        "--verify",
        "verify_key",
        metavar="PUBKEY",
        help="Evaluate the bundles only if each BUNDLE.sig is its signature by this Ed25519 public key "
        "(SPKI PEM); the report's source.bundles[].signed_by names the key.",
    )(fn)


def signer(key: str | None, output: Path, *, force: bool) -> Ed25519PrivateKey | None:
    """The private key of ``--sign``, loaded (and the signature's path checked) before collecting."""
    if key is None:
        return None
    from hvguard.signing import load_private_key

    try:
        private = load_private_key(key)
    except SigningError as exc:
        raise UserError(str(exc)) from exc
    if destination(output, force=force) not in (Destination.NEW, Destination.REGULAR):
        raise UserError("--sign needs --output to name a bundle file (the signature is written beside it)")
    destination(signature_path(output), force=force)
    return private


def write_signature(private: Ed25519PrivateKey | None, data: bytes, output: Path, *, force: bool) -> None:
    """Write the detached signature of the bundle bytes ``data`` to ``OUTPUT.sig``."""
    if private is None:
        return
    from hvguard.signing import sign

    write_output(sign(private, data), signature_path(output), force=force, mode=OWNER_ONLY)


def _public_key(verify_key: str) -> Ed25519PublicKey:
    from hvguard.signing import load_public_key

    try:
        return load_public_key(verify_key)
    except SigningError as exc:
        raise UserError(str(exc)) from exc


def _load(path: Path, public: Ed25519PublicKey | None) -> tuple[Bundle, BundleSource]:
    """Read the bundle at ``path`` — verifying its detached signature with ``public`` first, when
    given — and its provenance for the report."""
    raw = read_bundle_file(path)
    signed_by = None
    if public is not None:
        from hvguard.signing import verify

        try:
            signed_by = verify(public, raw, path)
        except SigningError as exc:
            raise UserError(str(exc)) from exc
    bundle = decode_bundle(path, raw)
    return bundle, bundle_source(path, raw, bundle, signed_by)


def load_estate(args: Sequence[Path], verify_key: str | None) -> tuple[list[TargetFacts], list[BundleSource]]:
    """The targets of every bundle named by ``args`` (bundle files or directories of them, see
    :mod:`hvguard.collect.estate`) and each bundle's provenance, in order. With ``verify_key`` every
    bundle must carry a detached signature by that key. Any bundle that cannot be read, decoded or
    verified, and a target named by two bundles, is one line and exit 2 — nothing is evaluated, since a
    report that quietly left a host out would read as a smaller, cleaner estate."""
    found = bundle_paths(args)
    public = None if verify_key is None else _public_key(verify_key)
    sources: list[BundleSource] = []

    def each() -> Iterator[tuple[Path, Bundle]]:
        for path in found.paths:
            bundle, source = _load(path, public)
            sources.append(source)
            yield path, bundle

    named = estate_targets(each(), estate=found.estate)
    targets = [t for _path, ts in named for t in ts]
    return targets, [
        replace(src, targets=tuple(t.id for t in ts)) for src, (_p, ts) in zip(sources, named, strict=True)
    ]
