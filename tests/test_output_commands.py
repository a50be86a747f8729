"""Every command that writes a file goes through the one ``--output`` writer: ``-`` is standard output
(no file named ``-``), a device is written in place, a symbolic link to a regular file is refused without
advising ``--force``, and no predictable temporary name is ever followed — a symbolic link another local
user planted at such a name leaves its target untouched."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
NODE = f"test://{DATA / 'testdriver' / 'node.xml'}"
GOOD_ROOT = DATA / "roots" / "kvm-good"
BUNDLE = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
WORKFLOW = DATA / "workflow"
SRC = Path(__file__).resolve().parent.parent / "src"

#: Names a writer could pick for its temporary file next to ``out.NAME`` (the base wrote ``.NAME.tmp``).
PLANTED = ("{}.tmp", ".{}.tmp", "{}.new", ".{}.new", "{}~", ".{}.swp", "{}.part", ".{}.part", ".{}")


def hv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI (from this source tree) with no stdin."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
        cwd=cwd,
        env=env,
    )


def _gold(tmp: Path) -> Path:
    gold = tmp / "gold-input.yaml"
    if not gold.exists():
        r = hv("baseline", "capture", NODE, "--root", str(GOOD_ROOT), "--output", str(gold))
        assert r.returncode == 0, r.stderr
    return gold


def _drifted(tmp: Path) -> Path:
    """A gold configuration the test node's host has drifted from (a playbook task to write)."""
    drifted = tmp / "drifted-input.yaml"
    if not drifted.exists():
        text = _gold(tmp).read_text()
        drifted.write_text(re.sub(r"(?m)^(\s*security_driver:).*$", r"\1 none", text))
    return drifted


#: The commands that write a file, each with its arguments up to the output option.
COMMANDS = (
    "scan",
    "evaluate",
    "collect",
    "baseline capture",
    "baseline check",
    "exceptions export",
    "attestations export",
    "remediate --emit-ansible",
)


def command_args(command: str, tmp: Path) -> list[str]:
    """``command``'s arguments, ending with its output option (the path follows)."""
    root = ["--root", str(GOOD_ROOT)]
    as_of = ["--as-of", "2026-06-01"]
    return {
        "scan": ["scan", NODE, *root, "--no-history", "--format", "json", "--output"],
        "evaluate": ["evaluate", str(BUNDLE), "--no-history", "--format", "csv", "--output"],
        "collect": ["collect", NODE, *root, "--output"],
        "baseline capture": ["baseline", "capture", NODE, *root, "--output"],
        "baseline check": [
            "baseline",
            "check",
            NODE,
            "--baseline",
            str(_gold(tmp)),
            *root,
            "--format",
            "json",
            "--output",
        ],
        "exceptions export": ["exceptions", "export", str(WORKFLOW / "exceptions.yaml"), *as_of, "--output"],
        "attestations export": [
            "attestations",
            "export",
            str(WORKFLOW / "attestations.yaml"),
            *as_of,
            "--output",
        ],
        "remediate --emit-ansible": [
            "remediate",
            NODE,
            "--baseline",
            str(_drifted(tmp)),
            *root,
            "--emit-ansible",
        ],
    }[command]


def _ok(r: subprocess.CompletedProcess[str], what: str) -> None:
    assert r.returncode in (0, 1), f"{what}: exit {r.returncode}: {r.stderr}"


@pytest.mark.parametrize("command", COMMANDS)
def test_dash_is_standard_output_and_creates_no_file(command: str, tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    r = hv(*command_args(command, tmp_path), "-", cwd=work)
    _ok(r, command)
    assert r.stdout.strip(), f"{command}: nothing on standard output"
    assert sorted(os.listdir(work)) == [], f"{command} --output - created {os.listdir(work)}"


@pytest.mark.parametrize("command", COMMANDS)
def test_no_planted_symlink_at_a_temporary_name_is_followed(command: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.conf"
    victim.write_text("root's file\n")
    victim.chmod(0o644)
    work = tmp_path / "shared"
    work.mkdir()
    name = "out.data"
    for pattern in PLANTED:
        (work / pattern.format(name)).symlink_to(victim)
    for force in (False, True):
        r = hv(*command_args(command, tmp_path), str(work / name), *(["--force"] if force else []))
        _ok(r, command)
        assert victim.read_text() == "root's file\n", f"{command}: a planted symlink was written through"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
        assert stat.S_ISREG(os.lstat(work / name).st_mode)
    for pattern in PLANTED:
        assert os.readlink(work / pattern.format(name)) == str(victim)
    # nothing left behind beside the output and the planted links
    assert sorted(os.listdir(work)) == sorted([name, *(p.format(name) for p in PLANTED)])


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a character device needs root")
@pytest.mark.parametrize("command", COMMANDS)
def test_devices_in_place_and_symlinks_to_files_refused_without_advising_force(
    command: str, tmp_path: Path
) -> None:
    args = command_args(command, tmp_path)
    # A private null device (1,3) stands for /dev/null: a writer that replaces it damages only this folder.
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    before = os.lstat(null)
    _ok(hv(*args, str(null), "--force"), command)
    after = os.lstat(null)
    assert stat.S_ISCHR(after.st_mode), f"{command} --force replaced the device with a regular file"
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    null_link = tmp_path / "to-null"
    null_link.symlink_to(null)
    _ok(hv(*args, str(null_link), "--force"), command)
    assert null_link.is_symlink() and stat.S_ISCHR(os.lstat(null).st_mode)

    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    link = tmp_path / "report.out"
    link.symlink_to(precious)
    for force in ([], ["--force"]):
        r = hv(*args, str(link), *force)
        assert r.returncode == 2, f"{command}: {r.stderr}"
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("hvguard: error: "), r.stderr
        assert "symbolic link" in r.stderr and "--force" not in r.stderr, r.stderr
        assert precious.read_text() == "keep me\n" and link.is_symlink()
