"""Encryption at rest for the image library: streamed AES-256-GCM blobs and passphrase key slots.

A blob file is ``MAGIC || salt(32)`` followed by chunks of at most :data:`CHUNK` plaintext bytes, each
sealed with AES-256-GCM under a per-blob key (HKDF-SHA256 of the store's data key and the blob's random
salt). A chunk's 12-byte nonce is its index (11 bytes, big-endian) and a final-chunk flag (1 byte), and
the header is its associated data, so a reordered, dropped, duplicated or truncated chunk — or a blob
cut after a chunk boundary — fails authentication instead of decrypting to a shorter image. An empty
image is one empty final chunk.

The data key itself never touches the disk in clear: each administrator's key slot wraps it with a key
derived from their passphrase by Argon2id (memory-hard; the parameters are stored in the slot so they
can be raised later without breaking old slots).

``cryptography`` and ``argon2-cffi`` (the ``hvguard[library]`` extra) are imported when first used.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

MAGIC = b"HVGLIB1\x00"
SALT_BYTES = 32
HEADER_BYTES = len(MAGIC) + SALT_BYTES
#: Plaintext bytes per chunk: large enough that AES-GCM runs at memory speed, small enough to stream.
CHUNK = 1024 * 1024
TAG_BYTES = 16
KEY_BYTES = 32
#: Argon2id parameters of new key slots (RFC 9106's second recommended option: 64 MiB, 3 passes).
ARGON2_TIME = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_LANES = 4
#: The shortest passphrase accepted, and the least zxcvbn score (0-4) it must reach.
MIN_PASSPHRASE = 12
MIN_ZXCVBN_SCORE = 3


class CryptoError(Exception):
    """A blob or sealed value that does not authenticate, or a passphrase that is refused (one line)."""


def _aesgcm(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _blob_key(data_key: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"hvguard-library-blob").derive(
        data_key
    )


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


class BlobWriter:
    """Encrypts a stream chunk by chunk into ``out``: :meth:`write` any sizes, then :meth:`close`."""

    def __init__(self, data_key: bytes, out: IO[bytes]) -> None:
        salt = os.urandom(SALT_BYTES)
        self._header = MAGIC + salt
        self._aead = _aesgcm(_blob_key(data_key, salt))
        self._out = out
        self._buf = bytearray()
        self._index = 0
        out.write(self._header)

    def write(self, data: bytes | memoryview) -> None:
        """Add plaintext; full chunks are sealed and written at once (never the last one: it is final).

        Whole chunks are encrypted straight from ``data`` (no copy); only a partial tail is buffered."""
        view = memoryview(data).cast("B")
        pos = 0
        if self._buf:
            if len(self._buf) == CHUNK and view:
                self._seal(self._buf, final=False)
                self._buf = bytearray()
            else:
                pos = min(CHUNK - len(self._buf), len(view))
                self._buf += view[:pos]
                if len(self._buf) == CHUNK and pos < len(view):
                    self._seal(self._buf, final=False)
                    self._buf = bytearray()
        while len(view) - pos > CHUNK:
            self._seal(view[pos : pos + CHUNK], final=False)
            pos += CHUNK
        if pos < len(view):
            self._buf += view[pos:]

    def _seal(self, chunk: bytes | bytearray | memoryview, *, final: bool) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._index, final), chunk, self._header))
        self._index += 1

    def close(self) -> None:
        """Seal what is left as the final chunk (possibly empty)."""
        self._seal(bytes(self._buf), final=True)
        self._buf.clear()


def read_blob(data_key: bytes, src: IO[bytes]) -> Iterator[bytes]:
    """The plaintext chunks of a blob, each authenticated before it is yielded.

    Raises :class:`CryptoError` on a wrong key, an edited, reordered or missing chunk, or a truncated blob.
    """
    header = src.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES or not header.startswith(MAGIC):
        raise CryptoError("not an hvguard library blob (bad header)")
    aead = _aesgcm(_blob_key(data_key, header[len(MAGIC) :]))
    from cryptography.exceptions import InvalidTag

    size = CHUNK + TAG_BYTES
    index = 0
    current = src.read(size)
    while True:
        following = src.read(size) if len(current) == size else b""
        final = not following
        if len(current) < TAG_BYTES:
            raise CryptoError(f"blob truncated at chunk {index}")
        try:
            plain = aead.decrypt(_nonce(index, final), current, header)
        except InvalidTag:
            raise CryptoError(
                f"blob chunk {index} does not authenticate (tampered, truncated or wrong key)"
            ) from None
        yield plain
        if final:
            return
        index += 1
        current = following


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """A small secret sealed with AES-256-GCM under ``key``, bound to ``aad``; base64 text."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aesgcm(key).encrypt(nonce, plaintext, aad)).decode("ascii")


def unseal(key: bytes, sealed: str, aad: bytes) -> bytes:
    """The plaintext of :func:`seal`'s output; :class:`CryptoError` if it does not authenticate."""
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.b64decode(sealed, validate=True)
        return bytes(_aesgcm(key).decrypt(raw[:12], raw[12:], aad))
    except (InvalidTag, ValueError):
        raise CryptoError("sealed value does not authenticate") from None


@dataclass(frozen=True)
class Argon2Params:
    """The Argon2id cost of one key slot."""

    time_cost: int = ARGON2_TIME
    memory_kib: int = ARGON2_MEMORY_KIB
    lanes: int = ARGON2_LANES


def derive_slot_key(passphrase: bytes, salt: bytes, params: Argon2Params) -> bytes:
    """The key-encryption key of a slot: Argon2id(passphrase, salt)."""
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        passphrase, salt, params.time_cost, params.memory_kib, params.lanes, KEY_BYTES, Type.ID
    )


def wrap_slot(data_key: bytes, passphrase: bytes, aad: bytes) -> dict[str, Any]:
    """A key slot (JSON-able) that gives ``data_key`` back to ``passphrase``."""
    salt = os.urandom(16)
    params = Argon2Params()
    kek = derive_slot_key(passphrase, salt, params)
    return {
        "kdf": "argon2id",
        "salt": base64.b64encode(salt).decode("ascii"),
        "time_cost": params.time_cost,
        "memory_kib": params.memory_kib,
        "lanes": params.lanes,
        "wrapped_key": seal(kek, data_key, aad),
    }


def unwrap_slot(slot: dict[str, Any], passphrase: bytes, aad: bytes) -> bytes:
    """The data key in ``slot``; :class:`CryptoError` for a wrong passphrase or a damaged slot."""
    try:
        if slot["kdf"] != "argon2id":
            raise CryptoError(f"key slot uses an unknown KDF {slot['kdf']!r}")
        params = Argon2Params(int(slot["time_cost"]), int(slot["memory_kib"]), int(slot["lanes"]))
        salt = base64.b64decode(slot["salt"], validate=True)
        wrapped = str(slot["wrapped_key"])
    except (KeyError, TypeError, ValueError):
        raise CryptoError("key slot is damaged (missing or malformed fields)") from None
    if params.memory_kib < 8 * 1024 or params.time_cost < 1 or not 1 <= params.lanes <= 64:
        raise CryptoError("key slot's KDF parameters are below the minimum")
    kek = derive_slot_key(passphrase, salt, params)
    try:
        return unseal(kek, wrapped, aad)
    except CryptoError:
        raise CryptoError("wrong passphrase for this key slot") from None


def check_passphrase_strength(passphrase: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse a weak passphrase: shorter than :data:`MIN_PASSPHRASE` or guessable per zxcvbn."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise CryptoError(f"passphrase too short: at least {MIN_PASSPHRASE} characters are required")
    from zxcvbn import zxcvbn

    result = zxcvbn(passphrase[:100], user_inputs=list(user_inputs))
    if int(result["score"]) < MIN_ZXCVBN_SCORE:
        warning = result.get("feedback", {}).get("warning") or "too easy to guess"
        raise CryptoError(
            f"passphrase too weak (strength {result['score']}/4, need {MIN_ZXCVBN_SCORE}): {warning}"
        )
