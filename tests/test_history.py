"""Scan history and diff end to end: real scans of libvirt test-driver estates through the CLI (a
subprocess, as a user runs it), stored in a SQLite file under tmp, listed and compared.

PostgreSQL has its own module (``test_history_postgres.py``); the pure comparison rules are tested in
``test_history_compare.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")

#: One host of 2 sockets x 8 cores (16 cores: 11.3.3 wants every VM below 16 vCPUs) and two VMs. The
#: UUIDs are fixed: without them the test driver makes up new ones on every open.
NODE = """<node>
  <cpu><nodes>1</nodes><sockets>2</sockets><cores>8</cores><threads>2</threads><active>32</active>
    <mhz>2600</mhz><model>x86_64</model></cpu>
  <memory>67108864</memory>
  <domain type='kvm'>
    <name>web1</name>
    <uuid>6f1c0a52-0000-4000-8000-000000000001</uuid>
    {description}
    <memory unit='GiB'>4</memory>
    <vcpu>{web1_vcpu}</vcpu>
    <cputune><shares>1024</shares><period>100000</period><quota>{web1_quota}</quota></cputune>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/libvirt/images/web1.qcow2'/><target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
    </devices>
  </domain>
  {db1}
</node>
"""
DB1 = """<domain type='kvm'>
    <name>db1</name>
    <uuid>6f1c0a52-0000-4000-8000-000000000002</uuid>
    <memory unit='GiB'>8</memory>
    <vcpu>2</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
  </domain>"""


def write_node(
    path: Path, *, vcpu: int = 4, quota: int = 50000, db1: bool = True, description: str = ""
) -> str:
    """Write the estate's node file; return its test-driver URI."""
    path.write_text(
        NODE.format(
            web1_vcpu=vcpu,
            web1_quota=quota,
            db1=DB1 if db1 else "",
            description=f"<description>{description}</description>" if description else "",
        )
    )
    return f"test://{path}"


def hv(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI (a subprocess with no stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's history database (via $HVGUARD_DB, inherited by the subprocesses)."""
    path = tmp_path / "hist" / "history.sqlite3"
    monkeypatch.setenv("HVGUARD_DB", str(path))
    return path


def scan(uri: str, *extra: str) -> dict[str, Any]:
    """``hvguard scan URI --format json``: the parsed report (exit 0 or 1, no stderr)."""
    r = hv("scan", uri, "--format", "json", *extra)
    assert r.returncode in (0, 1), r.stderr
    assert "warning" not in r.stderr, r.stderr
    return dict(json.loads(r.stdout))


def diff_json(*args: str) -> tuple[int, dict[str, Any]]:
    r = hv("diff", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, dict(json.loads(r.stdout))


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (exit 2, no traceback)."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvguard: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def result_of(report: dict[str, Any], measure: str, subject: str) -> dict[str, Any]:
    (hit,) = [r for r in report["results"] if r["measure"] == measure and r["subject"] == subject]
    return dict(hit)


# --------------------------------------------------------------------------------------------------------
# the round trip the issue asks for


def test_diff_reports_exactly_the_changed_setting_and_its_transition(tmp_path: Path, db: Path) -> None:
    node = tmp_path / "node.xml"
    uri = write_node(node, vcpu=4)
    first = scan(uri)
    assert result_of(first, "11.3.3", "vm:web1")["status"] == "pass"
    write_node(node, vcpu=16)  # 16 vCPUs on 16 cores: 11.3.3 fails for web1
    second = scan(uri)
    assert result_of(second, "11.3.3", "vm:web1")["status"] == "fail"

    code, d = diff_json("previous", "latest")
    assert code == 1
    assert d["fact_changes"] == [
        {"target": uri, "path": "hypervisor.vms[web1].vcpu.maximum", "old": 4, "new": 16, "kind": "changed"}
    ]
    assert [
        (t["target"], t["subject"], t["measure"], t["kind"], t["old"], t["new"]) for t in d["transitions"]
    ] == [(uri, "vm:web1", "11.3.3", "changed", "pass", "fail")]
    assert d["transitions"][0]["message"] == result_of(second, "11.3.3", "vm:web1")["message"]
    assert d["subjects"] == {"added": [], "removed": []} and d["unaudited_xml_changes"] == []
    assert (d["from"]["id"], d["to"]["id"]) == (1, 2) and d["targets"] == [uri]

    # The same pair by id and by latest~N; the table names the path, both values and the transition.
    assert diff_json("1", "latest~0")[1]["fact_changes"] == d["fact_changes"]
    table = hv("diff", "latest~1", "2")
    assert table.returncode == 1, table.stderr
    for text in ("hypervisor.vms[web1].vcpu.maximum", "11.3.3", "vm:web1", "PASS", "FAIL", "1 fact change"):
        assert text in table.stdout, table.stdout

    # Reversed: the same change the other way; a scan against itself: nothing, exit 0.
    assert diff_json("latest", "previous")[1]["fact_changes"][0] | {"old": 16, "new": 4} == {
        **d["fact_changes"][0],
        "old": 16,
        "new": 4,
    }
    code, same = diff_json("latest", "latest")
    assert code == 0 and same["transitions"] == [] and same["fact_changes"] == [] and same["changed"] is False

    # history lists both, newest first, with the counts the reports gave.
    r = hv("history", "--format", "json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)["scans"]
    assert [s["id"] for s in listed] == [2, 1]
    assert [s["by_status"] for s in listed] == [second["summary"]["by_status"], first["summary"]["by_status"]]
    assert all(s["targets"] == [uri] and s["command"] == "scan" and s["inputs"] == [uri] for s in listed)
    assert listed[0]["profile"] == {"name": "default", "tailored": False, "deviations": []}
    table = hv("history")
    assert table.returncode == 0 and table.stderr == ""
    rows = [line for line in table.stdout.splitlines() if line.startswith(("│ 1 ", "│ 2 "))]
    assert [r[:4] for r in rows] == ["│ 2 ", "│ 1 "] and all("scan" in r and "fail" in r for r in rows)


def test_cputune_quota_change_and_an_undefined_vm(tmp_path: Path, db: Path) -> None:
    node = tmp_path / "node.xml"
    uri = write_node(node, quota=50000)
    scan(uri)
    write_node(node, quota=80000, db1=False)
    scan(uri)
    code, d = diff_json("previous", "latest")
    assert code == 1
    changes = {c["path"]: c for c in d["fact_changes"]}
    assert changes["hypervisor.vms[web1].cputune.quota"] | {} == {
        "target": uri,
        "path": "hypervisor.vms[web1].cputune.quota",
        "old": 50000,
        "new": 80000,
        "kind": "changed",
    }
    gone = changes["hypervisor.vms[db1]"]
    assert gone["kind"] == "removed" and gone["new"] is None and gone["old"]["name"] == "db1"
    assert set(changes) == {"hypervisor.vms[web1].cputune.quota", "hypervisor.vms[db1]"}
    assert d["subjects"]["removed"] == [{"target": uri, "subject": "vm:db1"}]
    removed = [t for t in d["transitions"] if t["subject"] == "vm:db1"]
    assert removed and all(t["kind"] == "removed" and t["new"] is None for t in removed)
    table = hv("diff", "previous", "latest")
    assert "gone subject(s): vm:db1" in table.stdout, table.stdout


def test_unaudited_xml_change_is_listed_but_not_counted(tmp_path: Path, db: Path) -> None:
    node = tmp_path / "node.xml"
    uri = write_node(node)
    scan(uri)
    write_node(node, description="moved to rack 4")  # in the domain XML, not in any audited fact
    scan(uri)
    code, d = diff_json("previous", "latest")
    assert code == 0, d
    assert d["fact_changes"] == [] and d["transitions"] == []
    assert d["unaudited_xml_changes"] == [{"target": uri, "vm": "web1"}]


def test_evaluate_of_a_bundle_is_stored_too(tmp_path: Path, db: Path) -> None:
    uri = write_node(tmp_path / "node.xml")
    bundle = tmp_path / "estate.json"
    r = hv("collect", uri, "--output", str(bundle))
    assert r.returncode == 0, r.stderr
    assert not db.exists()  # collect evaluates nothing and stores nothing
    r = hv("evaluate", str(bundle), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    scan(uri)
    code, d = diff_json("previous", "latest")
    assert code == 0 and d["from"]["command"] == "evaluate" and d["from"]["inputs"] == [str(bundle)]


def test_no_history_stores_nothing(tmp_path: Path, db: Path) -> None:
    uri = write_node(tmp_path / "node.xml")
    r = hv("scan", uri, "--format", "json", "--no-history")
    assert r.returncode in (0, 1) and r.stderr == ""
    assert not db.exists()


def test_default_database_is_private_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HVGUARD_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    uri = write_node(tmp_path / "node.xml")
    scan(uri)
    path = tmp_path / "data" / "hvguard" / "history.sqlite3"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    r = hv("history", "--format", "json")
    assert json.loads(r.stdout)["database"] == str(path)
    # --db overrides the environment, a plain path is a SQLite file.
    other = tmp_path / "other.sqlite3"
    scan(uri, "--db", str(other))
    assert len(json.loads(hv("history", "--db", str(other), "--format", "json").stdout)["scans"]) == 1


# --------------------------------------------------------------------------------------------------------
# targets


def test_scans_of_different_targets_need_target(tmp_path: Path, db: Path) -> None:
    a = write_node(tmp_path / "a.xml")
    b = write_node(tmp_path / "b.xml", vcpu=2)
    scan(a)
    scan(b)
    scan(a, "--no-history")
    err = one_line_error(hv("diff", "previous", "latest"))
    assert "cover different targets" in err and "--target" in err
    # With --target, latest/previous count only that target's scans.
    scan(b)
    code, d = diff_json("previous", "latest", "--target", b)
    assert code == 0 and (d["from"]["id"], d["to"]["id"]) == (2, 3) and d["targets"] == [b]
    r = hv("history", "--target", a, "--format", "json")
    assert [s["id"] for s in json.loads(r.stdout)["scans"]] == [1]
    err = one_line_error(hv("diff", "1", "2", "--target", a))
    assert err == f"hvguard: error: no scan 2 of target {a} in {db}"
    err = one_line_error(hv("diff", "previous", "latest", "--target", a))
    assert err == f"hvguard: error: previous: only 1 scan(s) of target {a} recorded in {db}"


def test_history_limit_and_target_counts(tmp_path: Path, db: Path) -> None:
    a = write_node(tmp_path / "a.xml")
    b = write_node(tmp_path / "b.xml", vcpu=16)
    both = hv("scan", a, b, "--format", "json")
    assert both.returncode == 1, both.stderr
    report = json.loads(both.stdout)
    scan(a)
    listed = json.loads(hv("history", "--limit", "1", "--format", "json").stdout)["scans"]
    assert [s["id"] for s in listed] == [2]
    for_b = json.loads(hv("history", "--target", b, "--format", "json").stdout)["scans"]
    (only,) = for_b
    want: dict[str, int] = {}
    for res in report["results"]:
        if res["target"] == b:
            want[res["status"]] = want.get(res["status"], 0) + 1
    assert {k: v for k, v in only["by_status"].items() if v} == want
    assert only["targets"] == [a, b]


# --------------------------------------------------------------------------------------------------------
# bad input and unusable databases


def test_unknown_scan_ids_and_refs(tmp_path: Path, db: Path) -> None:
    err = one_line_error(hv("diff", "previous", "latest"))
    assert err == f"hvguard: error: no scans recorded in {db}"
    assert not db.exists()  # reading never creates the database
    r = hv("history")
    assert r.returncode == 0 and "no scans recorded" in r.stdout
    assert json.loads(hv("history", "--format", "json").stdout)["scans"] == []
    scan(write_node(tmp_path / "node.xml"))
    assert one_line_error(hv("diff", "1", "99")) == f"hvguard: error: no scan 99 in {db}"
    assert "not a scan reference" in one_line_error(hv("diff", "1", "newest"))
    assert one_line_error(hv("diff", "previous", "latest")) == (
        f"hvguard: error: previous: only 1 scan(s) recorded in {db}"
    )


def test_corrupt_database(tmp_path: Path, db: Path) -> None:
    db.parent.mkdir()
    db.write_bytes(b"this is not a database, just bytes\n" * 200)
    err = one_line_error(hv("history"))
    assert str(db) in err and "not a database" in err
    one_line_error(hv("diff", "1", "2"))
    # The scan still prints its full report and exits with its own code; one warning line says why.
    uri = write_node(tmp_path / "node.xml")
    r = hv("scan", uri, "--format", "json")
    assert r.returncode == 1 and json.loads(r.stdout)["schema"] == "hvguard.report/1"
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("hvguard: warning: scan history not saved: ") and "not a database" in line
    assert db.read_bytes().startswith(b"this is not a database")  # left exactly as it was


def test_newer_schema_is_refused(tmp_path: Path, db: Path) -> None:
    uri = write_node(tmp_path / "node.xml")
    scan(uri)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO hvguard_schema_version (version, applied_at, tool_version) "
            "VALUES (99, '2030-01-01 00:00:00', '9.0')"
        )
    err = one_line_error(hv("history"))
    assert "history schema version 99 is newer than this hvguard supports (2)" in err
    r = hv("scan", uri, "--format", "json")
    assert r.returncode == 0 or r.returncode == 1
    assert json.loads(r.stdout)["results"]
    assert "scan history not saved" in r.stderr and "version 99" in r.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM hvguard_scans").fetchone() == (1,)


def test_locked_database_does_not_cost_the_report(tmp_path: Path, db: Path) -> None:
    uri = write_node(tmp_path / "node.xml")
    scan(uri)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock for longer than hvguard waits
    try:
        r = hv("scan", uri, "--format", "json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.returncode == 1 and json.loads(r.stdout)["schema"] == "hvguard.report/1"
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("hvguard: warning: scan history not saved: ") and "locked" in line
    assert [s["id"] for s in json.loads(hv("history", "--format", "json").stdout)["scans"]] == [1]


def test_unwritable_location_warns_and_keeps_the_exit_code(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    uri = write_node(tmp_path / "node.xml")
    r = hv("scan", uri, "--format", "json", "--db", str(blocker / "history.sqlite3"))
    assert r.returncode == 1 and json.loads(r.stdout)["schema"] == "hvguard.report/1"
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("hvguard: warning: scan history not saved: ") and "cannot create" in line


def test_concurrent_scans_both_land(tmp_path: Path, db: Path) -> None:
    """Two scans writing at once: SQLite's lock serialises them, neither is lost (first use races too)."""
    uri = write_node(tmp_path / "node.xml")
    results: list[subprocess.CompletedProcess[str]] = []
    env = dict(os.environ)
    threads = [
        threading.Thread(target=lambda: results.append(hv("scan", uri, "--format", "json", env=env)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 1 and r.stderr == "" for r in results), [r.stderr for r in results]
    assert len(json.loads(hv("history", "--format", "json").stdout)["scans"]) == 3


def test_bad_database_urls() -> None:
    err = one_line_error(hv("history", "--db", "mysql://u:s3cret@localhost/x"))
    assert "unsupported database 'mysql'" in err and "s3cret" not in err
    err = one_line_error(hv("history", "--db", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x"))
    assert "s3cret" not in err and "***" in err
