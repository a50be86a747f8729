"""Change → notification latency of ``hvguard watch vsphere://…`` against VMware's simulator (goal: p99 ≤ 1 s;
the simulator batches events every 250 ms).

An ESX-model simulator with ``-vm 25``; changes are ``ReconfigVM_Task`` calls setting a VM's CPU limit to
a new value. Each change is timed from the moment its ``ReconfigVM_Task`` call returned to the moment the
signed webhook POST carrying exactly that VM's new value arrived at a local HTTPS receiver (same machine,
same monotonic clock). ``--singles`` changes are made one at a time (the next after the previous
notification arrived); then each ``--bursts`` size is a burst of reconfigurations of that many distinct
VMs submitted at once from parallel threads (a burst of more than 10 within one of the simulator's 250 ms
batches overflows the watcher's event page and takes the drain / compare-every-VM path; ``page_overflows``
counts how often it did). Last, the overflow path made certain: the watcher is paused (SIGSTOP) while
all 25 VMs change, and each notification is timed from its resumption (``overflow_catch_up_s``).

    .venv/bin/python bench/watch_vsphere.py [--singles 50] [--bursts 10,10,25]

Figures go to stdout and ``artifacts/watch_vsphere.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

from hvguard.collect.vsphere.target import PASSWORD_ENV  # noqa: E402
from test_watch_support import HttpsReceiver, Post, WatchProcess, make_pki, verify_signature  # noqa: E402
from vsphere_env import Simulator, TestCA, api, build_simulator, wait  # noqa: E402

SECRET = b"bench-hmac-key"
VMS = 25


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def _vms(si: Any) -> list[Any]:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(view.view, key=lambda v: v.name)
    finally:
        view.DestroyView()


def _reconfig(vm: Any, limit: int) -> tuple[Any, float]:
    """Submit the change; return its task and when the call returned."""
    from pyVmomi import vim

    task = vm.ReconfigVM_Task(vim.vm.ConfigSpec(cpuAllocation=vim.ResourceAllocationInfo(limit=limit)))
    return task, time.monotonic()


def _carries(name: str, limit: int) -> Any:
    def pred(post: Post) -> bool:
        data = post.json()
        return data["vm"] == name and any(
            c["path"].startswith("resources.cpu_limit")
            and (c["new"] == limit or (isinstance(c["new"], dict) and c["new"].get("mhz") == limit))
            for c in data["changes"]
        )

    return pred


def _figures(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--singles", type=int, default=50)
    ap.add_argument("--bursts", default="10,10,25", help="comma-separated burst sizes (≤ 25 each)")
    args = ap.parse_args()
    bursts = [int(b) for b in args.bursts.split(",") if b]
    if any(not 0 < b <= VMS for b in bursts):
        sys.exit(f"burst sizes must be 1..{VMS}")

    tmp = Path(tempfile.mkdtemp(prefix="hvg-watch-vsphere-bench-"))
    (tmp / "ca").mkdir()
    ca = TestCA.make(tmp / "ca")
    sim = Simulator(build_simulator(), ca, "-model", "esx", "-vm", str(VMS), "-api", "7.0.1.0")
    pki = make_pki(tmp)
    key = tmp / "hook.key"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    receiver = HttpsReceiver(pki.server_context()).start()
    singles: list[float] = []
    burst_lat: list[float] = []
    catch_up: list[float] = []
    bad_signatures = 0
    watcher = WatchProcess(
        [
            sim.target, "--tls-ca", str(ca.ca_pem), "--webhook", receiver.url,
            "--webhook-ca", str(pki.ca_file), "--webhook-secret-file", str(key),
            "--state", str(tmp / "state.sqlite"),
        ],
        tmp / "watch.log",
        env={PASSWORD_ENV: sim.password},
    )  # fmt: skip
    limit = 1000
    try:
        watcher.wait_log(r"ready: watching", timeout=120)
        si = api(sim)
        vms = _vms(si)
        for i in range(args.singles):
            limit += 1
            vm = vms[i % len(vms)]
            task, t1 = _reconfig(vm, limit)
            post = receiver.wait_for(_carries(vm.name, limit), timeout=30)
            wait(task)
            bad_signatures += not verify_signature(SECRET, post)
            singles.append(post.arrived - t1)
        for size in bursts:
            seen = len(receiver.posts)
            values = list(range(limit + 1, limit + size + 1))
            limit += size
            # Submitted from parallel threads so the burst lands within one of the simulator's 250 ms
            # batches and overflows the page (sequential calls spread over several batches).
            with ThreadPoolExecutor(max_workers=size) as pool:
                done = list(pool.map(_reconfig, vms[:size], values))
            sent = [
                (vm.name, v, task, t1) for vm, v, (task, t1) in zip(vms[:size], values, done, strict=True)
            ]
            for name, value, task, t1 in sent:
                post = receiver.wait_for(_carries(name, value), timeout=30, after=seen)
                wait(task)
                bad_signatures += not verify_signature(SECRET, post)
                burst_lat.append(post.arrived - t1)
            time.sleep(0.5)  # let the burst's last events settle before the next one
        # The overflow path, made certain: the watcher is paused while 25 VMs change, so its next page
        # holds only new events; timed from the moment it is resumed (catch-up, not change latency).
        seen = len(receiver.posts)
        watcher.proc.send_signal(signal.SIGSTOP)
        try:
            sent = []
            for vm in vms:
                limit += 1
                task, _t = _reconfig(vm, limit)
                sent.append((vm.name, limit, task))
            for *_rest, task in sent:
                wait(task)
        finally:
            watcher.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        for name, value, _task in sent:
            post = receiver.wait_for(_carries(name, value), timeout=30, after=seen)
            bad_signatures += not verify_signature(SECRET, post)
            catch_up.append(post.arrived - resumed)
        rc, stop_s = watcher.terminate()
    finally:
        watcher.kill()
        receiver.stop()
        sim.stop()
    log = (tmp / "watch.log").read_text(errors="replace")
    shutil.rmtree(tmp, ignore_errors=True)
    everything = singles + burst_lat
    result = {
        "changes": len(everything),
        "singles": len(singles),
        "bursts": bursts,
        "latency_s": _figures(everything),
        "singles_latency_s": _figures(singles) if singles else None,
        "burst_latency_s": _figures(burst_lat) if burst_lat else None,
        "overflow_catch_up_s": _figures(catch_up),
        "page_overflows": log.count("more events than the page"),
        "bad_signatures": bad_signatures,
        "watcher_exit": rc,
        "sigterm_to_exit_s": round(stop_s, 3),
        "goal_p99_le_1s": percentile(everything, 99) <= 1.0,
    }
    print(json.dumps(result, indent=2))
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "watch_vsphere.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if rc == 0 and bad_signatures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
