"""Offline evidence bundles: the collected facts written to a file, read back for evaluation.

A bundle is JSON (gzip-compressed when the file name ends in ``.gz``) holding a :class:`Bundle`. Reading
is strict: a corrupt, truncated or wrong-version bundle raises :class:`BundleError` with one line saying
what is wrong, never a partially-read set of facts. A bundle of an older facts model that can still be
read (``collect.migrate``) is migrated to this model on read.

A bundle is untrusted input: it is read only from a regular file, inflated in bounded steps up to
:class:`BundleLimits` ``max_bytes``, its targets and VMs are counted (a few bytes each) before the facts
are built, and a bundle with no targets or naming a target or VM twice is refused. Who wrote it and
whether it was edited is shown only by a detached signature (``hvguard.signing``), never by its content.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from hvguard import __version__
from hvguard.collect.interface import CollectError
from hvguard.collect.migrate import can_migrate, migrate_target, readable_versions
from hvguard.facts import BUNDLE_SCHEMA, FACTS_VERSION, Bundle, Problem, TargetFacts
from hvguard.filekind import InputFileError, kind_of, read_regular_file

#: Defaults of the input limits (the architecture's "Input limits": well above the scale goals of
#: 100,000 VMs and 10,000 targets); each can be changed with the environment variable beside it.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_VMS = 100_000
DEFAULT_MAX_TARGETS = 10_000
MAX_BYTES_ENV = "HVGUARD_BUNDLE_MAX_BYTES"
MAX_VMS_ENV = "HVGUARD_BUNDLE_MAX_VMS"
MAX_TARGETS_ENV = "HVGUARD_BUNDLE_MAX_TARGETS"

_CHUNK = 1024 * 1024
#: JSON objects allowed per counted VM and per counted target (a real VM has about 15-40, a target's
#: host facts a few hundred): a bundle of empty objects (``{}`` decodes to a whole struct of defaults,
#: ~100x its bytes) is refused instead of being built. Braces inside strings count too, so these are
#: generous upper bounds.
_OBJECTS_PER_VM = 500
_OBJECTS_PER_TARGET = 200_000


@dataclass(frozen=True)
class BundleLimits:
    """How much of an untrusted bundle is read before it is refused."""

    max_bytes: int = DEFAULT_MAX_BYTES
    """The largest file, and the largest JSON after gzip inflation, in bytes."""
    max_vms: int = DEFAULT_MAX_VMS
    """The most VMs over all targets."""
    max_targets: int = DEFAULT_MAX_TARGETS
    """The most targets."""

    @classmethod
    def from_env(cls) -> BundleLimits:
        """The defaults, each replaced by its environment variable when that is set."""

        def one(env: str, default: int) -> int:
            raw = os.environ.get(env, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise BundleError(f"{env}={raw!r}: give a whole number of at least 1")
            return value

        return cls(
            max_bytes=one(MAX_BYTES_ENV, DEFAULT_MAX_BYTES),
            max_vms=one(MAX_VMS_ENV, DEFAULT_MAX_VMS),
            max_targets=one(MAX_TARGETS_ENV, DEFAULT_MAX_TARGETS),
        )


@dataclass(frozen=True)
class BundleSource:
    """Where an evaluated bundle came from, for the report's ``source.bundle`` block."""

    path: str
    """The bundle as given on the command line."""
    sha256: str
    """SHA-256 of the bundle file's bytes (as stored: compressed when gzip), hex."""
    created_at: str
    """When ``hvguard collect`` wrote it, as the bundle says."""
    tool_version: str
    """The hvguard version that wrote it, as the bundle says."""
    signed_by: str | None
    """SHA-256 fingerprint (hex) of the public key (SubjectPublicKeyInfo DER) its detached signature
    was verified with; None when no signature was verified."""
    targets: tuple[str, ...] = ()
    """The ids of the targets it gave the evaluation (as the report names them)."""


class _TooMany(Exception):
    """Raised from the counting structs below to stop a decode as soon as a limit is passed."""


class _Counts:
    def __init__(self, limits: BundleLimits) -> None:
        self.limits = limits
        self.vms = 0
        self.targets = 0


_counts: ContextVar[_Counts | None] = ContextVar("hvguard_bundle_counts", default=None)


class _VmCount(msgspec.Struct, gc=False):
    """One VM, counted and otherwise skipped."""

    def __post_init__(self) -> None:
        c = _counts.get()
        if c is not None:
            c.vms += 1
            if c.vms > c.limits.max_vms:
                raise _TooMany(f"more than {c.limits.max_vms} VMs (limit: {MAX_VMS_ENV})")


class _HypervisorCount(msgspec.Struct, gc=False):
    vms: list[_VmCount] = []


class _TargetCount(msgspec.Struct, gc=False):
    hypervisor: _HypervisorCount | None = None
    vsphere: _HypervisorCount | None = None  # a vSphere target's VMs count against the same limit

    def __post_init__(self) -> None:
        c = _counts.get()
        if c is not None:
            c.targets += 1
            if c.targets > c.limits.max_targets:
                raise _TooMany(f"more than {c.limits.max_targets} targets (limit: {MAX_TARGETS_ENV})")


class _Header(msgspec.Struct, gc=False):
    """Just the identifying fields, decoded first (msgspec skips the rest cheaply)."""

    schema: str | None = None
    facts_version: int | None = None


class _Counted(msgspec.Struct, gc=False):
    """The targets and VMs only, counted (a few bytes each) before the whole bundle is decoded."""

    targets: list[_TargetCount] = []


_decoder = msgspec.json.Decoder(Bundle)
_header_decoder = msgspec.json.Decoder(_Header)
_count_decoder = msgspec.json.Decoder(_Counted)


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


def read_bundle_file(path: Path, limits: BundleLimits | None = None) -> bytes:
    """The bytes of the bundle file ``path`` as stored (compressed or not), read only from a regular
    file and at most ``limits.max_bytes`` of them; :class:`BundleError` otherwise.

    The file is opened non-blocking so a FIFO cannot hang the open, and its type is checked on the
    open descriptor (no race with a rename)."""
    limits = limits or BundleLimits.from_env()
    try:
        return read_regular_file(path, limits.max_bytes, chunk=_CHUNK)
    except InputFileError as exc:
        limit = f"the limit of {limits.max_bytes} bytes ({MAX_BYTES_ENV})"
        if exc.problem == "special":
            what = f"{kind_of(exc.mode)}, not a regular file; give a bundle file"
            raise BundleError(f"{path}: {what}") from None
        if exc.problem == "too_large" and exc.size is not None:
            raise BundleError(f"{path}: {exc.size} bytes, larger than {limit}") from None
        if exc.problem == "too_large":  # it grew while being read
            raise BundleError(f"{path}: larger than {limit}") from None
        raise BundleError(f"cannot read bundle {path}: {exc.reason}") from exc


def _inflate(path: Path, data: bytes, cap: int) -> bytes | bytearray:
    """``data`` (one or more gzip members) inflated in bounded steps, refused past ``cap`` bytes."""
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        while not inflater.eof:
            try:
                chunk = inflater.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise BundleError(f"{path}: corrupt gzip data ({exc})") from exc
            if not out and chunk and chunk.lstrip()[:1] not in (b"", b"{"):
                raise BundleError(f"{path}: not an hvguard bundle (the inflated data is not a JSON object)")
            out += chunk
            if len(out) > cap:
                raise BundleError(f"{path}: inflates to more than the limit of {cap} bytes ({MAX_BYTES_ENV})")
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                raise BundleError(f"{path}: corrupt gzip data (truncated)")
        rest = inflater.unused_data
        if not rest:
            return out
        if rest[:2] != b"\x1f\x8b":
            raise BundleError(f"{path}: corrupt gzip data (trailing garbage after the compressed data)")


def _check_counts(path: Path, data: bytes | bytearray, limits: BundleLimits) -> None:
    """Refuse a bundle with more targets or VMs than ``limits`` before decoding it whole: the counting
    decode keeps a few bytes per VM and stops at the first VM or target past the limit."""
    counts = _Counts(limits)
    token = _counts.set(counts)
    try:
        _count_decoder.decode(data)
    except _TooMany as exc:
        raise BundleError(f"{path}: {exc}") from None
    except msgspec.ValidationError as exc:
        raise BundleError(f"{path}: invalid bundle content: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: corrupt bundle: {exc}") from exc
    finally:
        _counts.reset(token)
    allowed = _OBJECTS_PER_VM * counts.vms + _OBJECTS_PER_TARGET * max(counts.targets, 1)
    objects = data.count(b"{")
    if objects > allowed:
        raise BundleError(
            f"{path}: {objects} JSON objects for {counts.targets} target(s) and {counts.vms} VM(s) "
            f"(at most {allowed}); not a bundle hvguard wrote"
        )


def _check_unique(path: Path, bundle: Bundle) -> None:
    """Refuse a bundle naming a target twice, or a VM twice within a target: each would be evaluated
    (and counted, e.g. by 11.3.1) twice. Hypervisors name their VMs uniquely, so a repeat is an edit."""
    seen: set[str] = set()
    for t in bundle.targets:
        if t.id in seen:
            raise BundleError(f"{path}: target {t.id!r} appears twice; a bundle names each target once")
        seen.add(t.id)
        if t.hypervisor is None:
            continue
        names: set[str] = set()
        for vm in t.hypervisor.vms:
            if vm.name in names:
                raise BundleError(
                    f"{path}: target {t.id!r} lists VM {vm.name!r} twice; a bundle names each VM once"
                )
            names.add(vm.name)


def read_bundle(path: Path, limits: BundleLimits | None = None) -> Bundle:
    """Read and validate a bundle; :class:`BundleError` with a one-line reason on any defect."""
    return decode_bundle(path, read_bundle_file(path, limits), limits)


def bundle_source(path: Path, raw: bytes, bundle: Bundle, signed_by: str | None) -> BundleSource:
    """The provenance of ``bundle``, read from the file bytes ``raw`` at ``path``."""
    return BundleSource(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        created_at=bundle.created_at,
        tool_version=bundle.tool_version,
        signed_by=signed_by,
    )


def decode_bundle(path: Path, raw: bytes, limits: BundleLimits | None = None) -> Bundle:
    """The bundle in the file bytes ``raw`` (read from ``path``, named in messages), validated:
    bounded inflation, at most ``limits`` targets and VMs, no repeated target or VM, at least one
    target; :class:`BundleError` with a one-line reason on any defect."""
    limits = limits or BundleLimits.from_env()
    data: bytes | bytearray = raw
    if raw[:2] == b"\x1f\x8b":
        data = _inflate(path, raw, limits.max_bytes)
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
    _check_counts(path, data, limits)
    try:
        bundle = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BundleError(f"{path}: invalid bundle content: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BundleError(f"{path}: corrupt bundle: {exc}") from exc
    del data
    if not bundle.targets:
        raise BundleError(f"{path}: the bundle holds no targets (nothing was collected); nothing to evaluate")
    _check_unique(path, bundle)
    if bundle.facts_version == FACTS_VERSION:
        return bundle
    # Later fields are all defaulted, so an older document decodes into this model; fill them in.
    return msgspec.structs.replace(
        bundle,
        facts_version=FACTS_VERSION,
        targets=[
            _noted(migrate_target(t, bundle.facts_version), bundle.facts_version) for t in bundle.targets
        ],
    )


#: What a bundle of an older facts model cannot tell, named in each of its targets' problems so that the
#: report says which verdicts were reached without it (the facts read as empty, not as known-good).
MISSING_BEFORE_MODEL_3 = (
    "the files rsyslog writes, other files under /var/log, auditd's configuration files, the paths that "
    "could not be read and whether the collection ran as root; 11.4.4 and 11.4.10 are judged without "
    "them: re-collect with this hvguard for a complete verdict"
)


def _noted(target: TargetFacts, version: int) -> TargetFacts:
    if version >= 3 or target.unreachable is not None:
        return target
    note = Problem(
        area="bundle",
        source=f"facts model {version}",
        message=f"this bundle was written by an older hvguard and does not record {MISSING_BEFORE_MODEL_3}",
    )
    return msgspec.structs.replace(target, problems=[*target.problems, note])
