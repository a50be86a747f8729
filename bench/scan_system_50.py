"""``hvguard scan qemu:///system`` with 50 defined domains, after the daemon is warm (goal ≤ 1 s).

Needs the real libvirtd; run it inside the test script's daemon handling:

    ./scripts/test.sh --run .venv/bin/python bench/scan_system_50.py [--domains 50] [--repeat 7]

Defines ``hvg-test-<pid>-benchNN`` domains (removed at the end), warms the daemon with one scan, then
times repeated scans (JSON to /dev/null), with and without history storage, and, for scale,
``virsh list --all``. The host part of the scan runs ``apt-get -s --ignore-hold dist-upgrade`` (11.4.8),
whose time depends on apt's binary package cache: container images often switch it off
(Dir::Cache::pkgcache ""), which makes apt re-read every package list.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _timing import HVGUARD, describe, wall

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from libvirt_env import TestDomains, domain_xml, user_interface_xml

URI = "qemu:///system"


def main() -> None:
    """Define the estate, warm up, time the scans, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with TestDomains(URI) as td:
        for i in range(args.domains):
            td.define(
                domain_xml(
                    td.name(f"bench{i:02d}"),
                    vcpus=1,
                    cputune={"shares": 1024, "period": 100000, "quota": 50000} if i % 2 else None,
                    interfaces=[user_interface_xml(bandwidth={"inbound": {"average": 1000}})],
                )
            )
        cmd = [HVGUARD, "scan", URI, "--format", "json"]
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["HVGUARD_DB"] = str(Path(tmp) / "history.sqlite3")  # never the user's own history
            wall(cmd, 2)  # warm: capabilities cache, page cache, imports
            scans = wall(cmd, args.repeat)
            bare = wall([*cmd, "--no-history"], args.repeat)
        virsh = wall(["virsh", "-c", URI, "list", "--all"], args.repeat, ok_codes=(0,))
        print(describe(f"hvguard scan {URI} ({args.domains} defined test domains), history stored", scans))
        print(describe("  the same with --no-history", bare))
        print(describe("virsh list --all (same daemon, for scale)", virsh))
        print(f"GOAL ≤ 1 s (default): {'met' if min(scans) <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
