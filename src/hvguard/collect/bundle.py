"""Offline evidence bundles: the collected facts written to a file, read back for evaluation.

A bundle is JSON (gzip-compressed when the file name ends in ``.gz``) holding a :class:`Bundle`. Reading
is strict: a corrupt, truncated or wrong-version bundle raises :class:`BundleError` with one line saying
what is wrong, never a partially-read set of facts. A bundle of an older facts model that can still be
read (``collect.migrate``) is migrated to this model on read.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from hvguard import __version__
from hvguard.collect.interface import CollectError
from hvguard.collect.migrate import can_migrate, migrate_target, readable_versions
from hvguard.facts import BUNDLE_SCHEMA, FACTS_VERSION, Bundle, TargetFacts

MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024


class _Header(msgspec.Struct):
    """Just the identifying fields, decoded first (msgspec skips the rest cheaply)."""

    schema: str | None = None
    facts_version: int | None = None


_decoder = msgspec.json.Decoder(Bundle)
_header_decoder = msgspec.json.Decoder(_Header)


class BundleError(CollectError, ValueError):
    """A bundle that cannot be read or used."""


def make_bundle(targets: list[TargetFacts]) -> Bundle:
    """Wrap collected targets with the model version and creation metadata."""
    return Bundle(
        schema=BUNDLE_SCHEMA,
        facts_version=FACTS_VERSION,
        tool_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        targets=targets,
    )


def encode_bundle(bundle: Bundle, name: str) -> bytes:
    """The bytes of ``bundle`` in a file called ``name``: JSON, gzip-compressed when it ends in ``.gz``."""
    data = msgspec.json.encode(bundle)
    if name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6)
    return data


def write_bundle(bundle: Bundle, path: Path, *, overwrite: bool = False) -> None:
    """Write ``bundle`` to ``path`` atomically; refuse to replace an existing file unless ``overwrite``.

    For library use and tests; ``hvguard collect`` writes :func:`encode_bundle` through the command
    line's output writer."""
    if path.exists() and not overwrite:
        raise BundleError(f"{path} exists; pass --force to replace it")
    data = encode_bundle(bundle, path.name)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_bundle(path: Path) -> Bundle:
    """Read and validate a bundle; :class:`BundleError` with a one-line reason on any defect."""
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(f"{path}: corrupt gzip data ({exc})") from exc
    # Look at the header first so a bundle from another version says so, rather than failing on
    # whichever field happened to change.
    try:
        head = _header_decoder.decode(data)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        raise BundleError(f"{path}: not an hvguard bundle ({exc})") from exc
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: not a valid hvguard bundle (truncated or corrupt JSON: {exc})") from exc
    if head.schema != BUNDLE_SCHEMA:
        raise BundleError(
            f"{path}: not an hvguard bundle (schema {head.schema!r}, expected {BUNDLE_SCHEMA!r})"
        )
    if not can_migrate(head.facts_version):
        raise BundleError(
            f"{path}: facts model version {head.facts_version!r} is not supported "
            f"(this hvguard reads {readable_versions()}; re-collect with this version)"
        )
    try:
        bundle = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BundleError(f"{path}: invalid bundle content: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: corrupt bundle: {exc}") from exc
    if bundle.facts_version == FACTS_VERSION:
        return bundle
    # Later fields are all defaulted, so an older document decodes into this model; fill them in.
    return msgspec.structs.replace(
        bundle,
        facts_version=FACTS_VERSION,
        targets=[migrate_target(t, bundle.facts_version) for t in bundle.targets],
    )
