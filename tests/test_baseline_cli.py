"""``hvguard baseline``, ``remediate`` and ``scan --baseline`` end to end on libvirt's test driver
(no daemon): exit codes, JSON shapes, files never overwritten, 11.4.7 decided by the baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"
NODE = f"test://{DATA / 'testdriver' / 'node.xml'}"
GOOD_ROOT = DATA / "roots" / "kvm-good"


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def capture(tmp_path: Path) -> Path:
    gold = tmp_path / "gold.yaml"
    r = hv("baseline", "capture", NODE, "--root", str(GOOD_ROOT), "--output", str(gold))
    assert r.returncode == 0, r.stderr
    return gold


def edit(path: Path, fn: Any) -> Path:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(doc)
    out = path.with_name("edited.yaml")
    out.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return out


def set_quota(doc: dict[str, Any]) -> None:
    cls = next(c for c in doc["vm_classes"] if c["name"] == "kvm-hardened")
    cls["settings"]["cputune"]["quota"] = 40000


def test_capture_is_complete_and_checks_clean(tmp_path: Path) -> None:
    gold = capture(tmp_path)
    doc = yaml.safe_load(gold.read_text(encoding="utf-8"))
    assert doc["schema"] == "hvguard.baseline/1"
    # the transient domain is captured too (it is governed and checked); remediation skips it
    assert [c["name"] for c in doc["vm_classes"]] == [
        "kvm-hardened",
        "kvm-off",
        "qemu-loose",
        "qemu-transient",
    ]
    assert set(doc["host"]) == {"qemu_conf", "libvirtd_conf", "facts"}
    r = hv("baseline", "check", NODE, "--root", str(GOOD_ROOT), "--baseline", str(gold), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert (
        report["drift"] == [] and report["summary"]["vms_governed"] == 4 and report["summary"]["host_checked"]
    )


def test_drift_exit_code_json_and_table(tmp_path: Path) -> None:
    edited = edit(capture(tmp_path), set_quota)
    r = hv("baseline", "check", NODE, "--root", str(GOOD_ROOT), "--baseline", str(edited), "--format", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["drift"] == [
        {
            "subject": "vm:kvm-hardened",
            "path": "cputune.quota",
            "expected": 40000,
            "actual": 50000,
            "class": "kvm-hardened",
        }
    ]
    out = tmp_path / "drift.txt"
    t = hv(
        "baseline", "check", NODE, "--root", str(GOOD_ROOT), "--baseline", str(edited), "--output", str(out)
    )
    assert t.returncode == 1 and t.stdout == ""
    assert "cputune.quota" in out.read_text(encoding="utf-8")


def test_usage_and_input_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    gold = capture(tmp_path)
    again = hv("baseline", "capture", NODE, "--output", str(gold))
    assert again.returncode == 2 and "exists" in again.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "schema: hvguard.baseline/1\nvm_classes:\n  - name: x\n"
        "    match: {name: x}\n    settings: {cputun: {}}\n",
        encoding="utf-8",
    )
    for args in (
        ("baseline", "check", NODE, "--baseline", str(bad)),
        ("remediate", NODE, "--baseline", str(bad)),
        ("scan", NODE, "--baseline", str(bad)),
    ):
        r = hv(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert (
            r.stderr.strip()
            == f"hvguard: error: {bad} line 5: unknown key 'cputun' (at vm_classes.0.settings.cputun)"
        )
    r = hv("baseline", "check", "nonsense", "--baseline", str(gold))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = hv("remediate", "--undo", "../../etc", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "not a remediation run id" in r.stderr


def test_remote_target_with_host_settings_is_an_error_not_a_pass(tmp_path: Path) -> None:
    gold = capture(tmp_path)
    r = hv("baseline", "check", NODE, "--baseline", str(gold), "--format", "json")  # no --root: no host facts
    assert r.returncode == 2
    assert json.loads(r.stdout)["errors"][0]["subject"] == "host"


def test_remediate_dry_run_plans_without_a_run_record(tmp_path: Path) -> None:
    edited = edit(capture(tmp_path), set_quota)
    data = tmp_path / "data"
    r = hv(
        "remediate",
        NODE,
        "--baseline",
        str(edited),
        "--root",
        str(GOOD_ROOT),
        "--data-dir",
        str(data),
        "--format",
        "json",
    )
    assert r.returncode == 1, r.stderr
    plan = json.loads(r.stdout)
    assert plan["mode"] == "dry-run" and plan["errors"] == []
    assert [(d["name"], [(a["path"], a["method"]) for a in d["actions"]]) for d in plan["domains"]] == [
        ("kvm-hardened", [("cputune.quota", "setSchedulerParametersFlags")])
    ]
    assert not data.exists()


def test_scan_with_a_baseline_decides_11_4_7(tmp_path: Path) -> None:
    gold = capture(tmp_path)

    def results(baseline: Path) -> list[dict[str, Any]]:
        r = hv(
            "scan",
            NODE,
            "--root",
            str(GOOD_ROOT),
            "--baseline",
            str(baseline),
            "--format",
            "json",
            "--no-history",
        )
        assert r.returncode in (0, 1), r.stderr
        return [x for x in json.loads(r.stdout)["results"] if x["measure"] == "11.4.7"]

    [clean] = results(gold)
    assert clean["status"] == "pass" and clean["evidence"]["governed"]["kvm-hardened"] == "kvm-hardened"
    [drifted] = results(edit(gold, set_quota))
    assert drifted["status"] == "warn" and drifted["subject"] == "vm:kvm-hardened"
    assert drifted["evidence"]["drift"][0]["path"] == "cputune.quota"
    assert "hvguard remediate" in drifted["remediation"]
    plain = hv("scan", NODE, "--root", str(GOOD_ROOT), "--format", "json", "--no-history")
    assert [x["status"] for x in json.loads(plain.stdout)["results"] if x["measure"] == "11.4.7"] == [
        "manual"
    ]
