"""What storing every scan in the history costs: ``hvguard scan`` of a 1000-domain libvirt test-driver
estate with and without history (SQLite in a tmp dir), the database growth per scan, and the time of
``hvguard diff`` / ``hvguard history`` over such scans.

    .venv/bin/python bench/history_overhead.py [--domains 1000] [--repeat 5]

Runs alternate (no history, history, no history, …) so drift on this noisy 2-core machine hits both
sides alike.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _timing import HVGUARD, describe, wall
from testdriver_1000 import node_file


def estate(n: int) -> str:
    """testdriver_1000's estate with fixed UUIDs and MACs (the test driver makes up new ones on every
    open, which a diff would rightly report as changes; a real libvirtd keeps them)."""
    xml = re.sub(
        r"<name>bench(\d+)</name>",
        lambda m: f"{m[0]}<uuid>00000000-0000-4000-8000-{int(m[1]):012d}</uuid>",
        node_file(n),
    )
    macs = iter(range(n))
    return re.sub(
        r"<interface type='network'>",
        lambda m: f"{m[0]}<mac address='52:54:00:00:{(i := next(macs)) >> 8:02x}:{i & 255:02x}'/>",
        xml,
    )


def main() -> None:
    """Write the estate, then time scans with and without history, diff and history."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Path(tmp) / "node.xml"
        node.write_text(estate(args.domains))
        uri = f"test://{node}"
        db = Path(tmp) / "history.sqlite3"
        os.environ["HVGUARD_DB"] = str(db)
        base = [HVGUARD, "scan", uri, "--format", "json"]
        wall(base, 1)  # warm the page cache and bytecode before measuring
        without: list[float] = []
        with_history: list[float] = []
        sizes: list[int] = []
        for _ in range(args.repeat):
            without += wall([*base, "--no-history"], 1)
            with_history += wall(base, 1)
            sizes.append(db.stat().st_size)
        added = statistics.median(with_history) - statistics.median(without)
        print(describe(f"scan --no-history ({args.domains} domains)", without))
        print(describe(f"scan with history ({args.domains} domains)", with_history))
        print(
            f"added per scan (median difference): {added * 1000:.0f} ms "
            f"({added / statistics.median(without) * 100:.1f} %)"
        )
        growth = [b - a for a, b in itertools.pairwise(sizes)]
        if growth:
            print(
                f"database growth per scan: {statistics.median(growth) / 1024:.0f} KiB "
                f"(file {sizes[-1] >> 10} KiB)"
            )
        # One domain changed (16 vCPUs on 16 cores: 11.3.3 fails), then diff the last two scans.
        node.write_text(estate(args.domains).replace("<vcpu>1</vcpu>", "<vcpu>16</vcpu>", 1))
        wall(base, 1)
        t0 = time.perf_counter()
        out = subprocess.run(
            [HVGUARD, "diff", "previous", "latest", "--format", "json"], capture_output=True, check=False
        )
        took = time.perf_counter() - t0
        print(
            f"diff previous latest: {took:.3f} s, exit {out.returncode}, {len(out.stdout) >> 10} KiB of JSON"
        )
        print(describe("history (table)", wall([HVGUARD, "history"], args.repeat, ok_codes=(0,))))


if __name__ == "__main__":
    main()
