"""libvirt's hook directory: which hook file hvguard installs, what was there before, and putting it back.

libvirt (≥ 6.5) runs every executable file of ``HOOKDIR/qemu.d/`` in name order, besides the single
``HOOKDIR/qemu`` script older versions know; hvguard installs ``qemu.d/50-hvguard`` there so other hooks
keep working, and the single ``qemu`` file only on an older libvirt. What the directory held before the
install (bytes, mode, owner and times of the file hvguard writes, and which directories existed) is
recorded in ``state.json`` so ``guard uninstall`` restores it byte for byte.

libvirt decides once whether a driver has hooks at all: at daemon start and again on SIGHUP (verified on
Debian 12's libvirt 9.0: a hook added to an empty hook directory is not run until ``libvirtd`` gets
SIGHUP; once the daemon knows the qemu driver has hooks, ``qemu.d`` is listed again at every call).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOOK_DIR = Path("/etc/libvirt/hooks")
DROPIN_NAME = "50-hvguard"
#: The first libvirt with the ``qemu.d`` drop-in directory.
DROPIN_VERSION = (6, 5, 0)
#: The line that marks a hook script as hvguard's own (anything else is "foreign").
MARKER = "# hvguard-guard-hook/1"
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
#: A previous hook larger than this is not kept in state.json (hooks are small scripts).
MAX_SAVED_BYTES = 1 << 20


class HookDirError(Exception):
    """The hook directory cannot be changed as asked (a foreign hook, an unreadable file …)."""


# ------------------------------------------------------------------------------------------------------
# libvirt version and daemon
# ------------------------------------------------------------------------------------------------------
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def libvirt_version() -> tuple[int, int, int] | None:
    """The installed libvirt's version: ``libvirtd --version`` (or ``virtqemud --version``), else the
    Python binding's library version; None when none answers."""
    for daemon in ("libvirtd", "virtqemud"):
        exe = shutil.which(daemon) or next(
            (p for p in (f"/usr/sbin/{daemon}", f"/sbin/{daemon}") if os.access(p, os.X_OK)), None
        )
        if not exe:
            continue
        try:
            out = subprocess.run(  # noqa: S603 (fixed argv, no shell)
                [exe, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = _VERSION_RE.search(out.stdout)
        if m:
            return int(m[1]), int(m[2]), int(m[3])
    try:
        import libvirt  # the [libvirt] extra; optional here

        n = int(libvirt.getVersion())
    except Exception:  # not installed, or the library refuses: the version stays unknown
        return None
    return n // 1_000_000, (n // 1000) % 1000, n % 1000


@dataclass(frozen=True)
class Daemon:
    """A running libvirtd: its PID and start time (seconds since the epoch)."""

    pid: int
    started_at: float


def running_libvirtd(pidfile: Path = LIBVIRTD_PIDFILE) -> Daemon | None:
    """The libvirtd whose PID ``pidfile`` holds, if that process runs and is libvirtd."""
    try:
        pid = int(pidfile.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        boot = _now() - uptime
    except (OSError, ValueError, IndexError):
        return None
    if comm != "libvirtd":
        return None
    # field 22 (starttime, clock ticks since boot) is index 19 after "pid (comm)"
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return Daemon(pid, started)


def _now() -> float:
    import time

    return time.time()


def reload_libvirtd(pidfile: Path = LIBVIRTD_PIDFILE) -> Daemon:
    """Send SIGHUP to libvirtd (it re-reads its configuration and looks for hooks again)."""
    daemon = running_libvirtd(pidfile)
    if daemon is None:
        raise HookDirError(f"no running libvirtd found from {pidfile}")
    try:
        os.kill(daemon.pid, signal.SIGHUP)
    except OSError as e:
        raise HookDirError(f"cannot signal libvirtd (pid {daemon.pid}): {e.strerror}") from e
    return daemon


# ------------------------------------------------------------------------------------------------------
# Where the hook goes, and what was there
# ------------------------------------------------------------------------------------------------------
def hook_path(hook_dir: Path, version: tuple[int, int, int] | None) -> Path:
    """``HOOKDIR/qemu.d/50-hvguard`` when libvirt knows drop-ins (or its version is unknown), else the
    single ``HOOKDIR/qemu`` file."""
    if version is not None and version < DROPIN_VERSION:
        return hook_dir / "qemu"
    return hook_dir / "qemu.d" / DROPIN_NAME


def is_ours(path: Path) -> bool:
    """Whether ``path`` is a hook script written by ``guard install`` (it carries :data:`MARKER`)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return MARKER.encode() in head


def _entry(path: Path) -> dict[str, Any]:
    st = path.lstat()
    return {
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
        "atime_ns": st.st_atime_ns,
    }


def record_previous(hook_dir: Path, hook: Path) -> dict[str, Any]:
    """What ``guard uninstall`` must put back: the directories on the way to ``hook`` (whether each
    existed, with mode/owner/times) and the file at ``hook`` itself (bytes, base64, with the same)."""
    dirs: list[dict[str, Any]] = []
    for d in [hook_dir, *([hook.parent] if hook.parent != hook_dir else [])]:
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise HookDirError(f"{d} is not a directory")
        rec: dict[str, Any] = {"path": str(d), "existed": d.is_dir()}
        if d.is_dir():
            rec.update(_entry(d))
        dirs.append(rec)
    file_rec: dict[str, Any] = {"path": str(hook), "existed": os.path.lexists(hook)}
    if file_rec["existed"]:
        if hook.is_symlink() or not hook.is_file():
            raise HookDirError(f"{hook} is not a regular file")
        size = hook.stat().st_size
        if size > MAX_SAVED_BYTES:
            raise HookDirError(f"{hook} is {size} bytes: too large to keep for uninstall")
        file_rec.update(_entry(hook))
        file_rec["content_b64"] = base64.b64encode(hook.read_bytes()).decode("ascii")
    return {"dirs": dirs, "file": file_rec}


def executable_hooks(hook_dir: Path) -> list[str]:
    """The executable qemu hooks libvirt would find in ``hook_dir`` (``qemu`` and ``qemu.d/*``)."""
    found = []
    single = hook_dir / "qemu"
    if single.is_file() and os.access(single, os.X_OK):
        found.append(str(single))
    dropins = hook_dir / "qemu.d"
    if dropins.is_dir():
        for p in sorted(dropins.iterdir()):
            if p.is_file() and os.access(p, os.X_OK):
                found.append(str(p))
    return found


# ------------------------------------------------------------------------------------------------------
# Writing and restoring
# ------------------------------------------------------------------------------------------------------
def write_hook(hook: Path, text: str) -> None:
    """Write the hook script atomically (temp file + rename in its directory), 0755, creating the
    directories it needs 0755."""
    hook.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = hook.with_name(f".{hook.name}.hvguard-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o755)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)  # noqa: S103 (a hook libvirt must run; umask may have narrowed it)
        os.replace(tmp, hook)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _restore_meta(path: Path, rec: dict[str, Any]) -> None:
    os.chown(path, rec["uid"], rec["gid"], follow_symlinks=False)
    os.chmod(path, rec["mode"])
    os.utime(path, ns=(rec["atime_ns"], rec["mtime_ns"]), follow_symlinks=False)


def restore_previous(previous: dict[str, Any]) -> list[str]:
    """Put the hook directory back as :func:`record_previous` saw it; return warnings (a directory that
    hvguard created but that now holds someone else's files is left in place)."""
    warnings: list[str] = []
    file_rec = previous["file"]
    hook = Path(file_rec["path"])
    if file_rec["existed"]:
        data = base64.b64decode(file_rec["content_b64"])
        tmp = hook.with_name(f".{hook.name}.hvguard-tmp")
        hook.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _restore_meta(tmp, file_rec)
        os.replace(tmp, hook)
    else:
        with contextlib.suppress(FileNotFoundError):
            hook.unlink()
    # innermost directory first: qemu.d, then the hook directory
    for rec in reversed(previous["dirs"]):
        d = Path(rec["path"])
        if not rec["existed"]:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                warnings.append(f"{d} was created by guard install but now holds other files: kept")
        elif d.is_dir():
            _restore_meta(d, rec)
    return warnings
