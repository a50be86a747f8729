"""Kernel facts: release, taint, lockdown, module signature enforcement and module blacklists.

``module_blacklist=`` is the kernel's own comma-separated list (exact names); ``modprobe.blacklist=``
is read by kmod and behaves like a ``blacklist`` line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hvguard.collect.linux.host_files import (
    MISSING,
    HostRoot,
    securityfs_mounted,
    value_of,
)
from hvguard.facts import (
    KernelFacts,
)

# kmod's search path (modprobe.d(5)); a file name in an earlier directory hides the same name later.
MODPROBE_DIRS = (
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
)


def read_cmdline(r: HostRoot) -> str | None:
    """The kernel command line, stripped; None when unavailable."""
    text = r.read_text("proc/cmdline", "host.kernel")
    if text is MISSING:
        if r.has_proc:
            r.problem("host.kernel", "proc/cmdline", "file not found")
        else:
            r.runtime_missing("host.kernel", "proc")
    return text.strip() if isinstance(text, str) else None


def _modprobe_lines(text: str) -> Iterable[str]:
    """Logical lines of a modprobe.d file: kmod joins a line ending in a backslash with the next."""
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def _modprobe_blacklist(r: HostRoot) -> list[str]:
    area = "host.kernel"
    chosen: dict[str, str] = {}
    seen_dirs: set[tuple[int, int]] = set()
    for directory in MODPROBE_DIRS:
        st = r.reader.stat_or_none(directory)
        if st is None:
            continue
        real = (st.st_dev, st.st_ino)
        if real in seen_dirs:
            continue  # lib → usr/lib on merged-/usr systems
        seen_dirs.add(real)
        entries = r.listdir(directory, area)
        if not isinstance(entries, list):
            continue
        for name in entries:
            if name.endswith(".conf"):
                chosen.setdefault(name, f"{directory}/{name}")
    names: set[str] = set()
    for name in sorted(chosen):
        text = r.read_text(chosen[name], area)
        if not isinstance(text, str):
            continue
        for line in _modprobe_lines(text):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "blacklist" and len(words) >= 2:
                names.add(_kmod_name(words[1]))
            elif words[0] == "install" and len(words) >= 3:
                command = words[2].rpartition("/")[2]
                # install NAME /bin/false (or /bin/true) makes every load of NAME a no-op.
                if command in {"false", "true"}:
                    names.add(_kmod_name(words[1]))
    return sorted(names)


def _kmod_name(name: str) -> str:
    # kmod treats - and _ in module names as the same character and stores the _ form.
    return name.replace("-", "_")


def _cmdline_blacklist(cmdline: str) -> list[str]:
    names: list[str] = []
    for word in cmdline.split():
        key, sep, value = word.partition("=")
        if not sep:
            continue
        if key == "module_blacklist":
            # The kernel compares these verbatim with the module's name.
            names.extend(item for item in value.split(",") if item)
        elif key == "modprobe.blacklist":
            names.extend(_kmod_name(item) for item in value.split(",") if item)
    return names


def collect_kernel(r: HostRoot, cmdline: str | None) -> KernelFacts:
    """Release, taint, lockdown, module signature enforcement and the module blacklist."""
    area = "host.kernel"
    release: str | None = None
    tainted: int | None = None
    lockdown: str | None = None
    sig_enforce: bool | None = None
    if r.has_proc:
        osrelease = r.read_word("proc/sys/kernel/osrelease", area)
        if osrelease is MISSING:
            r.problem(area, "proc/sys/kernel/osrelease", "file not found")
        release = value_of(osrelease) or None
        taint = r.read_int("proc/sys/kernel/tainted", area)
        if taint is MISSING:
            r.problem(area, "proc/sys/kernel/tainted", "file not found")
        tainted = value_of(taint)
    else:
        r.runtime_missing(area, "proc")

    if r.has_sys:
        if securityfs_mounted(r):
            text = r.read_word("sys/kernel/security/lockdown", area)
            if text is MISSING:
                lockdown = "none"  # securityfs is up but the lockdown LSM is not: nothing is locked down
            elif isinstance(text, str):
                match = re.search(r"\[([a-z]+)\]", text)
                if match:
                    lockdown = match.group(1)
                else:
                    r.problem(area, "sys/kernel/security/lockdown", f"no [level] in {text[:60]!r}")
        else:
            r.problem(area, "sys/kernel/security", "securityfs is not mounted: lockdown state unknown")

        flag = r.read_flag("sys/module/module/parameters/sig_enforce", area)
        if flag is MISSING:
            if r.exists("proc/modules"):
                sig_enforce = False  # modules load, and this kernel was built without signature checking
            else:
                r.problem(
                    area,
                    "sys/module/module/parameters/sig_enforce",
                    "absent and no proc/modules: the kernel has no loadable-module support",
                )
        else:
            sig_enforce = value_of(flag)
    else:
        r.runtime_missing(area, "sys")

    blacklist = set(_modprobe_blacklist(r))
    if cmdline is not None:
        blacklist.update(_cmdline_blacklist(cmdline))
    return KernelFacts(
        release=release,
        cmdline=cmdline,
        lockdown=lockdown,
        sig_enforce=sig_enforce,
        tainted=tainted,
        module_blacklist=sorted(blacklist),
    )
