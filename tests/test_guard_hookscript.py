"""The sh hook script ``guard install`` writes (hvguard/guard/hook_script.sh), run as libvirt runs it.

The Python hook behind it is a stand-in package (``hvguard.guard.hook`` on a private PYTHONPATH) that
hangs, crashes, writes to stdout or records that it ran — what the script must survive: a hard timeout,
``on_error`` applied by the script itself with one stderr line, a syslog line and a decision record, no
byte on stdout, and no Python at all for events and domains it does not judge.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvguard.guard.install import HOOK_PYTHON_FLAGS, render_hook, shell_quote

STANDIN_HOOK = """
import os, sys, time


def entry():
    state = sys.argv[sys.argv.index("--state-dir") + 1]
    open(os.path.join(state, "ran"), "a").write(" ".join(sys.argv[1:]) + "\\n")
    behaviour = open(os.path.join(state, "behaviour")).read().strip()
    sys.stdin.read()
    if behaviour == "hang":
        time.sleep(60)
    elif behaviour == "crash":
        sys.exit(3)
    elif behaviour == "stdout":
        os.write(1, b"<domain>replacement</domain>")
        print("more on stdout")
    elif behaviour == "refuse":
        print("hvguard guard: refused " + sys.argv[-4] + ": 11.3.3 too many vCPUs", file=sys.stderr)
        sys.exit(1)
"""


def _standin(root: Path) -> Path:
    pkg = root / "hvguard" / "guard"
    pkg.mkdir(parents=True)
    (root / "hvguard" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "hook.py").write_text(STANDIN_HOOK)
    # the script's entry is the warm client; the stand-in has no warm decider, only its cold "hook"
    (pkg / "warm.py").write_text("from hvguard.guard.hook import entry as client_entry\n")
    return root


class Syslog:
    """A Unix datagram socket standing in for /dev/log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(5)

    def lines(self) -> list[str]:
        out = []
        self.sock.settimeout(0.5)
        try:
            while True:
                out.append(self.sock.recv(65536).decode())
        except TimeoutError:
            pass
        return out


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[Syslog]:
    s = Syslog(tmp_path / "log.sock")
    yield s
    s.sock.close()


def _script(
    tmp_path: Path, syslog: Syslog | None, *, on_error: str = "deny", timeout: int = 10
) -> tuple[Path, Path]:
    # a state directory with a space and a quote in its name: the script's quoting must hold
    state_dir = tmp_path / "state it's"
    state_dir.mkdir()
    state = {
        "python": sys.executable,
        "python_flags": HOOK_PYTHON_FLAGS,
        "python_path": str(_standin(tmp_path / "standin")),
        "domains": "hvg-test-*",
        "timeout_seconds": timeout,
        "on_error": on_error,
        "mode": "enforce",
        "syslog_socket": str(syslog.path) if syslog else None,
    }
    script = tmp_path / "50-hvguard"
    script.write_text(render_hook(state, state_dir))
    script.chmod(0o755)
    return script, state_dir


def _records(state: Path) -> list[dict]:
    """decisions.jsonl, each line checked against the published hvguard.guard-decision/1 schema."""
    from jsonschema import Draft202012Validator

    from hvguard.schemas import shipped_text

    validator = Draft202012Validator(json.loads(shipped_text("guard-decision")))
    out = [json.loads(x) for x in (state / "decisions.jsonl").read_text().splitlines()]
    for rec in out:
        errors = [e.message for e in validator.iter_errors(rec)]
        assert not errors, errors
    return out


def _run(script: Path, *args: str, xml: bytes = b"<domain/>") -> subprocess.CompletedProcess[bytes]:
    # libvirt's hook environment: LC_ALL, PATH and HOME only
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    return subprocess.run(
        [str(script), *args], input=xml, capture_output=True, env=env, timeout=60, check=False
    )


def test_shell_quote_survives_quotes_and_spaces() -> None:
    for value in ["plain", "it's", "a b", "'", "$(id)", "`x`", "\\n"]:
        out = subprocess.run(["sh", "-c", f"printf %s {shell_quote(value)}"], capture_output=True, text=True)
        assert out.stdout == value


def test_a_judged_start_runs_the_hook_and_passes_its_answer(tmp_path: Path, syslog: Syslog) -> None:
    script, state = _script(tmp_path, syslog)
    (state / "behaviour").write_text("refuse")
    p = _run(script, "hvg-test-1-a", "prepare", "begin", "-")
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == "hvguard guard: refused hvg-test-1-a: 11.3.3 too many vCPUs"
    assert "--syslog-socket" in (state / "ran").read_text()
    (state / "behaviour").write_text("allow")
    assert _run(script, "hvg-test-1-a", "restore", "begin", "-").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("hvg-test-1-a", "start", "begin", "-"),
        ("hvg-test-1-a", "started", "begin", "-"),
        ("hvg-test-1-a", "release", "end", "-"),
        ("hvg-test-1-a", "migrate", "end", "-"),
        ("other-vm", "prepare", "begin", "-"),  # not in the domains glob
    ],
)
def test_events_and_domains_not_judged_never_start_python(tmp_path: Path, args: tuple[str, ...]) -> None:
    script, state = _script(tmp_path, None)
    (state / "behaviour").write_text("refuse")
    p = _run(script, *args)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    assert not (state / "ran").exists()


def test_a_hung_hvguard_is_killed_and_on_error_deny_refuses(tmp_path: Path, syslog: Syslog) -> None:
    script, state = _script(tmp_path, syslog, timeout=1)
    (state / "behaviour").write_text("hang")
    t0 = time.monotonic()
    p = _run(script, "hvg-test-1-a", "prepare", "begin", "-")
    took = time.monotonic() - t0
    assert took < 10, f"the hook hung for {took:.1f} s"
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == (
        "hvguard guard failed (timed out after 1 s); on-error=deny: refused hvg-test-1-a"
    )
    (line,) = syslog.lines()
    assert "hvguard-guard" in line and 'outcome="refused"' in line and 'domain="hvg-test-1-a"' in line
    assert line.startswith("<") and ">1 " in line[:8]  # RFC 5424: <PRI>1 TIMESTAMP …
    (rec,) = _records(state)
    assert rec["schema"] == "hvguard.guard-decision/1"
    assert (rec["domain"], rec["outcome"], rec["reason"], rec["operation"]) == (
        "hvg-test-1-a", "refused", "hvguard-error", "prepare"
    )  # fmt: skip
    assert rec["error"] == "timed out after 1 s"
    assert (state / "decisions.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_crash_with_on_error_allow_allows_and_says_so(tmp_path: Path, syslog: Syslog) -> None:
    script, state = _script(tmp_path, syslog, on_error="allow")
    (state / "behaviour").write_text("crash")
    p = _run(script, "hvg-test-1-a", "migrate", "begin", "-")
    assert p.returncode == 0 and p.stdout == b""
    assert p.stderr.decode().strip() == (
        "hvguard guard failed (exit status 3); on-error=allow: allowed hvg-test-1-a"
    )
    (rec,) = _records(state)
    assert (rec["outcome"], rec["operation"]) == ("allowed", "migrate")
    assert 'outcome="allowed"' in syslog.lines()[0]


def test_nothing_reaches_stdout_even_when_hvguard_writes_there(tmp_path: Path) -> None:
    script, state = _script(tmp_path, None)
    (state / "behaviour").write_text("stdout")
    p = _run(script, "hvg-test-1-a", "restore", "begin", "-")
    assert (p.returncode, p.stdout) == (0, b"")


def test_a_hostile_domain_name_is_not_written_into_the_record(tmp_path: Path) -> None:
    script, state = _script(tmp_path, None)
    (state / "behaviour").write_text("crash")
    name = 'hvg-test-1-"x"},{"y'
    p = _run(script, name, "prepare", "begin", "-")
    assert p.returncode == 1
    (rec,) = _records(state)
    assert rec["domain"] == "?" and rec["outcome"] == "refused"


def test_a_missing_interpreter_follows_on_error(tmp_path: Path) -> None:
    script, _ = _script(tmp_path, None)
    text = script.read_text().replace(f"PY={shell_quote(sys.executable)}", "PY='/nonexistent/python3'")
    script.write_text(text)
    p = _run(script, "hvg-test-1-a", "prepare", "begin", "-")
    assert p.returncode == 1
    assert p.stderr.decode() == (
        "hvguard guard failed (cannot run /nonexistent/python3 (exit 127)); "
        "on-error=deny: refused hvg-test-1-a\n"
    )


def test_an_unexpired_break_glass_allows_even_when_hvguard_fails(tmp_path: Path) -> None:
    import datetime as dt

    from hvguard.guard.statefile import append_line

    script, state = _script(tmp_path, None, timeout=1)
    (state / "behaviour").write_text("hang")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def entry(domain: str, minutes: int) -> dict[str, str]:
        until = (now + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        return {"schema": "hvguard.guard-break-glass/1", "domain": domain, "until": until, "reason": "r",
                "by": "root", "at": now.isoformat().replace("+00:00", "Z")}  # fmt: skip

    append_line(state / "break-glass.jsonl", entry("hvg-test-1-a", -5))  # expired
    append_line(state / "break-glass.jsonl", entry("hvg-test-1-b", 30))  # another domain
    assert _run(script, "hvg-test-1-a", "prepare", "begin", "-").returncode == 1
    append_line(state / "break-glass.jsonl", entry("hvg-test-1-a", 30))
    p = _run(script, "hvg-test-1-a", "prepare", "begin", "-")
    assert p.returncode == 0
    assert "on-error=deny: allowed (break-glass until " in p.stderr.decode()
    rec = _records(state)[-1]
    assert (rec["outcome"], rec["reason"]) == ("allowed", "break-glass")
    assert rec["break_glass"]["domain"] == "hvg-test-1-a"


def test_the_hook_goes_to_qemu_d_from_libvirt_6_5_and_to_the_single_file_before(tmp_path: Path) -> None:
    from hvguard.guard.hookdir import hook_path, is_ours

    assert hook_path(tmp_path, (9, 0, 0)) == tmp_path / "qemu.d" / "50-hvguard"
    assert hook_path(tmp_path, (6, 5, 0)) == tmp_path / "qemu.d" / "50-hvguard"
    assert hook_path(tmp_path, (6, 4, 99)) == tmp_path / "qemu"
    assert hook_path(tmp_path, None) == tmp_path / "qemu.d" / "50-hvguard"  # unknown: status says so
    script, _ = _script(tmp_path, None)
    assert is_ours(script)
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\nexit 0\n")
    assert not is_ours(other) and not is_ours(tmp_path / "absent")
