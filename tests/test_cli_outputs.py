"""Several outputs from one run (-o FORMAT:PATH), what the output options refuse, and the terminal report
(COLUMNS, fixes never wrapped, every selected finding listed), through the ``hvguard`` entry point."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from factories import good_vm, target
from hvguard.cli.errors import UserError
from hvguard.cli.output import OutputSpec, parse_outputs
from hvguard.engine import evaluate
from hvguard.facts import VcpuFacts
from hvguard.findings import Status
from hvguard.profile import default_profile
from hvguard.report import FORMATS
from hvguard.report.common import LABEL
from hvguard.report.table import _label, render

DATA = Path(__file__).parent / "data"
BUNDLE = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
EXT = {"json": "json", "html": "html", "sarif": "sarif", "csv": "csv", "junit": "xml", "markdown": "md",
       "table": "txt", "oscal": "oscal.json", "hdf": "hdf.json"}  # fmt: skip
# What differs between two runs of the same evidence: the time a report was written and OSCAL's random
# document uuids.
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def hv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=None if env is None else {**os.environ, **env},
        timeout=120,
        check=False,
    )


def masked(data: bytes) -> bytes:
    """``data`` with timestamps and uuids blanked."""
    text = _UUID.sub("UUID", _STAMP.sub("STAMP", data.decode("utf-8")))
    return text.encode("utf-8")


def test_all_formats_from_one_run_match_single_format_runs(tmp_path: Path) -> None:
    assert set(EXT) == set(FORMATS)
    many = tmp_path / "many"
    many.mkdir()
    args = [a for fmt, ext in EXT.items() for a in ("-o", f"{fmt}:{many / ('r.' + ext)}")]
    r = hv("evaluate", str(BUNDLE), "--no-history", *args, "-o", "json:-")
    assert r.returncode == 1, r.stderr
    # One line per file written, none for standard output.
    assert [line.split(" (")[0] for line in r.stderr.splitlines()] == [
        f"wrote {many / ('r.' + ext)}" for ext in EXT.values()
    ]
    assert r.stdout.encode() == (many / "r.json").read_bytes()
    stamp = json.loads(r.stdout)["generated_at"]
    for fmt in ("html", "sarif", "markdown"):  # one stamp for every output of the run
        assert stamp in (many / f"r.{EXT[fmt]}").read_text(), fmt
    for fmt, ext in EXT.items():
        single = tmp_path / f"single.{ext}"
        r = hv("evaluate", str(BUNDLE), "--no-history", "--format", fmt, "--output", str(single))
        assert r.returncode == 1, r.stderr
        assert masked(single.read_bytes()) == masked((many / f"r.{ext}").read_bytes()), fmt


def test_a_plain_output_path_takes_the_format_option(tmp_path: Path) -> None:
    odd = tmp_path / "odd:name.json"  # "…/odd" is no format name: the whole value is a path
    r = hv("evaluate", str(BUNDLE), "--no-history", "-o", str(odd), "--format", "json")
    assert r.returncode == 1, r.stderr
    assert json.loads(odd.read_text())["schema"] == "hvguard.report/1"
    assert r.stderr.startswith(f"wrote {odd} (json, ")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--format", "json", "--format", "html"], "--format given more than once"),
        (["--format", "json", "-o", "html:{d}/a.html"], "--format cannot be combined"),
        (["-o", "{d}/a.json", "-o", "html:{d}/a.html"], "has no format"),
        (["-o", "{d}/a.json", "-o", "{d}/b.json"], "-o PATH given more than once"),
        (["-o", "json:-", "-o", "sarif:-"], "more than one output to standard output"),
        (["-o", "json:{d}/a.json", "-o", "sarif:{d}/./a.json"], "named by two outputs"),
        (["-o", "json:"], "missing PATH after 'json:'"),
    ],
)
def test_output_option_misuse_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    r = hv("evaluate", str(BUNDLE), "--no-history", *(a.format(d=tmp_path) for a in args))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("hvguard: error: ") and r.stderr.count("\n") == 1 and says in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_one_refused_destination_writes_none(tmp_path: Path) -> None:
    kept = tmp_path / "old.sarif"
    kept.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(kept)
    for refused, says in ((kept, "exists; pass --force"), (link, "symbolic link")):
        fmt = "sarif" if refused == kept else "csv"
        r = hv("evaluate", str(BUNDLE), "--no-history", "-o", f"json:{tmp_path / 'new.json'}",
               "-o", f"{fmt}:{refused}", "-o", "table:-")  # fmt: skip
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and says in r.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "old.sarif"]
        assert kept.read_text() == "keep me\n"
    r = hv("evaluate", str(BUNDLE), "--no-history", "-o", f"json:{tmp_path / 'new.json'}",
           "-o", f"sarif:{kept}", "--force")  # fmt: skip
    assert r.returncode == 1 and json.loads(kept.read_text())["version"] == "2.1.0"


def test_a_fifo_among_the_outputs_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE) as reader:
        r = hv("evaluate", str(BUNDLE), "--no-history", "-o", f"junit:{fifo}",
               "-o", f"json:{tmp_path / 'r.json'}")  # fmt: skip
        got, _ = reader.communicate(timeout=60)
    assert r.returncode == 1, r.stderr
    assert got.startswith(b"<?xml") and fifo.is_fifo()


def test_parse_outputs_by_the_contract() -> None:
    fmts = set(FORMATS)
    assert parse_outputs([], [], fmts) == (OutputSpec("table", None),)
    assert parse_outputs(["-"], ["json"], fmts) == (OutputSpec("json", None),)
    assert parse_outputs(["r.txt"], [], fmts) == (OutputSpec("table", Path("r.txt")),)
    assert parse_outputs(["html:a:b.html", "json:-"], [], fmts) == (
        OutputSpec("html", Path("a:b.html")),
        OutputSpec("json", None),
    )
    with pytest.raises(UserError, match="more than one output to standard output"):
        parse_outputs(["table:-", "json:-"], [], fmts)


# -- the terminal report ---------------------------------------------------------------------------------


def _fix_lines(stdout: str) -> list[str]:
    """Every line of the remediations printed (``fix:`` lines and their continuation lines)."""
    out, inside = [], False
    for line in stdout.splitlines():
        if line.startswith("      fix: "):
            inside = True
            out.append(line.removeprefix("      fix: "))
        elif inside and line.startswith("        "):
            out.append(line.removeprefix("        "))
        else:
            inside = False
    return out


@pytest.mark.parametrize("columns", [60, 100, 220])
def test_piped_output_honours_columns_and_never_wraps_a_fix(columns: int) -> None:
    r = hv("evaluate", str(BUNDLE), "--no-history", env={"COLUMNS": str(columns)})
    assert r.returncode == 1, r.stderr
    rep = json.loads(hv("evaluate", str(BUNDLE), "--no-history", "-o", "json:-").stdout)
    fixes = _fix_lines(r.stdout)
    wanted = [
        line
        for x in rep["results"]
        if x["status"] in ("error", "fail", "warn", "manual") and x["remediation"]
        for line in x["remediation"].strip().splitlines()
    ]
    assert fixes == wanted  # every fix line whole, in order: none broken mid-command
    other = [line for line in r.stdout.splitlines() if not line.startswith("      fix: ") and line.rstrip()]
    longest = max(len(line.rstrip()) for line in other if not any(line.endswith(f) for f in fixes))
    assert longest <= columns
    if columns > 160:  # wider than the old fixed 160 when COLUMNS says so
        assert longest > 160


def test_every_selected_finding_is_listed_not_five_per_measure() -> None:
    vms = [good_vm(f"big{i}", vcpu=VcpuFacts(maximum=512)) for i in range(8)]
    text = render(evaluate([target(vms)], default_profile()))
    listed = re.findall(r"FAIL vm:(big\d): .*vCPU", text)
    assert sorted(set(listed)) == [f"big{i}" for i in range(8)]
    assert "more (see --format json)" not in text


def test_status_labels_are_the_shared_ones() -> None:
    assert {s.value: _label(s).plain for s in Status} == LABEL
    assert _label(Status.NOT_APPLICABLE).plain == "N/A"
