"""Facts about an hvguard image library in use by the estate (``scan --library URL``).

Collected from the library's ``/v1/status`` over mutual TLS with a reader certificate, plus what the
collector itself observed (the TLS version it negotiated, whether the port answers plain HTTP).
``error`` holds the reason when the library could not be read: checks then report ``error``.
"""

from __future__ import annotations

from hvguard.facts.base import Model


class LibraryGrant(Model, frozen=True, kw_only=True):
    """A permit or deny on an image group."""

    group: str
    deny: bool = False


class LibraryUser(Model, frozen=True, kw_only=True):
    """A user of the library and their role (reader | publisher | approver | admin)."""

    name: str
    role: str
    grants: list[LibraryGrant] = []


class LibraryKeySlot(Model, frozen=True, kw_only=True):
    """One administrator's key slot wrapping the data key."""

    name: str
    kdf: str | None = None
    memory_kib: int | None = None
    time_cost: int | None = None


class LibraryFailingImage(Model, frozen=True, kw_only=True):
    """An image that fails the library's current gate (quarantined)."""

    id: str
    name: str
    version: str


class LibraryDiskImage(Model, frozen=True, kw_only=True):
    """Where one VM disk's image came from, as far as the library can vouch for it.

    ``provenance``: ``backing`` (a read-only backing base whose SHA-256 is a library image's),
    ``manifest`` (a pulled ``FILE.manifest.json`` beside the disk or its base), ``metadata`` (an image id in
    hvguard's domain ``<metadata>``) or ``none``. ``signature_valid``: True when the library's signed
    manifest verified (and, for a read-only file, its hash matched); False when a signature or hash is
    wrong or the image is not an approved library image; None when there is no evidence. ``error``: the
    disk or its base exists but could not be read.
    """

    vm: str
    disk: str
    path: str | None = None
    base: str | None = None
    provenance: str = "none"
    image_id: str | None = None
    image_name: str | None = None
    image_version: str | None = None
    signature_valid: bool | None = None
    detail: str = ""
    error: str | None = None


class ImageLibraryFacts(Model, frozen=True, kw_only=True):
    """The state of the image library at ``url``."""

    url: str
    error: str | None = None
    store_id: str = ""
    #: The TLS version this collector negotiated, and what the server states as its minimum.
    tls_version: str = ""
    tls_minimum: str = ""
    client_certificates: str = ""
    #: Observed by the collector: a plain-HTTP request to the port got an HTTP answer.
    plaintext_http_answered: bool | None = None
    totp_for_admin_calls: bool = False
    users: list[LibraryUser] = []
    keyslots: list[LibraryKeySlot] = []
    cipher: str = ""
    kdf: str = ""
    min_passphrase: int = 0
    min_zxcvbn_score: int = 0
    signing_algorithm: str = ""
    signing_key_bits: int = 0
    signing_key_id: str = ""
    guest_inspection: str = ""
    gate_profile_sha256: str = ""
    images_total: int = 0
    images_by_status: dict[str, int] = {}
    approved_unsigned: int = 0
    failing_gate: list[LibraryFailingImage] = []
    gated_under_other_profile: int = 0
    #: Per VM disk of the target: whether its image is a signed library image (local libvirt disks only).
    vm_disks: list[LibraryDiskImage] = []


__all__ = [
    "ImageLibraryFacts",
    "LibraryDiskImage",
    "LibraryFailingImage",
    "LibraryGrant",
    "LibraryKeySlot",
    "LibraryUser",
]
