"""The library's compliance gate (SS-009 11.3.8): an image that fails it is never stored.

Structure rules (always): the format is detected from the image's first bytes and given to qemu-img
explicitly (``-f``), never probed by qemu-img; allowed formats (qcow2, raw); no backing file and no
external data file (a qcow2 whose backing file is ``/etc/shadow`` would otherwise read host files); not
encrypted inside (unreadable); a virtual size within the limit; ``qemu-img check`` finds no corruption.
Every qemu-img and debugfs run has an address-space and CPU-time limit (prlimit), as OpenStack has
done since CVE-2015-5162.

Guest rules (unless the store's guest inspection is ``off``): the image is converted to raw into the
caller's private spool (size-capped by RLIMIT_FSIZE) and read with debugfs (:mod:`.guest`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hvguard.services.library.guest import RuleResult, inspect, limited
from hvguard.yamlsafe import YamlInputError, load_yaml, read_yaml_file

ALLOWED_FORMATS = ("qcow2", "raw")
#: Leading bytes of disk formats hvguard recognises but does not accept.
_OTHER_MAGICS = {
    b"KDMV": "vmdk",
    b"# Disk DescriptorFile": "vmdk",
    b"vhdxfile": "vhdx",
    b"conectix": "vpc",
    b"QED\x00": "qed",
    b"LUKS\xba\xbe": "luks",
    b"QEVM": "parallels",
    b"WithoutFreeSpace": "parallels",
}
_VDI_MAGIC = (0x40, b"\x7f\x10\xda\xbe")
_QCOW2 = b"QFI\xfb"
_RULE_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"


class GateProfileError(ValueError):
    """A gate profile that cannot be used (one line)."""


@dataclass(frozen=True)
class GateProfile:
    """The gate's rules and the SHA-256 of the file they came from."""

    rules: dict[str, Any]
    sha256: str
    source: str


@dataclass
class GateResult:
    """The outcome of one gate run."""

    format: str
    virtual_size: int
    profile_sha256: str
    guest_inspection: str
    results: list[RuleResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No rule failed (warnings do not refuse)."""
        return not self.failed

    @property
    def failed(self) -> list[RuleResult]:
        """The rules the image broke."""
        return [r for r in self.results if r.status == "fail"]

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept with the image and signed in its manifest."""
        return {
            "passed": self.passed,
            "format": self.format,
            "virtual_size": self.virtual_size,
            "profile_sha256": self.profile_sha256,
            "guest_inspection": self.guest_inspection,
            "results": [r.to_json() for r in self.results],
        }


def load_gate_profile(path: Path | None) -> GateProfile:
    """The gate profile at ``path`` (default: the packaged ``gate_default.yaml``), validated."""
    if path is None:
        text = resources.files("hvguard.services.library").joinpath("gate_default.yaml").read_text("utf-8")
        source = "gate_default.yaml (built in)"
    else:
        try:
            text = read_yaml_file(path)
        except YamlInputError as exc:
            raise GateProfileError(str(exc)) from None
        source = str(path)
    try:
        raw = load_yaml(text, source)
    except YamlInputError as exc:
        raise GateProfileError(str(exc)) from None
    return GateProfile(_validate(raw, source), hashlib.sha256(text.encode()).hexdigest(), source)


def _validate(raw: Any, source: str) -> dict[str, Any]:
    import re

    def bad(why: str) -> GateProfileError:
        return GateProfileError(f"gate profile {source}: {why}")

    if not isinstance(raw, dict) or raw.get("library_gate") != 1:
        raise bad("not a library gate profile (needs 'library_gate: 1')")
    known = {"library_gate", "formats", "max_virtual_size_gib", "limits", "guest_rules", "file_rules"}
    if unknown := set(raw) - known:
        raise bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    formats = raw.get("formats", list(ALLOWED_FORMATS))
    if not isinstance(formats, list) or not formats or any(f not in ALLOWED_FORMATS for f in formats):
        raise bad(f"formats must be a non-empty list of {', '.join(ALLOWED_FORMATS)}")
    size = raw.get("max_virtual_size_gib", 64)
    if not isinstance(size, int | float) or isinstance(size, bool) or size <= 0:
        raise bad("max_virtual_size_gib must be a positive number")
    limits = raw.get("limits", {})
    if not isinstance(limits, dict) or set(limits) - {"address_space_mib", "cpu_seconds"}:
        raise bad("limits takes address_space_mib and cpu_seconds")
    limits = {"address_space_mib": 1024, "cpu_seconds": 60, **limits}
    if any(not isinstance(v, int) or isinstance(v, bool) or v <= 0 for v in limits.values()):
        raise bad("limits must be positive integers")
    from hvguard.services.library.guest import GUEST_RULES

    guest = raw.get("guest_rules", {})
    if not isinstance(guest, dict) or any(
        k not in GUEST_RULES or not isinstance(v, bool) for k, v in guest.items()
    ):
        raise bad(f"guest_rules maps {', '.join(GUEST_RULES)} to true/false")
    files = raw.get("file_rules", []) or []
    if not isinstance(files, list):
        raise bad("file_rules must be a list")
    for spec in files:
        if not isinstance(spec, dict) or not re.match(_RULE_ID, str(spec.get("id", ""))):
            raise bad("each file rule needs an id (lower-case letters, digits, '-')")
        if not re.match(r"^/[A-Za-z0-9._+/-]*$", str(spec.get("path", ""))):
            raise bad(f"file rule {spec['id']}: path must be absolute (letters, digits, . _ + - /)")
        tests = [k for k in ("must_not_exist", "must_match", "must_not_match") if k in spec]
        if len(tests) != 1 or set(spec) - {"id", "path", *tests}:
            raise bad(f"file rule {spec['id']}: exactly one of must_not_exist, must_match, must_not_match")
        for k in ("must_match", "must_not_match"):
            if k in spec:
                try:
                    re.compile(str(spec[k]))
                except re.error as exc:
                    raise bad(f"file rule {spec['id']}: bad regular expression ({exc})") from None
    return {
        "formats": formats,
        "max_virtual_size": int(size * 1024**3),
        "limits": limits,
        "guest_rules": {**{k: True for k in GUEST_RULES}, **guest},
        "file_rules": files,
    }


def detect_format(path: Path) -> str:
    """qcow2, raw, or the name of a recognised format that is not accepted."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(_QCOW2):
        return "qcow2"
    for magic, name in _OTHER_MAGICS.items():
        if head.startswith(magic):
            return name
    offset, magic = _VDI_MAGIC
    if head[offset : offset + 4] == magic:
        return "vdi"
    return "raw"


def _qemu_img(args: list[str], limits: dict[str, int]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 (fixed argv, no shell; the image path is ours)
        limited(["qemu-img", *args], limits),
        capture_output=True,
        timeout=limits["cpu_seconds"] * 3,
        check=False,
    )


def _first_line(data: bytes) -> str:
    return (data.decode(errors="replace").strip().splitlines() or ["no output"])[-1]


def run_gate(image: Path, profile: GateProfile, guest_inspection: str, spool: Path) -> GateResult:
    """Run every rule on the plaintext ``image``; ``spool`` is a private folder for the raw copy (the
    caller deletes it)."""
    rules = profile.rules
    limits = rules["limits"]
    fmt = detect_format(image)
    result = GateResult(fmt, 0, profile.sha256, guest_inspection)
    add = result.results.append
    if fmt not in rules["formats"]:
        add(
            RuleResult(
                "allowed-format", "fail", f"format {fmt} is not allowed ({', '.join(rules['formats'])})"
            )
        )
        return result
    add(RuleResult("allowed-format", "pass", f"format {fmt}"))
    try:
        info_proc = _qemu_img(["info", "-f", fmt, "--output=json", str(image)], limits)
    except (OSError, subprocess.TimeoutExpired) as exc:
        add(RuleResult("readable", "fail", f"qemu-img info could not run: {exc}"))
        return result
    if info_proc.returncode != 0:
        add(
            RuleResult(
                "readable", "fail", f"qemu-img info refused the image: {_first_line(info_proc.stderr)}"
            )
        )
        return result
    try:
        info = json.loads(info_proc.stdout)
    except ValueError:
        add(RuleResult("readable", "fail", "qemu-img info gave no JSON"))
        return result
    result.virtual_size = int(info.get("virtual-size", 0))
    backing = info.get("backing-filename") or info.get("full-backing-filename")
    add(
        RuleResult(
            "no-backing-file",
            "fail" if backing else "pass",
            f"backing file {backing!r}" if backing else "no backing file",
        )
    )
    data_file = (info.get("format-specific", {}).get("data") or {}).get("data-file")
    add(
        RuleResult(
            "no-data-file",
            "fail" if data_file else "pass",
            f"external data file {data_file!r}" if data_file else "no external data file",
        )
    )
    if info.get("encrypted"):
        add(
            RuleResult(
                "not-encrypted-inside", "fail", "the image is encrypted inside: its contents cannot be gated"
            )
        )
    limit = rules["max_virtual_size"]
    add(
        RuleResult(
            "virtual-size-limit",
            "fail" if result.virtual_size > limit else "pass",
            f"virtual size {result.virtual_size} bytes (limit {limit})",
        )
    )
    if fmt == "qcow2" and not result.failed:
        check = _qemu_img(["check", "-f", "qcow2", "--output=json", str(image)], limits)
        # 0 clean, 3 leaked clusters only (harmless), 2 corruption, 1 could not check
        if check.returncode in (0, 3):
            add(RuleResult("not-corrupt", "pass", "qemu-img check found no corruption"))
        else:
            add(
                RuleResult(
                    "not-corrupt", "fail", f"qemu-img check: {_first_line(check.stderr or check.stdout)}"
                )
            )
    if result.failed or guest_inspection == "off":
        if guest_inspection == "off":
            add(RuleResult("guest-inspection", "skipped", "guest inspection is off in this store"))
        return result
    raw = image
    if fmt != "raw":
        raw = spool / "inspect.raw"
        convert = _qemu_img_convert(image, raw, result.virtual_size, limits)
        if convert:
            add(RuleResult("readable", "fail", convert))
            return result
    for rule in inspect(raw, rules, guest_inspection):
        add(rule)
    return result


def _qemu_img_convert(src: Path, dst: Path, size: int, limits: dict[str, int]) -> str | None:
    """Convert to a sparse raw file, capped at the virtual size; an error message, or None."""
    try:
        proc = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            limited(
                ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", "-S", "4k", str(src), str(dst)],
                limits,
                fsize=size + 1024 * 1024,
            ),
            capture_output=True,
            timeout=limits["cpu_seconds"] * 3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"qemu-img convert could not run: {exc}"
    if proc.returncode != 0:
        return f"qemu-img convert failed: {_first_line(proc.stderr)}"
    return None
