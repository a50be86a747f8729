"""The command line end to end (subprocess): contracts, offline bundles and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hvguard.catalog import load_catalog

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"


def hv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def scan_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``hvguard scan ARGS --format json``: exit code and parsed report."""
    r = hv("scan", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_json_report_contract_on_a_test_driver_estate() -> None:
    code, rep = scan_json(f"test://{NODE}", "--root", str(GOOD_ROOT))
    assert rep["schema"] == "hvguard.report/1"
    assert rep["tool"]["name"] == "hvguard" and rep["catalog"] == {"id": "SS-009", "version": "2.0"}
    assert set(rep["profile"]) >= {"name", "thresholds", "tailored"} and rep["profile"]["tailored"] is False
    assert rep["targets"][0]["platform"] == "kvm-libvirt" and rep["targets"][0]["vm_count"] == 4
    assert list(rep["summary"]["by_measure"]) == list(load_catalog().ids)
    statuses = {"pass", "fail", "warn", "manual", "not_applicable", "error", "waived"}
    assert set(rep["summary"]["by_measure"].values()) <= statuses
    for r in rep["results"]:
        assert {
            "measure",
            "status",
            "target",
            "subject",
            "message",
            "evidence",
            "remediation",
            "waiver",
        } <= set(r)
        assert r["subject"] == "host" or r["subject"].startswith("vm:")
        assert r["message"]
        if r["status"] == "fail":
            assert r["remediation"], r
        if r["status"] == "not_applicable":
            assert r["message"], r
    subjects = {r["subject"] for r in rep["results"]}
    assert {"vm:kvm-hardened", "vm:qemu-loose", "vm:kvm-off", "vm:qemu-transient"} <= subjects
    assert sum(rep["summary"]["by_status"].values()) == len(rep["results"])
    assert code == (1 if any(r["status"] in ("fail", "error") for r in rep["results"]) else 0)


def test_collect_then_evaluate_gives_the_scan_results(tmp_path: Path) -> None:
    bundle = tmp_path / "estate.json.gz"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle))
    assert r.returncode == 0, r.stderr
    assert "4 VM(s)" in r.stderr
    _, online = scan_json(f"test://{NODE}", "--root", str(GOOD_ROOT))
    r = hv("evaluate", str(bundle), "--format", "json")
    offline = json.loads(r.stdout)
    assert offline["results"] == online["results"]
    assert offline["summary"] == online["summary"]
    again = hv("collect", f"test://{NODE}", "--output", str(bundle))
    assert again.returncode == 2 and "--force" in again.stderr


def test_fail_on_levels() -> None:
    never = hv("scan", f"test://{NODE}", "--fail-on", "never", "--format", "json")
    assert never.returncode == 0
    default = hv("scan", f"test://{NODE}", "--format", "json")
    assert default.returncode == 1  # no host files for a test URI without --root: error findings


def test_table_report_names_every_measure_and_summarises() -> None:
    r = hv("scan", f"test://{NODE}", "--root", str(GOOD_ROOT), "--fail-on", "never")
    assert r.returncode == 0
    for mid in load_catalog().ids:
        assert mid in r.stdout
    assert "Summary: 36 measures" in r.stdout


def test_output_file_is_written_and_never_silently_replaced(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = hv("scan", f"test://{NODE}", "--format", "json", "--output", str(out), "--fail-on", "never")
    assert r.returncode == 0 and json.loads(out.read_text())["schema"] == "hvguard.report/1"
    out.write_text("mine")
    r = hv("scan", f"test://{NODE}", "--format", "json", "--output", str(out))
    assert r.returncode == 2 and out.read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["scan", "--root", "/nonexistent/hvguard-root"], "does not exist"),
        (["scan", "nonsense"], "not a target"),
        (["scan", "ssh://admin:secret@127.0.0.1"], "passwords in targets are not supported"),
        (["scan", "--format", "pdf"], "Invalid value"),
        (["evaluate", "/nonexistent/bundle.json"], "cannot read bundle"),
        (["scan", "--profile", "/nonexistent/p.yaml"], "p.yaml: cannot read: no such file"),
    ],
)
def test_usage_and_input_errors_are_one_line_exit_2(args: list[str], needle: str) -> None:
    r = hv(*args)
    assert r.returncode == 2, r
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_corrupt_and_truncated_bundles_exit_2(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    assert hv("collect", f"test://{NODE}", "--output", str(bundle)).returncode == 0
    data = bundle.read_bytes()
    for name, content in {
        "trunc.json": data[:-100],
        "garbage.json": b"\x00\x01",
        "wrong.json": b"{}",
    }.items():
        (tmp_path / name).write_bytes(content)
        r = hv("evaluate", str(tmp_path / name))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unreachable_target_does_not_stop_the_others() -> None:
    r = hv("scan", "qemu+tcp://127.0.0.1:1/system", f"test://{NODE}", "--format", "json")
    rep = json.loads(r.stdout)
    assert [t["unreachable"] is None for t in rep["targets"]] == [False, True]
    assert any(x["subject"] == "vm:kvm-hardened" for x in rep["results"])


def test_broken_root_gives_error_findings_with_the_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "libvirt").mkdir(parents=True)
    (root / "etc" / "libvirt" / "qemu.conf").write_text('user = "qemu\n')
    (root / "proc").mkdir()
    (root / "proc" / "cpuinfo").mkdir()  # a directory where a file belongs: unreadable
    code, rep = scan_json(f"test://{NODE}", "--root", str(root))
    errors = [r for r in rep["results"] if r["status"] == "error"]
    assert any("qemu.conf" in r["message"] and "line 1" in r["message"] for r in errors), errors
    assert any("cpuinfo" in p["source"] for p in rep["targets"][0]["problems"])
    assert code == 1


DEAD_SOCKET_URI = "qemu+unix:///system?socket=/nonexistent/hvguard-test.sock"
HOST_MEASURES = ("11.2.4", "11.2.5", "11.4.3", "11.4.6")


def test_unreachable_single_target_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    r = hv("scan", "qemu+tcp://127.0.0.1:1/system", "--format", "json", "--output", str(out), "--no-history")
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "qemu+tcp://127.0.0.1:1/system" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == "" and not out.exists()


def test_unreachable_hypervisor_keeps_the_host_facts() -> None:
    """libvirtd down but host files readable: a partial target, host measures evaluated as `scan local`."""
    r = hv("scan", DEAD_SOCKET_URI, "--root", str(GOOD_ROOT), "--format", "json", "--no-history")
    assert r.returncode == 1, r.stderr  # hypervisor measures are errors: at or above --fail-on
    rep = json.loads(r.stdout)
    (t,) = rep["targets"]
    assert t["unreachable"] is None, t["unreachable"]
    hv_problems = [p["message"] for p in t["problems"] if p["area"] == "hypervisor"]
    assert any("nonexistent/hvguard-test.sock" in m for m in hv_problems), t["problems"]
    _, local = scan_json("local", "--root", str(GOOD_ROOT), "--no-history")
    for m in HOST_MEASURES:
        assert rep["summary"]["by_measure"][m] == local["summary"]["by_measure"][m] != "error", m
    (vcpus,) = [x for x in rep["results"] if x["measure"] == "11.3.3"]
    assert vcpus["status"] == "error" and "nonexistent/hvguard-test.sock" in vcpus["message"], vcpus
    never = hv("scan", DEAD_SOCKET_URI, "--root", str(GOOD_ROOT), "--fail-on", "never", "--format", "json",
               "--no-history")  # fmt: skip
    assert never.returncode == 0, never.stderr


def test_collect_exit_codes_complete_partial_nothing(tmp_path: Path) -> None:
    complete = tmp_path / "complete.json"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(complete))
    assert r.returncode == 0 and complete.exists(), r.stderr
    partial = tmp_path / "partial.json"
    r = hv("collect", DEAD_SOCKET_URI, "--root", str(GOOD_ROOT), "--output", str(partial))
    assert r.returncode == 1 and partial.exists(), (r.returncode, r.stderr)
    assert "partial" in r.stderr and DEAD_SOCKET_URI in r.stderr, r.stderr
    bundle = json.loads(partial.read_text())
    assert bundle["targets"][0]["host"] is not None and bundle["targets"][0]["unreachable"] is None
    nothing = tmp_path / "nothing.json"
    r = hv("collect", "qemu+tcp://127.0.0.1:1/system", "--output", str(nothing))
    assert r.returncode == 2 and not nothing.exists(), (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "qemu+tcp://127.0.0.1:1/system" in r.stderr
