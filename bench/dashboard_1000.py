"""The dashboard over a stored estate of 1,000 hosts × 20 VMs (goal: the estate page ≤ 1 s server side).

    .venv/bin/python bench/dashboard_1000.py [--hosts 1000] [--vms 20] [--scans 2]

The estate is synthetic but varied (one host in five fails a host measure, one VM in three fails a VM
measure, one host in 50 is unreachable, hosts in four groups) and is stored through the real
``HistoryStore.save`` in a temporary SQLite database, ``--scans`` times. Figures:

* server side: building the estate view and rendering its HTML in-process (what the handler does);
* end to end: ``GET /`` (and the other estate-wide pages) from a real ``hvguard serve`` over mutual TLS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import describe, timed

from dashboard_env import make_certs, start
from factories import good_host, good_vm, target
from hvguard.catalog import load_catalog
from hvguard.engine import evaluate
from hvguard.facts import CpuTune, TargetFacts, VcpuFacts
from hvguard.history.store import HistoryStore
from hvguard.profile import default_profile
from hvguard.services.dashboard.pages import Pages, trend_chart
from hvguard.services.dashboard.views import TREND_DAYS, Dashboard

GROUPS = ("site-a", "site-b", "site-c", "site-d")


def host(i: int, vms: int) -> TargetFacts:
    """Host ``i`` with ``vms`` VMs, bent away from compliance in a few ways."""
    guests = []
    for j in range(vms):
        vm = good_vm(f"vm{i:04d}-{j:02d}")
        if j % 3 == 1:
            vm = msgspec.structs.replace(vm, vcpu=VcpuFacts(maximum=16))
        elif j % 3 == 2:
            vm = msgspec.structs.replace(vm, cputune=CpuTune())
        guests.append(vm)
    tid = f"qemu+ssh://hv{i:04d}.example.org/system"
    base = target(guests, tid=tid, host=good_host() if i % 5 else good_host(hostname=f"hv{i:04d}"))
    if i % 50 == 0:
        base = msgspec.structs.replace(base, host=None, hypervisor=None, unreachable="connection refused")
    groups = (GROUPS[i % 4], "prod" if i % 2 else "lab")
    return msgspec.structs.replace(base, groups=groups)


def main() -> None:
    """Store the estate, then time the estate page in-process and over HTTPS."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--scans", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ev = evaluate([host(i, args.vms) for i in range(args.hosts)], default_profile())
    print(f"estate: {args.hosts} hosts × {args.vms} VMs, {len(ev.findings)} findings, built and evaluated in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "history.sqlite3"
        with HistoryStore.open(str(db), create=True) as store:
            for _ in range(args.scans):
                t0 = time.perf_counter()
                store.save(ev, command="scan", inputs=[t.id for t in ev.targets])
                print(f"HistoryStore.save: {time.perf_counter() - t0:.2f} s")
        print(f"database: {db.stat().st_size / 1e6:.0f} MB after {args.scans} scan(s)")
        with HistoryStore.open(str(db), create=False) as store:
            dash = Dashboard(store, load_catalog())
            pages = Pages(store.label)

            def estate_page() -> int:
                view = dash.estate()
                html = pages.render(
                    "estate.html", title="Estate", nav="estate", counts_=view["counts"], trend=view["trend"],
                    chart=trend_chart(view["trend"]), trend_days=TREND_DAYS, groups=view["groups"],
                    hosts=view["hosts"],
                )  # fmt: skip
                return len(html)

            size = estate_page()
            print(
                describe(f"estate page, server side (view + HTML, {size / 1e3:.0f} kB)", timed(estate_page))
            )
            print(describe("  of which the estate view (store reads)", timed(dash.estate)))
            print(describe("measures heat map view", timed(dash.measures)))
        server = start(db, make_certs(tmp))
        srv = next(server)
        try:
            one = quote("qemu+ssh://hv0001.example.org/system", safe="")
            for path in (
                "/", "/measures", "/api/v1/estate", "/groups/site-a", f"/targets/{one}",
                f"/targets/{one}/vms/vm0001-01", "/expiring", "/metrics",
                f"/api/v1/diff?from=1&to=2&target={one}", "/diff?from=1&to=2",
                "/api/v1/diff/targets?from=1&to=2",
            ):  # fmt: skip
                status = srv.get(path, timeout=600).status_code

                def get(p: str = path) -> None:
                    srv.get(p, timeout=600).raise_for_status()

                if status == 200:
                    print(describe(f"GET {path} over mutual TLS (end to end)", timed(get)))
                else:
                    print(f"GET {path}: {status}")
            if args.scans > 1:
                t0 = time.perf_counter()
                status = srv.get("/api/v1/diff?from=1&to=2", timeout=1800).status_code
                print(f"GET /api/v1/diff of the whole estate ({status}): {time.perf_counter() - t0:.2f} s")
        finally:
            server.close()


if __name__ == "__main__":
    main()
