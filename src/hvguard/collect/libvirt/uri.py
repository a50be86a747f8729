"""Is a libvirt connection URI one hvguard can use? Checked before anything is collected.

libvirt itself accepts a typo'd URI only to fail later in ways that read like an unreachable host (a
local ``qemu:///sytem`` is answered by the running daemon with "unexpected qemu URI path", ``foo://x``
asks for a TLS certificate, ``test:///missing.xml`` makes libxml2 print its own warnings). A URI whose
scheme names no libvirt driver or transport, whose qemu path is not one the qemu driver serves, or whose
test-driver file does not exist is therefore a usage error (:class:`LibvirtUriError`), raised with one
line before any connection is opened. Pure string and file-system checks: libvirt is not imported.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from urllib.parse import SplitResult, unquote

from hvguard.collect.interface import CollectError

__all__ = ["DRIVERS", "QEMU_PATHS", "TRANSPORTS", "LibvirtUriError", "check_libvirt_uri", "shown"]

#: The hypervisor drivers libvirt 9 names in a URI scheme (``DRIVER[+TRANSPORT]://``). Only ``qemu`` and
#: ``test`` have checks of their own; the others are still libvirt hypervisors whose targets get
#: ``manual``/``not_applicable`` findings rather than a usage error.
DRIVERS = frozenset(
    {
        "qemu",
        "test",
        "lxc",
        "xen",
        "vbox",
        "vmwareplayer",
        "vmwarews",
        "vmwarefusion",
        "esx",
        "gsx",
        "vpx",
        "hyperv",
        "bhyve",
        "ch",
        "vz",
        "openvz",
    }
)
#: The transports libvirt's remote driver knows (``qemu+ssh://``); none means local or TLS.
TRANSPORTS = frozenset({"ssh", "libssh", "libssh2", "tls", "tcp", "unix", "ext"})
#: The paths the qemu driver serves (``/embed`` also needs ``?root=DIR``).
QEMU_PATHS = ("/system", "/session", "/embed")
#: The test driver's built-in estate; any other path names a node file.
TEST_DEFAULT = "/default"


class LibvirtUriError(CollectError, ValueError):
    """A libvirt URI that names no driver or transport libvirt has, a path its driver does not serve,
    or a test-driver file that does not exist: a usage error (one line, exit 2)."""


def shown(text: str) -> str:
    """``text`` for a one-line message: control characters (a newline in a hostile argument) escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_libvirt_uri(target: str, parts: SplitResult) -> None:
    """Raise :class:`LibvirtUriError` unless ``target`` (split into ``parts``) is a usable libvirt URI."""
    name = shown(target)
    driver, plus, transport = parts.scheme.partition("+")
    if driver not in DRIVERS:
        if driver == "kvm":  # no libvirt driver is called kvm: KVM guests live under the qemu driver
            hint = "; KVM hosts are reached as qemu:///system or qemu+ssh://HOST/system"
        else:
            hint = _suggest(driver, sorted(DRIVERS))
        raise LibvirtUriError(
            f"{name}: unknown scheme {shown(parts.scheme)!r} (a target is 'local', ssh://[user@]host[:port] "
            f"or a libvirt URI such as qemu:///system, qemu+ssh://host/system, test:///ABS/PATH.xml){hint}"
        )
    if plus and transport not in TRANSPORTS:
        raise LibvirtUriError(
            f"{name}: unknown libvirt transport {shown(transport)!r} (one of {', '.join(sorted(TRANSPORTS))})"
            + _suggest(transport, sorted(TRANSPORTS))
        )
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError:
        raise LibvirtUriError(f"{name}: the port must be a number from 0 to 65535") from None
    if driver == "qemu" and parts.path not in QEMU_PATHS:
        raise LibvirtUriError(
            f"{name}: the qemu driver has no path {shown(parts.path or '(none)')!r} "
            f"(qemu:///system or qemu:///session){_suggest(parts.path, list(QEMU_PATHS))}"
        )
    if driver == "test" and not parts.netloc and transport in {"", "unix"}:
        _check_test_file(name, unquote(parts.path))


def _check_test_file(name: str, path: str) -> None:
    """The test driver reads a node file in this process: it must be an existing regular file."""
    if path == TEST_DEFAULT:
        return
    if not path.startswith("/"):
        raise LibvirtUriError(f"{name}: the test driver needs test:///default or an absolute file path")
    file = Path(path)
    try:
        is_file = file.is_file()
        exists = is_file or file.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise LibvirtUriError(f"{name}: cannot use {shown(path)}: {exc.strerror or exc}") from None
    if not exists:
        raise LibvirtUriError(f"{name}: no such file {shown(path)}")
    if not is_file:
        raise LibvirtUriError(f"{name}: {shown(path)} is not a regular file")
