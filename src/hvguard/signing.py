"""Detached Ed25519 signatures over files (evidence bundles): sign, verify, name the key.

Keys are the architecture's "Signing keys": a PEM PKCS#8 private key (``openssl genpkey -algorithm
ed25519 -out key.pem``) signs, its SubjectPublicKeyInfo PEM public key (``openssl pkey -in key.pem
-pubout -out key.pub``) verifies. The signature is the 64 raw Ed25519 bytes over the exact bytes of the
file, stored beside it as ``FILE.sig`` — the same file ``openssl pkeyutl -sign -rawin`` writes, so an
auditor can check it without hvguard (``openssl pkeyutl -verify -pubin -inkey key.pub -rawin -in FILE
-sigfile FILE.sig``). A key is named by the SHA-256 of its public key's DER SubjectPublicKeyInfo (hex).

``cryptography`` is imported only here and only when a key is used (the ``hvguard[sign]`` extra; it is
also what ``asyncssh`` is built on). ``pkcs11:`` key URIs are not supported yet and are refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from hvguard.filekind import InputFileError, read_regular_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: The suffix of a detached signature file.
SIG_SUFFIX = ".sig"
_MAX_KEY_BYTES = 64 * 1024
_SIG_BYTES = 64


class SigningError(ValueError):
    """A key or signature that cannot be used, or a signature that does not verify (one line)."""


def signature_path(path: Path) -> Path:
    """Where the detached signature of ``path`` lives: ``path`` + ``.sig``."""
    return path.with_name(path.name + SIG_SUFFIX)


def _read_small(path: Path, what: str, limit: int) -> bytes:
    """A small regular file's bytes (:func:`~hvguard.filekind.read_regular_file`)."""
    try:
        return read_regular_file(path, limit)
    except InputFileError as exc:
        if exc.problem == "missing":
            raise SigningError(f"{what} {path}: no such file") from None
        if exc.problem == "special":
            raise SigningError(f"{what} {path}: not a regular file") from None
        if exc.problem == "too_large":
            raise SigningError(f"{what} {path}: larger than {limit} bytes") from None
        raise SigningError(f"cannot read {what} {path}: {exc.reason}") from exc


def _crypto() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:  # pragma: no cover - cryptography comes with asyncssh
        raise SigningError("signing needs the 'cryptography' package: pip install 'hvguard[sign]'") from None


def load_private_key(key: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM PKCS#8 file ``key``; :class:`SigningError` otherwise."""
    if key.startswith("pkcs11:"):
        raise SigningError(f"{key}: pkcs11: keys are not supported yet; give a PEM PKCS#8 Ed25519 key file")
    _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read_small(Path(key), "signing key", _MAX_KEY_BYTES)
    try:
        loaded = load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningError(f"signing key {key}: encrypted keys are not supported") from None
    except ValueError as exc:
        raise SigningError(f"signing key {key}: not a PEM PKCS#8 private key ({_first_line(exc)})") from None
    except Exception as exc:  # cryptography raises its own types for unsupported algorithms
        raise SigningError(f"signing key {key}: cannot be loaded ({_first_line(exc)})") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SigningError(f"signing key {key}: not an Ed25519 key (openssl genpkey -algorithm ed25519)")
    return loaded


def load_public_key(key: str) -> Ed25519PublicKey:
    """The Ed25519 public key in the SPKI PEM file ``key``; :class:`SigningError` otherwise."""
    if key.startswith("pkcs11:"):
        raise SigningError(f"{key}: pkcs11: keys are not supported yet; give an SPKI PEM public key file")
    _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = _read_small(Path(key), "public key", _MAX_KEY_BYTES)
    try:
        loaded = load_pem_public_key(data)
    except Exception as exc:  # ValueError, or cryptography's UnsupportedAlgorithm
        raise SigningError(f"public key {key}: not an SPKI PEM public key ({_first_line(exc)})") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise SigningError(f"public key {key}: not an Ed25519 key")
    return loaded


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of ``public`` as DER SubjectPublicKeyInfo: how reports name a signing key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign(private: Ed25519PrivateKey, data: bytes) -> bytes:
    """The detached signature (64 raw bytes) of ``data``."""
    return private.sign(data)


def verify(public: Ed25519PublicKey, data: bytes, signed: Path) -> str:
    """Check the detached signature of ``signed`` (whose bytes are ``data``) in ``signed.sig`` with
    ``public``; the key's fingerprint when it verifies, :class:`SigningError` (one line) otherwise."""
    from cryptography.exceptions import InvalidSignature

    sig_file = signature_path(signed)
    sig = _read_small(sig_file, "signature", 4096)
    if len(sig) != _SIG_BYTES:
        raise SigningError(f"signature {sig_file}: not an Ed25519 signature ({len(sig)} bytes, expected 64)")
    try:
        public.verify(sig, data)
    except InvalidSignature:
        raise SigningError(
            f"{signed}: the signature in {sig_file} does not match: the file was changed after signing, "
            "or signed with another key"
        ) from None
    return fingerprint(public)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
