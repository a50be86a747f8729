"""Every test estate scanned through the command line, in one report format (for the format tests).

"Every test estate" is what scripts/compare_reports.py lists within the repository: each test-driver
node file, each offline root under tests/data/roots (alone and paired with the node file), and the
workflow estate with the fixture exceptions register and attestations.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@cache
def estate_args() -> dict[str, tuple[str, ...]]:
    """Estate name → the arguments after ``hvguard scan``, from scripts/compare_reports.py."""
    spec = importlib.util.spec_from_file_location("compare_reports", REPO / "scripts" / "compare_reports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    # the shared corpus beside the repository exists on developer machines only: CI sees the repo's own
    return {
        e.name: tuple(e.args) for e in module.estates() if str(REPO.parent / "shared") not in " ".join(e.args)
    }


def _scan(args: tuple[str, ...], fmt: str) -> dict[str, Any]:
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "scan", *args, "--no-history", "--format", fmt],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert r.returncode in (0, 1), (args, r.returncode, r.stderr)
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def scan_all(fmt: str) -> dict[str, dict[str, Any]]:
    """Every test estate's report in ``fmt`` (a JSON format), parsed; two scans at a time."""
    items = estate_args()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_scan, args, fmt) for name, args in items.items()}
        return {name: f.result() for name, f in futures.items()}
