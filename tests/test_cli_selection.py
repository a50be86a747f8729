"""Selection filters (--measure, --skip-measure, --vm, --skip-host, --status) and -q/-v/--log-level, end to
end through the ``hvguard`` entry point on the test-driver estate's evidence bundle."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hvguard.catalog import load_catalog
from hvguard.collect.interface import Command
from hvguard.collect.linux.source import run_local
from hvguard.report.selection import Selection, SelectionError, measure_key, parse_statuses

DATA = Path(__file__).parent / "data"
BUNDLE = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"
VMS = {"vm:kvm-hardened", "vm:kvm-off", "vm:qemu-loose", "vm:qemu-transient"}


def hv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )


def evaluate_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``hvguard evaluate BUNDLE ARGS -o json:-``: exit code and parsed report."""
    r = hv("evaluate", str(BUNDLE), "--no-history", "-o", "json:-", *args)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    """The report without any filter."""
    return evaluate_json()[1]


def test_without_filters_the_selection_block_is_present_and_empty(full: dict[str, Any]) -> None:
    assert list(full)[-1] == "selection"
    assert full["selection"] == {
        "measures": [],
        "skip_measures": [],
        "vms": [],
        "skip_host": False,
        "statuses": [],
        "results_total": len(full["results"]),
        "results_selected": len(full["results"]),
    }


def test_measure_by_section_and_by_id(full: dict[str, Any]) -> None:
    _, rep = evaluate_json("--measure", "11.3", "--measure", "11.1.2")
    got = {r["measure"] for r in rep["results"]}
    want = {m for m in (r["measure"] for r in full["results"]) if m.startswith("11.3.") or m == "11.1.2"}
    assert got == want and "11.3.10" in got and "11.1.1" not in got
    assert rep["selection"]["measures"] == ["11.3", "11.1.2"]
    # The summary is the evaluation's, whole: every measure, every finding counted.
    assert rep["summary"] == full["summary"]
    assert list(rep["summary"]["by_measure"]) == list(load_catalog().ids)
    assert rep["selection"]["results_total"] == len(full["results"])
    assert rep["selection"]["results_selected"] == len(rep["results"]) < len(full["results"])


def test_skip_measure_leaves_a_section_out(full: dict[str, Any]) -> None:
    _, rep = evaluate_json("--skip-measure", "11.4", "--skip-measure", "11.1.1")
    got = {r["measure"] for r in rep["results"]}
    assert not any(m.startswith("11.4.") for m in got) and "11.1.1" not in got and "11.1.2" in got
    assert len(rep["results"]) == sum(
        1 for r in full["results"] if not r["measure"].startswith("11.4.") and r["measure"] != "11.1.1"
    )


def test_vm_glob_keeps_host_findings_unless_skip_host(full: dict[str, Any]) -> None:
    _, rep = evaluate_json("--vm", "qemu-*")
    subjects = {r["subject"] for r in rep["results"]}
    assert subjects == {"host", "vm:qemu-loose", "vm:qemu-transient"}
    host = [r for r in full["results"] if r["subject"] == "host"]
    assert len([r for r in rep["results"] if r["subject"] == "host"]) == len(host)
    _, rep = evaluate_json("--vm", "qemu-*", "--vm", "kvm-off", "--skip-host")
    assert {r["subject"] for r in rep["results"]} == {"vm:qemu-loose", "vm:qemu-transient", "vm:kvm-off"}
    assert rep["selection"]["vms"] == ["qemu-*", "kvm-off"] and rep["selection"]["skip_host"] is True
    _, rep = evaluate_json("--skip-host")
    assert {r["subject"] for r in rep["results"]} == VMS


def test_status_takes_comma_lists_and_repeats(full: dict[str, Any]) -> None:
    _, rep = evaluate_json("--status", "fail,error", "--status", "warn")
    assert {r["status"] for r in rep["results"]} == {"fail", "error", "warn"}
    assert len(rep["results"]) == sum(1 for r in full["results"] if r["status"] in ("fail", "error", "warn"))
    assert rep["selection"]["statuses"] == ["fail", "error", "warn"]


def test_the_exit_code_follows_the_selected_findings() -> None:
    assert evaluate_json()[0] == 1  # the estate fails
    assert evaluate_json("--status", "pass,manual")[0] == 0
    assert evaluate_json("--measure", "11.3.3")[0] == 0  # every VM passes 11.3.3
    assert evaluate_json("--measure", "11.3.10")[0] == 1
    assert evaluate_json("--status", "warn")[0] == 0
    assert evaluate_json("--status", "warn", "--fail-on", "warn")[0] == 1


def test_unknown_measure_section_or_status_is_one_line_and_exit_2() -> None:
    for args, word in (
        (("--measure", "11.9"), "11.9"),
        (("--skip-measure", "11.3.99"), "11.3.99"),
        (("--status", "fail,broken"), "broken"),
    ):
        r = hv("evaluate", str(BUNDLE), "--no-history", *args)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("hvguard: error: ") and r.stderr.count("\n") == 1 and word in r.stderr


def test_history_stores_every_finding_whatever_the_selection(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    r = hv("evaluate", str(BUNDLE), "--db", str(db), "--status", "error", "-o", "json:-")
    assert r.returncode == 1, r.stderr
    shown = json.loads(r.stdout)
    assert shown["selection"]["results_selected"] == 3
    with sqlite3.connect(db) as conn:
        tables = [row[0] for row in conn.execute("select name from sqlite_master where type='table'")]
        finding_table = next(t for t in tables if "finding" in t)
        stored = conn.execute(f"select count(*) from {finding_table}").fetchone()[0]  # noqa: S608
    assert stored == shown["selection"]["results_total"] == 83


def test_the_terminal_lists_only_the_selected_measures_and_says_what_it_shows() -> None:
    r = hv("evaluate", str(BUNDLE), "--no-history", "--measure", "11.3.10", "--vm", "qemu-loose")
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert "selection: --measure 11.3.10 --vm qemu-loose · 1 of 83 findings shown" in out
    assert "11.3 VM Management" in out and "11.1 Hypervisor" not in out and "11.3.9" not in out
    assert "FAIL vm:qemu-loose" in out and "vm:kvm-off" not in out
    assert "1 of 83 findings shown" in out.splitlines()[-1]


def test_scan_takes_the_same_filters() -> None:
    r = hv("scan", f"test://{NODE}", "--root", str(GOOD_ROOT), "--no-history", "--vm", "kvm-off",
           "--skip-host", "--status", "fail", "-o", "json:-")  # fmt: skip
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["results"]
    assert {(x["subject"], x["status"]) for x in rep["results"]} == {("vm:kvm-off", "fail")}


# -- -q, -v, --log-level -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_before_or_after_the_command_silences_informational_lines(tmp_path: Path, where: str) -> None:
    out = tmp_path / "r.json"
    args = ["evaluate", str(BUNDLE), "--no-history", "-o", f"json:{out}"]
    r = hv(*(["-q", *args] if where == "before" else [*args, "-q"]))
    assert r.returncode == 1 and r.stderr == "" and out.exists()
    r = hv(*args, "--force")
    assert r.stderr == f"wrote {out} (json, {out.stat().st_size / 1000:.0f} kB)\n"


@pytest.mark.parametrize("flags", [["-v"], ["--log-level", "info"]])
def test_verbose_shows_timings_of_collectors_commands_and_steps(tmp_path: Path, flags: list[str]) -> None:
    r = hv(*flags, "scan", f"test://{NODE}", "--root", str(GOOD_ROOT), "--no-history",
           "-o", f"json:{tmp_path / 'r.json'}")  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    for what in ("collector linux-host", "collector access", "collector operations", "collector libvirt",
                 "collect test://", "evaluate", "render json", "write json:"):  # fmt: skip
        assert any(line.startswith("hvguard: ") and " s  " in line and what in line for line in lines), what


def test_each_command_a_collector_runs_is_timed(caplog: pytest.LogCaptureFixture) -> None:
    # An offline --root runs no command, so this is the local runner itself, as a live scan uses it.
    with caplog.at_level(logging.INFO, logger="hvguard.timing"):
        result = run_local(Command("probe-true", ("true", "--flag"), "test"))
    assert result.returncode == 0
    assert [r.getMessage().split("  ", 1)[1] for r in caplog.records] == ["command probe-true: true --flag"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hvguard.timing"):
        run_local(Command("probe-true", ("true",), "test"))
    assert caplog.records == []


def test_without_v_there_are_no_timings_and_the_last_flag_wins(tmp_path: Path) -> None:
    args = ["evaluate", str(BUNDLE), "--no-history", "-o", f"json:{tmp_path / 'r.json'}", "--force"]
    assert " s  evaluate" not in hv(*args).stderr
    assert " s  evaluate" in hv("-q", *args, "-v").stderr
    r = hv("-v", *args, "-q")
    assert r.stderr == ""
    r = hv(*args, "--log-level", "loud")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


# -- the filters as functions ---------------------------------------------------------------------------


def test_filter_values_are_checked() -> None:
    catalog = load_catalog()
    assert measure_key("11.3", catalog) == "11.3" and measure_key(" 11.3.10 ", catalog) == "11.3.10"
    with pytest.raises(SelectionError, match="unknown measure or section"):
        measure_key("11.30", catalog)
    assert [s.value for s in parse_statuses(["FAIL, error", "fail", "not_applicable"])] == [
        "fail",
        "error",
        "not_applicable",
    ]
    with pytest.raises(SelectionError, match="unknown status 'n/a'"):
        parse_statuses(["n/a"])
    assert not Selection().active and Selection(skip_host=True).active


def test_collect_and_other_commands_take_q_and_v_after_their_name(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle), "-q")
    assert r.returncode == 0 and r.stderr == "" and bundle.exists()
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle), "--force", "-v")
    assert r.returncode == 0 and " s  collector libvirt" in r.stderr and "wrote " in r.stderr
    r = hv("history", "-q", "--db", str(tmp_path / "h.sqlite3"))
    assert r.returncode == 0, r.stderr


def test_an_in_process_run_leaves_the_process_logging_as_it_found_it() -> None:
    """`-q` raises the hvguard logger to ERROR for its run only: a program (or test) that runs hvguard
    in-process and logs under `hvguard.*` afterwards still gets its records."""
    import logging

    from hvguard.cli.app import run

    logger = logging.getLogger("hvguard")
    assert run(["-q", "catalog", "--format", "json"]) == 0
    assert logger.level == logging.NOTSET
    assert not [h for h in logger.handlers if type(h).__name__ == "_Stderr"]
