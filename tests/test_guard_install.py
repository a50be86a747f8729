"""``hvguard guard install / uninstall / status / refresh / break-glass`` on a private hook directory.

The hook directory is a tmp directory here (the real /etc/libvirt/hooks is exercised by
tests/test_guard_libvirtd.py); the host snapshot is a real collection of this host, so these tests need
the real libvirtd (qemu:///system) that scripts/test.sh runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from hvguard.cli.app import run
from hvguard.schemas import shipped_text
from libvirt_env import requires_libvirtd

pytestmark = [requires_libvirtd, pytest.mark.libvirtd]


def tree_hash(root: Path) -> str:
    """Names, types, bytes, modes and owners of everything under ``root`` (and ``root`` itself)."""
    h = hashlib.sha256()
    paths = [root, *sorted(root.rglob("*"))] if root.exists() else []
    for p in paths:
        st = p.lstat()
        h.update(f"{p.relative_to(root.parent)}|{st.st_mode:o}|{st.st_uid}|{st.st_gid}|".encode())
        if p.is_file():
            h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.lstat().st_mtime_ns for p in [root, *root.rglob("*")]}


@pytest.fixture
def hooks(tmp_path: Path) -> Path:
    d = tmp_path / "hooks"
    d.mkdir()
    return d


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "hvg-test-guard-state"


def install(hooks: Path, state: Path, *extra: str) -> int:
    return run(["guard", "install", "--hook-dir", str(hooks), "--state-dir", str(state), *extra])


def status(state: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert run(["guard", "status", "--state-dir", str(state), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(shipped_text("guard-status"))
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(doc)]
    assert not errors, errors  # what is printed is what `hvguard schema guard-status` describes
    return doc


def test_install_then_uninstall_restores_a_hook_dir_with_other_hooks_byte_for_byte(
    hooks: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hooks / "qemu").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "qemu").chmod(0o750)
    (hooks / "qemu.d").mkdir(mode=0o700)
    (hooks / "qemu.d" / "10-other").write_text("#!/bin/sh\necho other\n")
    (hooks / "qemu.d" / "10-other").chmod(0o755)
    os.chown(hooks / "qemu.d" / "10-other", 12345, 54321)
    before, times = tree_hash(hooks), mtimes(hooks)

    assert install(hooks, state, "--domains", "hvg-test-*") == 0
    hook = hooks / "qemu.d" / "50-hvguard"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert "# hvguard-guard-hook/1" in hook.read_text()
    assert (hooks / "qemu").read_text() == "#!/bin/sh\nexit 0\n"  # the single hook is left alone
    assert state.stat().st_mode & 0o777 == 0o700
    for f in ("state.json", "host-facts.json", "policy/profile.yaml"):
        assert (state / f).stat().st_mode & 0o777 == 0o600, f
    doc = status(state, capsys)
    assert doc["schema"] == "hvguard.guard-status/1"
    assert (doc["mode"], doc["on_error"], doc["domains"]) == ("audit", "deny", "hvg-test-*")
    assert doc["hook"]["present"] and doc["hook"]["unchanged"]
    assert doc["policy"]["profile"]["matches"] and doc["policy"]["exceptions"] is None

    (state / "decisions.jsonl").write_text('{"schema": "hvguard.guard-decision/1"}\n')
    assert run(["guard", "uninstall", "--state-dir", str(state)]) == 0
    assert tree_hash(hooks) == before
    assert mtimes(hooks) == times
    assert sorted(p.name for p in state.iterdir()) == ["decisions.jsonl"]  # evidence kept


def test_an_empty_hook_dir_gets_qemu_d_and_loses_it_again(hooks: Path, state: Path) -> None:
    before = tree_hash(hooks)
    assert install(hooks, state) == 0
    assert (hooks / "qemu.d" / "50-hvguard").is_file()
    assert run(["guard", "uninstall", "--state-dir", str(state), "--purge"]) == 0
    assert tree_hash(hooks) == before
    assert not state.exists()


def test_a_foreign_drop_in_is_kept_unless_forced_and_then_restored(
    hooks: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hooks / "qemu.d").mkdir()
    foreign = hooks / "qemu.d" / "50-hvguard"
    foreign.write_bytes(b"#!/bin/sh\n# someone else's\nexit 0\n")
    foreign.chmod(0o700)
    before = tree_hash(hooks)
    capsys.readouterr()
    assert install(hooks, state) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not hvguard's: use --force" in err
    assert tree_hash(hooks) == before and not state.exists()

    assert install(hooks, state, "--force") == 0
    assert "# hvguard-guard-hook/1" in foreign.read_text()
    assert run(["guard", "uninstall", "--state-dir", str(state)]) == 0
    assert tree_hash(hooks) == before


def test_a_second_install_needs_update_which_re_pins_changed_policy(
    hooks: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text("name: site\nthresholds: {}\n")
    assert install(hooks, state, "--profile", str(profile)) == 0
    first = status(state, capsys)["policy"]["profile"]
    assert first["source"] == str(profile) and first["source_changed"] is False
    assert first["sha256"] == hashlib.sha256(profile.read_bytes()).hexdigest()

    capsys.readouterr()
    assert install(hooks, state) == 2
    assert "already installed" in capsys.readouterr().err

    profile.write_text("name: site-2\nthresholds: {}\n")
    assert status(state, capsys)["policy"]["profile"]["source_changed"] is True
    assert install(hooks, state, "--update", "--mode", "enforce", "--on-error", "allow") == 0
    doc = status(state, capsys)
    assert (doc["mode"], doc["on_error"]) == ("enforce", "allow")
    assert doc["policy"]["profile"]["sha256"] == hashlib.sha256(profile.read_bytes()).hexdigest()
    assert doc["policy"]["profile"]["source_changed"] is False
    hook = (hooks / "qemu.d" / "50-hvguard").read_text()
    assert "MODE='enforce'" in hook and "ON_ERROR='allow'" in hook
    assert doc["hook"]["unchanged"]
    # a tampered pinned copy shows, and so does a changed hook
    (state / "policy" / "profile.yaml").write_text("name: evil\n")
    (hooks / "qemu.d" / "50-hvguard").write_text(hook.replace("MODE='enforce'", "MODE='audit'"))
    doc = status(state, capsys)
    assert doc["policy"]["profile"]["matches"] is False and doc["hook"]["unchanged"] is False
    capsys.readouterr()
    assert run(["guard", "status", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    assert "MISMATCH" in text and "CHANGED since install" in text


def test_update_drops_a_pinned_register_only_when_asked(
    hooks: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = Path(__file__).parent / "data" / "workflow"
    exc, att = data / "exceptions.yaml", data / "attestations.yaml"
    assert install(hooks, state, "--exceptions", str(exc), "--attestations", str(att)) == 0
    assert install(hooks, state, "--update") == 0  # an update keeps what was pinned …
    policy = status(state, capsys)["policy"]
    assert policy["exceptions"]["source"] == str(exc) and policy["attestations"]["source"] == str(att)
    capsys.readouterr()
    assert install(hooks, state, "--update", "--no-exceptions", "--exceptions", str(exc)) == 2
    assert "contradict" in capsys.readouterr().err
    assert install(hooks, state, "--update", "--no-exceptions") == 0  # … until it is told to drop one
    policy = status(state, capsys)["policy"]
    assert policy["exceptions"] is None and policy["attestations"]["source"] == str(att)
    assert not (state / "policy" / "exceptions.yaml").exists()
    state_doc = json.loads((state / "state.json").read_text())
    assert state_doc["policy"]["exceptions"] is None
    assert install(hooks, state, "--update", "--no-attestations") == 0
    assert status(state, capsys)["policy"]["attestations"] is None


def test_a_broken_policy_file_is_refused_at_install(
    hooks: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ex.yaml"
    bad.write_text("exceptions:\n  - {id: EX-1, measure: '11.9.9'}\n")
    before = tree_hash(hooks)
    capsys.readouterr()
    assert install(hooks, state, "--exceptions", str(bad)) == 2
    err = capsys.readouterr().err
    assert err.startswith("hvguard: error: ") and err.count("\n") == 1
    assert tree_hash(hooks) == before and not state.exists()
    # validated before anything is written: the decisions an earlier install left stay untouched
    state.mkdir(mode=0o700)
    (state / "decisions.jsonl").write_text("{}\n")
    assert install(hooks, state, "--exceptions", str(bad)) == 2
    assert [p.name for p in state.iterdir()] == ["decisions.jsonl"]


def test_refresh_renews_the_snapshot(hooks: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert install(hooks, state) == 0
    raw = json.loads((state / "state.json").read_text())
    raw["host_facts"]["taken_at"] = "2020-01-01T00:00:00Z"
    (state / "state.json").write_text(json.dumps(raw))
    assert status(state, capsys)["host_facts"]["age_seconds"] > 86400
    assert run(["guard", "refresh", "--state-dir", str(state)]) == 0
    snap = status(state, capsys)["host_facts"]
    assert snap["age_seconds"] < 600 and snap["matches"]


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "log.sock"))
    s.settimeout(5)
    yield s
    s.close()


def test_break_glass_is_bounded_recorded_logged_and_shown(
    hooks: Path, state: Path, tmp_path: Path, syslog: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(hooks, state, "--syslog-socket", str(tmp_path / "log.sock")) == 0

    def bg(*args: str) -> int:
        return run(["guard", "break-glass", "--state-dir", str(state), *args])

    capsys.readouterr()
    assert bg("--domain", "vm1", "--minutes", "0", "--reason", "x") == 2
    assert bg("--domain", "vm1", "--minutes", "1441", "--reason", "x") == 2
    assert bg("--domain", "vm1", "--minutes", "30", "--reason", "   ") == 2
    assert bg("--domain", "vm1", "--minutes", "30") == 2  # --reason is required
    assert not (state / "break-glass.jsonl").exists()
    assert bg("--domain", "vm1", "--minutes", "30", "--reason", "INC-42 storage outage") == 0
    (entry,) = [json.loads(x) for x in (state / "break-glass.jsonl").read_text().splitlines()]
    assert entry["schema"] == "hvguard.guard-break-glass/1"
    assert (entry["domain"], entry["reason"], entry["by"]) == ("vm1", "INC-42 storage outage", "root")
    (logged,) = [json.loads(x) for x in (state / "decisions.jsonl").read_text().splitlines()]
    assert logged == entry
    line = syslog.recv(65536).decode()
    assert "hvguard-guard" in line and "break-glass" in line and 'domain="vm1"' in line
    doc = status(state, capsys)
    assert [b["domain"] for b in doc["break_glass"]] == ["vm1"]
    assert doc["decisions"][-1]["schema"] == "hvguard.guard-break-glass/1"


def test_commands_without_an_install_say_so_in_one_line(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["status"], ["uninstall"], ["refresh"]):
        capsys.readouterr()
        assert run(["guard", *argv, "--state-dir", str(state)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not installed" in err
