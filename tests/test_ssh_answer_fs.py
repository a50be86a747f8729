"""AnswerFS: an SSH target's answer served to the host collectors from memory, under the target's paths.

Hostile answers must never reach this machine's files, unreadable paths keep the target's own reason,
and owners, modes, times and ACLs are the target's.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from hvguard.collect.hostfs import DiskFS, resolve_in_root
from hvguard.collect.interface import Fetch
from hvguard.collect.linux import host as linux_host
from hvguard.collect.ssh.answer_fs import AnswerFS
from hvguard.collect.ssh.records import Entry, Meta, RemoteAnswer, parse_answer
from hvguard.collect.ssh.script import build_script, new_boundary


def _answer(entries: dict[str, Entry], links: dict[str, str] | None = None) -> RemoteAnswer:
    answer = RemoteAnswer(links=dict(links or {}))
    for path, entry in entries.items():
        answer.entries[path] = entry
        answer.order.append(path)
    return answer


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_hostile_paths_and_links_only_ever_name_the_answers_own_entries(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("local secret")
    before = _tree(tmp_path)
    answer = _answer(
        {
            "/../../../escape": Entry("file", data=b"x"),
            "/etc/link-out": Entry("file", data=b"written through the link"),
            "/lib/modprobe.d/a.conf": Entry("file", data=b"blacklist x\n"),
        },
        links={
            "/etc/link-out": str(outside / "secret"),
            "/etc/dot-dot-link": "../../../../../" + str(outside).lstrip("/"),
            "/etc/loop": "/etc/loop",
            "/lib": "usr/lib",
        },
    )
    fs = AnswerFS(answer)
    assert fs.problems == []
    # ".." stops at the root of the answer.
    assert fs.read("escape", 100) == b"x"
    # Bytes read through a link belong where the link points, inside the answer; the link keeps the
    # target's own text.
    assert fs.readlink("etc/link-out") == str(outside / "secret")
    assert fs.read("etc/link-out", 100) == b"written through the link"
    assert fs.read(str(outside / "secret"), 100) == b"written through the link"
    assert fs.read("etc/dot-dot-link/secret", 100) == b"written through the link"  # never "local secret"
    assert fs.read("usr/lib/modprobe.d/a.conf", 100) == b"blacklist x\n"
    assert fs.read("lib/modprobe.d/a.conf", 100) == b"blacklist x\n"
    with pytest.raises(OSError) as loop:
        fs.stat("etc/loop")
    assert loop.value.errno == errno.ELOOP
    assert sorted(fs.listdir("etc")) == ["dot-dot-link", "link-out", "loop"]
    assert sorted(fs.listdir("")) == ["escape", "etc", "lib", str(outside).lstrip("/").split("/")[0], "usr"]
    # Nothing was written to this machine.
    assert _tree(tmp_path) == before
    assert (outside / "secret").read_text() == "local secret"


def test_resolution_follows_resolve_in_root_on_the_same_tree(tmp_path: Path) -> None:
    """AnswerFS places paths with the same chroot rules DiskFS uses for an offline root."""
    root = tmp_path / "root"
    (root / "usr/lib/x").mkdir(parents=True)
    (root / "etc").mkdir()
    links = {
        "/lib": "usr/lib",
        "/etc/abs": "/lib/x",
        "/etc/up": "../../../../usr",
        "/etc/loop1": "loop2",
        "/etc/loop2": "loop1",
        "/usr/lib/back": "x/../../lib",
    }
    for path, text in links.items():
        os.symlink(text, root / path.lstrip("/"))
    fs = AnswerFS(_answer({"/usr/lib/x": Entry("dir"), "/etc": Entry("dir")}, links))
    cases = [
        "lib/x/f",
        "etc/abs/f",
        "etc/up/lib",
        "../../etc",
        "usr/lib/back/x",
        "etc/missing/a/b",
        "",
        ".",
        "lib/../etc",
        "usr/lib/back/../lib/x",
    ]
    for rel in cases:
        on_disk = os.path.relpath(resolve_in_root(root, rel), root)
        assert fs._resolve(rel) == ("" if on_disk == "." else on_disk), rel
    for rel in ("etc/loop1", "etc/loop1/x"):
        with pytest.raises(OSError):
            resolve_in_root(root, rel)
        with pytest.raises(OSError):
            fs.stat(rel)


def test_unreadable_paths_raise_the_targets_own_reason() -> None:
    answer = _answer(
        {
            "/etc/libvirt": Entry("dir"),
            "/etc/libvirt/qemu.conf": Entry("unreadable", reason="Permission denied"),
            "/etc/odd": Entry("unreadable", reason="Weird remote failure"),
            "/var/log/audit": Entry("unreadable", reason="Permission denied"),
        }
    )
    answer.modes["/var/log/audit"] = Meta(mode=0o40700, uid=0, gid=0, mtime_ns=5)
    fs = AnswerFS(answer)
    with pytest.raises(PermissionError, match="Permission denied"):
        fs.read("etc/libvirt/qemu.conf", 10)
    with pytest.raises(OSError, match="Weird remote failure") as odd:
        fs.read("etc/odd", 10)
    assert odd.value.errno == errno.EIO
    # A directory the target could not enter: listing it, and anything below it, is denied.
    assert stat.S_ISDIR(fs.stat("var/log/audit").st_mode)
    with pytest.raises(PermissionError):
        fs.listdir("var/log/audit")
    with pytest.raises(PermissionError):
        fs.stat("var/log/audit/audit.log")
    facts = linux_host.collect_host(fs, problems=[], live=False)
    assert facts.qemu_conf.present is True
    assert facts.qemu_conf.error == "/etc/libvirt/qemu.conf: cannot read: Permission denied"


def test_a_directory_entered_but_not_listed_keeps_what_was_read_below_it() -> None:
    """Mode --x: the target read a file inside but could not list the directory."""
    answer = _answer(
        {
            "/etc/sudoers.d/local": Entry("file", data=b"root ALL=(ALL) ALL\n"),
            "/etc/sudoers.d": Entry("unreadable", reason="Permission denied"),
        }
    )
    fs = AnswerFS(answer)
    assert fs.read("etc/sudoers.d/local", 100) == b"root ALL=(ALL) ALL\n"
    with pytest.raises(PermissionError):
        fs.listdir("etc/sudoers.d")


def test_owners_modes_and_times_are_the_targets() -> None:
    """Whoever hvguard runs as here, stat answers what the target's own stat said."""
    answer = _answer(
        {
            "/dev/kvm": Entry("exists"),
            "/etc/group": Entry("file", data=b"root:x:0:\nkvm:x:993:\n"),
            "/etc/owner-only": Entry("file", data=b"x"),
            "/var/log/big.log": Entry("lines", lines=3, last_byte="141"),
        }
    )
    answer.modes["/dev/kvm"] = Meta(mode=0o20660, uid=0, gid=993, mtime_ns=1)
    answer.modes["/etc/owner-only"] = Meta(
        mode=0o100400, uid=7, gid=8, mtime_ns=1_700_000_000_123_456_789, size=1
    )
    fs = AnswerFS(answer)
    st = fs.stat("etc/owner-only")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size) == (0o400, 7, 8, 1)
    assert st.st_mtime_ns == 1_700_000_000_123_456_789
    assert st.st_mtime == os.stat_result((0,) * 10, {"st_mtime": 1_700_000_000 + 123_456_789 * 1e-9}).st_mtime
    assert stat.S_ISCHR(fs.stat("dev/kvm").st_mode)
    assert fs.count_lines("var/log/big.log") == 4  # three newlines and an unterminated last line
    host = linux_host.collect_host(fs, problems=[], live=True)
    assert (host.kvm.dev_kvm_present, host.kvm.dev_kvm_group, host.kvm.dev_kvm_mode) == (True, "kvm", "0660")


def test_acls_come_from_the_targets_getfacl() -> None:
    boundary = new_boundary()
    records = [
        b"H\x001\x00",
        b"S\x00/var/log/a b\x00",
        b"S\x00/var/log/plain\x00",
        b"S\x00/var/log/unstated\x00",
        b"M\x00/var/log/a b\x00" + b"81a4 0 4 1.0 3\x00/var/log/plain\x0081a4 0 4 -7.25 9\x00",
        b"G\x00# file: /var/log/a\\040b\n# owner: root\nuser::rw-\nuser:bob:r--\n\n",
        b"Z\x00",
    ]
    stream = b"".join(b"\n" + boundary.encode() + b":" + r for r in records)
    answer = parse_answer(stream, boundary)
    assert answer.acls == {"/var/log/a b"}
    assert answer.modes["/var/log/plain"] == Meta(
        mode=0o100644, uid=0, gid=4, mtime_ns=-7_250_000_000, size=9
    )
    assert answer.modes["/var/log/a b"].mtime_ns == 1_000_000_000
    fs = AnswerFS(answer)
    assert fs.has_acl("var/log/a b") is True
    assert fs.has_acl("var/log/plain") is False
    assert fs.has_acl("var/log/unstated") is None  # not stat-ed: unknown
    answer.acls = None  # a target without getfacl
    assert AnswerFS(answer).has_acl("var/log/plain") is None


def test_the_real_script_reports_an_acl_like_the_local_reader(tmp_path: Path) -> None:
    """The acl package is part of the test set-up (scripts/setup.sh): getfacl and setfacl are there."""
    assert shutil.which("setfacl") and shutil.which("getfacl"), "install the acl package (setup.sh test)"
    with_acl, without = tmp_path / "with acl", tmp_path / "without"
    with_acl.write_text("x")
    without.write_text("y")
    subprocess.run(["setfacl", "-m", "u:nobody:r", str(with_acl)], check=True)
    boundary = new_boundary()
    script = build_script(boundary, (Fetch("S", str(with_acl), "test"), Fetch("S", str(without), "test")))
    done = subprocess.run(["sh", "-s"], input=script, capture_output=True, check=True)
    fs = AnswerFS(parse_answer(done.stdout, boundary))
    local = DiskFS(Path("/"))
    for path in (str(with_acl), str(without)):
        assert fs.has_acl(path) == local.has_acl(path), path
    assert fs.has_acl(str(with_acl)) is True


def test_every_path_has_its_own_inode_and_a_link_shares_its_targets() -> None:
    """(st_dev, st_ino) tells whether two paths are one file (the modprobe.d search de-duplicates
    lib → usr/lib that way), also after listed placeholders were replaced by fetched files."""
    answer = _answer(
        {
            "/usr/lib/modprobe.d": Entry("dir", listing=[("f", "a.conf"), ("f", "b.conf"), ("d", "sub")]),
            "/usr/lib/modprobe.d/a.conf": Entry("file", data=b"blacklist a\n"),
            "/etc/modprobe.d": Entry("dir", listing=[("f", "c.conf")]),
            "/etc/modprobe.d/c.conf": Entry("file", data=b"blacklist c\n"),
        },
        links={"/lib": "usr/lib"},
    )
    fs = AnswerFS(answer)
    paths = ["", "etc", "etc/modprobe.d", "etc/modprobe.d/c.conf", "usr", "usr/lib", "usr/lib/modprobe.d"]
    paths += [f"usr/lib/modprobe.d/{name}" for name in ("a.conf", "b.conf", "sub")]
    inodes = [fs.stat(p).st_ino for p in paths]
    assert len(set(inodes)) == len(paths)
    assert fs.stat("lib/modprobe.d").st_ino == fs.stat("usr/lib/modprobe.d").st_ino
    host = linux_host.collect_host(fs, problems=[], live=False)
    assert host.kernel.module_blacklist == ["a", "c"]
