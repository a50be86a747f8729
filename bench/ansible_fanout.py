"""Ansible fan-out (the ``hvguard.ss009.collect`` role + ``hvguard evaluate DIR``) against a direct
``hvguard scan ssh://…`` of the same N loopback sshd hosts: wall time per host.

    .venv/bin/python bench/ansible_fanout.py [--hosts 5] [--repeat 2] [--forks N]

Every host is a real sshd on its own loopback port with its own login account that may sudo to root
(tests/ansible_env.py — the hosts of tests/test_ansible_collection.py). Both ways collect the whole
host as root: the role runs ``hvguard collect local`` through Ansible's ``become`` (this checkout, run
by this interpreter), the scan runs hvguard's remote script with ``--sudo``. All "hosts" are this
machine, so each host's collection costs this machine's CPU: the figures show the overhead of each
way of fanning out on a shared 2-core box, not what a fleet of real hosts (each collecting on its own
CPU, in parallel) would see. Ansible forks default to the host count; the scan's concurrency is its
default.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _timing import REPO

from ansible_env import Hosts, playbook


def _hvguard(*args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    if r.returncode not in (0, 1):
        sys.exit(f"hvguard {args[0]} exited {r.returncode}: {r.stderr[-500:]}")


def main() -> None:
    """Start the hosts, then time both ways ``--repeat`` times."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--forks", type=int, default=0, help="Ansible forks (default: the host count)")
    args = ap.parse_args()
    hosts = Hosts(args.hosts, tag="bf").start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            bundles = work / "bundles"
            inventory = hosts.inventory(work / "inventory.yml", hvguard_bundle_dir=str(bundles))
            forks = str(args.forks or args.hosts)
            play, evaluate, scan = [], [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = playbook(inventory, work, "--forks", forks)
                play.append(time.perf_counter() - t0)
                if r.returncode != 0:
                    sys.exit(f"ansible-playbook exited {r.returncode}: {r.stdout[-2000:]}")
                t0 = time.perf_counter()
                _hvguard(
                    "evaluate", str(bundles), "-o", f"json:{work / 'estate.json'}", "--force", "--no-history"
                )
                evaluate.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                _hvguard(
                    "scan",
                    *hosts.ssh_targets(),
                    "--sudo",
                    "--identity",
                    str(hosts.identity),
                    "--known-hosts",
                    str(hosts.known_hosts),
                    "-o",
                    f"json:{work / 'scan.json'}",
                    "--force",
                    "--no-history",
                )
                scan.append(time.perf_counter() - t0)
            n = args.hosts

            def line(label: str, times: list[float]) -> str:
                med = statistics.median(times)
                return (
                    f"{label}: median {med:.2f} s, {med / n * 1000:.0f} ms per host (min {min(times):.2f} s)"
                )

            fan = [p + e for p, e in zip(play, evaluate, strict=True)]
            print(f"{n} loopback sshd hosts, {args.repeat} runs each, Ansible forks {forks}")
            print(line("ansible-playbook hvguard.ss009.collect", play))
            print(line("hvguard evaluate DIR", evaluate))
            print(line("fan-out total (playbook + evaluate)", fan))
            print(line("hvguard scan ssh://… --sudo", scan))
            print(f"ratio fan-out / direct scan: {statistics.median(fan) / statistics.median(scan):.2f}")
    finally:
        hosts.stop()


if __name__ == "__main__":
    main()
