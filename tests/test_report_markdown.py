"""The Markdown summary for tickets: the right content, and escaping that hostile names cannot break."""

from __future__ import annotations

import re

from hvguard.report.json_report import report_dict
from hvguard.report.markdown import TOP_FAILURES, fence, md, md_line, render
from test_report_common import HOSTILE_VM, MARKDOWN_VM, WAIVER, estate


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row (split on unescaped pipes)."""
    out = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            out.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return out


def test_header_table_and_top_failures() -> None:
    ev = estate()
    text = render(ev)
    rep = report_dict(ev)
    assert text.startswith("# hvguard SS-009 v2.0 report\n")
    assert "- **Target** qemu:///system" in text and "- **Profile** default (builtin:default)" in text
    assert f"- **Findings** ({len(rep['results'])})" in text
    rows = table_rows(text)
    assert rows[0] == ["Measure", "Status", "Title", "Findings"]
    listed = [r[0] for r in rows[1:]]
    not_passed = [m for m, s in rep["summary"]["by_measure"].items() if s not in ("pass", "not_applicable")]
    assert sorted(listed) == sorted(not_passed) and all(len(r) == 4 for r in rows)
    # the failures, measure by measure, each with its exact remediation in a fenced block
    failing = [r for r in rep["results"] if r["status"] in ("fail", "error")]
    headings = re.findall(r"^### (\S+) .* — (FAIL|ERROR) (.*)$", text, flags=re.M)
    assert len(headings) == min(len(failing), TOP_FAILURES) > 0
    order = list(rep["summary"]["by_measure"])
    assert [order.index(h[0]) for h in headings] == sorted(order.index(h[0]) for h in headings)
    first = next(r for r in failing if r["measure"] == headings[0][0] and r["remediation"])
    assert "```\n" + first["remediation"].strip() + "\n```" in text
    if len(failing) > TOP_FAILURES:
        assert f"… and {len(failing) - TOP_FAILURES} more failing finding(s)" in text
    assert f"WAIVED** (was fail) — exception {WAIVER['id']}" in text


def test_hostile_names_cannot_inject_markup() -> None:
    text = render(estate())
    assert HOSTILE_VM not in text and "![img](" not in text and "**bold**" not in text
    assert md(HOSTILE_VM) == r"\<script\>alert(1)\</script\>"
    assert md(MARKDOWN_VM) == r"a\|b \!\[img\](http://evil.example/x.png) \*\*bold\*\*"
    for row in table_rows(text):
        assert len(row) == 4, row  # a pipe in a value never adds a column


def test_line_start_markers_and_fences() -> None:
    assert md_line("- not a list") == r"\- not a list"
    assert md_line("1. not a list") == r"1\. not a list"
    assert md_line("# not a heading") == r"\# not a heading"
    assert md("two\nlines") == "two lines"
    body = "echo ```` nested"
    block = fence(body)
    assert block.startswith("`````\n") and block.endswith("\n`````") and body in block
