"""``hvguard evaluate DIR`` of an estate of 1,000 hosts × 20 VMs, one bundle per host (goal ≤ 10 s).

    .venv/bin/python bench/estate_evaluate.py [--hosts 1000] [--vms 20] [--repeat 3] [--keep DIR]

The bundles are what the Ansible role leaves on a controller: one ``HOST.json`` per host, each a
``local`` target (named after its file in the estate). They are synthetic but varied (built with the
facts model, tests/factories.py): one host in four has a bent host configuration, and one VM in three
is bent away from compliance in a different way, so every verdict and status occurs. Timed end to end
(process start, reading and checking every bundle, evaluation, the JSON report written to a file) with
``--no-history`` — and once with the history store (SQLite in a temporary directory), for the record.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import REPO, describe, wall

from factories import good_host, good_vm, target
from hvguard.collect.bundle import make_bundle, write_bundle
from hvguard.facts import CpuTune, SecureBootFacts, TpmFacts, VcpuFacts


def host_bundle(i: int, vms: int) -> object:
    """Host ``i``'s bundle: a ``local`` target with ``vms`` VMs."""
    out = []
    for j in range(vms):
        vm = good_vm(f"vm{j:03d}")
        if (i + j) % 3 == 1:
            vm = msgspec.structs.replace(vm, vcpu=VcpuFacts(maximum=8), domain_type="qemu")
        elif (i + j) % 3 == 2:
            vm = msgspec.structs.replace(vm, cputune=CpuTune(), interfaces=[], disks=[])
        out.append(vm)
    host = good_host(hostname=f"hv{i:04d}")
    if i % 4 == 0:
        host = msgspec.structs.replace(
            host,
            tpm=TpmFacts(present=False),
            secure_boot=SecureBootFacts(uefi=True, enabled=False, setup_mode=False),
        )
    return make_bundle([target(out, host=host, tid="local")])


def main() -> None:
    """Write the estate, then time ``hvguard evaluate DIR``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--vms", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="write the estate here (and keep it) instead of a temp dir")
    args = ap.parse_args()
    env_path = os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"] = env_path  # the hvguard of this checkout, for the timed subprocess
    with tempfile.TemporaryDirectory() as tmp:
        estate = args.keep or Path(tmp) / "estate"
        estate.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        for i in range(args.hosts):
            write_bundle(host_bundle(i, args.vms), estate / f"hv{i:04d}.json", overwrite=True)  # type: ignore[arg-type]
        size = sum(p.stat().st_size for p in estate.iterdir())
        print(
            f"estate: {args.hosts} hosts × {args.vms} VMs in {args.hosts} bundles, {size / 1e6:.0f} MB "
            f"(written in {time.perf_counter() - t0:.1f} s)"
        )
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "hvguard", "evaluate", str(estate), "-o", f"json:{out}", "--force"]
        times = wall([*cmd, "--no-history"], args.repeat)
        print(describe("hvguard evaluate DIR --format json --no-history (end to end)", times))
        print(f"report: {out.stat().st_size / 1e6:.0f} MB")
        db = Path(tmp) / "history.db"
        stored = wall([*cmd, "--db", f"sqlite:///{db}"], 1)
        print(describe("the same, stored in a fresh SQLite history", stored))
        verdict = "met" if min(times) <= 10 else "NOT met"
        print(f"GOAL evaluate of {args.hosts} hosts × {args.vms} VMs ≤ 10 s: {verdict}")


if __name__ == "__main__":
    main()
