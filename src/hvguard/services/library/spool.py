"""The gate's spool budget: one total cap (``library serve --spool-max``) shared by concurrent check-ins.

Each push reserves its declared size (``Content-Length``: the plaintext copy the gate reads) before a
byte is received and gives it back when it ends, whatever the outcome. A push that would take the spool
over the cap is refused before anything is written (HTTP 507). The default cap is 80 % of the free space
of the spool's file system when ``serve`` starts, so that concurrent uploads cannot fill the disk.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: Share of the spool file system's free space used when no ``--spool-max`` is given.
DEFAULT_FREE_SHARE = 0.8


class SpoolSizeError(ValueError):
    """A ``--spool-max`` value that is not a size (one line)."""


def parse_size(value: str) -> int:
    """Bytes from ``123``, ``64M``, ``10G``, ``2TiB`` … (binary units)."""
    m = _SIZE.match(value)
    if not m:
        raise SpoolSizeError(f"--spool-max {value!r}: expected bytes, optionally with K, M, G or T (binary)")
    size = int(m[1]) * _UNITS[m[2].upper()]
    if size <= 0:
        raise SpoolSizeError("--spool-max must be more than 0 bytes")
    return size


def default_cap(spool: Path) -> int:
    """80 % of the free space of ``spool``'s file system now."""
    st = os.statvfs(spool)
    return int(st.f_bavail * st.f_frsize * DEFAULT_FREE_SHARE)


class SpoolBudget:
    """Bytes reserved in the spool by uploads in progress, against one cap (thread-safe)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.in_use = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes if they fit under the cap with what is reserved already."""
        with self._lock:
            if self.in_use + size > self.cap:
                return False
            self.in_use += size
            return True

    def release(self, size: int) -> None:
        """Give back what :meth:`reserve` took."""
        with self._lock:
            self.in_use = max(0, self.in_use - size)
