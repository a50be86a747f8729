"""The libvirt hook's Python entry, run as libvirt runs it: ``python -m hvguard.guard.hook --state-dir
DIR DOMAIN OP SUBOP EXTRA`` in a subprocess, the domain XML on stdin, a state directory built in tmp as
``hvguard guard install`` leaves it (tests/guard_env.py), syslog received on a Unix datagram socket.

Every run also asserts the hook wrote nothing to stdout (libvirt would take it as replacement XML for
migrate and restore).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard_env import (
    decisions,
    hook_modules,
    make_state_dir,
    node_domain_xml,
    run_hook,
    snapshot_bundle,
    syslog_socket,
)
from hvguard.guard.log import format_syslog
from hvguard.guard.record import GuardDecision, Violation

EXCEPTIONS = """\
exceptions:
  - id: EX-HOOK-1
    measure: "11.3.10"
    scope: {subject: "vm:kvm-off"}
    justification: Throttled by the host's machine.slice until sized.
    risk_owner: Head of Platform
    approved_by: CISO
    approved_on: 2026-01-01
    expires_on: 2099-12-31
    risk_rating: low
"""
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<host>\S+) hvguard-guard (?P<pid>\d+) "
    r"decision \[hvguard@32473 (?P<sd>[^\]]*)\] (?P<msg>.+)$"
)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_bundle(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    with syslog_socket(tmp_path / "log.sock") as bound:
        yield bound


def _hook(state: Path, name: str, *, xml: str | bytes | None = None, **kw: object) -> tuple[int, str]:
    proc = run_hook(state, node_domain_xml(name) if xml is None else xml, name, **kw)  # type: ignore[arg-type]
    assert proc.stdout == b"", "the hook must never write to stdout"
    err = proc.stderr.decode()
    assert "Traceback" not in err
    return proc.returncode, err


def test_allowed_domain_exits_0_silently_and_is_recorded(tmp_path: Path, snapshot: Path) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    assert _hook(state, "kvm-hardened") == (0, "")
    [rec] = decisions(state)
    assert (rec["domain"], rec["operation"], rec["mode"], rec["outcome"], rec["reason"]) == (
        "kvm-hardened",
        "prepare",
        "enforce",
        "allowed",
        "compliant",
    )
    assert rec["source"] == "stdin" and rec["policy"]["host_facts_sha256"]
    assert (state / "decisions.jsonl").stat().st_mode & 0o777 == 0o600


def test_refused_in_enforce_is_exit_1_with_one_line_naming_measures_and_fix(
    tmp_path: Path, snapshot: Path, syslog: tuple[Path, socket.socket]
) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    code, err = _hook(state, "kvm-off", syslog=syslog[0])
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("hvguard guard: refused kvm-off: 11.3.10 missing resource limits: no CPU quota")
    assert "(fix: virsh schedinfo kvm-off --config" in err
    [rec] = decisions(state)
    assert (rec["outcome"], rec["reason"]) == ("refused", "violations")
    assert [v["measure"] for v in rec["violations"]] == ["11.3.10"]
    line = syslog[1].recv(65536).decode()
    m = RFC5424.match(line)
    assert m, line
    assert int(m["pri"]) == 3 * 8 + 4  # daemon.warning
    assert (
        'outcome="refused"' in m["sd"] and 'domain="kvm-off"' in m["sd"] and 'measures="11.3.10"' in m["sd"]
    )
    assert m["msg"].startswith("refused kvm-off (violations, mode enforce): 11.3.10")


def test_audit_mode_allows_and_records_the_would_be_refusal(
    tmp_path: Path, snapshot: Path, syslog: tuple[Path, socket.socket]
) -> None:
    state = make_state_dir(tmp_path / "g", snapshot, mode="audit")
    assert _hook(state, "qemu-loose", syslog=syslog[0]) == (0, "")
    [rec] = decisions(state)
    assert (rec["mode"], rec["outcome"], rec["reason"]) == ("audit", "would-refuse", "violations")
    assert {"11.1.1", "11.1.2", "11.3.10"} <= {v["measure"] for v in rec["violations"]}
    assert 'outcome="would-refuse"' in syslog[1].recv(65536).decode()


def test_an_exception_allows_and_the_record_and_syslog_name_it(
    tmp_path: Path, snapshot: Path, syslog: tuple[Path, socket.socket]
) -> None:
    register = tmp_path / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    state = make_state_dir(tmp_path / "g", snapshot, exceptions=register)
    assert _hook(state, "kvm-off", syslog=syslog[0]) == (0, "")
    [rec] = decisions(state)
    assert (rec["outcome"], rec["reason"]) == ("allowed", "covered-by-exception")
    assert [c["exception"] for c in rec["covered"]] == ["EX-HOOK-1"]
    line = syslog[1].recv(65536).decode()
    assert 'exceptions="EX-HOOK-1"' in line and "covered by exception EX-HOOK-1" in line


def test_domains_outside_the_glob_and_other_events_pass_without_a_record(
    tmp_path: Path, snapshot: Path
) -> None:
    state = make_state_dir(tmp_path / "g", snapshot, domains="hvg-test-*")
    assert _hook(state, "qemu-loose") == (0, "")
    # Even a tampered policy does not concern a domain the guard does not act on.
    (state / "host-facts.json").write_bytes(b"{}")
    assert _hook(state, "qemu-loose") == (0, "")
    state2 = make_state_dir(tmp_path / "g2", snapshot)
    assert _hook(state2, "qemu-loose", op="started", subop="begin") == (0, "")
    assert decisions(state) == [] and decisions(state2) == []


def test_migrate_and_restore_are_judged_too(tmp_path: Path, snapshot: Path) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    assert _hook(state, "kvm-off", op="migrate")[0] == 1
    assert _hook(state, "kvm-hardened", op="restore") == (0, "")
    assert [(r["operation"], r["outcome"]) for r in decisions(state)] == [
        ("migrate", "refused"),
        ("restore", "allowed"),
    ]


@pytest.mark.parametrize("on_error", ["deny", "allow"])
@pytest.mark.parametrize("damage", ["tampered-policy", "missing-snapshot", "corrupt-state", "bad-xml"])
def test_hvguard_failures_follow_on_error_and_say_so(
    tmp_path: Path, snapshot: Path, on_error: str, damage: str
) -> None:
    register = tmp_path / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    state = make_state_dir(tmp_path / "g", snapshot, on_error=on_error, exceptions=register)
    xml = None
    if damage == "tampered-policy":
        copy = state / "policy" / "exceptions.yaml"
        copy.write_text(EXCEPTIONS.replace("2099-12-31", "2199-12-31"), encoding="utf-8")
        expect = "pinned exceptions file"
    elif damage == "missing-snapshot":
        (state / "host-facts.json").unlink()
        expect = "pinned host_facts file"
    elif damage == "corrupt-state":
        (state / "state.json").write_text('{"schema": "hvguard.guard-state/1", "mode": ', encoding="utf-8")
        expect = "state.json is not valid JSON"
    else:
        xml = "<domain type='kvm'><name>kvm-hardened</name><!DOCTYPE x []></domain>"
        expect = "stdin: invalid XML"
    code, err = _hook(state, "kvm-hardened", xml=xml)
    # A corrupt state cannot say what on_error is: deny, the safe default.
    effective = "deny" if damage == "corrupt-state" else on_error
    assert code == (1 if effective == "deny" else 0)
    assert err.count("\n") == 1 and err.startswith("hvguard guard failed (") and expect in err
    assert err.rstrip().endswith(
        f"on-error={effective}: {'refused' if effective == 'deny' else 'allowed'} kvm-hardened"
    )
    [rec] = decisions(state)
    assert rec["reason"] == "hvguard-error" and expect in rec["error"]
    assert rec["outcome"] == ("refused" if effective == "deny" else "allowed")


def test_a_damaged_compiled_form_falls_back_to_the_pinned_files(tmp_path: Path, snapshot: Path) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    (state / "compiled.pickle").write_bytes(b"not a pickle")
    assert _hook(state, "kvm-off")[0] == 1
    (state / "compiled.pickle").unlink()
    assert _hook(state, "kvm-hardened") == (0, "")
    assert [r["reason"] for r in decisions(state)] == ["violations", "compliant"]


def test_a_compiled_form_of_other_pins_is_not_used(tmp_path: Path, snapshot: Path) -> None:
    """Re-pinned exceptions without a recompile: the hook must judge by the files state.json pins."""
    register = tmp_path / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    state = make_state_dir(tmp_path / "g", snapshot, exceptions=register)
    compiled = (state / "compiled.pickle").read_bytes()
    make_state_dir(state, snapshot, compile_it=False)  # install --update without exceptions
    (state / "compiled.pickle").write_bytes(compiled)  # the old compiled form, still covering kvm-off
    (state / "compiled.pickle").chmod(0o600)
    assert _hook(state, "kvm-off")[0] == 1


def test_break_glass_allows_until_it_expires(tmp_path: Path, snapshot: Path) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    entries = [
        {
            "schema": "hvguard.guard-break-glass/1",
            "domain": "kvm-off",
            "until": "2000-01-01T00:00:00Z",
            "reason": "old",
            "by": "root",
            "at": "1999-12-31T23:00:00Z",
        },
        {
            "schema": "hvguard.guard-break-glass/1",
            "domain": "kvm-off",
            "until": "2999-01-01T00:00:00Z",
            "reason": "INC-42 storage fault",
            "by": "root",
            "at": "2026-01-01T00:00:00Z",
        },
        "not json {",
    ]
    (state / "break-glass.jsonl").write_text(
        "\n".join(e if isinstance(e, str) else json.dumps(e) for e in entries) + "\n", encoding="utf-8"
    )
    assert _hook(state, "kvm-off") == (0, "")
    assert _hook(state, "qemu-loose")[0] == 1  # another domain's break-glass does not apply
    rec = decisions(state)[0]
    assert (rec["outcome"], rec["reason"]) == ("allowed", "break-glass")
    assert rec["break_glass"]["reason"] == "INC-42 storage fault"
    assert [v["measure"] for v in rec["violations"]] == ["11.3.10"]  # still recorded


def test_records_are_appended_one_line_each(tmp_path: Path, snapshot: Path) -> None:
    state = make_state_dir(tmp_path / "g", snapshot)
    for name in ("kvm-hardened", "kvm-off", "kvm-hardened"):
        _hook(state, name)
    lines = (state / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["domain"] for x in lines] == ["kvm-hardened", "kvm-off", "kvm-hardened"]


def test_syslog_line_escapes_structured_data_and_stays_one_datagram() -> None:
    rec = GuardDecision(
        at="2026-01-01T00:00:00Z",
        host="hv 1",
        domain='we"ird]\\name',
        operation="prepare",
        mode="enforce",
        outcome="refused",
        reason="violations",
        tool_version="0",
        violations=[Violation(measure="11.3.3", check="c", status="fail", message="x" * 9000)],
    )
    line = format_syslog(rec, pid=7).decode()
    assert line.startswith("<28>1 2026-01-01T00:00:00Z hv1 hvguard-guard 7 decision [hvguard@32473 ")
    assert 'domain="we\\"ird\\]\\\\name"' in line
    assert len(line.encode()) <= 4096


def test_every_record_validates_against_the_shipped_schema(tmp_path: Path, snapshot: Path) -> None:
    import jsonschema

    from hvguard.schemas import shipped_text

    schema = json.loads(shipped_text("guard-decision"))
    validator = jsonschema.Draft202012Validator(schema)
    register = tmp_path / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    state = make_state_dir(tmp_path / "g", snapshot, exceptions=register, mode="audit")
    for name in ("kvm-hardened", "kvm-off", "qemu-loose"):
        _hook(state, name)
    _hook(state, "kvm-hardened", xml="<domain")  # an hvguard-error record
    records = decisions(state)
    assert {r["reason"] for r in records} == {
        "compliant",
        "covered-by-exception",
        "violations",
        "hvguard-error",
    }
    for rec in records:
        validator.validate(rec)
        assert list(rec) == list(schema["$defs"]["GuardDecision"]["properties"])
    broken = {**records[0], "outcome": "maybe"}
    assert not validator.is_valid(broken)


def test_the_compiled_path_imports_no_cli_report_yaml_or_other_platform_checks(
    tmp_path: Path, snapshot: Path
) -> None:
    """The hook's start-up is part of every VM start: with compiled.pickle it must not load click, rich,
    the report package, the YAML parser or the vSphere checks (bench/guard_decide.py times it)."""
    state = make_state_dir(tmp_path / "g", snapshot)
    code, err, loaded = hook_modules(state, "kvm-off", tmp_path / "modules.json")
    assert code == 1 and "refused kvm-off: 11.3.10" in err
    banned = (
        "click",
        "rich",
        "yaml",
        "hvguard.report",
        "hvguard.cli",
        "hvguard.yamlsafe",
        "importlib.resources",
        # a few milliseconds each on every VM start: msgspec structs, CPython's own sha256, msgspec.json
        "dataclasses",
        "inspect",
        "hashlib",
        "_hashlib",
        "json",
        "runpy",
    )
    assert [m for m in loaded if m.split(".")[0] in banned or m.startswith(banned)] == []
    assert "hvguard.checks.s11_3.vcpus" in loaded  # the libvirt checks ran …
    assert not [m for m in loaded if m.startswith("hvguard.checks.") and "vsphere" in m]  # … not vSphere's


def test_a_compiled_form_of_another_hvguard_build_is_not_used(tmp_path: Path, snapshot: Path) -> None:
    """Packaged catalog, check map or default profile changed since compile (an upgrade): the hook
    parses the pinned files again (it imports the YAML reader) and decides the same."""
    import pickle

    state = make_state_dir(tmp_path / "g", snapshot)
    compiled = state / "compiled.pickle"
    payload = pickle.loads(compiled.read_bytes())  # noqa: S301  (the file this test just compiled)
    payload["package"] = {**payload["package"], "catalog/checks.yaml": "0" * 64}
    compiled.write_bytes(pickle.dumps(payload))
    code, err, loaded = hook_modules(state, "kvm-off", tmp_path / "modules.json")
    assert code == 1 and "refused kvm-off: 11.3.10" in err
    assert "yaml" in loaded


@pytest.mark.parametrize("on_error", ["deny", "allow"])
def test_a_decision_that_cannot_be_logged_follows_on_error(
    tmp_path: Path, snapshot: Path, syslog: tuple[Path, socket.socket], on_error: str
) -> None:
    state = make_state_dir(tmp_path / "g", snapshot, on_error=on_error)
    (state / "decisions.jsonl").mkdir()  # appending fails (EISDIR)
    code, err = _hook(state, "kvm-hardened", syslog=syslog[0])
    assert err.count("\n") == 1 and "cannot log the decision" in err
    line = syslog[1].recv(65536).decode()
    if on_error == "deny":
        assert code == 1 and "on-error=deny: refused kvm-hardened" in err
        assert 'reason="hvguard-error"' in line
    else:
        assert code == 0 and err.startswith("hvguard guard: allowed kvm-hardened [cannot log")
        assert 'reason="compliant"' in line
    code, err = _hook(state, "kvm-off")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("hvguard guard: refused kvm-off: 11.3.10") and "[cannot log the decision" in err


def test_pinned_attestations_read_their_evidence_beside_the_original_file(
    tmp_path: Path, snapshot: Path
) -> None:
    """The pinned copy lives in the state dir; relative evidence paths resolve beside the original."""
    from guard_env import DATA

    src = tmp_path / "att" / "attestations.yaml"
    shutil.copytree(DATA / "workflow" / "evidence", src.parent / "evidence")
    text = (DATA / "workflow" / "attestations.yaml").read_text(encoding="utf-8").split("  - id: AT-004")[0]
    src.write_text(text.replace("2026-11-20", "2099-11-20"), encoding="utf-8")
    state = make_state_dir(tmp_path / "g", snapshot, attestations=src)
    assert _hook(state, "kvm-hardened") == (0, "")
    [rec] = decisions(state)
    assert rec["policy"]["attestations_sha256"] and rec["reason"] == "compliant"
    # AT-001's evidence matched (read beside the original): no 11.4.5 evidence error among host findings.
    assert not [h for h in rec["host_findings"] if h["measure"] == "11.4.5"]


def test_break_glass_bypasses_an_hvguard_fault_and_says_so(tmp_path: Path, snapshot: Path) -> None:
    """SS-009 11.2.1: administrators can bypass a fault — a changed pinned file under on-error=deny too."""
    state = make_state_dir(tmp_path / "g", snapshot, on_error="deny")
    (state / "host-facts.json").write_bytes(b"{}")
    entry = {
        "schema": "hvguard.guard-break-glass/1",
        "domain": "kvm-hardened",
        "until": "2999-01-01T00:00:00Z",
        "reason": "INC-7 guard broken",
        "by": "root",
        "at": "2026-01-01T00:00:00Z",
    }
    (state / "break-glass.jsonl").write_text(json.dumps(entry) + "\n", encoding="utf-8")
    code, err = _hook(state, "kvm-hardened")
    assert code == 0 and err.count("\n") == 1
    assert err.startswith(
        "hvguard guard: break-glass allowed kvm-hardened (evaluation failed: pinned host_facts"
    )
    [rec] = decisions(state)
    assert (rec["outcome"], rec["reason"]) == ("allowed", "break-glass")
    assert rec["break_glass"]["reason"] == "INC-7 guard broken" and "pinned host_facts" in rec["error"]
    assert _hook(state, "kvm-off")[0] == 1  # without an entry of its own the fault still denies


def test_the_rendered_script_runs_this_hvguard_isolated_from_the_environment(
    tmp_path: Path, snapshot: Path
) -> None:
    """The script install writes, with the interpreter install records, run as libvirt runs it: Python
    starts with ``-I -S`` and finds this hvguard and its dependencies through the recorded directories
    alone — a PYTHONPATH in the environment (here one holding a hostile ``hvguard``) is not read."""
    import os
    import subprocess
    import sys

    import hvguard
    from hvguard.guard.install import HOOK_PYTHON_FLAGS, interpreter, render_hook

    python, flags, path = interpreter()
    assert (python, flags) == (sys.executable, HOOK_PYTHON_FLAGS)
    assert str(Path(hvguard.__file__).resolve().parent.parent) in path.split(":")
    hostile = tmp_path / "hostile" / "hvguard"
    hostile.mkdir(parents=True)
    (hostile / "__init__.py").write_text("raise SystemExit('the environment was read')\n")
    state = make_state_dir(tmp_path / "g", snapshot, domains="kvm-*")
    values = {"python": python, "python_flags": flags, "python_path": path, "domains": "kvm-*"}
    values |= {
        "timeout_seconds": 30,
        "on_error": "deny",
        "mode": "enforce",
        "syslog_socket": str(tmp_path / "s"),
    }
    script = tmp_path / "50-hvguard"
    script.write_text(render_hook(values, state))
    os.chmod(script, 0o700)
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(hostile.parent), "PYTHONSTARTUP": "/x"}
    for name, code in (("kvm-hardened", 0), ("kvm-off", 1)):
        proc = subprocess.run(
            [str(script), name, "prepare", "begin", "-"],
            input=node_domain_xml(name).encode(),
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert (proc.returncode, proc.stdout) == (code, b""), proc.stderr
        assert ("refused kvm-off: 11.3.10" in proc.stderr.decode()) is (code == 1)
    from hvguard.guard.warm import stop

    stop(str(state))  # the first run left a warm decider (tests/test_guard_warm.py)
    assert [(r["domain"], r["outcome"], r["reason"]) for r in decisions(state)] == [
        ("kvm-hardened", "allowed", "compliant"),
        ("kvm-off", "refused", "violations"),
    ]
