"""Reading a 10,000-host Ansible inventory (100 groups of 100 hosts under 10 sites, group and host vars):
``ansible-inventory --list`` (what ``scan --inventory`` runs when Ansible is installed) against hvguard's
own YAML reader (without Ansible), and ``--limit`` through ``ansible --list-hosts`` against the own
evaluator. Prints medians; no goal, a figure for the closing note."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hvguard.collect.inventory import load_inventories

HOSTS_PER_GROUP = 100
GROUPS = 100
SITES = 10


def _inventory(folder: Path) -> Path:
    children: dict[str, object] = {}
    for s in range(SITES):
        racks: dict[str, object] = {}
        for g in range(GROUPS // SITES):
            n = s * (GROUPS // SITES) + g
            hosts = {
                f"hv{n:03d}-{h:03d}": {"ansible_host": f"10.{n}.{h // 250}.{h % 250 + 1}"}
                for h in range(HOSTS_PER_GROUP)
            }
            racks[f"rack{n:03d}"] = {"hosts": hosts, "vars": {"ansible_port": 2200 + g}}
        children[f"site{s}"] = {"children": racks, "vars": {"ansible_become": True}}
    path = folder / "estate.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": {"ansible_user": "hvguard"}, "children": children}}))
    return path


def _median(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _inventory(Path(tmp))
        print(f"inventory: {SITES * (GROUPS // SITES) * HOSTS_PER_GROUP} hosts, {path.stat().st_size} bytes")
        if shutil.which("ansible-inventory"):
            t = _median(lambda: load_inventories([path], None), runs=3)
            print(f"ansible-inventory --list:          {t:.2f} s")
            t = _median(lambda: load_inventories([path], "site1:!rack011"), runs=3)
            print(f"ansible-inventory + --list-hosts:  {t:.2f} s (--limit 'site1:!rack011')")
        empty = Path(tmp) / "bin"
        empty.mkdir()
        saved = os.environ["PATH"]
        os.environ["PATH"] = str(empty)
        try:
            t = _median(lambda: load_inventories([path], None))
            print(f"hvguard's own YAML reader:         {t:.2f} s")
            t = _median(lambda: load_inventories([path], "site1:!rack011"))
            print(f"own reader + own --limit:          {t:.2f} s (--limit 'site1:!rack011')")
        finally:
            os.environ["PATH"] = saved


if __name__ == "__main__":
    main()
