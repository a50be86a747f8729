"""vSphere collection against VMware's simulator (tests/vcsim): a 1,000-VM vCenter (VPX model, ``-vm 500``:
two resource pools × 500) and a 101-host vCenter (``-cluster 4 -host 25 -vm 0`` + the standalone host).

    .venv/bin/python bench/vsphere_1000.py [--repeat 3]

Figures:
- **floor**: the two PropertyCollector reads the VM measures need, made directly with pyVmomi in this
  process over an open session — the narrow pass and the devices/extraConfig pass (``vms.NARROW_PATHS``,
  ``vms.DEVICE_PATHS``); goal: the full scan ≤ 1.5× this floor;
- **full scan**: login + everything hvguard collects + evaluation of all 36 measures, in-process (the
  ``hvguard scan`` process adds interpreter start-up, reported apart);
- **peak RSS** of a process doing one full scan (``ru_maxrss`` of the child);
- **101 hosts**: the full collection of a 101-host, 0-VM vCenter; goal ≤ 2 s.
Medians of ``--repeat`` runs; the machine has 2 shared cores, so repeat and compare ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

from hvguard.collect.vsphere import vms  # noqa: E402
from vsphere_env import Simulator, TestCA, build_simulator  # noqa: E402

FULL_SCAN = """
import os, sys, time
from pathlib import Path
from hvguard.collect.vsphere.collector import collect_vsphere_target
from hvguard.collect.vsphere.target import VsphereOptions
from hvguard.engine import evaluate
from hvguard.profile import load_profile
t0 = time.perf_counter()
facts = collect_vsphere_target(sys.argv[1], VsphereOptions(tls_ca=Path(sys.argv[2])))
t1 = time.perf_counter()
ev = evaluate([facts], load_profile(None))
t2 = time.perf_counter()
assert facts.unreachable is None and facts.vsphere is not None, facts.unreachable
vs = facts.vsphere
print(len(vs.vms), len(vs.hosts), len(ev.findings), round(t1 - t0, 3), round(t2 - t1, 3))
"""


def floor(sim: Simulator) -> float:
    """Seconds for the narrow pass + the devices/extraConfig pass over every VM (pyVmomi, one session)."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl

    si = SmartConnect(
        host=sim.host,
        port=sim.port,
        user=sim.user,
        pwd=sim.password,
        sslContext=ssl.create_default_context(cafile=str(sim.ca.ca_pem)),
    )
    try:
        content = si.RetrieveContent()
        pc = content.propertyCollector
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        t0 = time.perf_counter()
        count = 0
        for paths in (vms.NARROW_PATHS, vms.DEVICE_PATHS):
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[
                    vmodl.query.PropertyCollector.ObjectSpec(
                        obj=view,
                        skip=True,
                        selectSet=[
                            vmodl.query.PropertyCollector.TraversalSpec(
                                name="v", path="view", skip=False, type=vim.view.ContainerView
                            )
                        ],
                    )
                ],
                propSet=[
                    vmodl.query.PropertyCollector.PropertySpec(
                        type=vim.VirtualMachine, pathSet=list(paths), all=False
                    )
                ],
            )
            result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
            while result is not None:
                count += len(result.objects)
                result = pc.ContinueRetrievePropertiesEx(result.token) if result.token else None
        elapsed = time.perf_counter() - t0
        assert count == 2 * len(view.view), count
        view.DestroyView()
        return elapsed
    finally:
        Disconnect(si)


def full_scan(sim: Simulator) -> tuple[float, float, str, int]:
    """(wall of collect + evaluate in the child, its collect seconds, its summary line, peak RSS KiB)."""
    env = {**os.environ, "HVGUARD_VSPHERE_PASSWORD": sim.password, "PYTHONPATH": str(REPO / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-c", FULL_SCAN, sim.target, str(sim.ca.ca_pem)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    vms_n, hosts_n, findings, collect_s, evaluate_s = done.stdout.split()
    line = f"{vms_n} VMs, {hosts_n} hosts, {findings} findings"
    return float(collect_s) + float(evaluate_s), float(collect_s), line, max(peak, before)


def cli_scan(sim: Simulator) -> float:
    """Wall seconds of ``python -m hvguard scan … --format json`` (interpreter start-up included)."""
    env = {**os.environ, "HVGUARD_VSPHERE_PASSWORD": sim.password, "PYTHONPATH": str(REPO / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hvguard",
                "scan",
                sim.target,
                "--tls-ca",
                str(sim.ca.ca_pem),
                "--format",
                "json",
                "--output",
                str(Path(tmp) / "r.json"),
                "--no-history",
            ],
            env=env,
            capture_output=True,
            check=False,
        )
        return time.perf_counter() - t0


def vm_estate(binary: Path, ca: TestCA, repeat: int) -> None:
    """The 1,000-VM vCenter: floor, full scan, the CLI process, peak RSS."""
    t0 = time.perf_counter()
    sim = Simulator(binary, ca, "-model", "vpx", "-vm", "500", "-api", "7.0.1.0")
    print(f"1,000-VM vCenter started in {time.perf_counter() - t0:.1f} s")
    try:
        floors = [floor(sim) for _ in range(repeat)]
        scans = [full_scan(sim) for _ in range(repeat)]
        cli = [cli_scan(sim) for _ in range(repeat)]
    finally:
        sim.stop()
    f = statistics.median(floors)
    s = statistics.median(x[0] for x in scans)
    c = statistics.median(x[1] for x in scans)
    print(
        "floor (narrow + devices/extraConfig PropertyCollector passes): "
        f"median {f:.2f} s, min {min(floors):.2f} s"
    )
    print(f"full scan in-process (collect + evaluate): median {s:.2f} s (collect {c:.2f} s) — {scans[0][2]}")
    print(f"ratio full scan / floor: {s / f:.2f} (goal ≤ 1.5)")
    print(f"hvguard scan CLI (process, JSON report): median {statistics.median(cli):.2f} s")
    print(f"peak RSS of the scanning process: {max(x[3] for x in scans) / 1024:.0f} MiB")


def hosts_estate(binary: Path, ca: TestCA, repeat: int) -> None:
    """The 101-host vCenter (4 clusters × 25 hosts + the standalone host, no VM): full collection."""
    sim = Simulator(
        binary, ca, "-model", "vpx", "-cluster", "4", "-host", "25", "-vm", "0", "-api", "7.0.1.0"
    )
    try:
        hosts = [full_scan(sim) for _ in range(repeat)]
    finally:
        sim.stop()
    print(
        f"101-host vCenter: collect median {statistics.median(x[1] for x in hosts):.2f} s, "
        f"collect + evaluate {statistics.median(x[0] for x in hosts):.2f} s (goal ≤ 2 s) — {hosts[0][2]}"
    )


def main() -> None:
    """Run both estates and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hosts-only", action="store_true", help="only the 101-host vCenter")
    args = parser.parse_args()
    t0 = time.perf_counter()
    binary = build_simulator()
    print(f"simulator binary: {binary} (build or cache hit: {time.perf_counter() - t0:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        ca = TestCA.make(Path(tmp))
        if not args.hosts_only:
            vm_estate(binary, ca, args.repeat)
        hosts_estate(binary, ca, args.repeat)


if __name__ == "__main__":
    main()
