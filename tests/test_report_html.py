"""The HTML report: self-contained, escaped, accessible — checked in the file and in a real Chromium.

The browser tests drive Debian's ``chromium`` (installed by ``scripts/setup.sh test``) through
Playwright with a fresh, empty profile directory; they open the report over file://, click the filters,
save a screenshot to ``$HVGUARD_ARTIFACTS`` and run axe-core (bundled by axe-playwright-python) for
WCAG 2.0/2.1/2.2 A and AA rules, which must report zero violations.
"""

from __future__ import annotations

import functools
import html
import os
import re
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from hvguard.report.common import visible
from hvguard.report.html import CSP, render
from test_report_common import (
    ATTESTATION,
    FORMULA_VM,
    HOSTILE_EVIDENCE,
    HOSTILE_VM,
    WAIVER,
    estate,
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


def parse(html: str) -> _Tags:
    """Parse ``html`` into its tags."""
    p = _Tags()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def report() -> str:
    """The HTML report of the hostile estate with a waiver and an attestation."""
    return render(estate())


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


def test_a_thousand_vm_estate_stays_a_usable_size() -> None:
    page = render(estate(extra_vms=1000, hostile=False))
    size = len(page.encode())
    rows = page.count('<tr class="finding"')
    vms = page.count('<tr class="vm"')
    assert vms == 1002 and rows > 8000
    # under 1 KB per finding with its evidence table (7 MB for 1000 VMs; bench/report_formats.py)
    assert size < 1000 * rows, size


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


def test_in_chromium_filters_work_and_nothing_runs_that_should_not(browser: Any, report_file: Path) -> None:
    page = browser.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")

    # the hostile VM name is shown as text, and no script of its ran
    assert page.get_by_role("rowheader", name=HOSTILE_VM, exact=True).count() == 1
    assert dialogs == [] and errors == []
    assert requests == [report_file.as_uri()], "the report loaded something besides itself"

    total = page.locator("tr.finding").count()
    assert page.locator("#filters").is_visible()
    assert len(visible_rows(page)) == total
    assert page.locator("#filter-count").inner_text().startswith(f"Showing {total} of {total} findings")

    page.get_by_label("PASS", exact=True).uncheck()
    rows = visible_rows(page)
    assert 0 < len(rows) < total and all(r["status"] != "pass" for r in rows)

    page.get_by_role("button", name="Needs attention only").click()
    rows = visible_rows(page)
    assert rows and {r["status"] for r in rows} <= {"error", "fail", "warn", "manual"}

    page.get_by_role("button", name="Show everything").click()
    expect(page.locator("tr.finding:not([hidden])")).to_have_count(total)  # reset applies after the event
    page.get_by_label("Section", exact=True).select_option("11.3")
    rows = visible_rows(page)
    assert rows and {r["section"] for r in rows} == {"11.3"}
    assert page.locator("section.msection#sec-11-1").is_hidden()

    page.get_by_label("Section", exact=True).select_option("")
    page.get_by_label("Subject contains").fill("db1")
    rows = visible_rows(page)
    assert rows and all("db1" in r["subject"] for r in rows)
    assert page.locator("tr.vm:not([hidden])").count() == 1

    page.get_by_role("button", name="Show everything").click()
    expect(page.locator("tr.finding:not([hidden])")).to_have_count(total)  # reset applies after the event
    page.get_by_role("button", name="Expand all measures").click()
    waived = page.locator("tr.finding[data-status=waived]").first
    waived.scroll_into_view_if_needed()
    assert "EX-900" in waived.inner_text() and waived.is_visible()
    shot = artifacts() / "report-html-chromium.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    page.close()


def test_in_chromium_axe_finds_no_wcag_violations(browser: Any, report_file: Path) -> None:
    page = browser.new_page()
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(artifacts() / "report-html-top.png"))
    assert axe_violations(page) == []
    # and with every measure and every evidence table open
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    assert axe_violations(page) == []
    # keyboard: the skip link is the first stop and is visible when focused
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
