"""The QEMU processes running on the host, with the account each runs as and its guest name."""

from __future__ import annotations

from hvguard.collect.linux.host_files import (
    Accounts,
    Gap,
    HostRoot,
)
from hvguard.facts import (
    QemuProcess,
)


def _is_qemu_name(name: str) -> bool:
    return name.startswith(("qemu-system", "qemu-kvm")) or name == "kvm"


def split_qemu_opts(text: str) -> list[str]:
    """Split a QEMU option string on commas; ``,,`` is an escaped literal comma."""
    items: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == ",":
            if text.startswith(",,", index):
                current.append(",")
                index += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        index += 1
    items.append("".join(current))
    return items


def qemu_vm_name(args: list[str]) -> str | None:
    """The guest name from a QEMU command line: ``-name guest=NAME,...`` or ``-name NAME[,...]``."""
    for index, arg in enumerate(args[:-1]):
        if arg not in {"-name", "--name"}:
            continue
        for position, item in enumerate(split_qemu_opts(args[index + 1])):
            key, sep, value = item.partition("=")
            if sep and key == "guest":
                return value or None
            if not sep and position == 0:
                return item or None  # the first bare item is QEMU's implied "guest" key
        return None
    return None


def _process(r: HostRoot, pid: str, accounts: Accounts, area: str) -> QemuProcess | None:
    base = f"proc/{pid}"
    comm_raw = r.read_bytes(f"{base}/comm", area)
    cmdline_raw = r.read_bytes(f"{base}/cmdline", area)
    if isinstance(comm_raw, Gap) or isinstance(cmdline_raw, Gap) or not cmdline_raw:
        return None  # gone mid-scan, or a kernel thread (empty cmdline)
    comm = comm_raw.decode("utf-8", "replace").strip()
    exe = r.readlink(f"{base}/exe") or ""
    exe_name = exe.removesuffix(" (deleted)").rpartition("/")[2]
    if not (_is_qemu_name(comm) or _is_qemu_name(exe_name)):
        return None
    status = r.read_text(f"{base}/status", area)
    if isinstance(status, Gap):
        return None
    uid: int | None = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                uid = int(fields[1])  # the real uid: the account QEMU runs as
            break
    if uid is None:
        r.problem(area, f"{base}/status", "no readable Uid: line")
        return None
    args = [arg.decode("utf-8", "replace") for arg in cmdline_raw.rstrip(b"\0").split(b"\0")]
    return QemuProcess(pid=int(pid), user=accounts.user(uid, area), uid=uid, vm_name=qemu_vm_name(args))


def collect_qemu_processes(r: HostRoot, accounts: Accounts) -> list[QemuProcess] | None:
    """The running QEMU processes; None on an offline root (nothing runs in an image)."""
    area = "host.qemu_processes"
    if not r.has_proc:
        return None  # an offline root runs nothing; not a gap
    entries = r.listdir("proc", area)
    if not isinstance(entries, list):
        return None
    processes: list[QemuProcess] = []
    for pid in entries:
        if pid.isdigit():
            found = _process(r, pid, accounts, area)
            if found is not None:
                processes.append(found)
    return sorted(processes, key=lambda p: p.pid)
