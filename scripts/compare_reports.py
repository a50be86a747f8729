#!/usr/bin/env python3
"""Prove that a restructure changed no verdict: every test estate's reports, before and after.

    .venv/bin/python scripts/compare_reports.py --base REV [--formats json,csv,...] [--keep DIR]

REV's source is checked out into a temporary ``git worktree`` and run with this virtualenv's Python
(``PYTHONPATH=<worktree>/src``); the working tree's source is run the same way. Each estate is scanned
by both, in every format asked for, with history off, and the outputs and exit codes are compared after
masking what legitimately differs between two runs: ``generated_at`` (any ISO-8601 UTC timestamp) and the
tool version. Exit 0 when every output is identical, 1 with a list of differences otherwise, 2 on a
usage error.

The estates (what "every test estate" means here):
- every test-driver node file under ``tests/data/testdriver`` and ``../shared/corpus/*/testdriver``
  (``scan test:///ABS``), the repository's one also paired with each offline root;
- every offline root under ``tests/data/roots`` (``scan local --root ROOT``);
- the workflow estate (exceptions + attestations, ``--as-of 2026-06-01``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEFAULT_FORMATS = ("json", "csv", "sarif", "junit", "markdown", "table", "html")
# ISO timestamps (generated_at and friends) and the version string are the only allowed differences.
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")


@dataclass(frozen=True)
class Estate:
    """One scan: a name for the listing and the arguments after ``hvguard scan``."""

    name: str
    args: tuple[str, ...]


def estates() -> list[Estate]:
    """Every test estate, in a stable order."""
    data = REPO / "tests" / "data"
    node = data / "testdriver" / "node.xml"
    drivers = sorted((data / "testdriver").glob("*.xml"))
    drivers += sorted(SHARED.glob("corpus/*/testdriver/*.xml"))
    roots = sorted(p for p in (data / "roots").iterdir() if p.is_dir())
    out = [Estate(f"test:{p.relative_to(p.parents[2])}", (f"test://{p}",)) for p in drivers]
    out += [Estate(f"local --root {r.name}", ("local", "--root", str(r))) for r in roots]
    out += [Estate(f"test:node.xml --root {r.name}", (f"test://{node}", "--root", str(r))) for r in roots]
    wf = data / "workflow"
    out.append(
        Estate(
            "workflow (exceptions + attestations)",
            (
                f"test://{node}",
                "--root",
                str(data / "roots" / "kvm-good"),
                "--exceptions",
                str(wf / "exceptions.yaml"),
                "--attestations",
                str(wf / "attestations.yaml"),
                "--as-of",
                "2026-06-01",
            ),
        )
    )
    return out


def version_of(src: Path) -> str:
    """The ``__version__`` string of the hvguard source tree at ``src``."""
    text = (src / "hvguard" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r"__version__\s*=\s*[\"']([^\"']+)", text)
    return found.group(1) if found else "<unknown>"


def run(src: Path, estate: Estate, fmt: str) -> tuple[int, str]:
    """Scan ``estate`` with the hvguard at ``src``; the masked output and the exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HVGUARD_", "PYTHON")) and k != "CI"}
    env.update(PYTHONPATH=str(src), COLUMNS="120", LC_ALL="C.UTF-8", TZ="UTC", NO_COLOR="1", TERM="dumb")
    with tempfile.TemporaryDirectory(prefix="hvg-compare-") as home:
        env["HOME"] = home
        env["XDG_DATA_HOME"] = home
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from hvguard.cli import main; main()",
                "scan",
                *estate.args,
                "--format",
                fmt,
                "--no-history",
                "--fail-on",
                "warn",
            ],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=600,
            check=False,
        )
    text = proc.stdout + ("\n--- stderr ---\n" + proc.stderr if proc.stderr else "")
    text = TIMESTAMP.sub("<TIME>", text).replace(version_of(src), "<VERSION>")
    return proc.returncode, text


def main() -> int:
    """Compare every estate × format between ``--base`` and the working tree."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the commit the restructure starts from")
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS))
    ap.add_argument("--keep", type=Path, help="write every output pair into this directory")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    if not SHARED.joinpath("corpus").is_dir():
        print(f"note: {SHARED}/corpus is absent: its test-driver estates are not compared", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="hvg-base-") as tmp:
        base = Path(tmp) / "base"
        made = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            print(f"compare_reports: cannot check out {args.base}: {made.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            return compare(base / "src", REPO / "src", formats, args.keep, args.jobs)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)


def compare(old: Path, new: Path, formats: list[str], keep: Path | None, jobs: int) -> int:
    """Run both trees over every estate and format; print each difference; 0 when there is none."""
    cases = [(e, f) for e in estates() for f in formats]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        olds = list(pool.map(lambda c: run(old, *c), cases))
        news = list(pool.map(lambda c: run(new, *c), cases))
    differ = 0
    for (estate, fmt), (orc, otext), (nrc, ntext) in zip(cases, olds, news, strict=True):
        label = f"{estate.name} [{fmt}]"
        if keep is not None:
            stem = re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_")
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{stem}.before").write_text(otext, encoding="utf-8")
            (keep / f"{stem}.after").write_text(ntext, encoding="utf-8")
        if orc == nrc and otext == ntext:
            continue
        differ += 1
        print(f"DIFFERS: {label}: exit {orc} → {nrc}")
        diff = difflib.unified_diff(
            otext.splitlines(), ntext.splitlines(), "before", "after", lineterm="", n=1
        )
        for i, line in enumerate(diff):
            if i >= 40:
                print("    …")
                break
            print(f"    {line}")
    shape = f"{len(estates())} estates × {len(formats)} formats"
    print(f"{len(cases) - differ} identical, {differ} differ ({shape})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
