"""Cost of the exceptions register, attestations and a loosened profile on a 10,000-VM evaluation.

    .venv/bin/python bench/workflow_10k.py [--vms 10000] [--exceptions 500] [--attestations 50]

Times evaluate() alone on the same synthetic estate as bench/evaluate_10k.py: plain, with a register
of N exceptions (per-VM globs, one in five matching nothing) and M attestations, and with a profile
that loosens the 11.3.1/11.3.3 thresholds (the engine re-runs those measures with the defaults).
Goal: the register and attestations add at most 0.5 s to a 10,000-VM evaluation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import describe, timed
from evaluate_10k import estate

from hvguard.catalog import load_catalog
from hvguard.engine import evaluate
from hvguard.profile import default_profile, load_profile
from hvguard.workflow.attestations import load_attestations
from hvguard.workflow.exceptions import load_exceptions

AS_OF = date(2026, 6, 1)


def register(n: int) -> dict[str, object]:
    """``n`` exceptions over the per-VM measures, each scoped to a VM-name glob."""
    measures = ["11.1.1", "11.1.2", "11.2.7", "11.2.9", "11.3.3", "11.3.10"]
    entries = []
    for i in range(n):
        subject = f"vm:vm{i:03d}*" if i % 5 else f"vm:gone-{i}-*"  # one in five is stale
        entries.append(
            {
                "id": f"EX-{i:04d}",
                "measure": measures[i % len(measures)],
                "scope": {"target": "*", "subject": subject},
                "justification": "benchmark",
                "risk_owner": "owner",
                "approved_by": "approver",
                "approved_on": date(2026, 1, 1),
                "expires_on": date(2026, 12, 31) if i % 7 else date(2026, 3, 1),
                "risk_rating": "medium",
            }
        )
    return {"exceptions": entries}


def attestations(m: int) -> dict[str, object]:
    """``m`` attestations over the measures only a statement can show."""
    manual = [x.id for x in load_catalog().measures if x.automation != "full"]
    return {
        "attestations": [
            {
                "id": f"AT-{i:03d}",
                "measure": manual[i % len(manual)],
                "scope": {"target": "*", "subject": "host"},
                "statement": "benchmark",
                "attested_by": "auditor",
                "attested_on": date(2026, 1, 1),
                "valid_until": date(2026, 12, 31),
            }
            for i in range(m)
        ]
    }


def main() -> None:
    """Time the three evaluations and report the overhead against the goal."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--exceptions", type=int, default=500)
    ap.add_argument("--attestations", type=int, default=50)
    args = ap.parse_args()
    targets = estate(args.vms)
    profile = default_profile()
    with tempfile.TemporaryDirectory() as tmp:
        ex_path = Path(tmp) / "exceptions.yaml"
        ex_path.write_text(yaml.safe_dump(register(args.exceptions)))
        at_path = Path(tmp) / "attestations.yaml"
        at_path.write_text(yaml.safe_dump(attestations(args.attestations)))
        loose_path = Path(tmp) / "loose.yaml"
        loose_path.write_text(
            "thresholds:\n  memory_overcommit_pass_max: 1.4\n  memory_overcommit_warn_max: 3.0\n"
            "  memory_overcommit_scope: running\n"
        )
        print(describe(f"load {args.exceptions} exceptions", timed(lambda: load_exceptions(ex_path))))
        print(describe(f"load {args.attestations} attestations", timed(lambda: load_attestations(at_path))))
        reg, att = load_exceptions(ex_path), load_attestations(at_path)
        loose = load_profile(loose_path)
        evaluate(targets, profile)  # type: ignore[arg-type]  # warm imports and check registration
        plain = timed(lambda: evaluate(targets, profile))  # type: ignore[arg-type]
        print(describe(f"evaluate, no register ({args.vms} VMs)", plain))
        with_files = timed(
            lambda: evaluate(targets, profile, exceptions=reg, attestations=att, as_of=AS_OF)  # type: ignore[arg-type]
        )
        print(describe("evaluate with exceptions + attestations", with_files))
        ev = evaluate(targets, profile, exceptions=reg, attestations=att, as_of=AS_OF)  # type: ignore[arg-type]
        print(f"  waived {ev.by_status['waived']}, register notes {len(ev.register_notes)}")
        tailored = timed(lambda: evaluate(targets, loose))  # type: ignore[arg-type]
        print(describe("evaluate with a loosened profile (11.3.1 re-run)", tailored))
        overhead = min(with_files) - min(plain)
        print(f"overhead of the register and attestations: {overhead:.3f} s")
        print(f"GOAL overhead ≤ 0.5 s: {'met' if overhead <= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
