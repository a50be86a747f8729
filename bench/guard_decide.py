"""Wall time of the guard's hook entry per call: ``python -m hvguard.guard.hook`` in a subprocess, as
libvirt's hook script execs it for ``prepare begin``.

    .venv/bin/python bench/guard_decide.py [--runs 100] [--python PY] [--no-compiled]

Builds a state directory in tmp as ``hvguard guard install`` leaves it (tests/guard_env.py: the
test-driver node as the host snapshot, policy compiled with hvguard.guard.policy.compile) and times 100
runs each for a compliant domain (kvm-hardened: allowed) and a refused one (qemu-loose: five measures),
XML on stdin, syslog to a socket nobody listens on. Reports p50/p99 and the breakdown of a run
(``-X importtime`` sum). ``--no-compiled`` removes compiled.pickle (the slow path: YAML and bundle parsed
per call). Goal: p50 and p99 ≤ 100 ms per call (the whole start's hook time is what bench/guard_hook.py
measures on real libvirtd).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from guard_env import make_state_dir, node_domain_xml, snapshot_bundle  # noqa: E402


def one(python: str, state: Path, name: str, xml: bytes) -> tuple[float, float, int]:
    argv = [
        python,
        "-m",
        "hvguard.guard.hook",
        "--state-dir",
        str(state),
        "--syslog-socket",
        str(state / "no-syslog.sock"),
        name,
        "prepare",
        "begin",
        "-",
    ]
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, input=xml, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    if proc.stdout or proc.returncode not in (0, 1) or b"failed" in proc.stderr:
        sys.exit(f"unexpected hook result {proc.returncode}: {proc.stdout!r} {proc.stderr.decode()[-400:]}")
    return elapsed, cpu, proc.returncode


def pct(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--no-compiled", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = make_state_dir(Path(tmp) / "guard", snapshot_bundle(Path(tmp) / "snap"))
        if args.no_compiled:
            (state / "compiled.pickle").unlink()
        bare = []
        for _ in range(10):
            t0 = time.perf_counter()
            subprocess.run([args.python, "-c", "pass"], check=True)
            bare.append((time.perf_counter() - t0) * 1000)
        print(f"python start-up alone: p50 {pct(bare, 0.5):.1f} ms")
        for name, expect in (("kvm-hardened", 0), ("qemu-loose", 1)):
            xml = node_domain_xml(name).encode()
            one(args.python, state, name, xml)  # warm the page cache and .pyc files
            times, cpus = [], []
            for _ in range(args.runs):
                elapsed, cpu, code = one(args.python, state, name, xml)
                assert code == expect, (name, code)
                times.append(elapsed * 1000)
                cpus.append(cpu * 1000)
            print(
                f"hook {name} ({'allowed' if expect == 0 else 'refused'}, "
                f"{'slow path' if args.no_compiled else 'compiled'}, n={len(times)}): wall p50 "
                f"{pct(times, 0.5):.1f} ms, p99 {pct(times, 0.99):.1f} ms, "
                f"mean {statistics.fmean(times):.1f} ms; "
                f"CPU (user+sys) p50 {pct(cpus, 0.5):.1f} ms, p99 {pct(cpus, 0.99):.1f} ms"
            )
        print(
            f"load average during the run: {os.getloadavg()[0]:.2f} (the machine has {os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
