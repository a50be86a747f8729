"""What the SSH transport runs on a target: one read-only POSIX ``sh`` script plus its request.

The script is constant text. Everything that varies — the record boundary, the size cap, the paths to
read and the manifest commands to run — is sent after it as *data* in a quoted here-document, one item
per line, and read with ``read -r``; nothing hvguard or the target supplies is ever pasted into shell
code. The only value that reaches another interpreter is the boundary (32 lower-case hex digits,
checked by the script) inside ``virsh``'s own command string, together with domain UUIDs that the
script accepts only when they consist of hex digits and dashes.

The script answers with framed records on stdout (:mod:`hvguard.collect.ssh.records` parses them)::

    "\\n" BOUNDARY ":" TYPE "\\0" FIELD "\\0" ... PAYLOAD

Records: ``H`` version and the effective uid the script runs as (``id -u``); ``d`` a directory; ``D`` a
directory and its entries (``d|f|l`` + name, NUL terminated); ``F`` a file and its bytes (capped);
``B`` a regular file whose bytes come in ``A``, one ``tar`` archive of all of them (one process instead
of one ``cat`` per file); ``R`` a read of that
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

import math
import secrets
from collections.abc import Iterable

from hvguard.collect.interface import Fetch
from hvguard.collect.linux.manifest import COMMANDS, NEVER_COPIED, manifest_fetch
from hvguard.collect.reader import FILE_LIMIT
from hvguard.collect.ssh.remote_script import PROTOCOL, REMOTE_SCRIPT

#: The libvirt connection the script opens on the target (the same one a local scan uses).
REMOTE_LIBVIRT_URI = "qemu:///system"
#: Bytes read per file at most: one more than the readers' limit, so that the collectors
#: see and report "larger than …" instead of silently parsing a truncated file.
FILE_CAP = FILE_LIMIT + 1
#: Script runs per target at most: the manifest, then paths the target's own configuration named outside
#: it (a directory with its entries' names, owners and modes in one pass), then the files found there,
#: then what those name in turn (an Include inside an included file).
MAX_PASSES = 4
#: The here-document delimiter; no request line may equal it.
REQUEST_END = "HVG_REQUEST_END"


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
