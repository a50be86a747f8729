"""The one ``--output`` writer (hvguard.cli.output): what it writes in place, what it replaces, what it
refuses — and that the commands go through it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hvguard.cli.errors import UserError
from hvguard.cli.output import FROM_UMASK, OWNER_ONLY, WORLD_READABLE, write_output

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(folder: Path) -> list[str]:
    """Temporary files the writer left behind (its names start with a dot)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_dash_and_none_mean_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    write_output("to stdout\n", Path("-"), force=False, mode=OWNER_ONLY)
    write_output("also\n", None, force=False, mode=OWNER_ONLY)
    assert capsys.readouterr().out == "to stdout\nalso\n"
    assert not Path("-").exists()


def test_a_new_file_gets_the_mode_the_caller_asks_for(tmp_path: Path) -> None:
    for name, mode, want in (
        ("report.json", OWNER_ONLY, 0o600),
        ("baseline.yaml", WORLD_READABLE, 0o644),
        ("export.csv", FROM_UMASK, 0o666 & ~_umask()),
    ):
        out = tmp_path / name
        write_output("données\n", out, force=False, mode=mode)
        assert out.read_bytes() == "données\n".encode()
        assert mode_of(out) == want, name
    assert leftovers(tmp_path) == []


def test_a_regular_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("old\n")
    out.chmod(0o644)
    with pytest.raises(UserError) as refused:
        write_output("new\n", out, force=False, mode=OWNER_ONLY)
    assert str(refused.value) == f"{out} exists; pass --force to replace it"
    assert out.read_text() == "old\n"
    inode = out.stat().st_ino
    write_output("new\n", out, force=True, mode=OWNER_ONLY)
    assert out.read_text() == "new\n"
    assert out.stat().st_ino != inode  # a new file renamed into place, not rewritten in place
    assert mode_of(out) == 0o600  # the caller's mode, not the old file's
    assert leftovers(tmp_path) == []


def test_dev_null_is_written_in_place_and_stays_a_character_device() -> None:
    before = os.stat("/dev/null")
    write_output("discarded\n", Path("/dev/null"), force=True, mode=OWNER_ONLY)
    write_output(b"discarded\n", Path("/dev/null"), force=False, mode=OWNER_ONLY)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_rdev,
        stat.S_IMODE(before.st_mode),
    )


def test_a_symlink_to_a_character_device_is_written_through(tmp_path: Path) -> None:
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    write_output("discarded\n", link, force=True, mode=OWNER_ONLY)
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_output("through the pipe\n", fifo, force=False, mode=OWNER_ONLY)
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert leftovers(tmp_path) == []


def test_a_symlink_to_a_regular_file_is_refused_and_the_file_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    for force in (False, True):
        with pytest.raises(UserError, match="symbolic link"):
            write_output("overwritten\n", link, force=force, mode=OWNER_ONLY)
    assert target.read_text() == "keep me\n"
    assert link.is_symlink()
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="symbolic link"):
        write_output("x\n", dangling, force=True, mode=OWNER_ONLY)
    assert not (tmp_path / "nowhere").exists()


def test_a_directory_and_a_missing_folder_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="directory"):
        write_output("x\n", tmp_path, force=True, mode=OWNER_ONLY)
    with pytest.raises(UserError, match=r"cannot write .*No such file or directory"):
        write_output("x\n", tmp_path / "missing" / "r.json", force=False, mode=OWNER_ONLY)


def test_scan_output_dev_null_with_force_keeps_the_device() -> None:
    r = hv("scan", f"test://{NODE}", "--root", str(GOOD_ROOT), "--no-history", "--format", "json",
           "--output", "/dev/null", "--force")  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_scan_refuses_a_symlinked_output_in_one_line(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "r.json"
    link.symlink_to(target)
    r = hv("scan", f"test://{NODE}", "--root", str(GOOD_ROOT), "--no-history", "--format", "json",
           "--output", str(link), "--force")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("hvguard: error: ")
    assert "symbolic link" in r.stderr
    assert target.read_text() == "keep me\n"


def test_collect_writes_an_owner_only_bundle_and_dash_is_stdout(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle))
    assert r.returncode == 0, r.stderr
    assert mode_of(bundle) == 0o600
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{") and '"schema"' in r.stdout
    assert "wrote standard output" in r.stderr
    assert leftovers(tmp_path) == []


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
