"""``hvguard --version``: the tool, the standard it checks, and which optional components are present.

Line 1 stays ``hvguard, version X`` (what scripts parse); the lines after it are for people filing a bug
or an auditor recording which catalog a report was checked against.
"""

from __future__ import annotations

import platform
import re
from importlib import metadata

from hvguard import __version__

#: Extras that are part of development, not optional features of the tool.
_NOT_FEATURES = frozenset({"dev"})
_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _extras() -> dict[str, list[str]]:
    """Extra name → the distributions it adds, from hvguard's own installed metadata."""
    try:
        requires = metadata.requires("hvguard") or []
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return {}
    extras: dict[str, list[str]] = {}
    for req in requires:
        marker = _EXTRA.search(req)
        name = _NAME.match(req)
        if marker and name and marker.group(1) not in _NOT_FEATURES:
            extras.setdefault(marker.group(1), []).append(name.group(1))
    return extras


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _libvirt_library() -> str | None:
    """The libvirt C library version libvirt-python is linked against, if it loads."""
    try:
        import libvirt
    except Exception:  # ImportError, or a broken shared library
        return None
    try:
        v = int(libvirt.getVersion())
    except Exception:
        return None
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def version_text() -> str:
    """The whole ``--version`` text."""
    from hvguard.catalog import load_catalog

    cat = load_catalog()
    lines = [
        f"hvguard, version {__version__}",
        f"catalog: {cat.id} {cat.version} ({cat.date}, {len(cat.measures)} measures, {cat.framework})",
        f"python: {platform.python_version()} ({platform.python_implementation()})",
    ]
    for extra, dists in sorted(_extras().items()):
        parts = []
        for dist in dict.fromkeys(dists):
            found = _installed(dist)
            text = f"{dist} {found}" if found else f"{dist} not installed"
            if dist == "libvirt-python" and found and (lib := _libvirt_library()):
                text += f" (libvirt {lib})"
            parts.append(text)
        lines.append(f"hvguard[{extra}]: {', '.join(parts)}")
    return "\n".join(lines)
