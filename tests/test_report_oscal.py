"""The OSCAL report: assessment-results that compliance-trestle's models load back, mapping every finding;
and a clear exit 2 when the optional extra is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from trestle.oscal.assessment_results import AssessmentResults

from hvguard.report.common import cases
from hvguard.report.json_report import report_dict
from hvguard.report.oscal import INSTALL_HINT, OBJECTIVE, control_id, render
from test_report_common import ATTESTATION, GOOD_ROOT, NODE, WAIVER, estate


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The OSCAL file of the hostile estate, and the JSON report of the same evaluation."""
    ev = estate()
    path = tmp_path_factory.mktemp("oscal") / "assessment-results.json"
    path.write_text(render(ev), encoding="utf-8")
    return path, report_dict(ev)


def test_trestle_loads_it_back(written: tuple[Path, dict[str, Any]]) -> None:
    path, rep = written
    model = AssessmentResults.oscal_read(path)
    assert isinstance(model, AssessmentResults)
    (result,) = model.results
    assert len(result.observations or []) == len(rep["results"])
    assert len(result.findings or []) == len(list(cases(rep["results"])))
    selected = result.reviewed_controls.control_selections[0].include_controls
    assert [c.control_id for c in selected] == [control_id(m) for m in rep["summary"]["by_measure"]]
    assert control_id("11.1.1") == "ss009-11.1.1"


def test_objective_status_per_measure_and_subject(written: tuple[Path, dict[str, Any]]) -> None:
    path, rep = written
    doc = json.loads(path.read_text())["assessment-results"]
    result = doc["results"][0]
    observations = {o["uuid"]: o for o in result["observations"]}
    worst = {(c.measure, c.target, c.subject): c.status for c in cases(rep["results"])}
    seen = Counter()
    for f in result["findings"]:
        props = {p["name"]: p["value"] for p in f["props"]}
        related = [observations[r["observation-uuid"]] for r in f["related-observations"]]
        keys = {
            tuple({p["name"]: p["value"] for p in o["props"]}[k] for k in ("measure", "target", "subject"))
            for o in related
        }
        (key,) = keys  # a finding groups the observations of one measure × target × subject
        status = worst[key]
        assert props["status"] == status
        state, reason = OBJECTIVE[status]
        assert f["target"]["status"] == {
            "state": state,
            "reason": reason,
            "remarks": f"hvguard status: {status}",
        }
        assert f["target"]["target-id"] == f"{control_id(key[0])}_obj"
        seen[state] += 1
    assert seen["satisfied"] > 0 and seen["not-satisfied"] > 0


def test_a_waiver_is_an_approved_deviation_risk(written: tuple[Path, dict[str, Any]]) -> None:
    path, _ = written
    result = json.loads(path.read_text())["assessment-results"]["results"][0]
    (risk,) = result["risks"]
    assert risk["status"] == "deviation-approved"
    props = {p["name"]: p["value"] for p in risk["props"]}
    assert props["id"] == WAIVER["id"] and props["approved-by"] == WAIVER["approved_by"]
    assert risk["deadline"].startswith(WAIVER["expires_on"])
    linked = [f for f in result["findings"] if f.get("related-risks")]
    assert [f["related-risks"][0]["risk-uuid"] for f in linked] == [risk["uuid"]]
    attested = [o for o in result["observations"] if any(p["name"] == "attestation" for p in o["props"])]
    assert len(attested) == 1 and ATTESTATION["id"] in json.dumps(attested[0])
    assert attested[0]["methods"] == ["INTERVIEW"]


def test_evidence_and_subjects_are_carried(written: tuple[Path, dict[str, Any]]) -> None:
    path, rep = written
    result = json.loads(path.read_text())["assessment-results"]["results"][0]
    items = {i["uuid"] for i in result["local-definitions"]["inventory-items"]}
    subjects = {(r["target"], r["subject"]) for r in rep["results"]}
    assert len(items) == len(subjects)
    for obs in result["observations"]:
        assert obs["subjects"][0]["subject-uuid"] in items
        json.loads(obs["relevant-evidence"][0]["remarks"])  # evidence as JSON text
    assert any(
        "/etc/libvirt/qemu.conf:3" in o["relevant-evidence"][0]["remarks"] for o in result["observations"]
    )


def test_without_compliance_trestle_the_format_exits_2_with_a_hint(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = (
        "import sys; sys.modules['trestle'] = None\n"  # what an install without the extra looks like
        "from hvguard.cli import main\n"
        f"main(['scan', 'test://{NODE}', '--root', '{GOOD_ROOT}', '--no-history', '--format', 'oscal',"
        f" '--output', '{out}'])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert r.stderr == f"hvguard: error: {INSTALL_HINT}\n"
    assert not out.exists()
