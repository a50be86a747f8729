"""The HTML report of a 10,000-VM estate: size (goal ≤ 15 MB), load in Chromium (goal ≤ 2 s: ``goto``,
``load``, summary visible) and filter time (goal ≤ 1 s).

    .venv/bin/python bench/html_10k.py [--vms 10000] [--repeat 3] [--print]

The estate is the synthetic one of ``evaluate_10k.py`` (one VM in three bent away from compliance in a
different way). Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright with a fresh profile, as
in the tests; ``--print`` also times printing the default filter to PDF (large: every failing finding
with its evidence and fix). The page is kept in ``artifacts/bench-html-10k.html``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import REPO, describe, timed
from evaluate_10k import estate

from hvguard.engine import evaluate
from hvguard.profile import default_profile
from hvguard.report.html import render

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZE_GOAL, LOAD_GOAL, FILTER_GOAL = 15e6, 2.0, 1.0


def _filter(page: Any, action: str) -> float:
    """Wall time from a filter action to the updated count on screen, as a person waits for it."""
    before = page.locator("#filter-count").inner_text()
    t0 = time.perf_counter()
    page.evaluate(action)
    page.wait_for_function("b => document.getElementById('filter-count').textContent !== b", arg=before)
    page.evaluate("void document.body.offsetHeight")  # the layout the change causes
    return time.perf_counter() - t0


def browser(html: Path, repeat: int, print_pdf: bool) -> tuple[float, float]:
    """Open ``html`` in Chromium ``repeat`` times; print load and filter times; return the worst medians."""
    from playwright.sync_api import expect, sync_playwright

    loads: list[float] = []
    filters: dict[str, list[float]] = {}
    set_value = (
        "(s => {{ s.value = '{v}'; s.dispatchEvent(new Event('{e}', {{bubbles: true}})); }})"
        "(document.getElementById('{i}'))"
    )
    actions = {
        "Show everything": "document.getElementById('f-all').click()",
        "Needs attention only": "document.getElementById('f-attention').click()",
        "section 11.3": set_value.format(v="11.3", e="change", i="f-section"),
        "subject vm00042": set_value.format(v="vm00042", e="input", i="f-subject"),
        "Default filter": "document.querySelector('#filter-form button[type=reset]').click()",
    }
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        for _ in range(repeat):
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(html.as_uri(), wait_until="load", timeout=120_000)
            expect(page.locator("#summary")).to_be_visible()
            expect(page.locator("#verdict")).to_be_visible()
            loads.append(time.perf_counter() - t0)
            for name, action in actions.items():
                filters.setdefault(name, []).append(_filter(page, action))
            t0 = time.perf_counter()
            page.locator("details#m-11-3-3 > summary").click()
            expect(page.locator("details#m-11-3-3 tr.finding").first).to_be_visible()
            filters.setdefault("open a measure of 10,000 findings", []).append(time.perf_counter() - t0)
            page.close()
        print(describe("chromium: goto → load → summary visible", loads))
        for name, times in filters.items():
            print(describe(f"chromium: filter '{name}' → count updated", times))
        print(f"chromium: filter count now: {_count(ctx, html)}")
        if print_pdf:
            page = ctx.new_page()
            page.set_default_timeout(0)  # a print of every failing finding of 10,000 VMs takes a while
            page.goto(html.as_uri(), wait_until="load")
            t0 = time.perf_counter()
            pdf = page.pdf()
            took = time.perf_counter() - t0
            print(f"chromium: print to PDF (default filter): {took:.1f} s, {len(pdf) / 1e6:.1f} MB")
            page.close()
        ctx.close()
    worst_filter = max(statistics.median(t) for t in filters.values())
    return statistics.median(loads), worst_filter


def _count(ctx: Any, html: Path) -> str:
    page = ctx.new_page()
    page.goto(html.as_uri(), wait_until="load")
    text: str = page.locator("#filter-count").inner_text()
    page.close()
    return text


def main() -> None:
    """Render the report, then open and filter it in Chromium; print the figures against the goals."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--print", dest="print_pdf", action="store_true")
    args = ap.parse_args()
    ev = evaluate(estate(args.vms), default_profile())  # type: ignore[arg-type]
    print(f"estate: {args.vms} VMs, {len(ev.findings)} findings")
    text = render(ev)
    print(describe("html render", timed(lambda: render(ev), repeat=args.repeat)))
    size = len(text.encode())
    out = REPO / "artifacts"
    out.mkdir(exist_ok=True)
    path = out / "bench-html-10k.html"
    path.write_text(text, encoding="utf-8")
    print(f"html size: {size / 1e6:.2f} MB")
    load, filt = browser(path, args.repeat, args.print_pdf)
    print(f"GOAL size ≤ 15 MB: {'met' if size <= SIZE_GOAL else 'NOT met'} ({size / 1e6:.2f} MB)")
    print(f"GOAL load ≤ 2 s: {'met' if load <= LOAD_GOAL else 'NOT met'} (median {load:.2f} s)")
    print(f"GOAL filter ≤ 1 s: {'met' if filt <= FILTER_GOAL else 'NOT met'} (slowest median {filt:.2f} s)")


if __name__ == "__main__":
    main()
