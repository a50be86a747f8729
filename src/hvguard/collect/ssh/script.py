"""What the SSH transport runs on a target: one read-only POSIX ``sh`` script plus its request.

The script is constant text. Everything that varies — the record boundary, the size cap, the paths to
read and the manifest commands to run — is sent after it as *data* in a quoted here-document, one item
per line, and read with ``read -r``; nothing hvguard or the target supplies is ever pasted into shell
code. The only value that reaches another interpreter is the boundary (32 lower-case hex digits,
checked by the script) inside ``virsh``'s own command string, together with domain UUIDs that the
script accepts only when they consist of hex digits and dashes.

The script answers with framed records on stdout (:mod:`hvguard.collect.ssh.records` parses them)::

    "\\n" BOUNDARY ":" TYPE "\\0" FIELD "\\0" ... PAYLOAD

Records: ``H`` version; ``d`` a directory; ``D`` a directory and its entries (``d|f|l`` + name, NUL
terminated); ``F`` a file and its bytes (capped); ``B`` a regular file whose bytes come in ``A``, one
``tar`` archive of all of them (one process instead of one ``cat`` per file); ``R`` a read of that
file failed (reason); ``U`` exists but unreadable (reason); ``L`` a symbolic link and its text; ``S``
exists (stat only); ``N`` a file's line count and last byte (octal, empty when the file is empty);
``M`` ``stat`` output (path; raw mode in hex, uid, gid, mtime in ns, size) for every path above; ``G``
``getfacl --skip-base`` output for the same paths (which carry a POSIX ACL; only when the target has
getfacl, else ACLs stay unknown); ``O``/``E`` a
command's stdout, then its exit status and stderr; ``X`` a command that is not installed; ``e``
virsh's stderr; ``V``/``VD`` virsh's answers; ``Z`` the end.

Read-only: ``tar chf -`` (to stdout), ``cat``/``head``, ``find -printf`` (link texts, socket
descriptors; ``readlink`` without GNU find), ``stat``, ``getfacl``, ``ls``, ``grep``,
``wc``/``tail``/``od`` on the paths below, ``virsh`` read commands, and the manifest's commands, each
under ``timeout`` when the target has it. No file is written (not even a temporary one) and every
command's stdin is ``/dev/null``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from hvguard.collect.manifest import COMMANDS, FILES, LIST_DIRS, NEVER_COPIED, STAT_FILES

PROTOCOL = "1"
#: The libvirt connection the script opens on the target (the same one a local scan uses).
REMOTE_LIBVIRT_URI = "qemu:///system"
#: Bytes read per file at most; one more than the collectors' own limit so that they see and report
#: "larger than …" instead of silently parsing a truncated file.
FILE_CAP = 16 * 1024 * 1024 + 1
#: Domains per ``virsh dumpxml`` batch (a single argument may not exceed 128 KiB on Linux).
DUMPXML_BATCH = 400
#: Script runs per target at most: the manifest, then paths the target's own configuration named outside
#: it (a directory with its entries' names, owners and modes in one pass), then the files found there,
#: then what those name in turn (an Include inside an included file).
MAX_PASSES = 4
#: The here-document delimiter; no request line may equal it.
REQUEST_END = "HVG_REQUEST_END"

EFI_GUID = "8be4df61-93ca-11d2-aa0d-e0b7f1c0e8c5"
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Fetch:
    """One item of the host part of the request.

    ``op``: ``F`` read (files: bytes; directories: existence; links: their text, and what they point
    at, read through them), ``W`` a one-line
    pseudo-file read with the shell's builtin ``read`` (no process), ``S`` existence and mode only,
    ``D`` directory listing (names and types), ``N`` line count (logs that grow without bound),
    ``T`` the top-level directories and links of ``/`` (merged-/usr links), ``P`` the QEMU processes,
    ``K`` the socket file descriptors of every process (``find -lname 'socket:*'``) and their ``comm``.
    ``pattern`` is an absolute path, possibly with shell glob characters.
    """

    op: str
    pattern: str
    why: str


def _f(op: str, why: str, *patterns: str) -> list[Fetch]:
    return [Fetch(op, p, why) for p in patterns]


#: What the Linux host collector (``linux_host``) and the stored-definition reader need. A test keeps
#: this in step with the collector's code (tests/test_ssh_script.py).
HOST_FETCH: tuple[Fetch, ...] = (
    *_f("T", "which top-level directories exist; merged-/usr links (lib -> usr/lib)", "/"),
    *_f("W", "host name", "/proc/sys/kernel/hostname"),
    *_f("F", "host name, OS release", "/etc/hostname", "/etc/os-release", "/usr/lib/os-release"),
    *_f(
        "F",
        "systemd default target (the link's name only)",
        "/etc/systemd/system/default.target",
        "/run/systemd/system/default.target",
        "/usr/local/lib/systemd/system/default.target",
        "/usr/lib/systemd/system/default.target",
        "/lib/systemd/system/default.target",
    ),
    *_f("F", "CPU, memory, modules, kernel command line", "/proc/cpuinfo", "/proc/meminfo"),
    *_f("F", "loaded kernel modules; kernel command line", "/proc/modules", "/proc/cmdline"),
    *_f("W", "kernel release and taint", "/proc/sys/kernel/osrelease", "/proc/sys/kernel/tainted"),
    *_f("D", "CPU topology when cpuinfo lacks it", "/sys/devices/system/cpu"),
    *_f(
        "W",
        "CPU topology when cpuinfo lacks it",
        "/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id",
        "/sys/devices/system/cpu/cpu[0-9]*/topology/core_id",
    ),
    *_f("D", "KVM modules (built in or loaded)", "/sys/module"),
    *_f(
        "W",
        "EPT/NPT and module signature enforcement",
        "/sys/module/kvm_intel/parameters/ept",
        "/sys/module/kvm_amd/parameters/npt",
        "/sys/module/module/parameters/sig_enforce",
    ),
    *_f("S", "/dev/kvm mode and group", "/dev/kvm"),
    *_f("D", "IOMMU groups", "/sys/kernel/iommu_groups"),
    *_f(
        "S",
        "attestation agents present",
        "/etc/keylime/agent.conf",
        "/usr/bin/keylime_agent",
        "/usr/local/bin/keylime_agent",
        "/boot/tboot.gz",
    ),
    *_f("F", "TPM present", "/sys/class/tpm/tpm0"),
    *_f("W", "TPM version", "/sys/class/tpm/tpm0/tpm_version_major"),
    *_f("D", "securityfs mounted", "/sys/kernel/security"),
    *_f("W", "kernel lockdown", "/sys/kernel/security/lockdown"),
    *_f("S", "TPM event log present", "/sys/kernel/security/tpm0/binary_bios_measurements"),
    *_f("F", "IMA enabled", "/sys/kernel/security/ima"),
    *_f("N", "IMA measurement count", "/sys/kernel/security/ima/ascii_runtime_measurements"),
    *_f("F", "UEFI boot", "/sys/firmware/efi", "/sys/firmware/efi/vars"),
    *_f("D", "efivarfs mounted", "/sys/firmware/efi/efivars"),
    *_f(
        "F",
        "Secure Boot and setup mode",
        f"/sys/firmware/efi/efivars/SecureBoot-{EFI_GUID}",
        f"/sys/firmware/efi/efivars/SetupMode-{EFI_GUID}",
        f"/sys/firmware/efi/vars/SecureBoot-{EFI_GUID}/data",
        f"/sys/firmware/efi/vars/SetupMode-{EFI_GUID}/data",
    ),
    *_f(
        "D",
        "module blacklists (kmod's search path)",
        "/etc/modprobe.d",
        "/run/modprobe.d",
        "/usr/local/lib/modprobe.d",
        "/usr/lib/modprobe.d",
        "/lib/modprobe.d",
    ),
    *_f(
        "F",
        "module blacklists (kmod's search path)",
        "/etc/modprobe.d/*.conf",
        "/run/modprobe.d/*.conf",
        "/usr/local/lib/modprobe.d/*.conf",
        "/usr/lib/modprobe.d/*.conf",
        "/lib/modprobe.d/*.conf",
    ),
    *_f(
        "F", "libvirt daemon and QEMU driver settings", "/etc/libvirt/qemu.conf", "/etc/libvirt/libvirtd.conf"
    ),
    *_f("F", "account and group names for uids and gids", "/etc/passwd", "/etc/group"),
    *_f("P", "QEMU processes: comm, cmdline, status (and exe link) of those processes only", "/proc"),
    *_f("K", "which process owns each socket: socket fd links and comm only", "/proc/[0-9]*/fd"),
)


#: What the script reads on its own when virsh does not answer (``stored``): the stored definitions.
STORED_DEFINITIONS = Fetch("F", "/etc/libvirt/qemu/*.xml", "stored domain definitions, when virsh gives none")


def manifest_fetch() -> tuple[Fetch, ...]:
    """Everything the script reads: the host collector's list, then the manifest's ``FILES`` (read),
    ``STAT_FILES`` (existence, owner and mode only: never their bytes) and ``LIST_DIRS`` (names)."""
    shared = [Fetch("F", "/" + pattern.lstrip("/"), "manifest FILES") for pattern in FILES]
    shared += [Fetch("S", "/" + pattern.lstrip("/"), "manifest STAT_FILES") for pattern in STAT_FILES]
    shared += [Fetch("D", "/" + pattern.lstrip("/"), "manifest LIST_DIRS") for pattern in LIST_DIRS]
    return HOST_FETCH + tuple(shared)


class FetchIndex:
    """Which target paths a request answers for.

    A covered path the answer does not hold is absent on the target (or unreadable, which the answer
    says); any other path was simply not asked for, and the transport fetches it in a follow-up pass
    (:func:`follow_up_fetch`). Covered: what the items name (globs per path component), every directory
    above them and every directory a glob looks in, the names in a listed directory, the top-level
    entries (``T``), the QEMU processes' files (``P``) and the socket descriptors (``K``).
    """

    def __init__(self, items: Iterable[Fetch]) -> None:
        self._exact: set[str] = {"/"}
        self._listed: set[str] = set()
        self._searched: set[str] = set()
        self._searched_globs: dict[int, list[tuple[str, ...]]] = {}
        self._globs: dict[int, list[tuple[str, ...]]] = {}
        self._top = self._processes = self._sockets = False
        for item in items:
            if item.op == "T":
                self._top = True
            elif item.op == "P":
                self._processes = True
            elif item.op == "K":
                self._sockets = True
            else:
                self._add(item)

    def _add(self, item: Fetch) -> None:
        parts = [part for part in item.pattern.split("/") if part]
        if parts and _GLOB_CHARS & set(parts[-1]):
            parent = parts[:-1]
            if any(_GLOB_CHARS & set(part) for part in parent):
                self._searched_globs.setdefault(len(parent), []).append(tuple(parent))
            else:
                self._searched.add("/" + "/".join(parent))
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if any(_GLOB_CHARS & set(part) for part in prefix):
                self._globs.setdefault(depth, []).append(tuple(prefix))
                if item.op == "D" and depth == len(parts):
                    self._globs.setdefault(depth + 1, []).append((*prefix, "*"))
            else:
                self._exact.add("/" + "/".join(prefix))
                if item.op == "D" and depth == len(parts):
                    self._listed.add("/" + "/".join(prefix))

    def lists(self, path: str) -> bool:
        """True when the answer names every entry of directory ``path`` the collectors may look for: it
        was listed (``D``), or a glob looked in it."""
        parts = [part for part in path.split("/") if part]
        normal = "/" + "/".join(parts)
        if normal in self._listed or normal in self._searched or (normal == "/" and self._top):
            return True
        if parts[:1] == ["proc"] and (len(parts) == 1 or (len(parts) == 3 and parts[2] == "fd")):
            # The script chose the processes that matter (QEMU's, socket owners) and their descriptors.
            return (self._processes or self._sockets) if len(parts) == 1 else self._sockets
        return _matches(parts, self._searched_globs)

    def covers(self, path: str) -> bool:
        """True when the answer to this request says everything about ``path`` (absolute)."""
        parts = [part for part in path.split("/") if part]
        if not parts:
            return True
        if "/" + "/".join(parts) in self._exact:
            return True
        if len(parts) == 1:
            return self._top
        if parts[0] == "proc" and parts[1].isdigit():
            rest = parts[2:]
            by_p = self._processes and rest in ([], ["comm"], ["cmdline"], ["status"], ["exe"])
            by_k = self._sockets and (rest in ([], ["fd"], ["comm"]) or (len(rest) == 2 and rest[0] == "fd"))
            return by_p or by_k
        if "/" + "/".join(parts[:-1]) in self._listed:
            return True
        return _matches(parts, self._globs)


def _matches(parts: list[str], patterns: dict[int, list[tuple[str, ...]]]) -> bool:
    """True when ``parts`` matches, component by component, one of the patterns of its length."""
    return any(
        all(fnmatch.fnmatchcase(name, pattern) for name, pattern in zip(parts, globbed, strict=True))
        for globbed in patterns.get(len(parts), ())
    )


@functools.cache
def manifest_index() -> FetchIndex:
    """The :class:`FetchIndex` of a first run (the manifest, and the stored definitions the script reads
    when virsh gives none), built once: every target's first pass shares it."""
    return FetchIndex((*manifest_fetch(), STORED_DEFINITIONS))


def never_copied(path: str) -> bool:
    """True for a path whose bytes are never fetched (:data:`~hvguard.collect.manifest.NEVER_COPIED`)."""
    rel = path.strip("/")
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in NEVER_COPIED)


def follow_up_fetch(unfetched: dict[str, set[str]]) -> tuple[Fetch, ...]:
    """Items for paths the collectors looked for outside the request (named by the target's own
    configuration: an ``Include`` elsewhere, a storage pool's directory): the same read-only ops, by
    exact path; never the bytes of a :func:`never_copied` path. Paths holding glob characters are not
    asked for (the script would expand them)."""
    items: list[Fetch] = []
    for path, ops in sorted(unfetched.items()):
        if _GLOB_CHARS & set(path) or "\n" in path or "\r" in path or not path.startswith("/"):
            continue
        why = "named by the target's own configuration"
        if never_copied(path):
            items.append(Fetch("S", path, why))
            continue
        wanted = ops & {"F", "D", "S", "N"}
        if "S" in wanted:
            wanted.add("D")  # a directory is usually listed next: its names come in the same pass
        items += [Fetch(op, path, why) for op in sorted(wanted)]
        if "D" in wanted:
            # ... and the owner and mode of each of its entries (nothing, when it is not a directory).
            items += [Fetch("S", f"{path.rstrip('/')}/{glob}", why) for glob in ("*", ".[!.]*")]
    return tuple(items)


def new_boundary() -> str:
    """A fresh record boundary: 128 random bits, so no file content can forge a record."""
    return secrets.token_hex(16)


def _check_line(item: str) -> str:
    if "\n" in item or "\r" in item or "\0" in item or item == REQUEST_END:
        raise ValueError(f"request item {item!r} cannot be sent as one line")
    return item


def build_request(
    boundary: str, fetch: Iterable[Fetch], command_names: Iterable[str], *, virsh: bool = True
) -> str:
    """The request lines that follow the script: boundary, cap, then one item per line (virsh's
    questions last, unless ``virsh`` is False)."""
    if len(boundary) != 32 or any(c not in "0123456789abcdef" for c in boundary):
        raise ValueError("the boundary must be 32 lower-case hex digits")
    lines = [boundary, str(FILE_CAP)]
    for item in fetch:
        lines += [item.op, _check_line(item.pattern)]
    for name in command_names:
        cmd = COMMANDS[name]
        lines += ["C", _check_line(name), str(max(1, math.ceil(cmd.timeout_s))), str(len(cmd.argv))]
        lines += [_check_line(arg) for arg in cmd.argv]
    if virsh:
        lines += ["V", REMOTE_LIBVIRT_URI]
    lines += ["Z", "-"]
    return "\n".join(lines) + "\n"


def build_script(
    boundary: str,
    fetch: Iterable[Fetch] | None = None,
    commands: Iterable[str] | None = None,
    *,
    virsh: bool = True,
) -> bytes:
    """The complete text sent to ``sh -s``: the script, then the request as a here-document.

    By default the request is the whole manifest: every fetch item, every command and virsh.
    """
    request = build_request(
        boundary,
        manifest_fetch() if fetch is None else fetch,
        sorted(COMMANDS) if commands is None else commands,
        virsh=virsh,
    )
    return f"{REMOTE_SCRIPT}main <<'{REQUEST_END}' | blocks\n{request}{REQUEST_END}\n".encode()


def remote_command(*, sudo: bool) -> str:
    """The one command line run on the target; the script arrives on its stdin."""
    return "sudo -n sh -s" if sudo else "sh -s"


#: Each virsh command the script runs (in two ``virsh -c qemu:///system`` sessions: one for the host
#: facts, one per batch of domains), with why. Printed by ``hvguard collect --dry-run``.
VIRSH_COMMANDS: tuple[tuple[str, str], ...] = (
    ("uri", "the connection answers (read-write; read-only with -r when refused)"),
    ("version", "libvirt and hypervisor versions"),
    ("hostname", "the hypervisor's host name"),
    ("nodeinfo", "node CPU and memory"),
    ("capabilities", "host CPU, security models, guest types"),
    ("list --all --uuid", "every domain"),
    ("list --all --persistent --uuid", "which domains are persistent"),
    ("dumpxml --security-info UUID", "each domain's definition (without --security-info when read-only)"),
    ("echo MARKER", "separates the answers (prints its argument)"),
)


def _target_line(target: str, sudo: bool) -> str:
    if target == "local":
        return f"  {target}: the commands below run on this machine; the files are read here"
    if target.lower().startswith("ssh://"):
        return f"  {target}: one SSH session running `{remote_command(sudo=sudo)}` (the script below)"
    return f"  {target}: the libvirt API only (no host commands, no host files)"


def describe_manifest(*, sudo: bool = False, targets: Iterable[str] = ()) -> str:
    """The text ``hvguard collect --dry-run`` prints: every command and file hvguard may read."""
    out: list[str] = [
        "hvguard collection manifest: every command hvguard runs and every file it reads on a host.",
        "All of it is read-only. Nothing is written to a target.",
        "",
    ]
    chosen = list(targets)
    if chosen:
        out.append("Targets (a dry run contacts none of them):")
        out += [_target_line(t, sudo) for t in chosen]
        out.append("")
    out += [
        "Local targets ('local', --root): the commands below run directly (no shell), the files are read.",
        "ssh:// targets: one SSH session per target runs ONE remote command,",
        f"    {remote_command(sudo=sudo)}",
        "with the script printed at the end on its stdin; the script reads the files and runs the",
        "commands below and nothing else (each under `timeout` when the target has it).",
        "",
        "Commands:",
    ]
    for name in sorted(COMMANDS):
        cmd = COMMANDS[name]
        root = " [needs root for a full answer]" if cmd.needs_root else ""
        out.append(f"  {name}: {' '.join(cmd.argv)}")
        out.append(f"      {cmd.purpose}{root}; timeout {cmd.timeout_s:g} s")
    out.append(
        f"  virsh (ssh:// targets; local targets use the libvirt API): virsh -c {REMOTE_LIBVIRT_URI} …"
    )
    for command, why in VIRSH_COMMANDS:
        out.append(f"      {command}: {why}")
    out += [
        "  helpers the script uses on the files below: tar chf - (regular files, to stdout), head/cat",
        "      (pseudo-files), find -printf (link texts, socket descriptors), stat, ls -l and grep (QEMU",
        "      processes), wc/tail/od (line counts), dd (64 KiB output blocks), sh builtins",
        "",
        "Files (globs; ssh:// targets read them on the target):",
    ]
    ops = {
        "F": "read",
        "W": "read",
        "S": "exists/mode",
        "D": "list",
        "N": "count lines",
        "T": "list dirs+links",
        "P": "processes",
        "K": "socket owners",
    }
    for item in manifest_fetch():
        out.append(f"  {ops[item.op]:<15} {item.pattern}  ({item.why})")
    out.append("  …and, only when libvirt does not answer: /etc/libvirt/qemu/*.xml (stored definitions)")
    out += [
        "  …and, over ssh://, paths the target's own configuration names outside this list (an sshd or",
        "      sudoers Include elsewhere, a storage pool's directory): the same read-only operations, by",
        f"      exact path, in up to {MAX_PASSES - 1} more runs of the same script over the same connection.",
        "      Never the bytes of: " + ", ".join("/" + p for p in NEVER_COPIED),
        "      (existence, owner and mode only).",
    ]
    out += ["", f"Remote script (protocol {PROTOCOL}), sent on stdin to `{remote_command(sudo=sudo)}`:", ""]
    out.append(REMOTE_SCRIPT.rstrip("\n"))
    out.append(f"main <<'{REQUEST_END}' | blocks")
    out.append("(the request: a random record boundary, the size cap, then the items above, one per line)")
    out.append(REQUEST_END)
    return "\n".join(out) + "\n"


# The script. POSIX sh only (dash, busybox ash, bash --posix): no arrays, no `local`, no [[ ]], no
# $'…'. Function variables are global in sh, so each function uses its own prefix (_fp, _lp, …).
REMOTE_SCRIPT = r"""# hvguard remote collection script: reads files, runs read-only commands, writes nothing.
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export PATH
NL='
'
HAVE_HEADC=0; head -c 1 /dev/null >/dev/null 2>&1 </dev/null && HAVE_HEADC=1
HAVE_TIMEOUT=0; command -v timeout >/dev/null 2>&1 && HAVE_TIMEOUT=1
HAVE_STAT=0; stat -L --printf '' / >/dev/null 2>&1 </dev/null && HAVE_STAT=1
HAVE_TAR=0; command -v tar >/dev/null 2>&1 && HAVE_TAR=1
HAVE_FINDP=0; find / -maxdepth 0 -printf '' >/dev/null 2>&1 </dev/null && HAVE_FINDP=1
LINKS=$NL
META=
BATCH=
B=
CAP=

rec() {
    printf '\n%s:%s\0' "$B" "$1"; shift
    for _rf in "$@"; do printf '%s\0' "$_rf"; done
}

meta() {
    case $1 in *"$NL"*) return ;; esac
    META="$META$1$NL"
}

reason() {
    _rm=$1; _rm=${_rm%"$NL"}; _rm=${_rm##*"$NL"}
    printf '%s' "${_rm##*: }"
}

tmo() {
    if [ "$HAVE_TIMEOUT" = 1 ]; then timeout -k 2 "$@"; else shift; "$@"; fi
}

readf() {
    if [ "$HAVE_HEADC" = 1 ]; then head -c "$CAP" -- "$1"; else cat -- "$1"; fi
}

content() {
    rec F "$1"; meta "$1"
    if ! readf "$1" 2>/dev/null </dev/null; then
        _ce=$(readf "$1" 2>&1 >/dev/null </dev/null)
        rec R "$1" "$(reason "$_ce")"
    fi
}

unreadable() {
    rec U "$1" "$2"; meta "$1"
}

link() {
    # A symbolic link: its text is read at the end, for every link at once (one process).
    case $1 in *"$NL"*) return 0 ;; esac
    case $LINKS in *"$NL$1$NL"*) return 0 ;; esac
    LINKS="$LINKS$1$NL"
}

links() {
    [ "$LINKS" != "$NL" ] || return 0
    _li=$IFS; IFS=$NL; set -f
    if [ "$HAVE_FINDP" = 1 ]; then
        find $LINKS -maxdepth 0 -printf "\n$B:L\0%p\0%l\0" 2>/dev/null </dev/null
    else
        for _lp in $LINKS; do
            _lt=$(readlink -- "$_lp" 2>/dev/null </dev/null) && rec L "$_lp" "$_lt"
        done
    fi
    set +f; IFS=$_li
}

fetch() {
    # A path's link text (if it is a link), then what it is or points at: a directory's existence, a
    # file's bytes (read through the link; hvguard places them where the link points).
    _fp=$1
    if [ -L "$_fp" ]; then link "$_fp"; fi
    if [ -d "$_fp" ]; then
        rec d "$_fp"; meta "$_fp"
    elif [ -e "$_fp" ]; then
        if [ ! -r "$_fp" ]; then
            unreadable "$_fp" "Permission denied"
        elif [ -f "$_fp" ] && batchable "$_fp"; then
            rec B "$_fp"; meta "$_fp"; BATCH="$BATCH$_fp$NL"
        else
            content "$_fp"
        fi
    fi
}

batchable() {
    # Pseudo-files report sizes tar cannot trust; tar rewrites names holding "..".
    case $1 in /proc/* | /sys/* | /dev/* | *"$NL"* | */../* | */./*) return 1 ;; esac
    [ "$HAVE_TAR" = 1 ]
}

archive() {
    [ -n "$BATCH" ] || return 0
    # tar has no size cap: a file over the cap is read with head instead (the collectors then
    # report it as too large), so one huge file cannot swell the answer.
    _ai=$IFS; IFS=$NL; set -f
    _ab=$NL$(find -H $BATCH -size +"$CAP"c -print 2>/dev/null </dev/null)$NL
    set +f; IFS=$_ai
    if [ "$_ab" != "$NL$NL" ]; then
        _an=
        while IFS= read -r _af; do
            [ -n "$_af" ] || continue
            case $_ab in *"$NL$_af$NL"*) content "$_af" ;; *) _an="$_an$_af$NL" ;; esac
        done <<HVG_BATCH
$BATCH
HVG_BATCH
        BATCH=$_an
        [ -n "$BATCH" ] || return 0
    fi
    rec A
    _ai=$IFS; IFS=$NL; set -f
    tar chf - -- $BATCH 2>/dev/null </dev/null
    set +f; IFS=$_ai
}

top() {
    for _te in /*; do
        if [ -L "$_te" ]; then
            link "$_te"
            if [ -d "$_te" ]; then rec d "$_te"; fi
        elif [ -d "$_te" ]; then
            rec d "$_te"; meta "$_te"
        fi
    done
}

word() {
    _wp=$1
    if [ -L "$_wp" ]; then fetch "$_wp"; return 0; fi
    [ -e "$_wp" ] || return 0
    if [ ! -r "$_wp" ]; then unreadable "$_wp" "Permission denied"; return 0; fi
    _wv=; _wn=0
    if { IFS= read -r _wv <"$_wp"; } 2>/dev/null; then _wn=1; fi
    if [ "$_wn" = 0 ] && [ -z "$_wv" ]; then content "$_wp"; return 0; fi
    rec F "$_wp"; meta "$_wp"
    printf '%s' "$_wv"
    if [ "$_wn" = 1 ]; then printf '\n'; fi
}

statonly() {
    if [ -L "$1" ]; then link "$1"; fi
    if [ -d "$1" ]; then
        rec d "$1"; meta "$1"
    elif [ -e "$1" ]; then
        rec S "$1"; meta "$1"
    fi
}

listing() {
    _dd=$1
    if [ -L "$_dd" ]; then link "$_dd"; fi
    [ -d "$_dd" ] || return 0
    if [ ! -r "$_dd" ] || [ ! -x "$_dd" ]; then unreadable "$_dd" "Permission denied"; return 0; fi
    rec D "$_dd"; meta "$_dd"
    for _de in "$_dd"/* "$_dd"/.[!.]* "$_dd"/..?*; do
        if [ -L "$_de" ]; then printf 'l%s\0' "${_de##*/}"
        elif [ -d "$_de" ]; then printf 'd%s\0' "${_de##*/}"
        elif [ -e "$_de" ]; then printf 'f%s\0' "${_de##*/}"
        fi
    done
}

lines() {
    _np=$1
    [ -e "$_np" ] || return 0
    if [ ! -r "$_np" ]; then unreadable "$_np" "Permission denied"; return 0; fi
    if ! _nc=$(wc -l <"$_np" 2>/dev/null); then
        _ne=$(wc -l <"$_np" 2>&1 >/dev/null)
        unreadable "$_np" "$(reason "$_ne")"
        return 0
    fi
    _nl=$(tail -c 1 -- "$_np" 2>/dev/null </dev/null | od -An -to1)
    rec N "$_np" "$_nc" "$_nl"; meta "$_np"
}

procs() {
    _px=$(ls -l /proc/[0-9]*/exe 2>/dev/null </dev/null \
        | grep -E '/(qemu-system[^/]*|qemu-kvm[^/]*|kvm)( \(deleted\))?$')
    _pids=' '
    while IFS= read -r _pl; do
        case $_pl in *' /proc/'*'/exe -> '*) ;; *) continue ;; esac
        _pp=${_pl#*' /proc/'}; _pp=${_pp%%'/exe -> '*}
        case $_pp in '' | *[!0-9]*) continue ;; esac
        _pids="$_pids$_pp "
        rec L "/proc/$_pp/exe" "${_pl#*'/exe -> '}"
    done <<HVG_EXES
$_px
HVG_EXES
    _pc=$(grep -lE '^(qemu-system.*|qemu-kvm.*|kvm)$' /proc/[0-9]*/comm 2>/dev/null </dev/null)
    for _pf in $_pc; do
        _pp=${_pf#/proc/}; _pp=${_pp%/comm}
        case $_pp in '' | *[!0-9]*) continue ;; esac
        case $_pids in *" $_pp "*) ;; *) _pids="$_pids$_pp " ;; esac
    done
    for _pp in $_pids; do
        [ -d "/proc/$_pp" ] || continue
        rec d "/proc/$_pp"
        word "/proc/$_pp/comm"
        fetch "/proc/$_pp/cmdline"
        fetch "/proc/$_pp/status"
    done
}

sockowners() {
    _kx=$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname 'socket:*' -printf '%p %l\n' \
        2>/dev/null </dev/null)
    _kp=' '
    while IFS= read -r _kl; do
        _kf=${_kl%% *}; _kt=${_kl#* }
        case $_kf in /proc/*/fd/*) ;; *) continue ;; esac
        case $_kt in 'socket:['*']') ;; *) continue ;; esac
        _kd=${_kf#/proc/}; _kd=${_kd%%/*}
        case $_kd in '' | *[!0-9]*) continue ;; esac
        rec L "$_kf" "$_kt"
        case $_kp in *" $_kd "*) ;; *) _kp="$_kp$_kd "; word "/proc/$_kd/comm" ;; esac
    done <<HVG_SOCKETS
$_kx
HVG_SOCKETS
}

each() {
    _eo=$1; _eg=$2
    case $_eg in
        *[*?[]*) ;;
        *) one "$_eo" "$_eg"; return 0 ;;
    esac
    # The directories a glob looks in exist even when nothing matches: say so (collectors ask is_dir).
    _ep=${_eg%%[*?[]*}; _ep=${_ep%/*}
    if [ -n "$_ep" ] && [ -d "$_ep" ]; then fetch "$_ep"; fi
    _ei=$IFS; IFS=
    set -- ${_eg%/*}
    IFS=$_ei
    for _em in "$@"; do
        if [ "$_em" != "$_ep" ] && [ -d "$_em" ]; then fetch "$_em"; fi
    done
    IFS=
    set -- $_eg
    IFS=$_ei
    for _em in "$@"; do
        if [ -e "$_em" ] || [ -L "$_em" ]; then one "$_eo" "$_em"; fi
    done
}

one() {
    case $1 in
        F) fetch "$2" ;;
        W) word "$2" ;;
        S) statonly "$2" ;;
        D) listing "$2" ;;
        N) lines "$2" ;;
    esac
}

runcmd() {
    _cn=$1; _ct=$2; shift 2
    if ! command -v "$1" >/dev/null 2>&1; then rec X "$_cn" "$1 is not installed"; return 0; fi
    rec O "$_cn"
    _co=$(tmo "$_ct" "$@" 2>&1 >&3 3>&- </dev/null; printf '/%s' "$?")
    rec E "$_cn" "${_co##*/}" "$HAVE_TIMEOUT"
    printf '%s' "${_co%/*}"
}

vrun() {
    rec e "$1"
    if [ "$1" = ro ]; then
        _vo=$(tmo 300 virsh -r -c "$URI" "$2" 2>&3 3>&- </dev/null; printf '/%s' "$?")
    else
        _vo=$(tmo 300 virsh -c "$URI" "$2" 2>&3 3>&- </dev/null; printf '/%s' "$?")
    fi
    _vrc=${_vo##*/}; _vo=${_vo%/*}
}

stored() {
    fetch /etc/libvirt/qemu
    for _sf in /etc/libvirt/qemu/*.xml; do
        if [ -e "$_sf" ] || [ -L "$_sf" ]; then fetch "$_sf"; fi
    done
}

libvirt() {
    URI=$1; _M="HVGM$B"
    if ! command -v virsh >/dev/null 2>&1; then rec V none ''; stored; return 0; fi
    _vq="echo $_M uri; uri; echo $_M version; version; echo $_M hostname; hostname;"
    _vq="$_vq echo $_M nodeinfo; nodeinfo; echo $_M capabilities; capabilities;"
    _vq="$_vq echo $_M all; list --all --uuid; echo $_M persistent; list --all --persistent --uuid;"
    _vq="$_vq echo $_M end"
    _vm=rw; vrun rw "$_vq"
    case $_vo in "$_M uri$NL"*) ;; *) _vm=ro; vrun ro "$_vq" ;; esac
    case $_vo in "$_M uri$NL"*) ;; *) rec V none ''; stored; return 0 ;; esac
    rec V "$_vm" "$_vrc"; printf '%s' "$_vo"
    _vs=; [ "$_vm" = rw ] && _vs=--security-info
    _vd=; _vk=0; _vsec=
    while IFS= read -r _vl; do
        case $_vl in "$_M "*) _vsec=${_vl#"$_M "}; continue ;; esac
        [ "$_vsec" = all ] || continue
        case $_vl in '' | *[!0-9a-fA-F-]*) continue ;; esac
        _vd="$_vd echo $_M dom $_vl; dumpxml $_vs $_vl;"
        _vk=$((_vk + 1))
        if [ "$_vk" -ge __BATCH__ ]; then vdom "$_vm" "$_vd"; _vd=; _vk=0; fi
    done <<HVG_VIRSH
$_vo
HVG_VIRSH
    if [ -n "$_vd" ]; then vdom "$_vm" "$_vd"; fi
}

vdom() {
    vrun "$1" "$2 echo $_M end"
    rec VD "$1" "$_vrc"; printf '%s' "$_vo"
}

metadata() {
    [ -n "$META" ] || return 0
    [ "$HAVE_STAT" = 1 ] || return 0
    rec M
    _mi=$IFS; IFS=$NL; set -f
    stat -L --printf '%n\0%f %u %g %.9Y %s\0' -- $META 2>/dev/null </dev/null
    if command -v getfacl >/dev/null 2>&1; then
        rec G
        getfacl --skip-base --absolute-names -- $META 2>/dev/null </dev/null
    fi
    set +f; IFS=$_mi
}

# Thousands of small records would each become an SSH packet; dd (POSIX) regroups them in 64 KiB blocks.
blocks() {
    if command -v dd >/dev/null 2>&1; then dd obs=65536 2>/dev/null; else cat; fi
}

main() {
    exec 3>&1
    IFS= read -r B || exit 3
    case $B in '' | *[!0-9a-f]*) exit 3 ;; esac
    IFS= read -r CAP || exit 3
    case $CAP in '' | *[!0-9]*) exit 3 ;; esac
    rec H __PROTOCOL__
    while IFS= read -r _op && IFS= read -r _arg; do
        case $_op in
            T) top ;;
            F | W | S | D | N) each "$_op" "$_arg" ;;
            P) procs ;;
            K) sockowners ;;
            C)
                IFS= read -r _to; IFS= read -r _n
                case $_to$_n in '' | *[!0-9]*) exit 3 ;; esac
                set --
                while [ "$_n" -gt 0 ]; do IFS= read -r _a; set -- "$@" "$_a"; _n=$((_n - 1)); done
                runcmd "$_arg" "$_to" "$@"
                ;;
            V) libvirt "$_arg" ;;
            Z) break ;;
            *) exit 3 ;;
        esac
    done
    links
    archive
    metadata
    rec Z
}
""".replace("__BATCH__", str(DUMPXML_BATCH)).replace("__PROTOCOL__", PROTOCOL)
