"""Checks for SS-009 11.2.8, 11.2.9 and 11.2.10 on an hvguard image library (``scan --library URL``).

11.2.8 Strong access control on image library check-in and check-out
11.2.9 Images encrypted, opened only by a select group of administrators with strong passphrases
11.2.10 Access to the image server only over TLS

Checks: ``library_access``, ``library_encryption``, ``library_tls``. Without ``--library`` they yield
nothing (the host-side checks of these measures stand alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.library import judged, unreadable
from hvguard.facts import ImageLibraryFacts
from hvguard.findings import Finding

#: Argon2id's least memory cost in RFC 9106 / OWASP's guidance (19 MiB).
MIN_KDF_MEMORY_KIB = 19 * 1024
STRONG_TLS = ("TLSv1.2", "TLSv1.3")


def _roles(lib: ImageLibraryFacts) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u in lib.users:
        out.setdefault(u.role, []).append(u.name)
    return out


@check("11.2.8", id="library.access-control", reads=("image_library",))
def library_access(ctx: CheckContext) -> Iterator[Finding]:
    """Check-in (publisher) and check-out (reader) go through the library's roles and grants.

    Pass: client certificates are required, every role is separate from administration, administrative
    calls need a TOTP code. Fail: any of these missing, or every user is an administrator."""
    lib = ctx.target.image_library
    if lib is None:
        return
    if lib.error:
        yield unreadable(ctx, lib)
        return
    roles = _roles(lib)
    evidence: dict[str, Any] = {
        "library": lib.url,
        "users_by_role": roles,
        "grants": {
            u.name: [("!" if g.deny else "") + g.group for g in u.grants] for u in lib.users if u.grants
        },
        "client_certificates": lib.client_certificates,
        "totp_for_admin_calls": lib.totp_for_admin_calls,
    }
    problems = []
    if lib.client_certificates != "required":
        problems.append("client certificates are not required")
    if not lib.totp_for_admin_calls:
        problems.append("administrative calls do not need a second factor")
    if lib.users and set(roles) == {"admin"} and len(lib.users) > 1:
        problems.append(
            "every user is an administrator: check-in/check-out is not separated from administration"
        )
    yield judged(
        ctx,
        lib,
        problems,
        evidence,
        fix=(
            "hvguard library user add STORE NAME --role reader|publisher|approver (least role) and "
            "library grant STORE NAME --group G; serve the library with hvguard library serve (mTLS + TOTP)."
        ),
        passed=(
            f"Image library {lib.url}: check-in and check-out need a client certificate mapped to a role "
            f"({', '.join(f'{r}: {len(n)}' for r, n in sorted(roles.items()))}) and per-group grants; "
            "administrative calls need a TOTP code; publishers cannot approve their own images."
        ),
    )


@check("11.2.9", id="library.encryption-at-rest", reads=("image_library",))
def library_encryption(ctx: CheckContext) -> Iterator[Finding]:
    """Images are encrypted at rest and only administrators' key slots open the data key.

    Fail: another cipher than AES-256-GCM, a key slot without a memory-hard KDF (or below 19 MiB), a
    key slot for someone who is not an administrator, or a passphrase policy under 12 characters or
    zxcvbn score 3."""
    lib = ctx.target.image_library
    if lib is None:
        return
    if lib.error:
        yield unreadable(ctx, lib)
        return
    admins = set(_roles(lib).get("admin", []))
    evidence: dict[str, Any] = {
        "library": lib.url,
        "cipher": lib.cipher,
        "keyslots": [{"name": s.name, "kdf": s.kdf, "memory_kib": s.memory_kib} for s in lib.keyslots],
        "administrators": sorted(admins),
        "passphrase_policy": {"min_length": lib.min_passphrase, "min_zxcvbn_score": lib.min_zxcvbn_score},
    }
    problems = []
    if lib.cipher != "AES-256-GCM":
        problems.append(f"cipher {lib.cipher or 'unknown'} (AES-256-GCM expected)")
    if not lib.keyslots:
        problems.append("no key slot is recorded")
    weak = [
        s.name
        for s in lib.keyslots
        if s.kdf not in ("argon2id", "scrypt") or (s.memory_kib or 0) < MIN_KDF_MEMORY_KIB
    ]
    if weak:
        problems.append("key slots without a memory-hard KDF of at least 19 MiB: " + ", ".join(weak))
    outsiders = [s.name for s in lib.keyslots if s.name not in admins]
    if outsiders:
        problems.append("key slots of people who are not library administrators: " + ", ".join(outsiders))
    if lib.min_passphrase < 12 or lib.min_zxcvbn_score < 3:
        problems.append(
            f"passphrase policy too weak (length {lib.min_passphrase}, zxcvbn {lib.min_zxcvbn_score})"
        )
    yield judged(
        ctx,
        lib,
        problems,
        evidence,
        fix=(
            "hvguard library keyslot remove STORE NAME for every slot that is not an image administrator's; "
            "add administrators with library keyslot add (Argon2id, strong passphrase)."
        ),
        passed=(
            f"Image library {lib.url}: every image is encrypted with {lib.cipher} under a data key that only "
            f"{len(lib.keyslots)} administrator key slot(s) open (Argon2id, passphrases of at least "
            f"{lib.min_passphrase} characters and zxcvbn score {lib.min_zxcvbn_score})."
        ),
    )


@check("11.2.10", id="library.tls-only", reads=("image_library",))
def library_tls(ctx: CheckContext) -> Iterator[Finding]:
    """The library answers only over TLS ≥ 1.2 (observed by the collector) and never plain HTTP."""
    lib = ctx.target.image_library
    if lib is None:
        return
    if lib.error:
        yield unreadable(ctx, lib)
        return
    evidence = {
        "library": lib.url,
        "negotiated": lib.tls_version,
        "minimum": lib.tls_minimum,
        "plaintext_http_answered": lib.plaintext_http_answered,
    }
    problems = []
    if lib.tls_version not in STRONG_TLS:
        problems.append(f"negotiated {lib.tls_version or 'no TLS'}")
    if lib.tls_minimum not in STRONG_TLS:
        problems.append(f"server minimum {lib.tls_minimum or 'unknown'}")
    if lib.plaintext_http_answered:
        problems.append("the port answers plain HTTP")
    yield judged(
        ctx,
        lib,
        problems,
        evidence,
        fix=(
            "Serve the library only with hvguard library serve (TLS 1.2+ with client certificates, no "
            "plaintext listener); remove any plain-HTTP proxy in front of it."
        ),
        passed=(
            f"Image library {lib.url}: {lib.tls_version} with client certificates; a plain-HTTP request "
            "to the port got no HTTP answer."
        ),
    )
