"""The report formats share one data source: helpers for the other report tests, the shared pieces, and
the end-to-end promise — a scan with an exceptions register and attestations gives HTML, CSV, SARIF,
OSCAL, HDF, JUnit and Markdown reports that all agree with the JSON contract."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import defusedxml.ElementTree as DET
import msgspec
import pytest

from factories import conf, good_host, good_vm, target
from hvguard.engine import Evaluation, evaluate
from hvguard.facts import VcpuFacts
from hvguard.findings import Finding, Status, worst
from hvguard.profile import default_profile
from hvguard.report import FORMATS, renderer
from hvguard.report.common import FileRef, cases, file_refs, xml_safe

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GOOD_ROOT = DATA / "roots" / "kvm-good"
WORKFLOW = DATA / "workflow"
AS_OF = "2026-06-01"

#: VM names a hostile or careless host could report: markup, a spreadsheet formula, Markdown.
HOSTILE_VM = "<script>alert(1)</script>"
FORMULA_VM = '=HYPERLINK("http://evil.example","x")'
MARKDOWN_VM = "a|b ![img](http://evil.example/x.png) **bold**"
#: An evidence string with control characters (XML 1.0 cannot carry them) and markup.
HOSTILE_EVIDENCE = "\x1b[31m<b>red</b>\x00\x07 & done"

# The blocks as hvguard.workflow sets them on findings (see Finding.waiver / Finding.attestation).
WAIVER = {
    "id": "EX-900",
    "measure": "11.3.3",
    "scope": {"target": "*", "subject": "vm:db1", "check": "*"},
    "title": "Database VM sized to the host",
    "reference": "RISK-77",
    "days_to_expiry": 213,
    "risk_owner": "Head of Platform",
    "approved_by": "CISO",
    "approved_on": "2026-01-10",
    "expires_on": "2026-12-31",
    "risk_rating": "medium",
    "justification": "Database VM needs all cores until the Q3 hardware refresh.",
    "compensating_controls": "CPU pinning keeps two cores for the host",
}
ATTESTATION = {
    "id": "AT-900",
    "measure": "11.4.9",
    "statement": "The host firewall admits only SSH and libvirt TLS.",
    "attested_by": "R. Patel",
    "attested_on": "2026-05-20",
    "valid_until": "2026-11-20",
    "scope": {"target": "*", "subject": "host", "check": "*"},
    "reference": None,
    "days_to_expiry": 172,
    "evidence": [
        {"path": "evidence/firewall.txt", "sha256": "ab" * 32, "verified": True, "result": "sha256 ok"}
    ],
}


def _rollup(ev: Evaluation, findings: list[Finding]) -> Evaluation:
    per: dict[str, list[Status]] = {m: [] for m in ev.catalog.ids}
    for f in findings:
        per[f.measure].append(f.status)
    counts = Counter(f.status.value for f in findings)
    return msgspec.structs.replace(
        ev,
        findings=tuple(findings),
        by_measure={m: worst(s) for m, s in per.items()},
        by_status={s.value: counts.get(s.value, 0) for s in Status},
    )


def estate(*, extra_vms: int = 0, hostile: bool = True, workflow: bool = True) -> Evaluation:
    """An evaluated estate: a host whose qemu.conf has file:line settings, a failing VM, hostile VM names,
    and (``workflow``) a waived fail and an attested manual finding as the exceptions engine sets them."""
    vms = [good_vm("web1"), good_vm("db1", vcpu=VcpuFacts(maximum=8))]
    if hostile:
        vms += [good_vm(HOSTILE_VM), good_vm(FORMULA_VM), good_vm(MARKDOWN_VM)]
    vms += [good_vm(f"vm{i:04d}") for i in range(extra_vms)]
    host = good_host(
        qemu_conf=conf("/etc/libvirt/qemu.conf", user="root", group="root", security_driver="none")
    )
    ev = evaluate([target(vms, host=host)], default_profile())
    findings = [msgspec.structs.replace(f) for f in ev.findings]
    if workflow:
        for f in findings:
            if f.measure == "11.3.3" and f.subject == "vm:db1" and f.status is Status.FAIL:
                f.original_status, f.status, f.waiver = Status.FAIL, Status.WAIVED, dict(WAIVER)
                f.notes = [*f.notes, "waived by EX-900"]
        # the first manual host finding is attested (which measures still need evidence changes as checks
        # are automated, so it is picked, not named)
        manual = next(f for f in findings if f.status is Status.MANUAL and f.subject == "host")
        manual.original_status, manual.status, manual.method = Status.MANUAL, Status.PASS, "attestation"
        manual.attestation = {**ATTESTATION, "measure": manual.measure}
    if hostile:
        for f in findings:
            if f.subject == f"vm:{HOSTILE_VM}":
                f.evidence = {**f.evidence, "banner": HOSTILE_EVIDENCE}
                f.message = f"{f.message} (guest said: {HOSTILE_EVIDENCE})"
    return _rollup(ev, findings)


def statuses(ev: Evaluation) -> set[str]:
    """The statuses present among the findings."""
    return {f.status.value for f in ev.findings}


def test_the_estate_covers_what_the_reports_must_show() -> None:
    ev = estate()
    assert {"pass", "fail", "manual", "waived"} <= statuses(ev)
    assert any(f.attestation for f in ev.findings) and any(f.waiver for f in ev.findings)
    assert any(file_refs(f.evidence) for f in ev.findings), "no finding names a file:line"


def test_every_format_is_registered_and_renders_text() -> None:
    assert set(FORMATS) == {"table", "json", "html", "sarif", "junit", "csv", "markdown", "oscal", "hdf"}
    ev = estate()
    for fmt in FORMATS:
        out = renderer(fmt)(ev)
        assert isinstance(out, str) and out.endswith("\n") and len(out) > 200, fmt


def test_file_refs_find_setting_sources_and_files() -> None:
    evidence = {
        "security_driver": {"value": "none", "source": "/etc/libvirt/qemu.conf:3"},
        "user": {"value": "root", "source": "/etc/libvirt/qemu.conf:1"},
        "group": {"value": "root", "source": "default (key absent)"},
        "parse": {"file": "/etc/libvirt/qemu.conf"},
        "other": {"file": "/etc/libvirt/libvirtd.conf"},
        "prose": "see /etc/passwd:12 for details",
    }
    assert file_refs(evidence) == [
        FileRef("/etc/libvirt/qemu.conf", 3, "security_driver"),
        FileRef("/etc/libvirt/qemu.conf", 1, "user"),
        FileRef("/etc/libvirt/libvirtd.conf", None, "file"),
    ]
    assert file_refs({}) == [] and file_refs({"source": "host.kvm"}) == []


def test_xml_safe_replaces_what_xml_cannot_carry() -> None:
    assert xml_safe("a\x00b\x1bc\td\ne") == "a\ufffdb\ufffdc\td\ne"


def test_cases_group_per_measure_target_subject_with_the_worst_status() -> None:
    rows = [
        {"measure": "11.1.1", "target": "t", "subject": "host", "status": "pass"},
        {"measure": "11.1.1", "target": "t", "subject": "host", "status": "error"},
        {"measure": "11.1.1", "target": "t", "subject": "vm:a", "status": "fail"},
    ]
    got = [(c.measure, c.subject, c.status, len(c.results)) for c in cases(rows)]
    assert got == [("11.1.1", "host", "error", 2), ("11.1.1", "vm:a", "fail", 1)]


# --- the end-to-end promise ----------------------------------------------------------------------------


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )


class _RowParser(HTMLParser):
    """Collects (measure, target, subject, status, waiver id) of every finding row of the HTML report."""

    def __init__(self) -> None:
        super().__init__()
        self.measure = ""
        self.rows: list[tuple[str, str, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "details" and "measure" in (a.get("class") or "").split():
            self.measure = a["data-measure"]
        if tag == "tr" and a.get("class") == "finding":
            self.rows.append(
                (self.measure, a["data-target"], a["data-subject"], a["data-status"], a["data-waiver"])
            )


Key = tuple[str, str, str, str, str]


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One collected bundle of the test-driver estate, evaluated with the fixture exceptions register and
    attestations into every format (the files an auditor hands over)."""
    tmp = tmp_path_factory.mktemp("audit")
    bundle = tmp / "estate.json.gz"
    r = hv("collect", f"test://{NODE}", "--root", str(GOOD_ROOT), "--output", str(bundle))
    assert r.returncode == 0, r.stderr
    out: dict[str, Path] = {}
    for fmt in ("json", "html", "csv", "sarif", "oscal", "junit", "markdown", "hdf"):
        out[fmt] = tmp / f"report.{fmt}"
        r = hv(
            "evaluate", str(bundle), "--exceptions", str(WORKFLOW / "exceptions.yaml"),
            "--attestations", str(WORKFLOW / "attestations.yaml"), "--as-of", AS_OF, "--no-history",
            "--format", fmt, "--output", str(out[fmt]),
        )  # fmt: skip
        assert r.returncode == 1, (fmt, r.stderr)  # the estate has failures
        # nothing on stderr but the one line naming the file written
        assert r.stderr.startswith(f"wrote {out[fmt]} ({fmt}, ") and r.stderr.count("\n") == 1, r.stderr
    return out


def test_the_audit_has_waived_and_attested_findings(audit: dict[str, Path]) -> None:
    rep = json.loads(audit["json"].read_text())
    assert any(r["status"] == "waived" and r["waiver"] for r in rep["results"])
    assert any(r["attestation"] and r["status"] == "pass" for r in rep["results"])


def test_html_csv_sarif_hdf_and_oscal_agree_finding_by_finding(audit: dict[str, Path]) -> None:
    rep = json.loads(audit["json"].read_text())
    want = Counter(
        (r["measure"], r["target"], r["subject"], r["status"], (r["waiver"] or {}).get("id") or "")
        for r in rep["results"]
    )
    assert sum(want.values()) == len(rep["results"]) > 50

    parser = _RowParser()
    parser.feed(audit["html"].read_text())
    assert Counter(parser.rows) == want, "HTML"

    with audit["csv"].open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert (
        Counter((r["measure"], r["target"], r["subject"], r["status"], r["waiver_id"]) for r in rows) == want
    )

    sarif = json.loads(audit["sarif"].read_text())
    got: Counter[Key] = Counter()
    for res in sarif["runs"][0]["results"]:
        p = res["properties"]
        waiver = res["suppressions"][0]["properties"]["id"] if res.get("suppressions") else ""
        got[(res["ruleId"], p["target"], p["subject"], p["status"], waiver)] += 1
    alerts = Counter({k: n for k, n in want.items() if k[3] not in ("pass", "not_applicable")})
    assert got == alerts, "SARIF"  # passes and N/A are not alerts: counted in the run's properties
    omitted = sarif["runs"][0]["properties"]["omitted"]
    assert omitted["pass"] + omitted["not_applicable"] == sum(want.values()) - sum(alerts.values())

    hdf = json.loads(audit["hdf"].read_text())
    got = Counter()
    for control in hdf["profiles"][0]["controls"]:
        for res in control["results"]:
            h = res["hvguard"]
            got[
                (control["id"], h["target"], h["subject"], h["status"], (h["waiver"] or {}).get("id") or "")
            ] += 1
    assert got == want, "HDF"

    oscal = json.loads(audit["oscal"].read_text())["assessment-results"]
    got = Counter()
    for obs in oscal["results"][0]["observations"]:
        props = {p["name"]: p["value"] for p in obs["props"]}
        got[
            (props["measure"], props["target"], props["subject"], props["status"], props.get("waiver-id", ""))
        ] += 1
    assert got == want, "OSCAL"


def test_junit_and_markdown_agree_with_the_roll_ups(audit: dict[str, Path]) -> None:
    rep = json.loads(audit["json"].read_text())
    worst_of = {(c.measure, c.target, c.subject): c.status for c in cases(rep["results"])}
    root = DET.fromstring(audit["junit"].read_bytes())
    seen = {}
    (tgt,) = {t["id"] for t in rep["targets"]}  # one target: test case names carry no target
    for tc in root.iter("testcase"):
        measure, subject = tc.get("name").split(" ", 1)
        outcome = next((c.tag for c in tc if c.tag in ("failure", "error", "skipped")), "passed")
        seen[(measure, tgt, subject)] = outcome
    expect = {
        "fail": "failure",
        "error": "error",
        "manual": "skipped",
        "not_applicable": "skipped",
        "waived": "skipped",
        "pass": "passed",
        "warn": "passed",
    }
    assert seen == {k: expect[s] for k, s in worst_of.items()}
    md = audit["markdown"].read_text()
    by_measure = rep["summary"]["by_measure"]
    for measure, status in by_measure.items():
        row = f"| {measure} | **"
        assert (row in md) == (status not in ("pass", "not_applicable")), measure
    for r in rep["results"]:
        if r["waiver"]:
            assert r["waiver"]["id"] in md


def fleet() -> Evaluation:
    """Three targets: a normal one, one without a hypervisor connection, and one that was unreachable."""
    ok = target([good_vm("web1")], tid="qemu+ssh://hv1/system")
    host_only = target(with_hypervisor=False, tid="ssh://hv2")
    down = msgspec.structs.replace(
        target(tid="qemu+tls://hv3/system"), host=None, hypervisor=None, unreachable="connection refused"
    )
    return evaluate([ok, host_only, down], default_profile())


def test_every_format_renders_a_fleet_with_an_unreachable_target() -> None:
    ev = fleet()
    assert any(f.status is Status.ERROR and f.target == "qemu+tls://hv3/system" for f in ev.findings)
    for fmt in FORMATS:
        out = renderer(fmt)(ev)
        assert "qemu+tls://hv3/system" in out, fmt
        if fmt not in ("markdown", "table"):  # the summaries name the target, the full reports its error
            assert "connection refused" in out, fmt
    html = renderer("html")(ev)
    assert "unreachable: connection refused" in html and html.count('<tr class="vm"') == 1
    sarif = json.loads(renderer("sarif")(ev))
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any(n["level"] == "error" for n in invocation["toolExecutionNotifications"])
    rows = list(csv.DictReader(io.StringIO(renderer("csv")(ev)[1:])))
    assert {r["target"] for r in rows} == {t.id for t in ev.targets}
    assert DET.fromstring(renderer("junit")(ev).encode()).get("errors") == str(
        sum(1 for c in cases([{"measure": f.measure, "target": f.target, "subject": f.subject,
                               "status": f.status.value} for f in ev.findings]) if c.status == "error")
    )  # fmt: skip
