"""Follow-up passes of the SSH transport: paths the target's own configuration names outside the manifest
are fetched by further runs of the same script, never silently read as absent.

The script runs through a local ``sh -s`` here (the SSH session replaced by a pipe); the same passes over
a real sshd: tests/test_ssh_transport.py.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from hvguard.collect.interface import Fetch
from hvguard.collect.linux.manifest import manifest_fetch
from hvguard.collect.ssh.fetch import FetchIndex, follow_up_fetch, never_copied
from hvguard.collect.ssh.records import Entry, Meta, RemoteAnswer, parse_answer
from hvguard.collect.ssh.script import MAX_PASSES
from hvguard.collect.ssh.target import parse_ssh_target
from hvguard.collect.ssh.transport import collect_in_passes
from hvguard.facts import TargetFacts


def test_the_index_covers_what_the_request_names_and_nothing_else() -> None:
    index = FetchIndex(
        [
            Fetch("F", "/etc/ssh/sshd_config", "t"),
            Fetch("F", "/etc/sudoers.d/*", "t"),
            Fetch("D", "/sys/class/net", "t"),
            Fetch("W", "/sys/class/net/*/operstate", "t"),
            Fetch("S", "/etc/rc[235].d/S*ssh*", "t"),
            Fetch("T", "/", "t"),
            Fetch("P", "/proc", "t"),
        ]
    )
    covered = [
        "/etc/ssh/sshd_config",
        "/etc/ssh",  # above a named path
        "/etc/sudoers.d/local",  # a glob's match
        "/sys/class/net/eth0",  # a listed directory's entry
        "/sys/class/net/eth0/operstate",
        "/etc/rc2.d/S01ssh",
        "/opt",  # top level
        "/proc/1234/cmdline",
    ]
    outside = [
        "/etc/ssh/sshd_config.d/x.conf",
        "/opt/site/a.conf",
        "/etc/sudoers.d/a/b",
        "/proc/1234/environ",
    ]
    assert [p for p in covered if not index.covers(p)] == []
    assert [p for p in outside if index.covers(p)] == []
    assert index.lists("/etc/sudoers.d") and index.lists("/sys/class/net") and index.lists("/etc/rc2.d")
    assert index.lists("/proc") and not index.lists("/etc/ssh") and not index.lists("/opt/site")


def test_the_manifest_alone_needs_no_follow_up_on_this_machine() -> None:
    """Every path the collectors look for here is in the request: one script run per host."""
    calls: list[bytes] = []
    facts = _passes({}, calls)
    assert len(calls) == 1
    assert not [p for p in facts.problems if p.area == "transport"]
    assert not any("follow-up" in c for c in facts.collection.collectors)


def test_follow_ups_ask_by_exact_path_and_never_for_key_material() -> None:
    items = follow_up_fetch(
        {
            "/opt/site": {"S"},
            "/opt/site/a.conf": {"F"},
            "/etc/ssh/ssh_host_ed25519_key": {"F"},
            "/etc/shadow": {"F", "D"},
            "/opt/we*rd": {"F"},
        }
    )
    pairs = [(i.op, i.pattern) for i in items]
    assert ("D", "/opt/site") in pairs and ("S", "/opt/site") in pairs
    assert ("S", "/opt/site/*") in pairs  # the entries' owners and modes in the same pass
    assert ("F", "/opt/site/a.conf") in pairs
    assert [op for op, path in pairs if path in {"/etc/shadow", "/etc/ssh/ssh_host_ed25519_key"}] == [
        "S",
        "S",
    ]
    assert not any("we*rd" in path for _, path in pairs)
    assert never_copied("/etc/krb5.keytab") and not never_copied("/etc/krb5.conf")
    # The manifest itself never asks for the bytes of key material either.
    assert [i.pattern for i in manifest_fetch() if i.op in "FWN" and never_copied(i.pattern)] == []


def test_a_later_pass_adds_to_the_answer_without_replacing_it() -> None:
    first = RemoteAnswer()
    first.entries["/etc/a"] = Entry("file", data=b"one")
    first.entries["/opt"] = Entry("dir", listing=[("d", "site")])
    first.order = ["/etc/a", "/opt"]
    first.modes["/etc/a"] = Meta(mode=0o100644, uid=0, gid=0, mtime_ns=1)
    later = RemoteAnswer()
    later.entries["/opt"] = Entry("dir")  # a bare directory record
    later.entries["/opt/site/b.conf"] = Entry("file", data=b"two")
    later.order = ["/opt", "/opt/site/b.conf"]
    later.modes["/etc/a"] = Meta(mode=0o100600, uid=0, gid=0, mtime_ns=2)
    first.merge(later)
    assert first.entries["/opt"].listing == [("d", "site")]
    assert first.entries["/opt/site/b.conf"].data == b"two"
    assert first.order == ["/etc/a", "/opt", "/opt/site/b.conf"]
    assert first.modes["/etc/a"].mode == 0o100644


def _passes(first_answer_edit: dict[str, bytes], calls: list[bytes]) -> TargetFacts:
    """Collect this machine through a local ``sh -s``, with the first answer's files replaced as a
    target with another configuration would have sent them (and no ``sshd -T``: the files decide)."""

    async def execute(script: bytes, boundary: str) -> RemoteAnswer:
        calls.append(script)
        done = subprocess.run(["sh", "-s"], input=script, capture_output=True, check=True)
        answer = parse_answer(done.stdout, boundary)
        if len(calls) == 1:
            for path, data in first_answer_edit.items():
                if path not in answer.entries:
                    answer.order.append(path)
                answer.entries[path] = Entry("file", data=data)
            answer.commands.pop("sshd-effective-config", None)
        return answer

    target = parse_ssh_target("ssh://root@127.0.0.1")
    return asyncio.run(collect_in_passes(target, execute, collected_at="-", started=0.0))


def test_an_sshd_include_outside_the_manifest_is_fetched_and_decides(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "10-hardening.conf").write_text("# site policy\nPermitRootLogin no\n")
    calls: list[bytes] = []
    config = f"Include {site}/*.conf\nPermitRootLogin yes\n".encode()
    facts = _passes({"/etc/ssh/sshd_config": config}, calls)
    assert facts.host is not None and facts.host.access.sshd is not None
    setting = facts.host.access.sshd.effective["permitrootlogin"]
    assert (setting.values, setting.file, setting.line) == (["no"], str(site / "10-hardening.conf"), 2)
    assert 1 < len(calls) <= MAX_PASSES
    assert b"Z\n-\n" in calls[1] and b"\nV\n" not in calls[1]  # no commands and no virsh again
    assert not [p for p in facts.problems if p.area == "transport"], facts.problems
    assert any("follow-up" in c for c in facts.collection.collectors)


def test_what_is_never_copied_stays_out_and_is_named(tmp_path: Path) -> None:
    """An Include of key material: only its existence is fetched, and the report says it was not read."""
    calls: list[bytes] = []
    facts = _passes({"/etc/ssh/sshd_config": b"Include /etc/ssh/ssh_host_ed25519_key\n"}, calls)
    assert all(b"\nF\n/etc/ssh/ssh_host_ed25519_key\n" not in script for script in calls)
    named = [p for p in facts.problems if p.area == "transport" and "ssh_host_ed25519_key" in p.source]
    assert named and "never copies" in named[0].message
