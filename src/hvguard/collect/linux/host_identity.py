"""The host's identity from its files: host name, OS release and systemd's default target."""

from __future__ import annotations

import re
import shlex

from hvguard.collect.linux.host_files import (
    MISSING,
    Gap,
    HostRoot,
)

# systemd's unit search path, most specific first (only the directories that can hold default.target).
DEFAULT_TARGET_LINKS = (
    "etc/systemd/system/default.target",
    "run/systemd/system/default.target",
    "usr/local/lib/systemd/system/default.target",
    "usr/lib/systemd/system/default.target",
    "lib/systemd/system/default.target",
)


def read_hostname(r: HostRoot) -> str | None:
    """The host name: the kernel's on a live system, the configured one first on an offline root."""
    area = "host.hostname"
    # The kernel's name is the live truth; an offline root only has the configured one.
    order = ("proc/sys/kernel/hostname", "etc/hostname")
    if not r.live:
        order = ("etc/hostname", "proc/sys/kernel/hostname")
    for rel in order:
        text = r.read_text(rel, area)
        if isinstance(text, Gap):
            continue
        for line in text.splitlines():
            # hostname(5): comment lines are ignored.
            name = line.strip()
            if name and not name.startswith("#"):
                return name
    if not r.flagged(area):
        r.problem(area, order[0], f"no host name in {order[0]} or {order[1]}")
    return None


_OS_RELEASE_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read_os_release(r: HostRoot) -> tuple[str | None, str | None]:
    """(ID, VERSION_ID) from os-release(5)."""
    area = "host.os"
    # os-release(5): /etc/os-release wins, /usr/lib/os-release is the fallback.
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = r.read_text(rel, area)
        if text is MISSING:
            continue
        if isinstance(text, Gap):
            return None, None
        fields: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            match = _OS_RELEASE_LINE.match(line.strip())
            if not match:
                continue
            try:
                words = shlex.split(match.group(2), comments=False, posix=True)
            except ValueError:
                r.problem(area, rel, f"line {number}: unbalanced quotes")
                continue
            fields[match.group(1)] = " ".join(words)
        os_id = fields.get("ID") or None
        if os_id is None and not r.flagged(area):
            r.problem(area, rel, "no ID= line")
        # Rolling releases have no VERSION_ID: that is an answer, not a gap.
        return os_id, fields.get("VERSION_ID") or None
    r.problem(area, "etc/os-release", "neither etc/os-release nor usr/lib/os-release exists")
    return None, None


def read_default_target(r: HostRoot) -> str | None:
    """systemd's default target unit, from the default.target link's name."""
    area = "host.default_target"
    for rel in DEFAULT_TARGET_LINKS:
        link = r.readlink(rel)
        if link is not None:
            # The unit name is the link's last component; following it could leave the root.
            name = link.rstrip("/").rpartition("/")[2]
            if name:
                return name
            r.problem(area, rel, f"link target {link!r} names no unit")
            return None
        if r.exists(rel):
            # A real file called default.target is itself the default unit (systemctl get-default).
            return "default.target"
    r.problem(area, DEFAULT_TARGET_LINKS[0], "no default.target in any systemd unit directory")
    return None
