"""Local accounts (/etc/passwd) and groups (/etc/group plus primary groups).

An account has a *login shell* unless its shell is one of the no-login programs (``nologin``, ``false``,
``true``, ``sync``, ``shutdown``, ``halt``); an empty shell field means ``/bin/sh`` (passwd(5)), so it is
a login shell. Lines that do not have passwd(5)'s seven fields or a numeric uid/gid are errors (with
file:line), not silently skipped. NIS ``+``/``-`` compat lines are recorded as errors too: they pull
accounts from elsewhere that hvguard cannot list.
"""

from __future__ import annotations

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.reader import ReadError
from hvguard.facts import AccountsFacts, GroupInfo, LocalAccount

PASSWD = "/etc/passwd"  # noqa: S105 (a path)
GROUP = "/etc/group"
#: Groups whose members administer the host or the hypervisor (sudo/wheel/admin: root via sudo on
#: Debian/RHEL/Ubuntu; libvirt: libvirt's read-write socket; kvm: /dev/kvm; libvirt-qemu/qemu: VM images).
PRIVILEGED_GROUPS = ("sudo", "wheel", "admin", "libvirt", "kvm", "libvirt-qemu", "qemu")
NOLOGIN_SHELLS = frozenset({"nologin", "false", "true", "sync", "shutdown", "halt"})


def has_login_shell(shell: str) -> bool:
    """True when ``shell`` gives an interactive login (empty means /bin/sh)."""
    if not shell.strip():
        return True
    return shell.rstrip("/").rsplit("/", 1)[-1] not in NOLOGIN_SHELLS


def _read(files: HostFiles, path: str, errors: list[str]) -> str | None:
    try:
        text = files.read_text(path)
    except ReadError as exc:
        errors.append(f"{exc.path}: {exc.message}")
        return None
    if text is None:
        errors.append(f"{path}: does not exist")
    return text


def collect_accounts(files: HostFiles) -> AccountsFacts:
    """Accounts and privileged groups; never raises."""
    errors: list[str] = []
    users: list[LocalAccount] = []
    text = _read(files, PASSWD, errors)
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in "+-":
            errors.append(f"{PASSWD} line {number}: NIS compat entry {line.split(':')[0]!r} (not listed)")
            continue
        fields = line.split(":")
        if len(fields) != 7 or not fields[2].isdigit() or not fields[3].isdigit():
            errors.append(f"{PASSWD} line {number}: not a passwd entry (name:x:uid:gid:gecos:home:shell)")
            continue
        users.append(
            LocalAccount(
                name=fields[0],
                uid=int(fields[2]),
                gid=int(fields[3]),
                shell=fields[6],
                home=fields[5],
                login_shell=has_login_shell(fields[6]),
                line=number,
            )
        )
    groups: list[GroupInfo] = []
    text = _read(files, GROUP, errors)
    seen: set[str] = set()
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 4 or not fields[2].isdigit():
            errors.append(f"{GROUP} line {number}: not a group entry (name:x:gid:members)")
            continue
        name = fields[0]
        members = [m.strip() for m in fields[3].split(",") if m.strip()]
        privileged = name in PRIVILEGED_GROUPS
        if name in seen or not (privileged or members):
            continue
        seen.add(name)
        gid = int(fields[2])
        groups.append(
            GroupInfo(
                name=name,
                gid=gid,
                members=members,
                primary_members=[u.name for u in users if u.gid == gid],
                privileged=privileged,
                line=number,
            )
        )
    return AccountsFacts(users=users, groups=groups, errors=errors)
