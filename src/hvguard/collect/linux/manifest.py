"""The manifest: every read-only command and file hvguard may read on a host.

Collectors never run anything that is not listed here. ``hvguard collect --dry-run`` prints this list,
and the SSH transport runs exactly these commands (and reads exactly these files) on a remote host, so
an administrator can review what hvguard will do before granting it access. Every command must be
read-only: it reports state and changes nothing.

Nothing here is written by hand: the lists are assembled from what each collector declares it reads
and runs (:mod:`hvguard.collect.interface`; the declarations live beside the collectors, in
``linux/host_reads``, ``linux/access_reads``, ``linux/ops_reads`` and ``libvirt/files``).
"""

from __future__ import annotations

from hvguard.collect.interface import Command, Fetch
from hvguard.collect.libvirt.files import STORED_DEFINITIONS
from hvguard.collect.linux.access_reads import ACCESS_COMMANDS, ACCESS_READS
from hvguard.collect.linux.host_reads import HOST_READS
from hvguard.collect.linux.ops_reads import OPERATIONS_COMMANDS, OPERATIONS_READS

#: Read-only commands, by name. Collectors ask for a result by name (``source.run(name)``).
COMMANDS: dict[str, Command] = {c.name: c for c in (*ACCESS_COMMANDS, *OPERATIONS_COMMANDS)}

#: What the access-control and operations collectors read, listed by operation after the host collector's.
_LISTED: tuple[Fetch, ...] = (*ACCESS_READS, *OPERATIONS_READS)


def _globs(op: str) -> tuple[str, ...]:
    return tuple(item.pattern.lstrip("/") for item in _LISTED if item.op == op)


#: Files (glob patterns relative to the host root) the collectors read. The SSH transport fetches these.
FILES: tuple[str, ...] = _globs("F")
#: Paths whose existence, owner, group and mode the collectors judge but whose content must never be
#: copied (logs, VM images): the SSH transport fetches these with ``stat`` only.
STAT_FILES: tuple[str, ...] = _globs("S")
#: Directories whose entry names (not contents) the collectors read.
LIST_DIRS: tuple[str, ...] = _globs("D")


def manifest_fetch() -> tuple[Fetch, ...]:
    """Everything a host is asked for: the host collector's list, then what the other collectors read
    whole (``FILES``), by existence, owner and mode only (``STAT_FILES``: never their bytes) and by
    entry names (``LIST_DIRS``)."""
    return HOST_READS + tuple(item for op in "FSD" for item in _LISTED if item.op == op)


#: Read on a host only when its libvirt daemon does not answer: the hypervisor collector's fallback.
FALLBACK_READS: tuple[Fetch, ...] = (STORED_DEFINITIONS,)

#: Paths whose bytes hvguard never copies from a host, whatever a configuration file points at (key
#: material, password hashes, libvirt secrets): at most their existence, owner, mode and size are read.
NEVER_COPIED: tuple[str, ...] = (
    "etc/krb5.keytab",
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "etc/ssh/ssh_host_*_key",
    "etc/libvirt/secrets/*",
    "var/lib/libvirt/secrets/*",
    "etc/pki/*/private/*",
    "etc/ssl/private/*",
)
