"""The library's signing key in a PKCS#11 token (a hardware security module; SoftHSM2 in the tests).

A key is named by an RFC 7512 URI, ``pkcs11:token=LABEL;object=LABEL`` (the architecture's "Signing
keys" contract); the PIN comes from ``--pin-file`` and is kept sealed under the store's data key, so
``library serve`` can sign after the store is opened. ``library init`` generates the key pair inside
the token (never exported) when no private key of that label exists yet. Supported: ECDSA P-384 /
P-521 (signatures converted to DER, as ``cryptography`` makes them) and RSA-PSS 3072/4096.

``python-pkcs11`` (the ``hvguard[library]`` extra) is imported when a token is used.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from hvguard.services.library.pki import PkiError

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_CURVES = {"ecdsa-p384": ("secp384r1", hashlib.sha384), "ecdsa-p521": ("secp521r1", hashlib.sha512)}


def parse_uri(uri: str) -> dict[str, str]:
    """The path attributes of a ``pkcs11:`` URI (``token`` and ``object`` are required)."""
    if not uri.startswith("pkcs11:"):
        raise PkiError(f"{uri!r} is not a pkcs11: URI")
    path, _, query = uri[len("pkcs11:") :].partition("?")
    attrs: dict[str, str] = {}
    for part in filter(None, path.split(";")):
        key, sep, value = part.partition("=")
        if not sep:
            raise PkiError(f"pkcs11 URI attribute {part!r} has no value")
        attrs[key] = unquote(value)
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key == "module-path":
            attrs["module-path"] = unquote(value)
    if not attrs.get("token") or not attrs.get("object"):
        raise PkiError(
            "a pkcs11: signing key URI needs token=… and object=… (e.g. pkcs11:token=hv;object=sign)"
        )
    return attrs


class Pkcs11Signer:
    """A private key inside a token; signs with the same algorithms and formats as :mod:`.pki`."""

    def __init__(
        self, uri: str, pin: str, *, module: str | None = None, algorithm: str | None = None
    ) -> None:
        try:
            import pkcs11
        except ImportError:
            raise PkiError("pkcs11: keys need python-pkcs11: pip install 'hvguard[library]'") from None
        attrs = parse_uri(uri)
        self.uri = uri
        self.label = attrs["object"]
        path = module or attrs.get("module-path") or DEFAULT_MODULE
        try:
            lib = pkcs11.lib(path)
            token = lib.get_token(token_label=attrs["token"])
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.exceptions.PinIncorrect:
            raise PkiError(f"{uri}: wrong PIN") from None
        except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
            raise PkiError(f"{uri}: cannot open the token ({type(exc).__name__} {exc})") from None
        self._pkcs11 = pkcs11
        self._key = self._find(pkcs11.ObjectClass.PRIVATE_KEY)
        if self._key is None:
            if algorithm is None:
                raise PkiError(f"{uri}: no private key labelled {self.label!r} in the token")
            self._generate(algorithm)
            self._key = self._find(pkcs11.ObjectClass.PRIVATE_KEY)
        self._public = self._public_key()
        from hvguard.services.library import pki

        self.algorithm = pki.algorithm_of(self._public)

    def _find(self, object_class: Any) -> Any:
        found = list(
            self._session.get_objects(
                {self._pkcs11.Attribute.CLASS: object_class, self._pkcs11.Attribute.LABEL: self.label}
            )
        )
        return found[0] if found else None

    def _generate(self, algorithm: str) -> None:
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        if algorithm in _CURVES:
            params = self._session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm][0])},
                local=True,
            )
            params.generate_keypair(store=True, label=self.label)
        elif algorithm.startswith("rsa-pss-"):
            self._session.generate_keypair(
                KeyType.RSA, int(algorithm.rsplit("-", 1)[1]), store=True, label=self.label
            )
        else:
            raise PkiError(
                f"{algorithm} keys cannot be made in a PKCS#11 token here (ecdsa-p384|p521, rsa-pss-3072)"
            )

    def _public_key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_der_public_key
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key

        pub = self._find(ObjectClass.PUBLIC_KEY)
        if pub is None:
            raise PkiError(f"{self.uri}: the token has no public key labelled {self.label!r}")
        if pub.key_type == KeyType.EC:
            return load_der_public_key(encode_ec_public_key(pub))
        if pub.key_type == KeyType.RSA:
            n = int.from_bytes(pub[Attribute.MODULUS], "big")
            e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        raise PkiError(f"{self.uri}: unsupported key type {pub.key_type}")

    def public_key(self) -> Any:
        """The matching public key (a ``cryptography`` object)."""
        return self._public

    def sign_digest(self, digest: bytes, hash_name: str) -> bytes:
        """Sign a digest made with ``hash_name`` (sha224 … sha512): DER ECDSA or RSA-PSS (MGF1 of the
        same hash, salt as long as the hash)."""
        from pkcs11 import MGF, Mechanism
        from pkcs11.util.ec import encode_ecdsa_signature

        if self.algorithm.startswith("ecdsa"):
            return bytes(encode_ecdsa_signature(self._key.sign(digest, mechanism=Mechanism.ECDSA)))
        mech = getattr(Mechanism, hash_name.upper())
        mgf = getattr(MGF, hash_name.upper())
        return bytes(
            self._key.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=(mech, mgf, len(digest)))
        )

    def sign(self, data: bytes) -> bytes:
        """A signature over ``data`` as :func:`.pki.sign` makes it for this algorithm."""
        if self.algorithm.startswith("ecdsa"):
            hash_name = "sha384" if self.algorithm == "ecdsa-p384" else "sha512"
        else:
            hash_name = "sha256"
        return self.sign_digest(hashlib.new(hash_name, data).digest(), hash_name)
