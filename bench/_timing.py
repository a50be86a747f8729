"""Shared helpers for the benchmark scripts: repeat a command, report min and median wall time."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HVGUARD = str(REPO / ".venv" / "bin" / "hvguard")
PYTHON = str(REPO / ".venv" / "bin" / "python")


def wall(cmd: Sequence[str], repeat: int = 5, ok_codes: Sequence[int] = (0, 1)) -> list[float]:
    """Run ``cmd`` ``repeat`` times (output discarded) and return each wall time in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - t0)
        if rc.returncode not in ok_codes:
            sys.exit(f"{cmd[0]} exited {rc.returncode}: {rc.stderr.decode()[-500:]}")
    return times


def timed(fn: Callable[[], object], repeat: int = 5) -> list[float]:
    """Call ``fn`` ``repeat`` times in-process and return each wall time in seconds."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def describe(label: str, times: list[float]) -> str:
    """One line: label, min and median in seconds."""
    return f"{label}: min {min(times):.3f} s, median {statistics.median(times):.3f} s (n={len(times)})"
