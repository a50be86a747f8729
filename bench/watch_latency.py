"""Change → notification latency of ``hvguard watch`` on the real libvirtd (goal: p99 ≤ 1 s).

200 successive changes to one ``hvg-test-*`` domain through libvirt-python; each is timed from the
moment the change call returns to the moment the signed webhook POST carrying exactly that change has
arrived at a local HTTPS receiver (same machine, same monotonic clock). The next change is made only
after the previous notification arrived.

    ./scripts/test.sh --run .venv/bin/python bench/watch_latency.py [--changes 200] [--via schedinfo|define]

``--via schedinfo`` (default): ``setSchedulerParametersFlags(cpu_shares, AFFECT_CONFIG)`` — libvirt
sends no event for it; the watcher sees the rewritten ``/etc/libvirt/qemu/NAME.xml`` (inotify).
``--via define``: ``defineXML`` of the changed definition — libvirt's ``defined/updated`` event.
Figures go to stdout and ``artifacts/watch_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import libvirt  # noqa: E402

from libvirt_env import TestDomains, domain_xml  # noqa: E402
from test_watch_support import HttpsReceiver, Post, WatchProcess, make_pki, verify_signature  # noqa: E402

SECRET = b"bench-hmac-key"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--via", choices=("schedinfo", "define"), default="schedinfo")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hvg-watch-bench-"))
    pki = make_pki(tmp)
    key = tmp / "hook.key"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    receiver = HttpsReceiver(pki.server_context()).start()
    latencies: list[float] = []
    calls: list[float] = []
    with TestDomains() as td:
        name = td.name("bench")
        dom = td.define(domain_xml(name, cputune={"shares": 1000}))
        watcher = WatchProcess(
            [
                "qemu:///system", "--webhook", receiver.url, "--webhook-ca", str(pki.ca_file),
                "--webhook-secret-file", str(key), "--state", str(tmp / "state.sqlite"), "--quiet",
            ],
            tmp / "watch.log",
        )  # fmt: skip
        try:
            watcher.wait_log(r"ready: watching", timeout=120)
            for i in range(1, args.changes + 1):
                shares = 1000 + i
                seen = len(receiver.posts)
                t0 = time.monotonic()
                if args.via == "schedinfo":
                    dom.setSchedulerParametersFlags({"cpu_shares": shares}, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                else:
                    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                    td.conn.defineXML(
                        xml.replace(f"<shares>{shares - 1}</shares>", f"<shares>{shares}</shares>")
                    )
                t1 = time.monotonic()

                def wanted(post: Post, shares: int = shares) -> bool:
                    changes = post.json().get("changes", [])
                    return any(c["path"] == "cputune.shares" and c["new"] == shares for c in changes)

                post = receiver.wait_for(wanted, timeout=30, after=seen)
                if not verify_signature(SECRET, post):
                    print(f"change {i}: bad signature", file=sys.stderr)
                    return 1
                calls.append(t1 - t0)
                latencies.append(post.arrived - t1)
            rc, stop_s = watcher.terminate()
        finally:
            watcher.kill()
            receiver.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    extra = [p for p in receiver.posts if p.json().get("vm") == name]
    result = {
        "changes": args.changes,
        "via": args.via,
        "latency_s": {
            "p50": round(percentile(latencies, 50), 4),
            "p90": round(percentile(latencies, 90), 4),
            "p99": round(percentile(latencies, 99), 4),
            "max": round(max(latencies), 4),
            "mean": round(statistics.fmean(latencies), 4),
        },
        "change_call_s_median": round(statistics.median(calls), 4),
        "notifications_received": len(extra),
        "watcher_exit": rc,
        "sigterm_to_exit_s": round(stop_s, 3),
        "goal_p99_le_1s": percentile(latencies, 99) <= 1.0,
    }
    print(json.dumps(result, indent=2))
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    (out / f"watch_latency_{args.via}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if rc == 0 and len(extra) == args.changes else 1


if __name__ == "__main__":
    sys.exit(main())
