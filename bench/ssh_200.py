"""200 ``ssh://`` targets collected concurrently from this machine (goal: ≤ 15 s wall in total and
≤ 15 ms of hvguard's own CPU per host).

All targets are the same real sshd on a loopback port (tests/sshd_env.py: its own host key and
config), each with a distinct login ``hvguser<i>`` created for the run with one ``newusers`` call and
deleted at the end. Every login runs the full remote script: every manifest file, the QEMU-process and
socket scans, virsh (against the real libvirtd when it is up), and the manifest commands selected by
``--commands``:

- ``light`` (default): every manifest command except the package-manager simulations
  (``apt-get -s --ignore-hold dist-upgrade``, ``dnf updateinfo``), which cost 1–10 s of CPU each on the
  target — on a real fleet that CPU is each host's own; here all 200 "hosts" share these 2 cores;
- ``all``: the complete manifest (use fewer targets: ``--targets 20``);
- ``none``: files and virsh only.

    .venv/bin/python bench/ssh_200.py [--targets 200] [--concurrency 32] [--commands light] [--sudo]
    ./scripts/test.sh --run .venv/bin/python bench/ssh_200.py --sudo   # libvirtd up, virsh answers

Without ``--sudo`` the logins are ordinary accounts: root-only files come back unreadable and virsh
cannot connect here (libvirt's read-only socket needs polkit, which this machine lacks), so the
stored definitions are read instead. ``--sudo`` adds one sudoers drop-in for the run's accounts
(removed at the end) and runs the script as root, as an administrator would.

Reports wall time, hvguard's CPU per host (``getrusage(RUSAGE_SELF)``: asyncssh, parsing the answer,
arranging it in memory and the collectors — of which the collectors alone, the same code a local scan
runs), the rest
of the machine's CPU per host meanwhile (``/proc/stat``: sshd, the remote scripts, libvirtd — and
any unrelated load) and the per-target durations; writes artifacts/ssh_200.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pwd
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from _timing import REPO

sys.path.insert(0, str(REPO / "tests"))
from hvguard.collect.linux.manifest import COMMANDS
from hvguard.collect.ssh import transport as ssh_module
from hvguard.collect.ssh.script import build_script
from hvguard.collect.ssh.target import SshOptions
from hvguard.collect.ssh.transport import collect_ssh_targets
from hvguard.facts import TargetFacts
from sshd_env import Sshd

T = TypeVar("T")
PACKAGE_SIMULATIONS = {"apt-get-simulate-dist-upgrade", "dnf-security-list", "dnf-security-info"}


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    """Create the logins, collect them all concurrently, report, clean up."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--commands", choices=["light", "all", "none"], default="light")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--sudo", action="store_true", help="run the script as root via sudo -n (virsh answers)")
    args = ap.parse_args()

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    users = [f"hvguser{i}" for i in range(args.targets)]
    taken = [u for u in users if _exists(u)]
    if taken:
        sys.exit(f"accounts already exist, not touching them: {taken[:5]}")
    commands = {
        "light": sorted(set(COMMANDS) - PACKAGE_SIMULATIONS),
        "all": sorted(COMMANDS),
        "none": [],
    }[args.commands]
    ssh_module.build_script = functools.partial(build_script, commands=commands)  # type: ignore[assignment]
    spent = {"build": 0.0, "collectors": 0.0, "parse": 0.0, "arrange": 0.0}
    ssh_module.parse_answer = _timed(ssh_module.parse_answer, spent, "parse")  # type: ignore[assignment]
    ssh_module.AnswerFS = _timed(ssh_module.AnswerFS, spent, "arrange")  # type: ignore[assignment,misc]
    ssh_module.build_target_facts = _timed(ssh_module.build_target_facts, spent, "build")  # type: ignore[assignment]
    ssh_module.collect_host_facts = _timed(ssh_module.collect_host_facts, spent, "collectors")  # type: ignore[assignment]

    server = Sshd()
    try:
        t0 = time.perf_counter()
        server.add_users(users, sudo=args.sudo)
        server.start()
        print(
            f"setup: {len(users)} logins, sshd on 127.0.0.1:{server.port} ({time.perf_counter() - t0:.1f} s)"
        )
        known = server.dir / "known_hosts"
        known.write_text(server.known_hosts_line())
        options = SshOptions(
            known_hosts=known,
            identity=server.client_key,
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            sudo=args.sudo,
        )
        targets = [server.target(u) for u in users]

        self0, busy0 = _cpu(resource.RUSAGE_SELF), _machine_busy()
        started = time.perf_counter()
        results = collect_ssh_targets(targets, options)
        elapsed = time.perf_counter() - started
        client_cpu = _cpu(resource.RUSAGE_SELF) - self0
        other_cpu = _machine_busy() - busy0 - client_cpu
    finally:
        server.stop()

    failed = [(r.id, r.unreachable) for r in results if r.unreachable or r.host is None]
    durations = sorted(r.collection.duration_s for r in results)
    n = len(targets)
    figures = {
        "targets": n,
        "concurrency": args.concurrency,
        "commands": args.commands,
        "sudo": args.sudo,
        "wall_s": round(elapsed, 2),
        "client_cpu_ms_per_host": round(client_cpu / n * 1000, 1),
        "of_which_ms_per_host": {
            # The host collectors: the same code, and about the same cost, as a local scan's.
            "collectors": round(spent["collectors"] / n * 1000, 1),
            # Arranging the answer's files in memory and the hypervisor facts (virsh or stored XML).
            "answer_to_facts": round((spent["build"] - spent["collectors"] + spent["arrange"]) / n * 1000, 1),
            # Checking and splitting the framed answer (records.parse_answer).
            "parse": round(spent["parse"] / n * 1000, 1),
            # asyncssh: connect, key exchange, authentication, the session, the transfer.
            "ssh": round((client_cpu - spent["build"] - spent["parse"] - spent["arrange"]) / n * 1000, 1),
        },
        # Everything else the machine did meanwhile: sshd, the remote scripts and their commands, libvirtd
        # (and any unrelated load: this is an upper bound for the "remote" side).
        "other_cpu_ms_per_host": round(other_cpu / n * 1000, 1),
        "per_target_s": {
            "median": round(statistics.median(durations), 2),
            "p95": round(durations[int(0.95 * (n - 1))], 2),
            "max": round(durations[-1], 2),
        },
        "failed": len(failed),
        # Targets that needed more than one script run (paths their configuration named outside the
        # manifest); on this machine's configuration: none.
        "follow_up_passes": sum(any("follow-up" in c for c in r.collection.collectors) for r in results),
        # How each target's hypervisor facts were read: virsh over SSH, or the stored definitions.
        "hypervisor_via": dict(Counter(_hypervisor_source(r) for r in results)),
    }
    print(json.dumps(figures, indent=2))
    print(f"GOAL ≤ 15 s total: {'met' if elapsed <= 15 else 'NOT met'}")
    print(f"GOAL ≤ 15 ms client CPU per host: {'met' if client_cpu / n <= 0.015 else 'NOT met'}")
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "ssh_200.json").write_text(json.dumps(figures, indent=2) + "\n")
    if failed:
        sys.exit(f"{len(failed)} target(s) failed, e.g. {failed[:3]}")


def _timed(fn: Callable[..., T], spent: dict[str, float], key: str) -> Callable[..., T]:
    """``fn``, adding the CPU time of each call to ``spent[key]`` (the bench runs one thread)."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.process_time() - start

    return wrapper


def _hypervisor_source(facts: TargetFacts) -> str:
    if facts.unreachable:
        return "unreachable"
    last = facts.collection.collectors[-1]
    if "virsh" in last:
        return "virsh"
    why = next((p.message for p in facts.problems if p.area.startswith("hypervisor")), "")
    return f"stored definitions ({why[:120]})"


def _machine_busy() -> float:
    """CPU seconds all processors spent busy since boot (/proc/stat: everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    main()
