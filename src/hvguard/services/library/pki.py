"""The library's keys: its client CA (issues users' mTLS certificates) and its manifest signing key.

Signing algorithms (11.3.9 "strong keys" per SS-002/SS-007): Ed25519 (default), ECDSA P-384 with
SHA-384, ECDSA P-521 with SHA-512, RSA-PSS (SHA-256, MGF1, maximum salt) with 3072- or 4096-bit keys.
Keys are PEM PKCS#8, public keys SubjectPublicKeyInfo PEM; a key is named by the SHA-256 of its DER
public key (hex), as hvguard's bundle signing does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

#: Selectable signing algorithms → (family, parameter).
SIGNING_ALGORITHMS: dict[str, tuple[str, int]] = {
    "ed25519": ("ed25519", 0),
    "ecdsa-p384": ("ecdsa", 384),
    "ecdsa-p521": ("ecdsa", 521),
    "rsa-pss-3072": ("rsa-pss", 3072),
    "rsa-pss-4096": ("rsa-pss", 4096),
}
CERT_DAYS = 825
CA_DAYS = 3650


class PkiError(Exception):
    """A key, certificate or signature that cannot be used or does not verify (one line)."""


def generate_signing_key(algorithm: str) -> Any:
    """A new private key for ``algorithm`` (one of :data:`SIGNING_ALGORITHMS`)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    family, param = SIGNING_ALGORITHMS[algorithm]
    if family == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if family == "ecdsa":
        return ec.generate_private_key(ec.SECP384R1() if param == 384 else ec.SECP521R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=param)


def private_pem(key: Any) -> bytes:
    """PEM PKCS#8, unencrypted (the caller seals it under the store's data key)."""
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def public_pem(key: Any) -> bytes:
    """SubjectPublicKeyInfo PEM of a private or public key."""
    from cryptography.hazmat.primitives import serialization

    pub = key.public_key() if hasattr(key, "public_key") else key
    return bytes(
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def key_id(public_key_pem: bytes) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    pub = load_public_key(public_key_pem)
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_private(pem: bytes) -> Any:
    """A PEM PKCS#8 private key."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(pem, password=None)
    except (TypeError, ValueError) as exc:
        raise PkiError(
            f"not a usable PEM private key ({str(exc).splitlines()[0] if str(exc) else 'bad key'})"
        ) from None


def load_public_key(pem: bytes) -> Any:
    """A SubjectPublicKeyInfo PEM public key."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem)
    except (TypeError, ValueError):
        raise PkiError("not a PEM public key (SubjectPublicKeyInfo)") from None


def algorithm_of(key: Any) -> str:
    """The :data:`SIGNING_ALGORITHMS` name of a private or public key; :class:`PkiError` if none fits."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if hasattr(key, "sign_digest"):  # a PKCS#11 token key
        return str(key.algorithm)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        name = {"secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(key.curve.name)
        if name:
            return name
        raise PkiError(f"ECDSA curve {key.curve.name} is not allowed (P-384 or P-521)")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 3072:
            raise PkiError(f"RSA key of {key.key_size} bits is too weak (at least 3072)")
        return f"rsa-pss-{key.key_size}"
    raise PkiError(f"unsupported key type {type(key).__name__}")


def sign(key: Any, data: bytes) -> bytes:
    """A signature over ``data`` with the algorithm the key implies."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    if hasattr(key, "sign_digest"):  # a PKCS#11 token key (pkcs11key.Pkcs11Signer)
        return bytes(key.sign(data))
    algorithm = algorithm_of(key)
    if algorithm == "ed25519":
        return bytes(key.sign(data))
    if algorithm.startswith("ecdsa"):
        digest = hashes.SHA384() if algorithm == "ecdsa-p384" else hashes.SHA512()
        return bytes(key.sign(data, ec.ECDSA(digest)))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    return bytes(key.sign(data, pss, hashes.SHA256()))


def verify(public_key: Any, signature: bytes, data: bytes) -> None:
    """Check a :func:`sign` signature; :class:`PkiError` if it does not verify."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    algorithm = algorithm_of(public_key)
    try:
        if algorithm == "ed25519":
            public_key.verify(signature, data)
        elif algorithm.startswith("ecdsa"):
            digest = hashes.SHA384() if algorithm == "ecdsa-p384" else hashes.SHA512()
            public_key.verify(signature, data, ec.ECDSA(digest))
        else:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, data, pss, hashes.SHA256())
    except InvalidSignature:
        raise PkiError("signature does not verify with this public key") from None


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hvguard image library"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(store_id: str) -> tuple[bytes, bytes]:
    """A new client CA for a store: (certificate PEM, private key PEM). ECDSA P-384."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    name = _name(f"hvguard library client CA {store_id}")
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return cert.public_bytes(serialization.Encoding.PEM), private_pem(key)


def issue_client_cert(ca_cert_pem: bytes, ca_key_pem: bytes, user: str) -> tuple[bytes, bytes, str]:
    """A client certificate for ``user`` signed by the store's CA: (cert PEM, key PEM, cert SHA-256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = load_private(ca_key_pem)
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(user))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert.public_bytes(serialization.Encoding.PEM), private_pem(key), hashlib.sha256(der).hexdigest()


#: Glance's ``img_signature_hash_method`` values.
GLANCE_HASHES = {"SHA-224": "SHA224", "SHA-256": "SHA256", "SHA-384": "SHA384", "SHA-512": "SHA512"}


def glance_key_type(key: Any) -> str:
    """Glance's ``img_signature_key_type`` for the key: RSA-PSS or ECC_SECP384R1 / ECC_SECP521R1.

    Ed25519 is refused: Glance (cursive) verifies RSA-PSS, DSA and ECC keys only."""
    algorithm = algorithm_of(key)
    if algorithm == "ed25519":
        raise PkiError(
            "Glance signature properties need an RSA-PSS or ECDSA P-384/P-521 signing key; this library "
            "signs with Ed25519, which Glance cannot verify"
        )
    if algorithm.startswith("rsa-pss"):
        return "RSA-PSS"
    return "ECC_SECP384R1" if algorithm == "ecdsa-p384" else "ECC_SECP521R1"


def glance_hasher(method: str) -> Any:
    """A streaming hash context for a Glance hash method (SHA-224 … SHA-512)."""
    from cryptography.hazmat.primitives import hashes

    if method not in GLANCE_HASHES:
        raise PkiError(f"hash method {method!r} is not one of {', '.join(GLANCE_HASHES)}")
    return hashes.Hash(getattr(hashes, GLANCE_HASHES[method])())


def glance_sign_digest(key: Any, method: str, digest: bytes) -> bytes:
    """Sign a pre-computed digest of the image data the way Glance verifies it: RSA-PSS with MGF1 of the
    same hash and the maximum salt length, or ECDSA with the hash."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    if hasattr(key, "sign_digest"):  # a PKCS#11 token key
        return bytes(key.sign_digest(digest, GLANCE_HASHES[method].lower()))
    algorithm = getattr(hashes, GLANCE_HASHES[method])()
    if glance_key_type(key) == "RSA-PSS":
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        return bytes(key.sign(digest, pss, Prehashed(algorithm)))
    return bytes(key.sign(digest, ec.ECDSA(Prehashed(algorithm))))
