"""Per VM disk: did its image come from the hvguard image library with a valid signature (11.3.9)?

Evidence, strongest first, for each disk of a libvirt domain whose files are on this host:

1. a **read-only backing base** (from ``qemu-img info --backing-chain -U`` with the domain's own format,
   or a disk the domain attaches read-only) whose SHA-256 is an approved library image's, and that
   image's signed manifest verifies;
2. a pulled **manifest** ``FILE.manifest.json`` beside the disk or one of its bases whose signature
   verifies with the library's key (and, beside a read-only file, whose SHA-256 is that file's);
3. an **image id** in hvguard's domain ``<metadata>`` (``<hvguard:image disk="vda" id="UUID"/>``) that is
   an approved library image with a valid signed manifest.

Writable disks are never hashed whole (their content changes as the VM runs); bases are hashed streamed,
up to :data:`HASH_CAP` bytes, once per file. Nothing is written. A disk with none of these has no
evidence (``signature_valid`` None: the check reports ``manual``); a disk or base that exists but cannot be
read has ``error``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvguard.facts import LibraryDiskImage, VmFacts

#: Bases larger than this are not hashed (no evidence rather than minutes of reading).
HASH_CAP = 64 * 1024**3
_READ = 4 * 1024 * 1024
_MAX_MANIFEST = 1024 * 1024
#: Formats qemu-img is told explicitly (never probed: a guest-written header must not name host files).
_FORMATS = {"qcow2", "raw", "qed", "vmdk", "vdi", "vhdx", "vpc"}

#: Verify a signed envelope with a PEM public key: the manifest, or the reason it does not verify.
Verifier = Callable[[Any, bytes], "dict[str, Any] | str"]


class Unreadable(Exception):
    """A disk or base exists but could not be read; the message is one line."""


@dataclass
class LibraryView:
    """What the library told this reader: its images (by id), its public key and signed manifests."""

    images: dict[str, dict[str, Any]]
    public_key_pem: bytes
    manifest: Callable[[str], Any]
    verify: Verifier
    _hashes: dict[str, tuple[str, int] | None] = field(default_factory=dict)

    def by_sha(self, sha: str) -> dict[str, Any] | None:
        """The library image with this SHA-256 (approved first), or None."""
        rows = [r for r in self.images.values() if r.get("sha256") == sha]
        rows.sort(key=lambda r: r.get("status") != "approved")
        return rows[0] if rows else None

    def digest(self, path: str) -> tuple[str, int] | None:
        """SHA-256 and size of a read-only file, streamed and cached; None above :data:`HASH_CAP` or when it
        is not a regular file."""
        if path not in self._hashes:
            try:
                st = os.stat(path)
                size = st.st_size
                # Only regular files: a block device's st_size is 0, so the cap would not bound it.
                if size > HASH_CAP or not stat.S_ISREG(st.st_mode):
                    self._hashes[path] = None
                else:
                    h = hashlib.sha256()
                    with open(path, "rb") as f:
                        while chunk := f.read(_READ):
                            h.update(chunk)
                    self._hashes[path] = (h.hexdigest(), size)
            except OSError as exc:
                raise Unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
        return self._hashes[path]


def _limits() -> None:  # pragma: no cover - runs in the child
    # The same bounds OpenStack puts on qemu-img since CVE-2015-5162: a crafted image cannot exhaust the host.
    resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))


def backing_chain(path: str, fmt: str) -> list[str]:
    """The backing files under ``path`` (nearest first), read with ``qemu-img info --backing-chain -U``."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        raise Unreadable(f"{path} has format {fmt}: qemu-img is needed to read its backing chain")
    try:
        proc = subprocess.run(  # noqa: S603 (fixed argv, no shell; "--" before the path)
            [qemu_img, "info", "--backing-chain", "-U", "--output=json", "-f", fmt, "--", path],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limits,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreadable(f"qemu-img info {path}: {exc}") from None
    if proc.returncode != 0:
        raise Unreadable(f"qemu-img info {path}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    try:
        chain = json.loads(proc.stdout)
        return [str(layer["filename"]) for layer in chain[1:]]
    except (ValueError, KeyError, TypeError, IndexError):
        raise Unreadable(f"qemu-img info {path}: unexpected output") from None


def _read_manifest(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read(_MAX_MANIFEST))
    except OSError as exc:
        raise Unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        return None


class _Judge:
    """Build one disk's record; the helpers return a finished record or None (try the next evidence)."""

    def __init__(self, view: LibraryView, base: LibraryDiskImage) -> None:
        self.view, self.base = view, base

    def done(self, **changes: Any) -> LibraryDiskImage:
        import msgspec

        return msgspec.structs.replace(self.base, **changes)

    def signed(self, image_id: str, provenance: str, sha: str | None, **extra: Any) -> LibraryDiskImage:
        """The record for ``image_id``: approved, its manifest verifies, and names ``sha`` if given."""
        row = self.view.images.get(image_id)
        ids = {"provenance": provenance, "image_id": image_id, **extra}
        if row is None:
            return self.done(signature_valid=False, detail=f"image {image_id} is not in the library", **ids)
        ids |= {"image_name": row.get("name"), "image_version": row.get("version")}
        if row.get("status") != "approved":
            return self.done(signature_valid=False, detail=f"library image is {row.get('status')}", **ids)
        envelope = self.view.manifest(image_id)
        checked = self.view.verify(envelope, self.view.public_key_pem)
        if isinstance(checked, str):
            return self.done(signature_valid=False, detail=f"signed manifest: {checked}", **ids)
        if checked.get("id") != image_id:
            return self.done(signature_valid=False, detail="the signed manifest names another image", **ids)
        if sha is not None and checked.get("sha256") != sha:
            return self.done(signature_valid=False, detail=f"sha256 {sha} is not the signed image's", **ids)
        return self.done(signature_valid=True, **ids)


def judge_disk(
    view: LibraryView, vm: VmFacts, disk_name: str, path: str | None, fmt: str | None, readonly: bool
) -> LibraryDiskImage:
    """One disk's provenance record."""
    j = _Judge(view, LibraryDiskImage(vm=vm.name, disk=disk_name, path=path))
    tagged = vm.metadata_tags.get(f"hvguard.image.{disk_name}")
    bases: list[str] = []
    notes: list[str] = []
    if path is not None:
        if not os.path.lexists(path):
            notes.append(f"{path} is not on this host")
            path = None
        elif fmt in _FORMATS:
            bases = backing_chain(path, fmt) if fmt != "raw" else []
        else:
            notes.append(f"disk format {fmt or 'unstated'}: backing chain not read")
    read_only = list(reversed(bases)) + ([path] if path and readonly else [])
    digests: dict[str, str] = {}
    for file in read_only:  # 1. a read-only base that is a library image
        got = view.digest(file)
        if got is None:
            notes.append(f"{file} is not a regular file or is larger than {HASH_CAP} bytes: not hashed")
            continue
        digests[file] = got[0]
        row = view.by_sha(got[0])
        if row is not None:
            return j.signed(str(row["id"]), "backing", got[0], base=file)
        notes.append(f"{file} (sha256 {got[0][:16]}…) is no library image")
    for file in read_only + ([path] if path and not readonly else []):  # 2. a pulled manifest beside it
        beside = Path(file + ".manifest.json")
        if not beside.is_file():
            continue
        envelope = _read_manifest(beside)
        checked = view.verify(envelope, view.public_key_pem)
        if isinstance(checked, str):
            why = f"{beside}: {checked}"
            return j.done(provenance="manifest", base=file, signature_valid=False, detail=why)
        sha = digests.get(file)
        record = j.signed(str(checked.get("id")), "manifest", sha, base=file)
        if record.signature_valid and file not in digests:
            record = j.done(**{**_fields(record), "detail": "writable disk: content not hashed"})
        return record
    if tagged:  # 3. an image id in hvguard's domain metadata; a hashed base must be that image
        record = j.signed(tagged, "metadata", None)
        if record.signature_valid and digests:
            file, sha = next(iter(digests.items()))
            why = f"base {file} (sha256 {sha[:16]}…) is not image {tagged}"
            return j.done(**{**_fields(record), "signature_valid": False, "base": file, "detail": why})
        return record
    return j.done(detail="; ".join(notes) or "no read-only base, manifest or metadata image id")


def _fields(record: LibraryDiskImage) -> dict[str, Any]:
    import msgspec

    return {k: v for k, v in msgspec.structs.asdict(record).items() if k not in {"vm", "disk", "path"}}


def vm_disks(view: LibraryView, vm: VmFacts) -> list[LibraryDiskImage]:
    """Records for every disk of ``vm`` that has a file, a network source or a metadata image id."""
    out = []
    for disk in vm.disks:
        name = disk.target or disk.source_path or "?"
        if disk.source_protocol:
            why = f"network disk ({disk.source_protocol}): not read"
            out.append(LibraryDiskImage(vm=vm.name, disk=name, detail=why))
            continue
        if not disk.source_path and f"hvguard.image.{name}" not in vm.metadata_tags:
            continue  # an empty CD-ROM drive
        try:
            out.append(judge_disk(view, vm, name, disk.source_path, disk.driver_type, disk.readonly))
        except Unreadable as exc:
            out.append(LibraryDiskImage(vm=vm.name, disk=name, path=disk.source_path, error=str(exc)))
    return out
