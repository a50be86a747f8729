"""Gold configuration on a 1000-domain libvirt test-driver estate: wall time of ``hvguard baseline
capture``, ``baseline check`` and a ``remediate`` dry run, each ÷ ``hvguard scan`` of the same estate
(the work every run shares: collecting 1000 domains). Informative; no goal is asserted here.

    .venv/bin/python bench/baseline_1000.py [--domains 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _timing import HVGUARD, describe, wall
from testdriver_1000 import node_file


def main() -> None:
    """Build the estate, capture it once, then time each command."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hvg-bench-") as tmp:
        node = Path(tmp) / "node.xml"
        node.write_text(node_file(args.domains), encoding="utf-8")
        uri = f"test://{node}"
        gold = Path(tmp) / "gold.yaml"
        capture = [HVGUARD, "baseline", "capture", uri, "--output", str(gold), "--force"]
        times = {"capture": wall(capture, args.repeat, ok_codes=(0,))}
        print(f"baseline file: {gold.stat().st_size / 1e6:.1f} MB for {args.domains} VM classes")
        times["check"] = wall(
            [HVGUARD, "baseline", "check", uri, "--baseline", str(gold), "--format", "json"], args.repeat
        )
        times["remediate (dry run)"] = wall([HVGUARD, "remediate", uri, "--baseline", str(gold)], args.repeat)
        times["scan"] = wall(
            [HVGUARD, "scan", uri, "--format", "json", "--fail-on", "never", "--no-history"], args.repeat
        )
        base = statistics.median(times["scan"])
        for name, t in times.items():
            print(f"{describe(name, t)}  ({statistics.median(t) / base:.2f}× scan)")


if __name__ == "__main__":
    main()
