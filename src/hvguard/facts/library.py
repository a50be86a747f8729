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


__all__ = ["ImageLibraryFacts", "LibraryFailingImage", "LibraryGrant", "LibraryKeySlot", "LibraryUser"]
