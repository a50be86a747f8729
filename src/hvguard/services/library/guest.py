"""Guest-content rules of the library's gate, read from a raw disk image without booting or mounting it.

libguestfs' appliance does not boot on the hosts hvguard is tested on, so the gate reads ext2/3/4 file
systems with e2fsprogs' ``debugfs`` (read-only, at the partition's byte offset: ``IMAGE?offset=N``).
The root file system is the first ext2/3/4 file system — the whole disk, an MBR partition or a GPT
partition — that has ``/etc/passwd``. Other file systems cannot be inspected: the caller turns that into
rule ``guest-inspection-unsupported`` (refused under ``required``, a warning under ``warn``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTOR = 512
_EXT_MAGIC_OFFSET = 1080
_EXT_MAGIC = b"\x53\xef"
_MAX_FILE = 1024 * 1024
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]*$")
_S_IFMT, _S_IFREG, _S_IFLNK = 0o170000, 0o100000, 0o120000


class GuestError(Exception):
    """The image's file system could not be read (one line)."""


@dataclass(frozen=True)
class RuleResult:
    """One gate rule's outcome: ``status`` is pass | fail | warn | skipped."""

    rule: str
    status: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The JSON form recorded in the gate results and the manifest."""
        return {"rule": self.rule, "status": self.status, "message": self.message}


def limited(argv: Sequence[str], limits: dict[str, int], *, fsize: int | None = None) -> list[str]:
    """``argv`` run under prlimit: address space, CPU seconds and (optionally) the largest file."""
    prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
    cmd = [prlimit, f"--as={limits['address_space_mib'] * 1024 * 1024}", f"--cpu={limits['cpu_seconds']}"]
    if fsize is not None:
        cmd.append(f"--fsize={fsize}")
    return [*cmd, "--", *argv]


def _ext_at(f: Any, offset: int) -> bool:
    f.seek(offset + _EXT_MAGIC_OFFSET)
    return bool(f.read(2) == _EXT_MAGIC)


def candidate_offsets(raw: Path) -> list[int]:
    """Byte offsets of ext2/3/4 file systems: the whole disk, or MBR / GPT partitions."""
    found: list[int] = []
    with open(raw, "rb") as f:
        if _ext_at(f, 0):
            return [0]
        f.seek(0)
        mbr = f.read(SECTOR)
        if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
            return []
        starts: list[int] = []
        for i in range(4):
            entry = mbr[446 + 16 * i : 462 + 16 * i]
            ptype, start = entry[4], int.from_bytes(entry[8:12], "little")
            if ptype == 0xEE:
                starts.extend(_gpt_starts(f))
            elif ptype and start:
                starts.append(start)
        for start in starts[:128]:
            if _ext_at(f, start * SECTOR):
                found.append(start * SECTOR)
    return found


def _gpt_starts(f: Any) -> list[int]:
    f.seek(SECTOR)
    header = f.read(92)
    if header[:8] != b"EFI PART":
        return []
    entries_lba = int.from_bytes(header[72:80], "little")
    count = min(int.from_bytes(header[80:84], "little"), 128)
    size = int.from_bytes(header[84:88], "little")
    if size < 128 or size > 4096:
        return []
    starts = []
    f.seek(entries_lba * SECTOR)
    for _ in range(count):
        entry = f.read(size)
        if len(entry) < 128:
            break
        if entry[:16] != b"\0" * 16:
            starts.append(int.from_bytes(entry[32:40], "little"))
    return starts


class Ext:
    """Read-only access to one ext2/3/4 file system inside a raw image, through debugfs."""

    def __init__(self, raw: Path, offset: int, limits: dict[str, int]) -> None:
        self.device = f"{raw}?offset={offset}" if offset else str(raw)
        self.limits = limits
        self.debugfs = shutil.which("debugfs") or "/usr/sbin/debugfs"

    def _run(self, command: str) -> bytes:
        try:
            proc = subprocess.run(  # noqa: S603 (fixed argv, no shell; paths checked by _SAFE_PATH)
                limited([self.debugfs, "-R", command, self.device], self.limits),
                capture_output=True,
                timeout=self.limits["cpu_seconds"] * 2,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GuestError(f"debugfs could not run: {exc}") from None
        if proc.returncode != 0:
            last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
            raise GuestError(f"debugfs cannot read the file system: {last}")
        return bytes(proc.stdout)

    def entries(self, directory: str) -> dict[str, int] | None:
        """Names in ``directory`` → their mode; None if the directory does not exist."""
        if not _SAFE_PATH.match(directory):
            raise GuestError(f"unsafe path {directory!r}")
        out = self._run(f'ls -p "{directory}"')
        result: dict[str, int] = {}
        for line in out.decode(errors="replace").splitlines():
            # /inode/mode/uid/gid/name/size/
            parts = line.split("/")
            if len(parts) >= 7 and parts[2].isdigit():
                result["/".join(parts[5:-2])] = int(parts[2], 8)
        return result or None

    def kind(self, path: str) -> str | None:
        """regular | symlink | other | None (absent)."""
        parent, _, name = path.rstrip("/").rpartition("/")
        entries = self.entries(parent or "/")
        if entries is None or name not in entries:
            return None
        fmt = entries[name] & _S_IFMT
        return "regular" if fmt == _S_IFREG else "symlink" if fmt == _S_IFLNK else "other"

    def read(self, path: str) -> bytes:
        """A regular file's bytes (at most 1 MiB)."""
        if not _SAFE_PATH.match(path):
            raise GuestError(f"unsafe path {path!r}")
        return self._run(f'cat "{path}"')[:_MAX_FILE]


def find_root(raw: Path, limits: dict[str, int]) -> Ext | None:
    """The ext2/3/4 file system holding ``/etc/passwd``, or None."""
    for offset in candidate_offsets(raw):
        fs = Ext(raw, offset, limits)
        try:
            if fs.kind("/etc/passwd") == "regular":
                return fs
        except GuestError:
            continue
    return None


def _regular(fs: Ext, path: str, rule: str) -> tuple[bytes | None, RuleResult | None]:
    kind = fs.kind(path)
    if kind is None:
        return None, None
    if kind != "regular":
        return None, RuleResult(rule, "fail", f"{path} is a {kind}, not a regular file: it cannot be checked")
    return fs.read(path), None


def rule_no_empty_password(fs: Ext) -> RuleResult:
    """No account may log in without a password (empty field in /etc/shadow or /etc/passwd)."""
    rule = "no-empty-password"
    empty: list[str] = []
    for path, field in (("/etc/shadow", 1), ("/etc/passwd", 1)):
        data, problem = _regular(fs, path, rule)
        if problem:
            return problem
        for line in (data or b"").decode(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) > field and parts[0] and not parts[0].startswith("#") and parts[field] == "":
                empty.append(f"{parts[0]} ({path})")
    if empty:
        return RuleResult(rule, "fail", "accounts with an empty password: " + ", ".join(sorted(set(empty))))
    return RuleResult(rule, "pass", "no account has an empty password")


def rule_no_ssh_host_keys(fs: Ext) -> RuleResult:
    """No SSH host private key baked into the image (every clone would share it)."""
    entries = fs.entries("/etc/ssh") or {}
    keys = sorted(n for n in entries if re.fullmatch(r"ssh_host_.*_key", n))
    if keys:
        return RuleResult(
            "no-ssh-host-keys", "fail", "baked-in SSH host keys: " + ", ".join(f"/etc/ssh/{k}" for k in keys)
        )
    return RuleResult("no-ssh-host-keys", "pass", "no SSH host private key in /etc/ssh")


def _sshd_value(fs: Ext, path: str, keyword: str, depth: int = 0) -> str | None:
    """The first value of ``keyword`` outside Match blocks (sshd keeps the first value it reads)."""
    data, problem = _regular(fs, path, "sshd")
    if problem:
        raise GuestError(problem.message)
    for raw_line in (data or b"").decode(errors="replace").splitlines():
        words = raw_line.split("#", 1)[0].replace("=", " ").split()
        if not words:
            continue
        key = words[0].lower()
        if key == "match":
            return None
        if key == "include" and depth < 4:
            for pattern in words[1:]:
                for included in _expand_include(fs, pattern):
                    value = _sshd_value(fs, included, keyword, depth + 1)
                    if value is not None:
                        return value
        if key == keyword.lower() and len(words) > 1:
            return words[1]
    return None


def _expand_include(fs: Ext, pattern: str) -> list[str]:
    import fnmatch

    if not pattern.startswith("/"):
        pattern = "/etc/ssh/" + pattern
    parent, _, glob = pattern.rpartition("/")
    entries = fs.entries(parent) or {}
    return [f"{parent}/{n}" for n in sorted(entries) if fnmatch.fnmatchcase(n, glob)]


def rule_sshd_permit_root_login_no(fs: Ext) -> RuleResult:
    """sshd must refuse root logins (``PermitRootLogin no``); no sshd configuration passes."""
    rule = "sshd-permit-root-login-no"
    if fs.kind("/etc/ssh/sshd_config") is None:
        return RuleResult(rule, "pass", "no /etc/ssh/sshd_config (sshd not installed)")
    try:
        value = _sshd_value(fs, "/etc/ssh/sshd_config", "PermitRootLogin")
    except GuestError as exc:
        return RuleResult(rule, "fail", str(exc))
    if value is None:
        return RuleResult(
            rule, "fail", "sshd_config does not set PermitRootLogin (default prohibit-password)"
        )
    if value.lower() != "no":
        return RuleResult(rule, "fail", f"sshd_config sets PermitRootLogin {value}")
    return RuleResult(rule, "pass", "sshd_config sets PermitRootLogin no")


def rule_file(fs: Ext, spec: dict[str, Any]) -> RuleResult:
    """A profile's extra file rule: ``must_not_exist``, ``must_match`` or ``must_not_match`` a line."""
    rule, path = str(spec["id"]), str(spec["path"])
    if spec.get("must_not_exist"):
        kind = fs.kind(path)
        return RuleResult(rule, "fail" if kind else "pass", f"{path} {'exists' if kind else 'is absent'}")
    data, problem = _regular(fs, path, rule)
    if problem:
        return problem
    lines = (data or b"").decode(errors="replace").splitlines()
    if "must_match" in spec:
        ok = any(re.search(spec["must_match"], line) for line in lines)
        return RuleResult(
            rule,
            "pass" if ok else "fail",
            f"{path} {'has' if ok else 'lacks'} a line matching {spec['must_match']!r}",
        )
    bad = [line for line in lines if re.search(spec["must_not_match"], line)]
    return RuleResult(
        rule, "fail" if bad else "pass", f"{path}: {len(bad)} line(s) match {spec['must_not_match']!r}"
    )


GUEST_RULES = {
    "no-empty-password": rule_no_empty_password,
    "no-ssh-host-keys": rule_no_ssh_host_keys,
    "sshd-permit-root-login-no": rule_sshd_permit_root_login_no,
}


def inspect(raw: Path, profile: dict[str, Any], mode: str) -> list[RuleResult]:
    """Run the profile's guest rules on a raw image; ``mode`` is the store's required | warn."""
    limits = profile["limits"]
    fs = find_root(raw, limits)
    if fs is None:
        status = "fail" if mode == "required" else "warn"
        return [
            RuleResult(
                "guest-inspection-unsupported",
                status,
                "no ext2/3/4 file system with /etc/passwd found (whole disk, MBR or GPT partition); "
                "hvguard reads guest contents from ext2/3/4 only",
            )
        ]
    results: list[RuleResult] = []
    for name, enabled in profile["guest_rules"].items():
        if enabled:
            try:
                results.append(GUEST_RULES[name](fs))
            except GuestError as exc:
                results.append(RuleResult(name, "fail", f"could not be checked: {exc}"))
    for spec in profile["file_rules"]:
        try:
            results.append(rule_file(fs, spec))
        except GuestError as exc:
            results.append(RuleResult(str(spec["id"]), "fail", f"could not be checked: {exc}"))
    return results
