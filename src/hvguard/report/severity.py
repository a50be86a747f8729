"""How serious a finding is, as the machine formats that rank findings need it (SARIF, HDF).

SS-009 grades its measures by modality, not by a score. hvguard derives one number from the measure's
*effective* modality — the profile may override it (``must``/``should``) or tailor a measure to advisory —
and from the finding's status:

=================  ===========  ==========================================================
effective modality  base score   why
=================  ===========  ==========================================================
must               8.0 (high)   a requirement of the standard
conditional        6.0 (medium) a requirement where its condition applies
should / advisory  4.0 (medium) advisory: its failures are reported as ``warn``
may                2.0 (low)    optional (the catalog has none today; kept for tailoring)
=================  ===========  ==========================================================

The status scales it: ``fail``, ``error`` (could not evaluate — treated like a failure, as the exit code
does) and ``warn`` keep the base; ``manual`` (evidence still owed) and ``waived`` (an accepted risk) count
half; ``pass`` and ``not_applicable`` are 0. HDF's control impact is the base score / 10.
"""

from __future__ import annotations

from hvguard.catalog import Measure
from hvguard.report.model import ProfileBlock

BASE_SCORE: dict[str, float] = {"must": 8.0, "conditional": 6.0, "should": 4.0, "may": 2.0}
STATUS_WEIGHT: dict[str, float] = {
    "fail": 1.0,
    "error": 1.0,
    "warn": 1.0,
    "manual": 0.5,
    "waived": 0.5,
    "pass": 0.0,
    "not_applicable": 0.0,
}


def effective_modality(m: Measure, profile: ProfileBlock) -> str:
    """The modality the evaluation judged ``m`` by: the profile's override, ``should`` when the profile
    tailors it to advisory, else the standard's wording."""
    override = profile.modality.get(m.id)
    if override is not None:
        return override
    if m.id in profile.advisory:
        return "should"
    return m.modality


def base_score(m: Measure, profile: ProfileBlock) -> float:
    """The measure's score (0–10) from its effective modality; unknown modalities count as ``should``."""
    return BASE_SCORE.get(effective_modality(m, profile), BASE_SCORE["should"])


def finding_score(m: Measure, profile: ProfileBlock, status: str) -> float:
    """The score (0–10, one decimal) of one finding of ``m`` with ``status``."""
    return round(base_score(m, profile) * STATUS_WEIGHT[status], 1)


def impact(m: Measure, profile: ProfileBlock) -> float:
    """HDF control impact (0–1) of ``m``: its base score / 10 (InSpec: ≥ 0.7 high, 0.4–0.69 medium)."""
    return round(base_score(m, profile) / 10, 2)
