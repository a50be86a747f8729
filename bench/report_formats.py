"""Render time and size of every report format for a large estate, and the HTML report in Chromium.

    .venv/bin/python bench/report_formats.py [--vms 1000] [--no-browser]

The estate is the synthetic one of ``evaluate_10k.py`` (one VM in three bent away from compliance in a
different way). For the HTML report it also opens the file in Debian's chromium (as the tests do) and
times the page load and one filter click; the screenshot goes to ``artifacts/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import REPO, describe, timed
from evaluate_10k import estate

from hvguard.engine import evaluate
from hvguard.profile import default_profile
from hvguard.report import FORMATS, renderer

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser(html: Path, shot: Path) -> None:
    """Open ``html`` in Chromium; print load and filter times."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(html.as_uri(), wait_until="load", timeout=120_000)
        print(f"chromium: load event after {time.perf_counter() - t0:.2f} s")
        total = page.locator("tr.finding").count()
        # in-page time of a filter click: the script, then the layout it causes (what a person waits for)
        script, layout = page.evaluate(
            """() => { const t = performance.now(); document.getElementById('f-attention').click();
                       const a = performance.now(); void document.body.offsetHeight;
                       return [a - t, performance.now() - a]; }"""
        )
        shown = page.locator("#filter-count").inner_text()
        print(f"chromium: 'Needs attention only': script {script:.0f} ms + layout {layout:.0f} ms ({shown})")
        t0 = time.perf_counter()
        page.get_by_role("button", name="Show everything").click()
        expect(page.locator("tr.finding:not([hidden])")).to_have_count(total, timeout=60_000)
        print(f"chromium: reset, as Playwright sees it: {time.perf_counter() - t0:.2f} s ({total} rows)")
        page.screenshot(path=str(shot))
        ctx.close()


def main() -> None:
    """Render each format a few times; print min/median time and size."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    ev = evaluate(estate(args.vms), default_profile())  # type: ignore[arg-type]
    print(f"estate: {args.vms} VMs, {len(ev.findings)} findings")
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    for fmt in FORMATS:
        if fmt == "table":
            continue
        render = renderer(fmt)
        text = render(ev)
        times = timed(lambda render=render: render(ev), repeat=3)  # type: ignore[misc]
        size = len(text.encode())
        print(f"{describe(f'{fmt:8s} render', times)}; {size / 1e6:.2f} MB")
        if fmt == "html":
            (out / f"bench-report-{args.vms}.html").write_text(text, encoding="utf-8")
    if not args.no_browser:
        browser(out / f"bench-report-{args.vms}.html", out / f"bench-report-{args.vms}.png")


if __name__ == "__main__":
    main()
