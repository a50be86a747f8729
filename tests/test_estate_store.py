"""The estate store (history schema 2): per-target summaries written with every scan, the migration from
schema 1, the estate read API, ``history prune`` and ``/metrics`` — on SQLite and on a real PostgreSQL
server (the throwaway cluster of tests/test_history_postgres.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import create_engine, delete, select, text

from factories import good_vm, target
from hvguard.engine import Evaluation, evaluate
from hvguard.facts import TargetFacts, VcpuFacts
from hvguard.findings import worst
from hvguard.history import estate
from hvguard.history.schema import findings, schema_version, target_summaries
from hvguard.history.store import HistoryStore
from hvguard.profile import default_profile
from hvguard.workflow.attestations import load_attestations
from hvguard.workflow.exceptions import load_exceptions
from test_history_postgres import cluster  # noqa: F401 (the module-scoped PostgreSQL fixture)

WORKFLOW = Path(__file__).resolve().parent / "data" / "workflow"
#: The evaluation date of the example registers (tests/data/workflow).
AS_OF = date(2026, 6, 1)
#: A day on which every example entry has been approved/attested (their files are read as of it).
REGISTER_DAY = date(2026, 7, 1)
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh history database on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite3")
    pg = request.getfixturevalue("cluster")
    return str(pg.url(pg.new_database()))


def host(i: int, *, bad: bool = False, vms: int = 2, down: bool = False) -> TargetFacts:
    """Estate host ``i``: ``vms`` VMs, the first bent out of compliance when ``bad``; ``down``: nothing
    of it could be collected."""
    machines = [good_vm(f"vm{j}") for j in range(vms)]
    if bad and machines:
        machines[0] = msgspec.structs.replace(machines[0], vcpu=VcpuFacts(maximum=16), domain_type="qemu")
    t = target(machines, tid=f"test:///estate/h{i}.xml")
    if down:
        t = msgspec.structs.replace(t, host=None, hypervisor=None, unreachable="connection refused")
    return t


def estate_eval(targets: list[TargetFacts], *, registers: bool = False) -> Evaluation:
    """The evaluation a scan of ``targets`` makes (with the example registers when asked)."""
    kw: dict[str, Any] = {}
    if registers:
        kw["exceptions"] = load_exceptions(WORKFLOW / "exceptions.yaml", today=REGISTER_DAY)
        kw["attestations"] = load_attestations(WORKFLOW / "attestations.yaml", today=REGISTER_DAY)
    return evaluate(targets, default_profile(), as_of=AS_OF, **kw)


def save(url: str, ev: Evaluation, at: datetime) -> int:
    with HistoryStore.open(url, create=True) as store:
        return store.save(ev, command="scan", inputs=[t.id for t in ev.targets], at=at)


def open_store(url: str) -> HistoryStore:
    return HistoryStore.open(url, create=False)


def raw_engine(url: str) -> Any:
    return create_engine(url if "://" in url else f"sqlite:///{url}")


# --------------------------------------------------------------------------------------------------------
# written at save time


def test_summaries_carry_the_engines_verdicts_and_counts(db_url: str) -> None:
    targets = [host(0), host(1, bad=True, vms=3), host(2, down=True)]
    ev = estate_eval(targets)
    save(db_url, ev, NOW)
    with open_store(db_url) as store:
        rows = {r.target: r for r in estate.estate_latest(store)}
    assert list(rows) == sorted(t.id for t in targets)
    for t in targets:
        row, verdict = rows[t.id], ev.verdicts[t.id]
        assert row.verdict == verdict.verdict.value and row.blocking == verdict.blocking
        assert row.by_status == verdict.by_status
        mine = [f for f in ev.findings if f.target == t.id]
        expected = Counter((f.measure, f.status.value) for f in mine)
        assert {(m, s): n for m, by in row.finding_counts.items() for s, n in by.items()} == expected
        assert row.by_measure == {
            m: worst([f.status for f in mine if f.measure == m]).value for m in {f.measure for f in mine}
        }
        assert row.created_at == NOW and row.platform == "kvm-libvirt" and row.groups == ()
    assert rows[targets[1].id].verdict == "not_compliant" and rows[targets[2].id].verdict == "not_assessed"
    assert (rows[targets[0].id].vm_count, rows[targets[1].id].vm_count, rows[targets[2].id].vm_count) == (
        2,
        3,
        0,
    )
    assert rows[targets[0].id].host_name == "hv1" and rows[targets[2].id].host_name is None


def test_views_never_read_the_findings(db_url: str) -> None:
    """The estate views use the summaries alone: with every finding row gone they answer the same."""
    save(db_url, estate_eval([host(0), host(1, bad=True)], registers=True), NOW)
    with open_store(db_url) as store:
        before = (estate.estate_latest(store), estate.estate_trend(store, days=3, now=NOW))
    engine = raw_engine(db_url)
    with engine.begin() as conn:
        conn.execute(delete(findings))
    engine.dispose()
    with open_store(db_url) as store:
        assert (estate.estate_latest(store), estate.estate_trend(store, days=3, now=NOW)) == before
        assert before[0] and before[1][-1].targets == 2


def test_latest_per_target_and_trend_over_days(db_url: str) -> None:
    day = timedelta(days=1)
    save(db_url, estate_eval([host(0), host(1)]), NOW - 3 * day)  # both as they are
    save(db_url, estate_eval([host(0, bad=True)]), NOW - day)  # h0 breaks
    save(db_url, estate_eval([host(0)]), NOW - day + timedelta(hours=2))  # and is fixed the same day
    save(db_url, estate_eval([host(1, down=True), host(2, bad=True)]), NOW)
    with open_store(db_url) as store:
        latest = {r.target: r for r in estate.estate_latest(store)}
        trend = estate.estate_trend(store, days=5, now=NOW)
        only_recent = estate.estate_trend(store, days=1, now=NOW)
    first = estate_eval([host(0), host(1)]).verdicts
    ok = first[host(0).id].verdict.value
    assert {t: (r.scan_id, r.verdict) for t, r in latest.items()} == {
        host(0).id: (3, ok),
        host(1).id: (4, "not_assessed"),
        host(2).id: (4, "not_compliant"),
    }
    assert [p.day for p in trend] == [(NOW - i * day).date() for i in range(4, -1, -1)]

    def counts(verdicts: list[str]) -> tuple[int, int, int]:
        c = Counter(verdicts)
        return c["compliant"], c["not_compliant"], c["not_assessed"]

    h1_first = first[host(1).id].verdict.value
    assert [(p.compliant, p.not_compliant, p.not_assessed) for p in trend] == [
        (0, 0, 0),
        counts([ok, h1_first]),
        counts([ok, h1_first]),
        counts([ok, h1_first]),  # h0's fail was fixed on the same day: the day's last scan counts
        counts([ok, "not_assessed", "not_compliant"]),
    ]
    # A one-day window still counts the targets last scanned before it.
    assert only_recent == [trend[-1]]


def test_groups_and_measure_matrix() -> None:
    rows = [
        _row("a", "compliant", {"11.1.1": "pass", "11.2.1": "pass"}, ("dc1", "web")),
        _row("b", "not_compliant", {"11.1.1": "fail", "11.2.1": "pass"}, ("dc1",)),
        _row("c", "not_assessed", {"11.1.1": "error", "11.2.1": "error"}, ()),
    ]
    assert estate.measure_matrix(rows) == {r.target: r.by_measure for r in rows}
    g = estate.groups(rows)
    assert list(g) == ["dc1", "web"]
    assert (g["dc1"].targets, g["dc1"].compliant, g["dc1"].not_compliant, g["dc1"].not_assessed) == (
        2,
        1,
        1,
        0,
    )
    assert g["dc1"].by_measure == {"11.1.1": "fail", "11.2.1": "pass"}
    assert g["web"].targets == 1 and g["web"].by_measure == {"11.1.1": "pass", "11.2.1": "pass"}


def _row(tid: str, verdict: str, by_measure: dict[str, str], groups: tuple[str, ...]) -> estate.TargetSummary:
    return estate.TargetSummary(
        scan_id=1,
        created_at=NOW,
        target=tid,
        host_name=None,
        platform="kvm-libvirt",
        groups=groups,
        verdict=verdict,
        blocking=(),
        by_status={},
        by_measure=by_measure,
        finding_counts={},
        vm_count=0,
    )


def test_expiring_lists_the_registers_of_the_latest_scans(db_url: str) -> None:
    save(db_url, estate_eval([host(0), host(1, bad=True)], registers=True), NOW)
    with open_store(db_url) as store:
        # AT-001 is valid until 2026-11-20, EX-001 until 2026-12-31 (tests/data/workflow).
        soon = estate.expiring(store, within_days=30, now=datetime(2026, 11, 1, tzinfo=UTC))
        later = estate.expiring(store, within_days=60, now=datetime(2026, 11, 1, tzinfo=UTC))
        past = estate.expiring(store, within_days=30, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert [(e.kind, e.id, e.days_left) for e in soon] == [("attestations", "AT-001", 19)]
    # Soonest first; AT-004, AT-005 and EX-001 all end on 2026-12-31.
    assert [(e.kind, e.id) for e in later] == [
        ("attestations", "AT-001"),
        ("attestations", "AT-004"),
        ("attestations", "AT-005"),
        ("exceptions", "EX-001"),
    ]
    ex = later[3]
    assert (ex.valid_from, ex.valid_until, ex.measure) == (date(2026, 1, 10), date(2026, 12, 31), "11.3.10")
    assert ex.scope == {"target": "test://*", "subject": "vm:qemu-*", "check": "*"}
    assert ex.source.endswith("exceptions.yaml") and ex.days_left == 60
    assert past == []
    # A newer scan without registers: the entries no longer belong to any target's latest scan.
    save(db_url, estate_eval([host(0), host(1)]), NOW + timedelta(hours=1))
    with open_store(db_url) as store:
        assert estate.expiring(store, within_days=60, now=datetime(2026, 11, 1, tzinfo=UTC)) == []


def test_empty_or_missing_database_reads_as_an_empty_estate(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "none.sqlite3")) as store:
        assert estate.estate_latest(store) == []
        assert [p.targets for p in estate.estate_trend(store, days=2, now=NOW)] == [0, 0]
        assert estate.expiring(store, now=NOW) == []
    assert not (tmp_path / "none.sqlite3").exists()


# --------------------------------------------------------------------------------------------------------
# migration from schema 1


def test_schema_1_database_is_migrated_with_summaries_from_its_findings(db_url: str) -> None:
    targets = [host(0), host(1, bad=True, vms=3), host(2, down=True)]
    save(db_url, estate_eval(targets), NOW - timedelta(days=2))
    save(db_url, estate_eval([host(0, bad=True)]), NOW)
    with open_store(db_url) as store:
        expected = estate.estate_latest(store)
    _downgrade_to_schema_1(db_url)
    with open_store(db_url) as store:
        assert store.list_scans()  # schema 1 scans still listed
        assert estate.estate_latest(store) == expected
    engine = raw_engine(db_url)
    with engine.connect() as conn:
        versions = [
            v for (v,) in conn.execute(select(schema_version.c.version).order_by(schema_version.c.version))
        ]
        n = conn.scalar(select(text("count(*)")).select_from(target_summaries))
    engine.dispose()
    assert versions == [1, 2] and n == 4


def _downgrade_to_schema_1(url: str) -> None:
    """Make the database exactly what hvguard with schema 1 left: its three tables, version 1."""
    engine = raw_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE hvguard_target_summaries"))
        conn.execute(text("DROP TABLE hvguard_register_entries"))
        conn.execute(text("UPDATE hvguard_schema_version SET version = 1"))
    engine.dispose()


# --------------------------------------------------------------------------------------------------------
# history prune


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HVGUARD_CONFIG": "", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )


def _stored_scan_ids(url: str) -> dict[str, list[int]]:
    engine = raw_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in (
            "hvguard_scans",
            "hvguard_scan_targets",
            "hvguard_findings",
            "hvguard_target_summaries",
        ):
            col = "id" if table == "hvguard_scans" else "scan_id"
            out[table] = sorted({int(i) for (i,) in conn.execute(text(f"SELECT {col} FROM {table}"))})  # noqa: S608
    engine.dispose()
    return out


def test_prune_keeps_recent_scans_and_every_targets_latest(db_url: str) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    save(db_url, estate_eval([host(0), host(1)]), old)  # 1: h1's latest
    save(db_url, estate_eval([host(0)]), old + timedelta(days=1))  # 2: superseded
    save(db_url, estate_eval([host(0)]), recent)  # 3: recent
    r = hv("history", "prune", "--db", db_url, "--keep-days", "30", "--dry-run")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("would remove scan 2 (") and lines[0].endswith(", 1 target)")
    assert (
        lines[1].startswith("would remove 1 scan from ")
        and "(kept 1 older scan: the latest of a target)" in lines[1]
    )
    assert _stored_scan_ids(db_url)["hvguard_scans"] == [1, 2, 3]  # a dry run removes nothing

    r = hv("history", "prune", "--db", db_url, "--keep-days", "30")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("removed scan 2 (")
    assert all(ids == [1, 3] for ids in _stored_scan_ids(db_url).values())

    r = hv("history", "prune", "--db", db_url, "--keep-days", "30", "--include-latest")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("removed scan 1 (") and "2 targets)" in r.stdout
    assert all(ids == [3] for ids in _stored_scan_ids(db_url).values())
    with open_store(db_url) as store:
        assert [s.target for s in estate.estate_latest(store)] == [host(0).id]


def test_prune_usage_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite3")
    for args in ([], ["--keep-days", "-1"], ["--keep-days", "x"]):
        r = hv("history", "prune", "--db", db, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("hvguard: error: ") and "Traceback" not in r.stderr
    r = hv("history", "prune", "--db", db, "--keep-days", "7")
    assert (r.returncode, r.stdout) == (0, f"removed 0 scans from {db}\n")
    assert not Path(db).exists()  # nothing created


def test_prune_compacts_a_mostly_free_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite3")
    big = estate_eval([host(i, bad=True, vms=30) for i in range(6)])
    for k in range(4):
        save(db, big, datetime.now(UTC) - timedelta(days=100 - k))
    save(db, estate_eval([host(i) for i in range(6)]), datetime.now(UTC))
    size = Path(db).stat().st_size
    r = hv("history", "prune", "--db", db, "--keep-days", "10")
    assert r.returncode == 0, r.stderr
    assert "removed 4 scans" in r.stdout and f"compacted {db}: " in r.stdout
    assert Path(db).stat().st_size < size / 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --------------------------------------------------------------------------------------------------------
# the bare `history` form is unchanged


def test_history_without_subcommand_keeps_its_options_and_output(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite3")
    save(db, estate_eval([host(0), host(1, bad=True)]), NOW - timedelta(days=1))
    save(db, estate_eval([host(1)]), NOW)
    r = hv("history", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert list(listed) == ["schema", "database", "target", "scans"]
    assert (listed["schema"], listed["database"], listed["target"]) == ("hvguard.history/1", db, None)
    assert [s["id"] for s in listed["scans"]] == [2, 1]
    assert list(listed["scans"][0]) == [
        "id",
        "created_at",
        "tool_version",
        "command",
        "inputs",
        "targets",
        "profile",
        "by_status",
    ]
    r = hv("history", "--format", "json", "--limit", "1", "--target", host(0).id, "--db", db)
    assert [s["id"] for s in json.loads(r.stdout)["scans"]] == [1]
    r = hv("history", "-q", "--db", db)
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith(f"hvguard scan history — {db}")
    # A word that names no subcommand is refused as before (not "No such command").
    r = hv("history", "--db", db, "latest")
    assert (r.returncode, r.stderr) == (2, "hvguard: error: Got unexpected extra argument (latest)\n")
    r = hv("history", "--db", db, "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr


# --------------------------------------------------------------------------------------------------------
# /metrics


def test_metrics_parse_as_prometheus_text(db_url: str) -> None:
    pytest.importorskip("prometheus_client", reason="the [serve] extra is not installed")
    from prometheus_client.parser import text_string_to_metric_families

    from hvguard.services.dashboard.metrics import STATUSES, render_metrics

    odd = msgspec.structs.replace(host(9), id='test:///estate/odd "name"\\with\nnewline.xml')
    targets = [host(0), host(1, bad=True, vms=3), host(2, down=True), odd]
    ev = estate_eval(targets, registers=True)
    save(db_url, ev, NOW)
    with open_store(db_url) as store:
        body = render_metrics(store, now=datetime(2026, 11, 1, tzinfo=UTC))
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    text_body = body.decode()
    for name in (
        "hvguard_measure_status",
        "hvguard_findings",
        "hvguard_target_compliant",
        "hvguard_target_verdict",
        "hvguard_last_scan_timestamp_seconds",
        "hvguard_targets",
        "hvguard_exceptions_expiring",
    ):
        assert families[name].type == "gauge" and families[name].documentation
        assert f"# HELP {name} " in text_body and f"# TYPE {name} gauge" in text_body

    one_hot: dict[tuple[str, str], dict[str, float]] = {}
    for s in families["hvguard_measure_status"].samples:
        one_hot.setdefault((s.labels["target"], s.labels["measure"]), {})[s.labels["status"]] = s.value
    for t in targets:
        mine = [f for f in ev.findings if f.target == t.id]
        for m in {f.measure for f in mine}:
            cell = one_hot[(t.id, m)]
            assert set(cell) == set(STATUSES) and sum(cell.values()) == 1
            assert cell[worst([f.status for f in mine if f.measure == m]).value] == 1
    counts = {
        (s.labels["target"], s.labels["measure"], s.labels["status"]): s.value
        for s in families["hvguard_findings"].samples
    }
    assert counts == {
        k: float(n) for k, n in Counter((f.target, f.measure, f.status.value) for f in ev.findings).items()
    }
    assert all(set(s.labels) == {"target", "measure", "status"} for s in families["hvguard_findings"].samples)

    compliant = {s.labels["target"]: s.value for s in families["hvguard_target_compliant"].samples}
    assert compliant == {t.id: float(ev.verdicts[t.id].verdict.value == "compliant") for t in targets}
    verdicts = {
        (s.labels["target"], s.labels["verdict"]): s.value for s in families["hvguard_target_verdict"].samples
    }
    assert verdicts[(host(2).id, "not_assessed")] == 1 and verdicts[(host(1).id, "not_compliant")] == 1
    last = {s.labels["target"]: s.value for s in families["hvguard_last_scan_timestamp_seconds"].samples}
    assert last == dict.fromkeys((t.id for t in targets), NOW.timestamp())
    per_verdict = {s.labels["verdict"]: s.value for s in families["hvguard_targets"].samples}
    assert sum(per_verdict.values()) == 4 and per_verdict["not_assessed"] == 1
    expiring = {
        (s.labels["kind"], s.labels["within_days"]): s.value
        for s in families["hvguard_exceptions_expiring"].samples
    }
    # On 2026-11-01 AT-001 (until 2026-11-20) expires within 30 days; EX-001 (2026-12-31) does not.
    assert expiring == {("attestations", "30"): 1.0, ("exceptions", "30"): 0.0}


def test_metrics_of_an_empty_store(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client", reason="the [serve] extra is not installed")
    from prometheus_client.parser import text_string_to_metric_families

    from hvguard.services.dashboard.metrics import render_metrics

    with open_store(str(tmp_path / "none.sqlite3")) as store:
        body = render_metrics(store, now=NOW)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["hvguard_measure_status"].samples == []
    assert {s.labels["verdict"]: s.value for s in families["hvguard_targets"].samples} == {
        "compliant": 0.0,
        "not_compliant": 0.0,
        "not_assessed": 0.0,
    }


def test_metrics_follow_new_and_pruned_scans(tmp_path: Path) -> None:
    """Scrapes between scans are served from the last rendering; a stored or pruned scan shows at once."""
    pytest.importorskip("prometheus_client", reason="the [serve] extra is not installed")
    from prometheus_client.parser import text_string_to_metric_families

    from hvguard.services.dashboard.metrics import render_metrics

    def scraped(db: str) -> set[str]:
        with open_store(db) as store:
            body = render_metrics(store, now=NOW)
        (family,) = [
            f for f in text_string_to_metric_families(body.decode()) if f.name == "hvguard_target_compliant"
        ]
        return {s.labels["target"] for s in family.samples}

    db = str(tmp_path / "h.sqlite3")
    save(db, estate_eval([host(0)]), datetime.now(UTC) - timedelta(days=400))
    assert scraped(db) == {host(0).id}
    assert scraped(db) == {host(0).id}
    save(db, estate_eval([host(1)]), datetime.now(UTC))
    assert scraped(db) == {host(0).id, host(1).id}
    r = hv("history", "prune", "--db", db, "--keep-days", "30", "--include-latest")
    assert r.returncode == 0 and "removed 1 scan" in r.stdout, r.stderr
    assert scraped(db) == {host(1).id}


def test_prune_is_refused_with_the_listings_options_and_follows_the_groups_db(tmp_path: Path) -> None:
    db, other = str(tmp_path / "h.sqlite3"), str(tmp_path / "other.sqlite3")
    save(db, estate_eval([host(0)]), datetime.now(UTC) - timedelta(days=50))
    save(db, estate_eval([host(0)]), datetime.now(UTC))
    r = hv("history", "--limit", "3", "prune", "--keep-days", "1", "--db", db)
    assert (r.returncode, r.stderr) == (
        2,
        "hvguard: error: --limit applies to the scan list, not to history prune\n",
    )
    # `history --db X prune`: X, not $HVGUARD_DB.
    env_db = {**os.environ, "HVGUARD_DB": other}
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "history", "--db", db, "prune", "--keep-days", "30"],
        capture_output=True,
        text=True,
        env={**env_db, "HVGUARD_CONFIG": ""},
        timeout=120,
        check=False,
    )
    assert r.returncode == 0 and r.stdout.startswith("removed scan 1 ("), r.stderr
    assert not Path(other).exists()


def test_prune_batches_keep_every_scan_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few targets: every removed scan goes with all its rows, the kept ones keep theirs."""
    from hvguard.history import retention

    monkeypatch.setattr(retention, "TARGETS_PER_TRANSACTION", 3)
    db = str(tmp_path / "h.sqlite3")
    base = datetime.now(UTC) - timedelta(days=60)
    for k in range(5):
        save(db, estate_eval([host(i) for i in range(k % 3 + 1)]), base + timedelta(hours=k))
    save(db, estate_eval([host(i) for i in range(3)]), datetime.now(UTC))
    with open_store(db) as store:
        plan = retention.plan_prune(store, keep_days=30, now=datetime.now(UTC), include_latest=False)
        assert [s.id for s in plan.remove] == [1, 2, 3, 4, 5]
        retention.execute_prune(store, plan)
    assert all(ids == [6] for ids in _stored_scan_ids(db).values())


def test_concurrent_first_opens_after_an_upgrade_all_succeed(tmp_path: Path) -> None:
    """Two listings and a prune opening a schema 1 file at once: one migrates, the others wait for it
    (without the writer lock taken up front one of them failed on "database is locked")."""
    db = str(tmp_path / "h.sqlite3")
    save(db, estate_eval([host(0), host(1)]), datetime.now(UTC))
    pristine = Path(db).read_bytes()
    env = {**os.environ, "HVGUARD_CONFIG": ""}
    for _ in range(3):
        _downgrade_to_schema_1(db)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "hvguard", "history", *args, "--db", db],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for args in (["--format", "json"], ["--limit", "1"], ["prune", "--keep-days", "5"])
        ]
        for p in runs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        Path(db).write_bytes(pristine)


def test_views_as_json(tmp_path: Path) -> None:
    db = str(tmp_path / "h.sqlite3")
    ev = estate_eval([host(0), host(1, bad=True)], registers=True)
    save(db, ev, NOW)
    with open_store(db) as store:
        rows = estate.estate_latest(store)
        trend = estate.estate_trend(store, days=1, now=NOW)
        entries = estate.expiring(store, within_days=30, now=datetime(2026, 11, 1, tzinfo=UTC))
    data = json.loads(json.dumps([r.to_json() for r in rows]))
    assert data[1]["created_at"] == "2026-06-10T12:00:00Z" and data[1]["verdict"] == "not_compliant"
    assert data[1]["finding_counts"] == rows[1].finding_counts and data[1]["groups"] == []
    verdicts = Counter(v.verdict.value for v in ev.verdicts.values())
    assert trend[0].to_json() == {"day": "2026-06-10", **{v: verdicts[v] for v in estate.VERDICTS}}
    assert entries[0].to_json()["valid_until"] == "2026-11-20" and entries[0].to_json()["days_left"] == 19
    assert estate.groups([replace(rows[0], groups=("g",))])["g"].to_json()["targets"] == 1
