"""The dashboard's HTML: Jinja2 templates with autoescaping on (every name a host reported — targets,
VMs, evidence — is escaped), no JavaScript, one inline stylesheet allowed by its hash in the
Content-Security-Policy, and the trend chart drawn as inline SVG with its figures also in a table."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from hvguard.history.estate import TrendPoint
from hvguard.history.records import iso
from hvguard.services.dashboard.data import STATUS_TEXT, VERDICT_TEXT, VERDICTS

#: The statuses in the order the pages list them, worst first.
STATUSES: tuple[str, ...] = ("error", "fail", "warn", "manual", "waived", "pass", "not_applicable")
KIND_TEXT = {"exceptions": "exception", "attestations": "attestation"}
#: Each verdict's line is told apart by its dash pattern as well as its colour (legend key, words).
_MARKS = {
    "compliant": ("━━", "solid line"),
    "not_compliant": ("╍╍", "dashed line"),
    "not_assessed": ("┅┅", "dotted line"),
}
#: Dots mark each day's value only while they stay apart.
DOTS_UP_TO = 31


@dataclass(frozen=True)
class Series:
    """One verdict's line in the trend chart."""

    verdict: str
    points: str
    dots: tuple[tuple[float, float], ...]
    mark: str
    mark_name: str


@dataclass(frozen=True)
class Chart:
    """The trend chart's geometry (SVG user units)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    max: int
    first: str
    last: str
    series: tuple[Series, ...]


def trend_chart(points: list[TrendPoint], width: int = 720, height: int = 220) -> Chart | None:
    """Lines of targets per verdict per day, from the first day that counts a target; None when none
    does."""
    first = next((i for i, p in enumerate(points) if p.targets), None)
    if first is None:
        return None
    points = points[first:]
    left, right, top, bottom = 48, width - 16, 12, height - 28
    peak = max(max(p.compliant, p.not_compliant, p.not_assessed) for p in points) or 1
    span = max(len(points) - 1, 1)

    def xy(i: int, n: int) -> tuple[float, float]:
        x = left + (right - left) * (i / span if len(points) > 1 else 0.5)
        return round(x, 1), round(bottom - (bottom - top) * n / peak, 1)

    series = []
    for verdict in ("compliant", "not_compliant", "not_assessed"):
        line = tuple(xy(i, getattr(p, verdict)) for i, p in enumerate(points))
        mark, name = _MARKS[verdict]
        dots = line if len(line) <= DOTS_UP_TO else ()
        series.append(Series(verdict, " ".join(f"{x},{y}" for x, y in line), dots, mark, name))
    return Chart(
        width, height, left, right, top, bottom, peak, points[0].day.isoformat(), points[-1].day.isoformat(),
        tuple(series),
    )  # fmt: skip


def _q(value: Any) -> str:
    """A path segment or query value: every reserved character percent-encoded."""
    return quote(str(value), safe="")


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)


def _when(ts: datetime) -> str:
    return iso(ts)


class Pages:
    """The template environment and the page renderer."""

    def __init__(self, db_label: str) -> None:
        import jinja2

        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("hvguard.services.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(q=_q, pretty=_pretty, when=_when)
        # Globals, not render arguments: the macros (imported without context) use them too.
        self.env.globals.update(
            verdicts=VERDICTS,
            verdict_text=VERDICT_TEXT,
            status_text=STATUS_TEXT,
            statuses=STATUSES,
            kind_text=KIND_TEXT,
        )
        self.css = (
            resources.files("hvguard.services.dashboard").joinpath("templates/dashboard.css").read_text()
        )
        digest = base64.b64encode(hashlib.sha256(self.css.encode()).digest()).decode()
        self.csp = (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'"
        )
        self.db_label = db_label

    def render(self, template: str, *, title: str, nav: str = "", **context: Any) -> str:
        """A whole page."""
        return self.env.get_template(template).render(
            title=title,
            nav=nav,
            css=self.css,
            db=self.db_label,
            now=iso(datetime.now(UTC)),
            **context,
        )
