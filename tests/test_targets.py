"""Targets that cannot be used, end to end (subprocess): one line on stderr, exit 2, nothing written.

Usage errors (a URI that does not parse, an unknown scheme, driver or transport, a qemu path the driver
does not serve, a test-driver file that does not exist) are refused before anything is collected. A
target of which nothing could be collected is one line and exit 2 on its own, ``not_assessed`` beside
others. Neither libvirt nor libxml2 writes anything of its own to stderr. Real components only: libvirt's
test driver, closed loopback ports, a real sshd (tests/sshd_env.py) with a host key nobody trusts yet.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sshd_env import Sshd, free_port

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
NODE_URI = f"test://{NODE}"


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin; never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (exit 2, nothing on stdout)."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == "", done.stdout[:500]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvguard: error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("qemu:///sytem", "the qemu driver has no path '/sytem' (qemu:///system or qemu:///session); did you "
                          "mean '/system'?"),
        ("qemu+ssh://hv1/sysem", "did you mean '/system'?"),
        ("test:///nonexistent-hvguard.xml", "no such file /nonexistent-hvguard.xml"),
        ("test:///etc", "/etc is not a regular file"),
        ("foo://x", "unknown scheme 'foo'"),
        ("kvm:///system", "KVM hosts are reached as qemu:///system"),
        ("qemu+sssh://hv1/system", "unknown libvirt transport 'sssh'"),
        ("qemu://hv1:99999/system", "the port must be a number"),
        ("ssh://bad host", "'bad host' is not a host name or address"),
        ("qemu:///sy\nstem", "qemu:///sy\\nstem: a target cannot contain control characters"),
        ("/var/lib/x.xml", "not a target"),
    ],
)  # fmt: skip
def test_an_unusable_target_is_one_line_and_exit_2_with_nothing_written(
    target: str, says: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    line = one_error_line(hv("scan", target, "--format", "json", "--output", str(out), "--no-history"))
    assert says in line and not out.exists(), line
    bundle = tmp_path / "bundle.json"
    assert says in one_error_line(hv("collect", target, "--output", str(bundle)))
    assert not bundle.exists()


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    """A loopback TCP port that records whether anything connected to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.settimeout(0.5)
        yield sock


def test_a_bad_target_is_refused_before_any_other_target_is_contacted(
    listener: socket.socket, tmp_path: Path
) -> None:
    port = listener.getsockname()[1]
    good = f"qemu+tcp://127.0.0.1:{port}/system"
    one_error_line(hv("scan", good, "qemu:///sytem", "--no-history"))
    one_error_line(hv("collect", good, "foo://x", "--output", str(tmp_path / "b.json")))
    with pytest.raises(TimeoutError):
        listener.accept()  # libvirt never connected: the list was checked first


def test_libvirt_and_libxml2_print_nothing_of_their_own(tmp_path: Path) -> None:
    """A node file that names a missing domain file: libxml2 used to print "I/O warning : failed to load
    external entity" twice; the esx driver, libvirt's own "info"/"warning" log lines. Now: one line."""
    node = tmp_path / "node.xml"
    missing = tmp_path / "missing-domain.xml"
    node.write_text(f'<node>\n  <domain type="test" file="{missing}"/>\n</node>\n')
    line = one_error_line(hv("scan", f"test://{node}", "--no-history"))
    assert f"test://{node}: unreachable: " in line and "failed to parse xml document" in line, line
    line = one_error_line(hv("scan", "esx://127.0.0.1:1", "--no-history"))
    assert "esx://127.0.0.1:1: unreachable: " in line
    # Beside a good target the broken one is not assessed, and still nothing else reaches stderr.
    done = hv("scan", NODE_URI, f"test://{node}", "--format", "json", "--no-history")
    assert done.returncode == 1 and done.stderr == "", done.stderr
    assert [t["verdict"] for t in json.loads(done.stdout)["targets"]][1] == "not_assessed"


def test_an_unreachable_single_target_is_one_line_naming_it_and_the_cause(tmp_path: Path) -> None:
    port = free_port()
    for target, cause in (
        (f"qemu+tcp://127.0.0.1:{port}/system", "Connection refused"),
        (f"ssh://root@127.0.0.1:{port}", "connection refused"),
    ):
        out = tmp_path / "r.json"
        line = one_error_line(hv("scan", target, "--format", "json", "--output", str(out), "--no-history"))
        assert line.startswith(f"hvguard: error: {target}: unreachable: ") and cause in line, line
        assert not out.exists()
    # Several targets, none collected: a report (the contract), every target not assessed, every
    # measure an error — never a pass or N/A by absence.
    dead = (f"qemu+tcp://127.0.0.1:{port}/system", f"ssh://root@127.0.0.1:{port}")
    done = hv("scan", *dead, "--format", "json", "--no-history")
    assert done.returncode == 1 and done.stderr == "", done.stderr
    rep = _report(done)
    assert [t["verdict"] for t in rep["targets"]] == ["not_assessed", "not_assessed"]
    assert set(rep["summary"]["by_measure"].values()) == {"error"} and rep["summary"]["not_assessed"] == 2
    # collect of nothing: one line with every cause, nothing written.
    bundle = tmp_path / "b.json"
    line = one_error_line(hv("collect", *dead, "--output", str(bundle)))
    assert line.startswith("hvguard: error: nothing collected: ") and all(t in line for t in dead), line
    assert not bundle.exists()


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _results_of(rep: dict[str, Any], target: str) -> list[tuple[str, str, str, str]]:
    return sorted((r["measure"], r["subject"], r["status"], r["message"]) for r in rep["results"]
                  if r["target"] == target)  # fmt: skip


def test_one_unreachable_target_in_an_estate_is_not_assessed_and_changes_no_other_verdict() -> None:
    """The test-driver estate alone, then beside a closed loopback SSH port: the same findings, the same
    roll-up of all 36 measures, the same verdict; the dead target is not_assessed and counted."""
    dead = f"ssh://root@127.0.0.1:{free_port()}"
    alone = _report(hv("scan", NODE_URI, "--format", "json", "--no-history"))
    done = hv("scan", NODE_URI, dead, "--format", "json", "--no-history")
    assert done.returncode == 1 and done.stderr == "", done.stderr
    both = _report(done)
    assert both["summary"]["by_measure"] == alone["summary"]["by_measure"]
    assert len(both["summary"]["by_measure"]) == 36
    assert _results_of(both, NODE_URI) == _results_of(alone, NODE_URI)
    assert [t["verdict"] for t in both["targets"]] == [alone["targets"][0]["verdict"], "not_assessed"]
    assert both["summary"]["by_target"][NODE_URI] == alone["summary"]["by_target"][NODE_URI]
    assert both["summary"]["by_target"][dead]["verdict"] == "not_assessed"
    assert both["summary"]["not_assessed"] == 1 and alone["summary"]["not_assessed"] == 0
    (dead_target,) = [t for t in both["targets"] if t["id"] == dead]
    assert "connection refused" in dead_target["unreachable"]
    # Never silently skipped: its measures are errors in the results, just not in the estate's roll-up.
    assert {r["status"] for r in both["results"] if r["target"] == dead} == {"error"}
    never = hv("scan", NODE_URI, dead, "--format", "json", "--fail-on", "never", "--no-history")
    assert never.returncode == 0, never.stderr
    table = hv("scan", NODE_URI, dead, "--no-history").stdout
    assert "NOT ASSESSED" in table and f"{dead}: nothing could be collected" in table


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    server = Sshd()
    try:
        server.authorize("root")
        server.start()
        yield server
    finally:
        server.stop()


def test_an_unknown_ssh_host_key_is_one_line_with_the_hint_first(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    target = sshd.target("root")
    args = ("--known-hosts", str(known), "--identity", str(sshd.client_key), "--no-history")
    line = one_error_line(hv("scan", target, *args))
    assert line.startswith(
        f"hvguard: error: {target}: unreachable: unknown host key: use --accept-new-host-key to trust it "
        f"on first use, or add it to {known} "
    ), line
    assert f"[127.0.0.1]:{sshd.port}, SHA256:" in line and known.read_text() == ""
    # Beside a reachable estate the same host is not_assessed with the same hint.
    done = hv("scan", NODE_URI, target, *args, "--format", "json")
    assert done.returncode == 1 and done.stderr == "", done.stderr
    rep = _report(done)
    (ssh_target,) = [t for t in rep["targets"] if t["id"] == target]
    assert ssh_target["verdict"] == "not_assessed"
    assert ssh_target["unreachable"].startswith("unknown host key: use --accept-new-host-key")


def test_a_bundle_with_an_unreachable_target_evaluates_it_as_not_assessed(tmp_path: Path) -> None:
    """collect writes what it could (exit 1) and evaluate gives the scan's verdicts from the bundle."""
    dead = f"qemu+tcp://127.0.0.1:{free_port()}/system"
    bundle = tmp_path / "estate.json"
    done = hv("collect", NODE_URI, dead, "--output", str(bundle))
    assert done.returncode == 1 and bundle.exists() and f"unreachable: {dead}" in done.stderr, done.stderr
    replay = hv("evaluate", str(bundle), "--format", "json", "--no-history")
    assert replay.returncode == 1, replay.stderr
    rep = _report(replay)
    live = _report(hv("scan", NODE_URI, dead, "--format", "json", "--no-history"))
    assert rep["summary"]["by_target"] == live["summary"]["by_target"]
    assert rep["summary"]["by_measure"] == live["summary"]["by_measure"]
    assert [t["verdict"] for t in rep["targets"]][1] == "not_assessed" and rep["summary"]["not_assessed"] == 1
    never = hv("evaluate", str(bundle), "--fail-on", "never", "--format", "json", "--no-history")
    assert never.returncode == 0, never.stderr
