"""VM names from hosts hvguard does not trust (offline roots, bundles, SSH answers) may carry ANSI
escapes, CR/LF, C1 and bidi controls, or shell syntax. The terminal table, Markdown, HTML and CSV show them
as visible escapes (no line redrawn or forged, one CSV line per finding), JSON keeps the raw value, and
every suggested fix names the VM as one shell word that runs nothing else."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
BUNDLE = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
SRC = Path(__file__).resolve().parent.parent / "src"

ESC_NAME = "\x1b[32mPASS\x1b[0m"
LF_NAME = "a\nFAIL fake line"
CR_BIDI_NAME = "b\rPASS \u202egnp.exe\u0085"


def hostile_bundle(tmp: Path) -> tuple[Path, list[str]]:
    """The test-driver bundle with its VMs renamed: ANSI, LF, CR + bidi + C1, and shell syntax."""
    doc = json.loads(gzip.decompress(BUNDLE.read_bytes()))
    shell_name = f"web; touch {tmp}/pwned #"
    names = [CR_BIDI_NAME, LF_NAME, ESC_NAME, shell_name]  # kvm-hardened, kvm-off, qemu-loose, transient
    for vm, name in zip(doc["targets"][0]["hypervisor"]["vms"], names, strict=True):
        vm["name"] = name
    out = tmp / "hostile.json"
    out.write_text(json.dumps(doc))
    return out, names


def evaluate(bundle: Path, fmt: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "evaluate", str(bundle), "--no-history", "--format", fmt],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(SRC), COLUMNS="200"),
    )
    assert r.returncode in (0, 1), r.stderr
    return r.stdout.decode("utf-8")  # bytes as written: no newline translation


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    bundle, names = hostile_bundle(tmp)
    return bundle, names, json.loads(evaluate(bundle, "json"))


def test_json_keeps_the_raw_names(hostile: tuple[Path, list[str], dict[str, Any]]) -> None:
    _bundle, names, report = hostile
    subjects = {r["subject"] for r in report["results"]}
    assert {f"vm:{n}" for n in names} <= subjects


def test_table_shows_escapes_and_forges_no_line(hostile: tuple[Path, list[str], dict[str, Any]]) -> None:
    bundle, _names, _report = hostile
    table = evaluate(bundle, "table")
    assert "\x1b" not in table, "a raw ESC from a VM name reached the terminal"
    assert "\r" not in table and "\u202e" not in table and "\x85" not in table
    assert not [line for line in table.splitlines() if line.lstrip().startswith("FAIL fake line")]
    assert "vm:\\x1b[32mPASS\\x1b[0m" in table and "vm:a\\nFAIL fake line" in table


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_markdown_and_html_show_escapes(fmt: str, hostile: tuple[Path, list[str], dict[str, Any]]) -> None:
    bundle, _names, _report = hostile
    text = evaluate(bundle, fmt)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text and "\x85" not in text
    assert "FAIL fake line" not in [line.strip() for line in text.splitlines()]
    if fmt == "html":
        assert "\\x1b[32mPASS\\x1b[0m" in text


def test_csv_is_one_line_per_finding_and_parses_back(
    hostile: tuple[Path, list[str], dict[str, Any]],
) -> None:
    bundle, _names, report = hostile
    text = evaluate(bundle, "csv")
    assert "\x1b" not in text and "\u202e" not in text
    lines = text.removeprefix("\ufeff").split("\r\n")
    assert lines[-1] == ""
    assert len(lines) - 2 == len(report["results"]), "a cell broke a finding over several lines"
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert len(rows) == len(report["results"])
    assert [r["subject"] for r in rows] == [
        r["subject"].replace("\x1b", "\\x1b").replace("\n", "\\n").replace("\r", "\\r")
        .replace("\u202e", "\\u202e").replace("\x85", "\\x85")
        for r in report["results"]
    ]  # fmt: skip


#: virsh commands whose first argument is the domain.
DOMAIN_COMMAND = re.compile(
    r"virsh (edit|schedinfo|setvcpus|memtune|blkdeviotune|domiftune|setmaxmem|shutdown|start) "
)


def _commands(fix: str) -> list[str]:
    """The shell commands in a fix: each ``virsh …`` from a line (prose before it dropped)."""
    out = []
    for line in fix.splitlines():
        m = re.search(DOMAIN_COMMAND, line)
        if m is None:
            continue
        cmd = line[m.start() :]
        if line.lstrip().startswith("(") and cmd.endswith(")"):
            cmd = cmd[:-1]
        if cmd.startswith("virsh edit ") and "#" not in cmd:
            continue  # "virsh edit NAME: what to change" is an instruction, not a command line
        out.append(cmd)
    return out


def test_fixes_name_the_vm_as_one_shell_word(
    hostile: tuple[Path, list[str], dict[str, Any]], tmp_path: Path
) -> None:
    _bundle, names, report = hostile
    shell_name = names[3]
    checked = 0
    for r in report["results"]:
        name = r["subject"].removeprefix("vm:")
        if name not in names or not r.get("remediation"):
            continue
        for cmd in _commands(r["remediation"]):
            if name == shell_name:
                assert name in shlex.split(cmd, comments=True), cmd
            # Run it in bash with a virsh that prints its arguments: the VM is one argument, nothing runs.
            done = subprocess.run(
                ["bash", "-c", "virsh() { printf '%s\\0' \"$@\"; printf '\\1'; }\n" + cmd],
                capture_output=True,
                timeout=10,
                check=False,
            )
            assert done.returncode == 0, (cmd, done.stderr)
            for call in done.stdout.decode().split("\1")[:-1]:
                args = call.split("\0")[:-1]
                assert args[1] == name, (cmd, args)
            checked += 1
    assert checked >= 4, "no fix named a hostile VM"
    assert not (Path(shell_name.split()[2]).exists()), "a fix ran the command in a VM name"


def test_history_diff_table_shows_escapes() -> None:
    from rich.console import Console

    from hvguard.cli.history_render import _transitions_table
    from hvguard.history.compare import Transition

    t = Transition(
        target="local", subject=f"vm:{ESC_NAME}", measure="11.3.10", kind="changed", old="pass",
        new="fail", old_statuses=(), new_statuses=(), message=f"{LF_NAME}: no CPU quota",
    )  # fmt: skip
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(_transitions_table([t]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in text and "FAIL fake line" not in [line.strip() for line in text.splitlines()]
    assert "\\x1b[32mPASS" in text and "a\\nFAIL fake line" in text
