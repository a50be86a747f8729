"""The guard hook's own wall time per VM start on the real libvirtd (goal: p50/p99 ≤ 100 ms).

libvirt runs every qemu hook for every event of a start/stop cycle (prepare, start, started, stopped,
release), each in its own process, one after the other in name order. This script installs the guard
(``hvguard guard install --mode enforce``) and brackets its ``qemu.d/50-hvguard`` with two stamp hooks,
``49-…`` and ``51-…``, that write a nanosecond timestamp per call; the time between the two stamps of
one call is the hvguard hook plus libvirt's spawning of it. The same cycle with a do-nothing
``50-…`` hook instead (guard uninstalled) gives what spawning alone costs, which is subtracted.
The figure per start is the sum over all calls of one start+destroy cycle of one compliant
``hvg-test-*`` domain (VM start times themselves are too noisy to resolve 100 ms).

    ./scripts/test.sh --run .venv/bin/python bench/guard_hook.py [--starts 100]
    ./scripts/test.sh --run .venv/bin/python bench/guard_hook.py --direct 100   # prepare alone, wall + CPU
    … --registers   # with an exceptions register and an attestations file pinned, as most hosts run it

Needs root and a libvirtd started by scripts/test.sh (it SIGHUPs libvirtd and writes into
/etc/libvirt/hooks/qemu.d; everything is removed at the end). Figures go to stdout and
``artifacts/guard_hook.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from libvirt_env import TestDomains, domain_xml, run_prefix  # noqa: E402

DROPINS = Path("/etc/libvirt/hooks/qemu.d")
STAMP = """#!/bin/sh
case "$1" in {prefix}*) printf '%s {side} %s %s %s\\n' "$(date +%s%N)" "$1" "$2" "$3" >>{log} ;; esac
exit 0
"""
NOOP = "#!/bin/sh\nexit 0\n"
#: ``--registers``: the test suite's exceptions register and attestations file, pinned at install.
REGISTERS = (
    "--exceptions", str(REPO / "tests/data/workflow/exceptions.yaml"),
    "--attestations", str(REPO / "tests/data/workflow/attestations.yaml"),
)  # fmt: skip


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def hvguard(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run([sys.executable, "-m", "hvguard", *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"hvguard {' '.join(args)}: {p.stderr.strip()}")


def python_start_ms(runs: int = 20) -> float:
    """Median wall time of ``python -I -S -c 'import re, typing'``: how fast this machine starts Python
    right now. On a shared virtual machine it drifts by half or more within an hour, and every hook figure
    drifts with it; printed before and after the run so figures from different times can be compared."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "import re, typing"], check=True)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def per_start(log: Path, starts: int) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds between stamp a and stamp b, summed per start cycle; and per event."""
    open_calls: dict[str, int] = {}
    cycles: list[float] = [0.0] * starts
    by_event: dict[str, list[float]] = defaultdict(list)
    cycle = -1
    for line in log.read_text().splitlines():
        ns, side, _dom, op, sub = line.split()
        event = f"{op} {sub}"
        if side == "a":
            open_calls[event] = int(ns)
            if event == "prepare begin":
                cycle += 1
            continue
        dt = (int(ns) - open_calls.pop(event)) / 1e9
        by_event[event].append(dt)
        if 0 <= cycle < starts:
            cycles[cycle] += dt
    return cycles, by_event


def run_cycles(td: TestDomains, name: str, starts: int) -> None:
    dom = td.conn.lookupByName(name)
    for _ in range(starts):
        dom.create()
        dom.destroy()


def direct(calls: int, registers: tuple[str, ...]) -> int:
    """``--direct N``: the installed hook script run N times for ``prepare begin`` as libvirt runs it (same
    argv, environment and stdin), outside libvirt, in a private hook directory: wall time and CPU time
    (user+sys of the script and everything it starts). CPU time does not grow with the machine's load
    the way wall time does on a shared 2-core host."""
    import resource

    work = Path(tempfile.mkdtemp(prefix="hvg-test-guard-bench-"))
    try:
        name = f"{run_prefix()}guard-bench-vm"
        hvguard(
            "guard", "install", "--mode", "enforce", "--domains", name, "--state-dir", str(work / "state"),
            "--hook-dir", str(work / "hooks"), *registers,
        )  # fmt: skip
        xml = domain_xml(name, cputune={"shares": 512, "period": 100000, "quota": 50000}).encode()
        argv = [str(work / "hooks" / "qemu.d" / "50-hvguard"), name, "prepare", "begin", "-"]
        env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
        walls, cpus = [], []
        for _ in range(calls + 2):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            p = subprocess.run(argv, input=xml, capture_output=True, env=env, check=False)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if p.returncode != 0:
                sys.exit(f"hook refused the compliant domain: {p.stderr.decode().strip()}")
        walls, cpus = walls[2:], cpus[2:]  # the first calls warm the page cache
        for label, values in (("wall", walls), ("cpu (user+sys)", cpus)):
            print(
                f"prepare begin, hook script alone, {label}: p50 {percentile(values, 50) * 1e3:.1f} ms, "
                f"p99 {percentile(values, 99) * 1e3:.1f} ms (n={calls})"
            )
        print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    finally:
        if (work / "state" / "state.json").exists():
            hvguard("guard", "uninstall", "--state-dir", str(work / "state"), "--purge", "--force")
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--direct", type=int, metavar="N", help="run the hook script directly N times instead")
    ap.add_argument("--registers", action="store_true", help="pin an exceptions register and attestations")
    args = ap.parse_args()
    registers = REGISTERS if args.registers else ()
    if args.direct:
        return direct(args.direct, registers)
    if os.geteuid() != 0:
        sys.exit("needs root (writes /etc/libvirt/hooks/qemu.d)")
    if (DROPINS / "50-hvguard").exists():
        sys.exit(f"{DROPINS}/50-hvguard exists: a guard is installed on this host; not touching it")
    prefix = f"{run_prefix()}guard-bench-"
    work = Path(tempfile.mkdtemp(prefix="hvg-test-guard-bench-"))
    state = work / "state"
    made_dropins = not DROPINS.exists()
    hooks_times = DROPINS.parent.stat()  # put back at the end: the hook directory is left as found
    stamps = [DROPINS / "49-hvguard-bench-a", DROPINS / "51-hvguard-bench-b"]
    noop = DROPINS / "50-hvguard-bench-noop"
    results: dict[str, object] = {"starts": args.starts, "registers": args.registers}
    calibration = [python_start_ms()]
    try:
        with TestDomains(prefix=prefix) as td:
            name = prefix + "vm"
            td.define(domain_xml(name, cputune={"shares": 512, "period": 100000, "quota": 50000}))
            phases = {}
            for phase in ("noop", "guard"):
                log = work / f"{phase}.log"
                if phase == "guard":
                    hvguard(
                        "guard", "install", "--mode", "enforce", "--domains", prefix + "*",
                        "--state-dir", str(state), "--reload-libvirtd", *registers,
                    )  # fmt: skip
                else:
                    DROPINS.mkdir(mode=0o755, exist_ok=True)
                    noop.write_text(NOOP)
                    noop.chmod(0o755)
                for side, path in zip("ab", stamps, strict=True):
                    path.write_text(STAMP.format(prefix=prefix, side=side, log=log))
                    path.chmod(0o755)
                if phase == "noop":
                    subprocess.run(
                        ["kill", "-HUP", Path("/run/libvirtd.pid").read_text().strip()], check=True
                    )
                time.sleep(1)
                run_cycles(td, name, 3)  # warm-up: page cache, compiled policy
                log.unlink(missing_ok=True)
                t0 = time.perf_counter()
                run_cycles(td, name, args.starts)
                wall = time.perf_counter() - t0
                cycles, by_event = per_start(log, args.starts)
                phases[phase] = (cycles, by_event, wall)
                noop.unlink(missing_ok=True)
                if phase == "guard":
                    hvguard("guard", "uninstall", "--state-dir", str(state), "--purge")
    finally:
        for path in [*stamps, noop]:
            path.unlink(missing_ok=True)
        if (state / "state.json").exists():
            hvguard("guard", "uninstall", "--state-dir", str(state), "--purge", "--force")
        if made_dropins and DROPINS.is_dir() and not any(DROPINS.iterdir()):
            DROPINS.rmdir()
        os.utime(DROPINS.parent, ns=(hooks_times.st_atime_ns, hooks_times.st_mtime_ns))
        shutil.rmtree(work, ignore_errors=True)

    calibration.append(python_start_ms())
    results["python_start_ms_before_after"] = calibration
    base_cycles, base_events, base_wall = phases["noop"]
    cycles, events, wall = phases["guard"]
    spawn = statistics.median(base_cycles)
    own = [c - spawn for c in cycles]
    results.update(
        {
            "guard_sum_per_start_ms": {
                "p50": percentile(cycles, 50) * 1e3,
                "p99": percentile(cycles, 99) * 1e3,
            },
            "noop_sum_per_start_ms": {
                "p50": percentile(base_cycles, 50) * 1e3,
                "p99": percentile(base_cycles, 99) * 1e3,
            },
            "hook_own_per_start_ms": {"p50": percentile(own, 50) * 1e3, "p99": percentile(own, 99) * 1e3},
            "per_event_median_ms": {
                ev: {"guard": statistics.median(v) * 1e3, "noop": statistics.median(base_events[ev]) * 1e3}
                for ev, v in sorted(events.items())
            },
            "cycle_wall_s": {"guard": wall / args.starts, "noop": base_wall / args.starts},
        }
    )
    for key in ("guard_sum_per_start_ms", "noop_sum_per_start_ms", "hook_own_per_start_ms"):
        v = results[key]
        assert isinstance(v, dict)
        print(f"{key}: p50 {v['p50']:.1f} ms, p99 {v['p99']:.1f} ms (n={args.starts})")
    per_event = results["per_event_median_ms"]
    assert isinstance(per_event, dict)
    for ev, v in per_event.items():
        print(f"  {ev:<16} median guard {v['guard']:.1f} ms, no-op hook {v['noop']:.1f} ms")
    print(
        f"goal: hook's own time per start p50/p99 <= 100 ms; start+destroy cycle {wall / args.starts:.2f} s"
    )
    print(
        f"python -I -S -c 'import re, typing' before/after: {calibration[0]:.1f} / {calibration[1]:.1f} ms "
        f"(machine speed; registers pinned: {'yes' if args.registers else 'no'})"
    )
    out = REPO / "artifacts" / ("guard_hook_registers.json" if args.registers else "guard_hook.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
