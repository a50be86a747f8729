"""``/metrics``: the estate's latest verdicts in the Prometheus text format, so Grafana dashboards and
alert rules work as users expect.

Rendered from the stored per-target summaries (``hvguard.history.estate``), never from findings, with
prometheus_client and a registry of our own per call (no process-global state, nothing of the Python
process exported). Series (every target is its latest stored scan):

- ``hvguard_measure_status{target,measure,status}``: 1 for the measure's status on the target, 0 for
  every other status of the vocabulary (one-hot, so ``== 1`` selects and a change is visible);
- ``hvguard_findings{target,measure,status}``: findings of that status (host and VMs together — no
  per-VM labels, which would multiply the series by the VMs); statuses without findings are left out;
- ``hvguard_target_compliant{target}``: 1 when compliant, else 0; ``hvguard_target_verdict{target,
  verdict}`` the verdict one-hot (tells ``not_assessed`` from ``not_compliant``);
- ``hvguard_last_scan_timestamp_seconds{target}``: when the target's latest scan was stored;
- ``hvguard_targets{verdict}``: targets per verdict;
- ``hvguard_exceptions_expiring{kind,within_days}``: exceptions and attestations whose last valid day
  is within :data:`EXPIRING_DAYS` days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from hvguard.findings import SEVERITY_ORDER, Verdict
from hvguard.history.estate import TargetSummary, estate_latest, estate_state, expiring

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from hvguard.history.store import HistoryStore

#: The window of ``hvguard_exceptions_expiring`` (the dashboard's "expiring" page uses the same).
EXPIRING_DAYS = 30
#: The register kinds, always exported (0 when none expire).
KINDS = ("exceptions", "attestations")
#: The status vocabulary of the one-hot series, worst first.
STATUSES = tuple(s.value for s in SEVERITY_ORDER)
#: The Content-Type of the text format the renderer writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


#: The last rendering per database: (database, estate state, UTC day) → text. Rendering 1,000 hosts ×
#: 45 measures × 7 statuses (~300,000 samples) through prometheus_client takes seconds, while the
#: estate changes only when a scan is stored or pruned: scrapes in between are served from here.
_CACHE: dict[str, tuple[tuple[int, int, date], bytes]] = {}


def render_metrics(store: HistoryStore, *, now: datetime | None = None) -> bytes:
    """The estate's metrics in the Prometheus text exposition format (see the module docstring); the
    previous text again when no scan was stored or pruned since, on the same UTC day."""
    when = now or datetime.now(UTC)
    key = (*estate_state(store), when.astimezone(UTC).date())
    cached = _CACHE.get(store.label)
    if cached is not None and cached[0] == key:
        return cached[1]
    body = _render(store, when)
    _CACHE[store.label] = (key, body)
    return body


def _render(store: HistoryStore, when: datetime) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    rows = estate_latest(store)
    entries = expiring(store, within_days=EXPIRING_DAYS, now=when)
    expiring_counts = Counter(e.kind for e in entries)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_EstateCollector(rows, expiring_counts))
    return generate_latest(registry)


class _EstateCollector:
    """A one-shot collector over already-read rows (prometheus_client's custom-collector protocol)."""

    def __init__(self, rows: list[TargetSummary], expiring_counts: Counter[str]) -> None:
        self._rows = rows
        self._expiring = expiring_counts

    def collect(self) -> Iterable[Metric]:
        """Every metric family, built from the rows."""
        from prometheus_client.core import GaugeMetricFamily

        status = GaugeMetricFamily(
            "hvguard_measure_status",
            "The measure's status on the target in its latest scan: 1 for that status, 0 for the others.",
            labels=["target", "measure", "status"],
        )
        counts = GaugeMetricFamily(
            "hvguard_findings",
            "Findings of the target's latest scan per measure and status (host and VMs together).",
            labels=["target", "measure", "status"],
        )
        compliant = GaugeMetricFamily(
            "hvguard_target_compliant",
            "1 when the target's latest scan is compliant with SS-009, else 0.",
            labels=["target"],
        )
        verdict = GaugeMetricFamily(
            "hvguard_target_verdict",
            "The target's verdict in its latest scan: 1 for that verdict, 0 for the others.",
            labels=["target", "verdict"],
        )
        last = GaugeMetricFamily(
            "hvguard_last_scan_timestamp_seconds",
            "When the target's latest scan was stored (Unix time).",
            labels=["target"],
        )
        targets = GaugeMetricFamily(
            "hvguard_targets", "Targets per verdict of their latest scan.", labels=["verdict"]
        )
        expiring_family = GaugeMetricFamily(
            "hvguard_exceptions_expiring",
            f"Exceptions and attestations applied by a target's latest scan whose last valid day is "
            f"within {EXPIRING_DAYS} days.",
            labels=["kind", "within_days"],
        )
        verdicts = [v.value for v in Verdict]
        per_verdict = Counter(r.verdict for r in self._rows)
        for r in self._rows:
            t = r.target
            for measure, current in r.by_measure.items():
                for s in STATUSES:
                    status.add_metric([t, measure, s], 1.0 if s == current else 0.0)
            for measure, by in r.finding_counts.items():
                for s, n in by.items():
                    if n:
                        counts.add_metric([t, measure, s], float(n))
            compliant.add_metric([t], 1.0 if r.verdict == Verdict.COMPLIANT.value else 0.0)
            for v in verdicts:
                verdict.add_metric([t, v], 1.0 if v == r.verdict else 0.0)
            last.add_metric([t], r.created_at.timestamp())
        for v in verdicts:
            targets.add_metric([v], float(per_verdict.get(v, 0)))
        for kind in KINDS:
            expiring_family.add_metric([kind, str(EXPIRING_DAYS)], float(self._expiring.get(kind, 0)))
        return [status, counts, compliant, verdict, last, targets, expiring_family]
