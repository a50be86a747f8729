"""The HTML report: self-contained, escaped, accessible — checked in the file and in a real Chromium.

The browser tests drive Debian's ``chromium`` (installed by ``scripts/setup.sh test``) through
Playwright with a fresh, empty profile directory; they open the report over file://, click the filters,
save a screenshot to ``$HVGUARD_ARTIFACTS`` and run axe-core (bundled by axe-playwright-python) for
WCAG 2.0/2.1/2.2 A and AA rules, which must report zero violations.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from playwright.sync_api import expect, sync_playwright

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.facts import VcpuFacts
from hvguard.profile import default_profile
from hvguard.report.build import report_view
from hvguard.report.common import visible
from hvguard.report.html import CSP, INLINE_LIMIT, html_document, render
from test_report_common import (
    ATTESTATION,
    FORMULA_VM,
    HOSTILE_EVIDENCE,
    HOSTILE_VM,
    WAIVER,
    estate,
    fleet,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse_text(page: str) -> list[str]:
    """The text a person reads (no script, no attribute values)."""
    out: list[str] = []

    class Text(HTMLParser):
        skip = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.skip = tag in ("script", "style")

        def handle_data(self, data: str) -> None:
            if not self.skip:
                out.append(data)

    Text().feed(page)
    return out


def parse(html: str) -> _Tags:
    """Parse ``html`` into its tags."""
    p = _Tags()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def evaluation() -> Any:
    """The hostile estate with a waiver and an attestation."""
    return estate()


@pytest.fixture(scope="module")
def report(evaluation: Any) -> str:
    """The HTML report of the hostile estate (every row inline)."""
    return render(evaluation)


def test_the_report_is_one_self_contained_file(report: str) -> None:
    tags = parse(report)
    loading = [
        (t, a)
        for t, a in tags.tags
        if t in ("link", "img", "iframe", "object", "embed", "audio", "video", "source")
        or (t == "script" and "src" in a)
    ]
    assert loading == []
    for _, attrs in tags.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name, "")
            assert not value or value.startswith("#"), (name, value)
    assert "@import" not in report and "url(" not in report
    # a Content Security Policy forbids any load and any script but ours (by hash)
    meta = [a for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert meta and meta[0]["content"] == CSP and "default-src 'none'" in CSP and "'unsafe-inline'" not in CSP


def test_a_hostile_vm_name_and_evidence_are_escaped(report: str) -> None:
    tags = parse(report)
    assert [t for t, _ in tags.tags].count("script") == 1, "only hvguard's own script"
    assert HOSTILE_VM not in report and "<b>red</b>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "&lt;b&gt;red&lt;/b&gt;" in report and "\x00" not in report and "\x1b" not in report
    assert html.escape(visible(HOSTILE_EVIDENCE)) in report  # control characters shown as \x1b, \x00 …
    # attribute values cannot be broken out of either
    assert f'data-subject="vm:{FORMULA_VM}"' not in report
    assert 'data-subject="vm:=HYPERLINK(&quot;http://evil.example&quot;,&quot;x&quot;)"' in report


def test_structure_for_assistive_technology(report: str) -> None:
    tags = parse(report)
    names = [t for t, _ in tags.tags]
    html_attrs = next(a for t, a in tags.tags if t == "html")
    assert html_attrs["lang"] == "en"
    assert names.count("h1") == 1 and names.count("main") == 1 and "nav" in names and "footer" in names
    skip = next(a for t, a in tags.tags if t == "a")
    assert skip["href"] == "#main" and any(t == "main" and a.get("id") == "main" for t, a in tags.tags)
    # every table header cell says what it heads
    for t, a in tags.tags:
        if t == "th":
            assert a.get("scope") in ("col", "row"), a
    # status is written as text, never colour alone
    for status, label in (("fail", "FAIL"), ("pass", "PASS"), ("waived", "WAIVED"), ("manual", "MANUAL")):
        assert f'<span class="badge s-{status}">{label}</span>' in report


def test_drill_down_shows_evidence_remediation_waiver_and_attestation(report: str) -> None:
    assert 'id="m-11-3-3"' in report and "<summary>" in report
    assert "/etc/libvirt/qemu.conf:3" in report  # a setting's file:line in the evidence table
    assert "<pre><code>virsh setvcpus db1" in report  # remediation verbatim in a code block
    for value in (WAIVER["id"], WAIVER["approved_by"], WAIVER["expires_on"], WAIVER["justification"]):
        assert str(value) in report
    assert "was FAIL" in report and "was MANUAL" in report
    for value in (ATTESTATION["id"], ATTESTATION["attested_by"], ATTESTATION["valid_until"]):
        assert str(value) in report
    assert "No deviations: the packaged default profile was used as is." in report


def data_block(page: str) -> dict[str, Any]:
    """The JSON rows of a large report."""
    m = re.search(r'<script type="application/json" id="hvguard-data">(.*?)</script>', page, re.S)
    assert m, "no data block"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def fill(tpl: str, subject: str, tgt: str) -> str:
    """A row from its template, as the page's script fills it (target back first, then the VM name)."""
    name = subject[3:] if subject.startswith("vm:") else subject
    return tpl.replace("\x02", html.escape(tgt)).replace("\x01", html.escape(name))


def rows_of(page: str, cls: str) -> list[str]:
    """The inline ``<tr class=cls>`` rows of a page (or of one measure's block), in document order."""
    if cls == "vm":
        body = re.search(r'<tbody id="vm-body">(.*?)</tbody>', page, re.S)
    else:  # the findings table is the last table of a measure block; evidence tables nest inside it
        body = re.search(r"</thead><tbody>(.*)</tbody></table></details>", page, re.S)
    assert body
    return [row for row in re.split(f'(?=<tr class="{cls}")', body.group(1)) if row]


def test_a_thousand_vm_estate_carries_its_rows_as_compact_json_that_loses_nothing() -> None:
    ev = estate(extra_vms=1000, hostile=False)
    assert len(ev.findings) > INLINE_LIMIT
    page = render(ev)
    assert '<tr class="finding"' not in page and '<tr class="vm"' not in page
    data = data_block(page)
    findings = {m: [fill(data["t"][t][1], data["s"][s], data["g"][g]) for t, s, g in rows]
                for m, rows in data["m"].items()}  # fmt: skip
    vms = [fill(data["t"][t][1], data["s"][s], data["g"][g]) for t, s, g in data["v"]]
    assert len(vms) == 1002 and sum(map(len, findings.values())) == len(ev.findings) > 8000
    # the same rows, byte for byte and in the same order, as the page with every row inline
    inline = html_document(report_view(ev), inline_limit=len(ev.findings))
    assert vms == rows_of(inline, "vm")
    for block in re.split('(?=<details class="measure")', inline)[1:]:
        measure = re.search(r'data-measure="([^"]+)"', block)
        assert measure and findings[measure.group(1)] == rows_of(block, "finding"), measure.group(1)
    # deduplicated: under 40 bytes a finding, where every row inline takes about 700
    size = len(page.encode())
    assert size < 40 * len(ev.findings) and len(inline.encode()) > 15 * size, (size, len(inline))


def test_hostile_names_cannot_break_out_of_the_json_rows(evaluation: Any) -> None:
    page = html_document(report_view(evaluation), inline_limit=0)
    tags = parse(page)
    assert [a.get("type") for t, a in tags.tags if t == "script"] == ["application/json", None]
    assert HOSTILE_VM not in page and "<b>red</b>" not in page and page.count("</script>") == 2
    data = data_block(page)
    assert f"vm:{HOSTILE_VM}" in data["s"]  # the raw name is data; the page escapes it when it fills a row
    rows = [fill(data["t"][t][1], data["s"][s], data["g"][g]) for rs in data["m"].values() for t, s, g in rs]
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in r for r in rows)
    assert not any(HOSTILE_VM in r for r in rows)


def test_thresholds_are_written_as_values_and_each_status_one_way(report: str) -> None:
    assert "22/tcp, 16514/tcp" in report and "approved_host_accounts</th><td>none</td>" in report
    thresholds = re.search(r"<caption>Thresholds used</caption>.*?</table>", report, re.S)
    assert thresholds and "&#x27;" not in thresholds.group(0) and "(" not in thresholds.group(0)
    # evidence keeps the checks' own keys; everything hvguard writes uses the labels
    text = " ".join(parse_text(re.sub(r'<table class="kv">.*?</table>', "", report, flags=re.S)))
    for spelling in ("not_applicable", "NOT/APPLICABLE", "NOT_APPLICABLE"):
        assert spelling not in text
    assert "N/A" in text


def test_verdict_charts_and_worst_first_order(report: str) -> None:
    # a top-line verdict, the measures needing attention worst first, charts by section and target
    verdict = re.search(r'<p class="verdict" id="verdict">(.*?)</p>', report, re.S)
    assert verdict and "NOT COMPLIANT" in verdict.group(1) and "measures fail" in verdict.group(1)
    attention = re.search(r'<ul class="attn">(.*?)</ul>', report, re.S)
    assert attention
    labels = re.findall(r'class="badge s-(\w+)"', attention.group(1))
    ranks = ["error", "fail", "warn", "manual"]
    assert labels and labels == sorted(labels, key=ranks.index) and "fail" in labels
    for caption in ("Compliance by section, worst first", "Compliance by target, worst first"):
        table = re.search(re.escape(caption) + r".*?</table>", report, re.S)
        assert table and "<svg" in table.group(0), caption
    section_rows = re.search(r"Compliance by section.*?<tbody>(.*?)</tbody>", report, re.S)
    assert section_rows
    worst = re.findall(r'</td><td><span class="badge s-(\w+)"', section_rows.group(1))
    order = ["error", "fail", "warn", "manual", "waived", "pass", "not_applicable"]
    assert len(worst) == 4 and worst == sorted(worst, key=order.index), worst
    # the per-VM view starts with the VMs that fail most; every VM name links to its findings
    ev = evaluate([target([good_vm("fine"), good_vm("big", vcpu=VcpuFacts(maximum=8))])], default_profile())
    vms = rows_of(render(ev), "vm")
    assert ">big</a>" in vms[0] and ">fine</a>" in vms[1]
    vms = rows_of(report, "vm")
    keys = [
        (order.index(re.findall(r'class="badge s-(\w+)"', r)[0]), -r.count("s-fail") - r.count("s-error"))
        for r in vms
    ]
    assert keys == sorted(keys), keys
    assert all('<a class="vmlink" href="#measures"' in r for r in vms)
    # in the drill-down, each section lists its worst measures first
    for sec in re.split('(?=<section class="msection")', report)[1:]:
        rolled = re.findall(r'<details class="measure"[^>]*><summary><span class="badge s-(\w+)"', sec)
        assert rolled and rolled == sorted(rolled, key=order.index), rolled


def test_per_host_chart_and_target_verdicts() -> None:
    ev = fleet()
    page = render(ev)
    chart = re.search(r"Compliance by target.*?<tbody>(.*?)</tbody>", page, re.S)
    assert chart
    names = re.findall(r'class="tlink" href="#measures" data-target="([^"]+)"', chart.group(1))
    assert names[0] == "qemu+tls://hv3/system" and set(names) == {t.id for t in ev.targets}, names
    # the Targets table shows each target's verdict (targets[].verdict), in words
    targets = re.search(r'<section id="targets".*?</section>', page, re.S)
    assert targets and targets.group(0).count('<span class="muted">—</span>') == 0
    view = report_view(ev)
    tgts = [msgspec.structs.replace(t, verdict="not_compliant") for t in view.report.targets]
    tgts[2] = msgspec.structs.replace(tgts[2], verdict="not_assessed")
    view = type(view)(msgspec.structs.replace(view.report, targets=tgts), view.catalog, view.vms)
    targets = re.search(r'<section id="targets".*?</section>', html_document(view), re.S)
    assert targets and targets.group(0).count("NOT COMPLIANT") == 2 and "NOT ASSESSED" in targets.group(0)


# --- a real browser -----------------------------------------------------------------------------------


@functools.cache
def artifacts() -> Path:
    """Where screenshots go: $HVGUARD_ARTIFACTS (set by scripts/test.sh), else a temporary directory."""
    folder = Path(os.environ.get("HVGUARD_ARTIFACTS") or tempfile.mkdtemp(prefix="hvguard-artifacts-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, report: str) -> Path:
    """The report written to a file, opened over file:// (as an auditor opens what they were sent)."""
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(report, encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["inline", "data"])
def any_file(request: Any, tmp_path_factory: pytest.TempPathFactory, report: str, evaluation: Any) -> Path:
    """The report with its rows inline, and the same report with its rows as JSON (as large reports are)."""
    path = tmp_path_factory.mktemp("html") / f"report-{request.param}.html"
    page = report if request.param == "inline" else html_document(report_view(evaluation), inline_limit=0)
    assert ('id="hvguard-data"' in page) == (request.param == "data")
    path.write_text(page, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the module (its sync API allows only one at a time)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh test (it installs Debian's chromium)")
    with sync_playwright() as pw:
        yield pw


def _browser(pw: Any, profile: Path, *, js: bool) -> Iterator[Any]:
    # Debian's chromium with a new, empty profile directory: Playwright's own browser download is not used
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        java_script_enabled=js,
        viewport={"width": 1280, "height": 900},
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def browser(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with JavaScript."""
    yield from _browser(playwright, tmp_path_factory.mktemp("chromium-profile"), js=True)


@pytest.fixture(scope="module")
def browser_nojs(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with JavaScript disabled."""
    yield from _browser(playwright, tmp_path_factory.mktemp("chromium-profile-nojs"), js=False)


def visible_rows(page: Any) -> list[dict[str, str]]:
    """The data attributes of the finding rows a person can see now."""
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "tr.finding",
        "rs => rs.filter(r => !r.closest('[hidden]')).map(r => Object.assign({}, r.dataset))",
    )
    return rows


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the page, printed in full when there are any."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    violations: list[dict[str, Any]] = result.response["violations"]
    for v in violations:
        print(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:10])
    return violations


def shown_rows(page: Any, count: int) -> list[dict[str, str]]:
    """Open every measure the filter shows, wait until ``count`` finding rows are shown (a large report
    renders them when a measure opens) and return their data attributes."""
    page.get_by_role("button", name="Expand all measures").click()
    expect(page.locator("tr.finding:not([hidden])")).to_have_count(count)
    return visible_rows(page)


def test_in_chromium_filters_work_and_nothing_runs_that_should_not(
    browser: Any, any_file: Path, evaluation: Any
) -> None:
    page = browser.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(any_file.as_uri())
    page.wait_for_load_state("load")

    # the hostile VM name is shown as text, and no script of its ran
    assert page.get_by_role("rowheader", name=HOSTILE_VM, exact=True).count() == 1
    assert dialogs == [] and errors == []
    assert requests == [any_file.as_uri()], "the report loaded something besides itself"

    found = Counter(f.status.value for f in evaluation.findings)
    total = len(evaluation.findings)
    default = found["fail"] + found["error"] + found["warn"]
    assert page.locator("#filters").is_visible()
    # the page opens on what needs fixing: FAIL, ERROR and WARN
    rows = shown_rows(page, default)
    assert rows and {r["status"] for r in rows} <= {"error", "fail", "warn"}
    assert page.locator("#filter-count").inner_text().startswith(f"Showing {default} of {total} findings")

    page.get_by_role("button", name="Show everything").click()
    assert len(shown_rows(page, total)) == total
    assert page.locator("#filter-count").inner_text().startswith(f"Showing {total} of {total} findings")

    page.get_by_label("PASS", exact=True).uncheck()
    rows = shown_rows(page, total - found["pass"])
    assert all(r["status"] != "pass" for r in rows)

    page.get_by_role("button", name="Needs attention only").click()
    rows = shown_rows(page, default + found["manual"])
    assert {r["status"] for r in rows} <= {"error", "fail", "warn", "manual"}

    page.get_by_role("button", name="Default filter").click()
    shown_rows(page, default)
    assert page.locator("#none-shown").is_hidden()
    page.get_by_label("Subject contains").fill("no VM is called this")
    expect(page.locator("#none-shown")).to_be_visible()

    page.get_by_role("button", name="Show everything").click()
    page.get_by_label("Section", exact=True).select_option("11.3")
    rows = shown_rows(page, sum(1 for f in evaluation.findings if f.measure.startswith("11.3.")))
    assert rows and {r["section"] for r in rows} == {"11.3"}
    assert page.locator("section.msection#sec-11-1").is_hidden()

    page.get_by_label("Section", exact=True).select_option("")
    page.get_by_label("Subject contains").fill("db1")
    rows = shown_rows(page, sum(1 for f in evaluation.findings if "db1" in f.subject))
    assert rows and all("db1" in r["subject"] for r in rows)
    assert page.locator("tr.vm:not([hidden])").count() == 1

    # a VM's name shows every finding of that VM (and of no VM whose name merely contains it)
    page.get_by_role("button", name="Default filter").click()
    page.get_by_role("link", name="web1", exact=True).click()
    rows = shown_rows(page, sum(1 for f in evaluation.findings if f.subject == "vm:web1"))
    assert {r["subject"] for r in rows} == {"vm:web1"} and len({r["status"] for r in rows}) > 1
    assert page.evaluate("location.hash") == "#measures"

    # a target's name in the chart shows every finding of that target
    page.get_by_role("button", name="Default filter").click()
    page.locator("a.tlink").first.click()
    shown_rows(page, total)
    assert page.get_by_label("Target", exact=True).input_value() == "qemu:///system"

    page.get_by_role("button", name="Show everything").click()
    shown_rows(page, total)
    waived = page.locator("tr.finding[data-status=waived]").first
    waived.scroll_into_view_if_needed()
    assert "EX-900" in waived.inner_text() and waived.is_visible()
    shot = artifacts() / f"report-html-chromium-{any_file.stem}.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    assert errors == []
    page.close()


def pdf_text(page: Any, path: Path) -> str:
    """The text of the page printed to PDF (Chromium's print path: beforeprint, print media, afterprint)."""
    page.pdf(path=str(path), format="A4")
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode()


def squeezed(text: str) -> str:
    """``text`` without whitespace and hyphens: a PDF wraps long lines anywhere, and pdftotext joins a
    word broken after a hyphen without it."""
    return "".join(text.split()).replace("-", "")


def test_printing_shows_every_fix_of_the_filter_and_says_what_it_omitted(
    browser: Any, any_file: Path, evaluation: Any, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(any_file.as_uri())
    page.wait_for_load_state("load")
    text = pdf_text(page, tmp_path / "report.pdf")
    flat = squeezed(text)
    selected = [f for f in evaluation.findings if f.status.value in ("fail", "error", "warn")]
    assert selected and all(f.remediation for f in selected)
    for f in selected:  # every finding of the default filter, its fix and its evidence, expanded
        assert squeezed(visible(f.remediation or "", multiline=True)) in flat, (f.measure, f.subject)
        assert squeezed(visible(f.message)) in flat, (f.measure, f.subject)
        for key in f.evidence:
            assert squeezed(visible(str(key))) in flat, (f.measure, key)
    found = Counter(f.status.value for f in evaluation.findings)
    omitted = ", ".join(f"{found[s]} {label}" for s, label in (("manual", "MANUAL"), ("waived", "WAIVED"),
                                                               ("pass", "PASS")))  # fmt: skip
    assert squeezed(f"{omitted} findings omitted from this print") in flat, text[:600]
    # a measure with no finding the filter selects is not printed; the waived fix is not either
    passing = next(m for m, s in evaluation.by_measure.items() if s.value == "pass")
    title = next(m.title for m in evaluation.catalog.measures if m.id == passing)
    assert squeezed(f"{passing} {title}") not in flat and "setvcpusdb1" not in flat
    # after printing, the page is as it was: measures closed
    assert page.evaluate("document.querySelectorAll('details[open]').length") == 0
    # with the filter widened, the print follows it
    page.get_by_role("button", name="Show everything").click()
    flat = squeezed(pdf_text(page, tmp_path / "everything.pdf"))
    assert "setvcpusdb1" in flat and squeezed("No finding is omitted.") in flat
    page.close()


def test_printing_without_javascript_shows_every_finding(
    browser_nojs: Any, report_file: Path, tmp_path: Path
) -> None:
    page = browser_nojs.new_page()
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")
    flat = squeezed(pdf_text(page, tmp_path / "nojs.pdf"))
    assert "setvcpusdb1" in flat and squeezed("This print shows every finding.") in flat
    page.close()


def test_in_chromium_axe_finds_no_wcag_violations(browser: Any, any_file: Path) -> None:
    page = browser.new_page()
    page.goto(any_file.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts() / f"report-html-top-{any_file.stem}.png"))
    assert axe_violations(page) == []
    # and with everything shown, every measure and every evidence table open
    page.get_by_role("button", name="Show everything").click()
    page.get_by_role("button", name="Expand all measures").click()
    expect(page.locator("tr.finding[data-status=pass]").first).to_be_attached()
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    assert axe_violations(page) == []
    # keyboard: on a freshly opened page the skip link is the first stop and is visible when focused
    page.goto(any_file.as_uri())
    page.wait_for_load_state("load")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == "#main" and page.locator("a.skip").is_visible()
    page.close()


def test_without_javascript_everything_is_readable(browser_nojs: Any, report_file: Path) -> None:
    page = browser_nojs.new_page()
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")
    assert page.locator("#filters").is_hidden(), "filter controls that cannot work stay hidden"
    total = page.locator("tr.finding").count()
    assert total > 30 and len(visible_rows(page)) == total
    measure = page.locator("details#m-11-3-3")
    page.locator("details#m-11-3-3 > summary").click()  # native disclosure, no script needed
    assert measure.get_attribute("open") is not None
    assert measure.locator("tr.finding").first.is_visible()
    text = measure.inner_text()
    assert re.search(r"FAIL\s+vm:db1|WAIVED\s+was FAIL\s+vm:db1", text), text[:500]
    page.close()


def test_without_javascript_a_large_report_says_where_its_findings_are(
    browser_nojs: Any, any_file: Path
) -> None:
    page = browser_nojs.new_page()
    page.goto(any_file.as_uri())
    page.wait_for_load_state("load")
    note = page.locator("p.nojs")
    if "data" in any_file.stem:
        assert note.is_visible() and "--format json" in note.inner_text()
    else:
        assert note.count() == 0
    page.close()
