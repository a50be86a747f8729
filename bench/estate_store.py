"""The estate store at 1,000 hosts × 20 VMs: what the per-target summaries add to saving a scan, and the
time of the estate views and of ``/metrics`` over the stored estate (SQLite in a tmp dir).

    .venv/bin/python bench/estate_store.py [--hosts 1000] [--vms 20] [--days 14]

``--days`` earlier scans of the same estate (one a day) are stored first so the trend and prune have
history to read; they are written with the same evaluation (its findings and facts included).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import describe, timed

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.facts import CpuTune, VcpuFacts
from hvguard.history import estate
from hvguard.history.retention import execute_prune, plan_prune, reclaim_space
from hvguard.history.store import HistoryStore
from hvguard.history.summaries import register_rows, summary_rows
from hvguard.profile import default_profile


def hosts(n: int, vms: int) -> list[object]:
    """``n`` hosts of ``vms`` VMs; one VM in three bent away from compliance in a different way."""
    out = []
    for h in range(n):
        machines = []
        for i in range(vms):
            vm = good_vm(f"vm{i:02d}")
            if (h + i) % 3 == 1:
                vm = msgspec.structs.replace(vm, vcpu=VcpuFacts(maximum=8), domain_type="qemu")
            elif (h + i) % 3 == 2:
                vm = msgspec.structs.replace(vm, cputune=CpuTune(), interfaces=[], disks=[])
            machines.append(vm)
        out.append(target(machines, tid=f"ssh://root@hv{h:04d}.example.org"))
    return out


def main() -> None:
    """Evaluate the estate, store it ``--days`` + 1 times, then time the views, metrics and prune."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--days", type=int, default=14)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ev = evaluate(hosts(args.hosts, args.vms), default_profile())  # type: ignore[arg-type]
    print(
        f"estate: {args.hosts} hosts × {args.vms} VMs, {len(ev.findings)} findings "
        f"(built and evaluated in {time.perf_counter() - t0:.1f} s)"
    )
    print(
        describe(
            "summary rows alone (added to every save)", timed(lambda: (summary_rows(ev), register_rows(ev)))
        )
    )
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "history.sqlite3")
        saves = []
        with HistoryStore.open(db, create=True) as store:
            for d in range(args.days, -1, -1):
                t = time.perf_counter()
                store.save(ev, command="evaluate", inputs=["bench"], at=now - timedelta(days=d, hours=1))
                saves.append(time.perf_counter() - t)
        print(describe("save of one estate scan (findings, facts, summaries)", saves))
        print(f"database: {Path(db).stat().st_size >> 20} MiB for {args.days + 1} scans")
        copy = Path(tmp) / "schema1.sqlite3"
        shutil.copyfile(db, copy)
        with sqlite3.connect(copy) as conn:  # what hvguard with schema 1 left: no estate tables
            conn.executescript(
                "DROP TABLE hvguard_target_summaries; DROP TABLE hvguard_register_entries; "
                "UPDATE hvguard_schema_version SET version = 1;"
            )
        t = time.perf_counter()
        HistoryStore.open(str(copy), create=False).close()
        print(f"migration 1 -> 2 of those {args.days + 1} scans: {time.perf_counter() - t:.1f} s")
        copy.unlink()
        from hvguard.services.dashboard.metrics import render_metrics

        with HistoryStore.open(db, create=False) as store:
            print(describe("estate_latest", timed(lambda: estate.estate_latest(store))))
            rows = estate.estate_latest(store)
            print(describe("estate_trend (90 days)", timed(lambda: estate.estate_trend(store, days=90))))
            print(
                describe(
                    "groups + measure_matrix",
                    timed(lambda: (estate.groups(rows), estate.measure_matrix(rows))),
                )
            )
            print(describe("expiring", timed(lambda: estate.expiring(store, now=now))))
            from hvguard.services.dashboard import metrics

            def fresh() -> bytes:
                metrics._CACHE.clear()
                return render_metrics(store)

            times = timed(fresh, repeat=3)
            body = render_metrics(store)
            print(
                describe(
                    "render_metrics again (no scan stored since: cached)",
                    timed(lambda: render_metrics(store)),
                )
            )
            lines = body.count(b"\n")
            print(describe(f"render_metrics ({len(body) >> 10} KiB, {lines} lines)", times))
            plan = plan_prune(store, keep_days=args.days // 2, now=now, include_latest=False)
            t = time.perf_counter()
            execute_prune(store, plan)
            pruned = time.perf_counter() - t
            t = time.perf_counter()
            reclaimed = reclaim_space(store)
            vacuum = time.perf_counter() - t
        print(f"prune of {len(plan.remove)} scans: {pruned:.2f} s")
        if reclaimed:
            print(f"VACUUM: {vacuum:.2f} s, {reclaimed[0] >> 20} MiB -> {reclaimed[1] >> 20} MiB")
        else:
            print(f"VACUUM not needed (checked in {vacuum:.3f} s)")


if __name__ == "__main__":
    main()
