"""The dashboard in real Chromium (Debian's, as tests/test_report_html.py drives it): axe-core finds no
WCAG 2.2 AA violation on any core page, and the pages work with JavaScript off.

How Chromium reaches a server that demands a client certificate: every request Chromium makes to the
stand-in origin ``http://dashboard.test`` is intercepted by a Playwright route handler, which fetches
the same path from the real ``hvguard serve`` over mutual TLS (requests, with the client certificate)
and fulfils Chromium's request with that response — status, headers (the Content-Security-Policy
included) and body as served. Chromium itself never needs the certificate; links and the diff form
navigate through the same handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from playwright.sync_api import sync_playwright

from dashboard_env import BAD, HOSTILE_TARGET, HOSTILE_VM, Server, make_certs, populate, start
from test_report_html import CHROMIUM, CHROMIUM_ARGS, axe_violations

ORIGIN = "http://dashboard.test"
PAGES = [
    "/",
    "/groups/site-a",
    f"/targets/{quote(BAD, safe='')}",
    f"/targets/{quote(BAD, safe='')}/vms/db1",
    f"/targets/{quote(HOSTILE_TARGET, safe='')}/vms/{quote(HOSTILE_VM, safe='')}",
    "/measures",
    "/expiring",
    "/diff",
    "/diff?from=1&to=2",
    "/targets/nosuchtarget",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``hvguard serve`` over a store with two scans of the test estate."""
    tmp = tmp_path_factory.mktemp("dash-a11y")
    db = tmp / "history.sqlite3"
    populate(db)
    yield from start(db, make_certs(tmp))


def _proxy(server: Server, fetched: list[str]) -> Any:
    """The route handler: fetch over mutual TLS, fulfil with what the server answered."""
    session = requests.Session()

    def handle(route: Any) -> None:
        parts = urlsplit(route.request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        r = session.get(
            server.url + path, cert=server.certs.client, verify=str(server.certs.server_ca), timeout=60
        )
        fetched.append(path)
        headers = {
            k: v for k, v in r.headers.items() if k.lower() not in ("content-length", "content-encoding")
        }
        route.fulfill(status=r.status_code, headers=headers, body=r.content)

    return handle


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the module."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh test (it installs Debian's chromium)")
    with sync_playwright() as pw:
        yield pw


def _context(pw: Any, profile: Path, server: Server, fetched: list[str], *, js: bool) -> Any:
    context = pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        java_script_enabled=js,
        viewport={"width": 1280, "height": 900},
    )
    context.route(f"{ORIGIN}/**", _proxy(server, fetched))
    return context


def test_axe_finds_no_wcag_22_aa_violation_on_any_core_page(
    playwright: Any, server: Server, tmp_path: Path
) -> None:
    fetched: list[str] = []
    context = _context(playwright, tmp_path / "profile", server, fetched, js=True)
    try:
        page = context.new_page()
        for path in PAGES:
            response = page.goto(ORIGIN + path)
            assert response is not None and response.status == (404 if "nosuch" in path else 200), path
            assert page.locator("h1").count() == 1, path
            assert axe_violations(page) == [], path
        # keyboard: the skip link is the first stop and shows when focused
        page.goto(ORIGIN + "/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
        assert page.locator("a.skip").is_visible()
    finally:
        context.close()
    assert set(PAGES) <= set(fetched)  # every page came from the real server


def test_the_core_pages_work_without_javascript(playwright: Any, server: Server, tmp_path: Path) -> None:
    fetched: list[str] = []
    context = _context(playwright, tmp_path / "profile", server, fetched, js=False)
    try:
        page = context.new_page()
        page.goto(ORIGIN + "/")
        page.get_by_role("link", name=BAD).first.click()
        page.wait_for_url(f"**/targets/{quote(BAD, safe='')}")
        assert page.locator("h1").inner_text() == f"Target {BAD}"
        page.get_by_role("link", name="db1").click()
        assert page.locator("h1").inner_text() == "VM db1"
        assert page.get_by_role("table").locator("tbody tr").count() > 0
        page.get_by_role("link", name="Measures").click()
        assert page.get_by_role("table").first.locator("tbody tr").count() == 4
        # the diff form submits with a plain GET
        page.get_by_role("link", name="Compare runs").click()
        page.get_by_label("From scan").fill("1")
        page.get_by_label("to scan").fill("2")
        page.get_by_role("button", name="Compare").click()
        assert page.get_by_role("heading", name="Scan 1 → scan 2", exact=True).is_visible()
        assert page.get_by_role("table", name="Status changes").is_visible()
        # the estate-wide overview links each changed target to its own diff
        page.get_by_role("table", name="Verdict and measure changes per target").get_by_role(
            "link"
        ).first.click()
        assert page.get_by_label("target (optional)").input_value() == BAD
    finally:
        context.close()
    assert "/diff?from=1&to=2&target=" in fetched
