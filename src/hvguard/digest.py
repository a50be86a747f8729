"""sha256 without loading OpenSSL.

``hashlib`` loads OpenSSL's libcrypto when imported, a few milliseconds that the guard's libvirt hook
would pay on every VM start for digests of a few kilobytes (a domain XML, the pinned policy files),
where OpenSSL is no faster. CPython's own sha256 module (``_sha256`` up to 3.11, ``_sha2`` from 3.12)
gives the same digests; hashlib's is the fallback for a Python built without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def sha256(data: bytes = b"") -> Any:
    """A new sha256 object (``update``/``hexdigest``/``digest``), fed ``data``."""
    try:
        from _sha256 import sha256 as new  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from _sha2 import sha256 as new  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            from hashlib import sha256 as new
    return new(data)


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path`` (OSError when unreadable)."""
    h = sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return str(h.hexdigest())
