"""Watch the daemon's domain configuration directory (``/etc/libvirt/qemu``) with inotify.

Why: libvirt (9.0 measured here) emits **no event** when a persistent definition is changed through the
config-only APIs — ``virsh schedinfo --config``, ``setvcpus --config``, ``setmaxmem --config``,
``memtune --config``, ``blkiotune --config`` … (``virDomainSetSchedulerParametersFlags`` with
``AFFECT_CONFIG`` and friends). It does rewrite ``<configDir>/NAME.xml`` (a temporary file renamed over
it) before the API call returns. So for a local URI hvguard watches that directory: every rename or
write of ``NAME.xml`` queues a look at VM ``NAME`` through the API — the file is only the trigger, the
definition compared is always the one libvirt returns.

Remote URIs have no such directory; there the watcher polls (``poll_interval_s``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("hvguard.watch")

_DRIVERS_WITH_CONFIG_DIR = frozenset({"qemu", "lxc", "libxl", "ch", "bhyve"})


def config_dir_for(uri: str) -> Path | None:
    """The directory where the daemon behind a *local* ``uri`` keeps persistent definitions, or None
    (remote URI, unknown driver)."""
    parts = urlsplit(uri)
    scheme = parts.scheme
    driver, _, transport = scheme.partition("+")
    if parts.netloc or transport not in ("", "unix") or driver not in _DRIVERS_WITH_CONFIG_DIR:
        return None
    if parts.path == "/system":
        return Path("/etc/libvirt") / driver
    if parts.path == "/session":
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "libvirt" / driver
    return None


class ConfigDirWatch(threading.Thread):
    """Calls ``on_name(vm_name)`` whenever ``<directory>/<vm_name>.xml`` is written, replaced or removed."""

    def __init__(self, directory: Path, on_name: Callable[[str], None], stop: threading.Event) -> None:
        super().__init__(name=f"inotify {directory}", daemon=True)
        self.directory = directory
        self.on_name = on_name
        self._stop_event = stop
        self.watching = threading.Event()

    def run(self) -> None:
        """Watch until stopped; re-arm when the directory is (re)created."""
        from inotify_simple import INotify, flags  # type: ignore[import-untyped]

        mask = flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE | flags.DELETE_SELF
        said_missing = False
        while not self._stop_event.is_set():
            with INotify() as ino:
                try:
                    ino.add_watch(str(self.directory), mask)
                except OSError as exc:
                    if not said_missing:
                        log.warning(
                            "cannot watch %s (%s): config-only changes are seen by polling until it appears",
                            self.directory,
                            exc.strerror or exc,
                        )
                        said_missing = True
                    self._stop_event.wait(2.0)
                    continue
                said_missing = False
                self.watching.set()
                log.info("watching %s for definition rewrites", self.directory)
                gone = False
                while not self._stop_event.is_set() and not gone:
                    for event in ino.read(timeout=250):
                        if event.mask & (flags.DELETE_SELF | flags.IGNORED):
                            gone = True
                            continue
                        name = str(event.name)
                        if name.endswith(".xml") and not name.startswith("."):
                            self.on_name(name[: -len(".xml")])
                self.watching.clear()
