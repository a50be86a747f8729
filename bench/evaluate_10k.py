"""Evaluation alone of a 10,000-VM bundle (goal ≤ 1 s), plus bundle read and end-to-end CLI times.

    .venv/bin/python bench/evaluate_10k.py [--vms 10000]

The bundle is synthetic but varied: every per-VM measure sees passing and failing VMs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import HVGUARD, describe, timed, wall

from factories import good_vm, target
from hvguard.collect.bundle import make_bundle, read_bundle, write_bundle
from hvguard.engine import evaluate
from hvguard.facts import CpuTune, VcpuFacts
from hvguard.profile import default_profile


def estate(n: int) -> list[object]:
    """A target with ``n`` VMs, one in three bent away from compliance in a different way."""
    vms = []
    for i in range(n):
        vm = good_vm(f"vm{i:05d}")
        if i % 3 == 1:
            vm = msgspec.structs.replace(vm, vcpu=VcpuFacts(maximum=8), domain_type="qemu")
        elif i % 3 == 2:
            vm = msgspec.structs.replace(vm, cputune=CpuTune(), interfaces=[], disks=[])
        vms.append(vm)
    return [target(vms)]


def main() -> None:
    """Build the bundle, then time read, evaluate and the CLI."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10_000)
    args = ap.parse_args()
    targets = estate(args.vms)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estate.json"
        write_bundle(make_bundle(targets), path)  # type: ignore[arg-type]
        print(f"bundle: {args.vms} VMs, {path.stat().st_size / 1e6:.1f} MB")
        bundle = read_bundle(path)
        profile = default_profile()
        evaluate(bundle.targets, profile)  # warm imports and check registration
        print(describe("read_bundle", timed(lambda: read_bundle(path))))
        ev_times = timed(lambda: evaluate(bundle.targets, profile))
        print(describe(f"evaluate alone ({args.vms} VMs)", ev_times))
        n = len(evaluate(bundle.targets, profile).findings)
        print(f"findings per evaluation: {n}")
        out = Path(tmp) / "r.json"
        cli = wall([HVGUARD, "evaluate", str(path), "--format", "json", "--output", str(out), "--force"], 3)
        print(describe("hvguard evaluate --format json (end to end)", cli))
        print(f"GOAL evaluate alone ≤ 1 s: {'met' if min(ev_times) <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
