"""The history round trip on a real PostgreSQL server: a throwaway cluster under /tmp, started by this
module as the ``postgres`` user on a loopback port (password auth, SCRAM), stopped by ``pg_ctl stop``
(or its PID) at the end. ``scripts/setup.sh test`` installs Debian's ``postgresql``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hvguard.facts import FACTS_VERSION
from test_history import hv, one_line_error, write_node


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail(
            "PostgreSQL server binaries missing (/usr/lib/postgresql/*/bin): run scripts/setup.sh test"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of our own: its server URL parts and a way to make databases in it."""

    def __init__(self, port: int, password: str) -> None:
        self.port = port
        self.password = password
        self._n = 0

    def url(self, dbname: str, *, password: str | None = None) -> str:
        return f"postgresql+psycopg://hvguard:{password or self.password}@127.0.0.1:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="hvguard", password=self.password, dbname="postgres"
        )

    def new_database(self) -> str:
        self._n += 1
        name = f"hvg_test_{self._n}"
        with self.admin() as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {name}")
        return name


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    # PostgreSQL refuses to run as root; as root we run it as the postgres user.
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="hvg-pg-"))  # in /tmp itself: pytest's tmp dirs are root-only
    data, sock, log, pwfile = base / "data", base / "sock", base / "postgres.log", base / "pw"
    password = secrets.token_urlsafe(18)
    pwfile.write_text(password + "\n")
    sock.mkdir()
    if as_pg:
        for path in (base, sock, pwfile):
            shutil.chown(path, "postgres", "postgres")
    started = False
    try:
        subprocess.run(
            [
                *as_pg,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "hvguard",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = _free_port()
        start = subprocess.run(
            [
                *as_pg,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-k {sock} -p {port} -h 127.0.0.1 -c fsync=off",
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        started = (data / "postmaster.pid").exists()
        if start.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"pg_ctl start failed: {start.stdout}{start.stderr}\n{tail}")
        yield Cluster(port, password)
    finally:
        if started:
            stop = subprocess.run(
                [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=90,
                check=False,
            )
            pidfile = data / "postmaster.pid"
            if stop.returncode != 0 and pidfile.exists():  # stop the postmaster we started, by its PID
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database's URL; $HVGUARD_DB points elsewhere so only --db can reach PostgreSQL."""
    monkeypatch.setenv("HVGUARD_DB", str(tmp_path / "must-not-be-used.sqlite3"))
    return cluster.url(cluster.new_database())


def test_round_trip_on_postgresql(tmp_path: Path, pg_url: str, cluster: Cluster) -> None:
    node = tmp_path / "node.xml"
    uri = write_node(node, vcpu=4)
    first = hv("scan", uri, "--format", "json", "--db", pg_url)
    assert first.returncode == 1 and first.stderr == "", first.stderr
    write_node(node, vcpu=16)
    second = hv("scan", uri, "--format", "json", "--db", pg_url)
    assert second.returncode == 1 and second.stderr == "", second.stderr

    r = hv("diff", "previous", "latest", "--db", pg_url, "--format", "json")
    assert r.returncode == 1, r.stderr
    d = json.loads(r.stdout)
    assert d["fact_changes"] == [
        {"target": uri, "path": "hypervisor.vms[web1].vcpu.maximum", "old": 4, "new": 16, "kind": "changed"}
    ]
    assert [(t["subject"], t["measure"], t["old"], t["new"]) for t in d["transitions"]] == [
        ("vm:web1", "11.3.3", "pass", "fail")
    ]
    r = hv("history", "--db", pg_url, "--format", "json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [s["id"] for s in listed["scans"]] == [2, 1]
    assert listed["scans"][0]["by_status"] == json.loads(second.stdout)["summary"]["by_status"]
    assert cluster.password not in r.stdout and "***" in listed["database"]
    assert not (tmp_path / "must-not-be-used.sqlite3").exists()

    # The facts went in as bytes and the findings as rows: look at them with PostgreSQL's own eyes.
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as conn:
        rows = conn.execute(
            "SELECT scan_id, facts_encoding, facts_version FROM hvguard_scan_targets ORDER BY scan_id"
        ).fetchall()
        assert rows == [(1, "json", FACTS_VERSION), (2, "json", FACTS_VERSION)]
        (n,) = conn.execute("SELECT count(*) FROM hvguard_findings WHERE scan_id = 2").fetchone() or (0,)
        assert n == len(json.loads(second.stdout)["results"])
        # Evidence is a JSON object PostgreSQL can query, not a string holding JSON.
        (kind, vcpus) = conn.execute(
            "SELECT json_typeof(evidence), evidence->>'vcpu_max' FROM hvguard_findings "
            "WHERE scan_id = 2 AND measure = '11.3.3' AND subject = 'vm:web1'"
        ).fetchone() or (None, None)
        assert (kind, vcpus) == ("object", "16")


def test_newer_schema_refused_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    uri = write_node(tmp_path / "node.xml")
    assert hv("scan", uri, "--format", "json", "--db", pg_url).returncode == 1
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(
            "INSERT INTO hvguard_schema_version (version, applied_at, tool_version) VALUES (3, now(), '9')"
        )
    err = one_line_error(hv("history", "--db", pg_url))
    assert "history schema version 3 is newer than this hvguard supports (2)" in err
    r = hv("scan", uri, "--format", "json", "--db", pg_url)
    assert r.returncode == 1 and json.loads(r.stdout)["results"]
    assert r.stderr.startswith("hvguard: warning: scan history not saved: ") and "version 3" in r.stderr


def test_wrong_password_is_one_line_and_not_echoed(tmp_path: Path, cluster: Cluster) -> None:
    url = cluster.url("postgres", password="not-the-password")
    err = one_line_error(hv("history", "--db", url))
    assert "password authentication failed" in err and "not-the-password" not in err
    uri = write_node(tmp_path / "node.xml")
    r = hv("scan", uri, "--format", "json", "--db", url)
    assert r.returncode == 1 and json.loads(r.stdout)["results"]
    assert len(r.stderr.splitlines()) == 1 and "not-the-password" not in r.stderr
