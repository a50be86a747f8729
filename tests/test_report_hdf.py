"""The HDF report: valid against HDF's exec-JSON schema (vendored from mitre/heimdall2), read by MITRE's
inspecjs as Heimdall reads it, with statuses, impact, waivers and attestations mapped faithfully."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from factories import good_vm, target
from hvguard.catalog import load_catalog
from hvguard.engine import Evaluation, evaluate
from hvguard.facts import VcpuFacts
from hvguard.findings import Status
from hvguard.profile import Profile, default_profile
from hvguard.report.hdf import STATUS, render
from hvguard.report.json_report import report_dict
from report_estates import scan_all
from test_report_common import AS_OF, ATTESTATION, WAIVER, WORKFLOW, _rollup, estate, fleet

HERE = Path(__file__).parent
SCHEMA_DIR = HERE / "data" / "hdf"
BUNDLE = HERE / "data" / "bundles" / "v2-testdriver-kvm-good.json.gz"
NODE_DIR = HERE / "node"
IMPACT = {"must": 0.8, "conditional": 0.6, "should": 0.4}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """HDF's exec-JSON schema as vendored in tests/data/hdf."""
    data: dict[str, Any] = json.loads((SCHEMA_DIR / "exec-json.json").read_text(encoding="utf-8"))
    return data


def validate(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Schema violations as readable lines."""
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _cli(fmt: str, *extra: str) -> dict[str, Any]:
    """``hvguard evaluate`` of the test-driver bundle in format ``fmt``, parsed."""
    args = [sys.executable, "-m", "hvguard", "evaluate", str(BUNDLE), "--no-history", "--format", fmt, *extra]
    r = subprocess.run(
        args, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180, check=False
    )
    assert r.returncode == 1 and r.stderr == "", r.stderr  # the estate has failures
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def all_waived() -> Evaluation:
    """Every finding of 11.3.3 waived (both VMs), the rest as evaluated."""
    ev = evaluate(
        [target([good_vm("web1", vcpu=VcpuFacts(maximum=8)), good_vm("db1", vcpu=VcpuFacts(maximum=8))])],
        default_profile(),
    )
    findings = [msgspec.structs.replace(f) for f in ev.findings]
    for f in findings:
        if f.measure == "11.3.3":
            assert f.status is Status.FAIL
            f.original_status, f.status = Status.FAIL, Status.WAIVED
            f.waiver = {**WAIVER, "id": f"EX-{f.subject}", "scope": {"subject": f.subject}}
    return _rollup(ev, findings)


def advisory() -> Evaluation:
    """11.3.3 tailored to advisory: db1's fail is reported as warn."""
    profile = Profile(name="lenient", advisory=frozenset({"11.3.3"}))
    return evaluate([target([good_vm("web1"), good_vm("db1", vcpu=VcpuFacts(maximum=8))])], profile)


ESTATES: dict[str, Callable[[], Evaluation]] = {
    "hostile estate": estate,
    "fleet": fleet,
    "all waived": all_waived,
    "advisory": advisory,
}


@pytest.fixture(scope="module")
def docs() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every test estate: (HDF document, JSON report) of one evaluation each; the test-driver bundle goes
    through the command line with the fixture exceptions register and attestations."""
    out = {}
    for name, make in ESTATES.items():
        ev = make()
        out[name] = (json.loads(render(ev)), report_dict(ev))
    registers = ("--exceptions", str(WORKFLOW / "exceptions.yaml"), "--attestations",
                 str(WORKFLOW / "attestations.yaml"), "--as-of", AS_OF)  # fmt: skip
    out["test-driver bundle"] = (_cli("hdf", *registers), _cli("json", *registers))
    return out


@pytest.fixture(scope="module")
def scanned() -> dict[str, dict[str, Any]]:
    """The HDF document of every test estate of scripts/compare_reports.py, scanned by the command line."""
    return scan_all("hdf")


def controls(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The controls of the document's one profile, by id."""
    (profile,) = doc["profiles"]
    return {c["id"]: c for c in profile["controls"]}


def test_the_vendored_schema_is_hdf_exec_json_with_the_recorded_hash(schema: dict[str, Any]) -> None:
    readme = (SCHEMA_DIR / "README.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((SCHEMA_DIR / "exec-json.json").read_bytes()).hexdigest()
    assert re.search(rf"SHA-256 of `exec-json.json` \| `{digest}`", readme)
    assert re.search(r"Commit \| `[0-9a-f]{40}`", readme)
    assert "Apache License, Version 2.0" in (SCHEMA_DIR / "LICENSE.md").read_text(encoding="utf-8")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"] == "Exec JSON Output"
    assert set(schema["required"]) == {"platform", "profiles", "statistics", "version"}
    defs = schema["definitions"]
    assert defs["Control_Result_Status"]["enum"] == ["passed", "failed", "skipped", "error"]
    assert {"Waiver_Data", "Attestation_Data"} <= set(defs)


def test_every_estate_is_valid_hdf(
    docs: dict[str, Any], scanned: dict[str, dict[str, Any]], schema: dict[str, Any]
) -> None:
    for name, (doc, _) in docs.items():
        assert validate(doc, schema) == [], name
    assert len(scanned) >= 20
    for name, doc in scanned.items():
        assert validate(doc, schema) == [], name
        assert len(controls(doc)) == len(load_catalog().ids), name


def test_the_validator_does_reject_broken_hdf(docs: dict[str, Any], schema: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(docs["hostile estate"][0]))
    control = broken["profiles"][0]["controls"][0]
    control["impact"] = 2
    control["results"][0]["status"] = "waived"
    del control["results"][0]["start_time"]
    control["attestation_data"] = {"control_id": control["id"], "status": "pass"}
    assert len(validate(broken, schema)) >= 4


def test_one_control_per_measure_with_one_result_per_finding(docs: dict[str, Any]) -> None:
    cat = load_catalog()
    for name, (doc, rep) in docs.items():
        (profile,) = doc["profiles"]
        assert [c["id"] for c in profile["controls"]] == list(cat.ids), name
        assert [g["id"] for g in profile["groups"]] == list(cat.sections)
        got = [
            (c["id"], res["hvguard"]["target"], res["hvguard"]["subject"], res["hvguard"]["status"])
            for c in profile["controls"]
            for res in c["results"]
        ]
        want = [(r["measure"], r["target"], r["subject"], r["status"]) for r in rep["results"]]
        assert sorted(got) == sorted(want), name


def test_statuses_map_faithfully(docs: dict[str, Any]) -> None:
    assert STATUS == {
        "pass": "passed", "fail": "failed", "warn": "failed", "error": "error",
        "manual": "skipped", "not_applicable": "skipped", "waived": "skipped",
    }  # fmt: skip
    seen = set()
    for name, (doc, _) in docs.items():
        for c in controls(doc).values():
            for res in c["results"]:
                status = res["hvguard"]["status"]
                seen.add(status)
                assert res["status"] == STATUS[status], (name, c["id"], status)
                assert res["start_time"] and res["code_desc"].startswith(
                    f"{c['id']} {res['hvguard']['subject']} "
                )
                if res["status"] == "skipped":
                    assert res["skip_message"].startswith(
                        {
                            "manual": "manual review: ",
                            "not_applicable": "not applicable: ",
                            "waived": "waived by ",
                        }[status]
                    )
                else:
                    assert "skip_message" not in res
    assert seen == set(STATUS)  # every status is exercised by some estate


def test_impact_follows_the_effective_modality(docs: dict[str, Any]) -> None:
    cat = {m.id: m for m in load_catalog().measures}
    for name, (doc, rep) in docs.items():
        for mid, c in controls(doc).items():
            statuses = {r["status"] for r in rep["results"] if r["measure"] == mid}
            if statuses <= {"not_applicable"}:
                assert c["impact"] == 0.0, (name, mid)
            elif name != "advisory" or mid != "11.3.3":
                assert c["impact"] == IMPACT[cat[mid].modality], (name, mid)
            assert c["tags"]["nist_csf"] == list(cat[mid].nist)
    # the advisory measure: db1's fail is a warn, reported failed with a should's lower impact
    c = controls(docs["advisory"][0])["11.3.3"]
    assert c["impact"] == IMPACT["should"] < IMPACT["must"] and c["tags"]["effective_modality"] == "should"
    warn = [r for r in c["results"] if r["hvguard"]["status"] == "warn"]
    assert warn and all(r["status"] == "failed" and r["message"].startswith("advisory") for r in warn)


def test_a_waiver_is_carried_as_waiver_data(docs: dict[str, Any]) -> None:
    c = controls(docs["hostile estate"][0])["11.3.3"]
    w = c["waiver_data"]
    assert w["justification"] == f"EX-900: {WAIVER['justification']}"
    assert w["expiration_date"] == WAIVER["expires_on"] and w["run"] is True
    assert w["skipped_due_to_waiver"] is False  # web1 and the others still pass
    assert [x["id"] for x in w["hvguard_waivers"]] == ["EX-900"]
    (waived,) = [r for r in c["results"] if r["hvguard"]["status"] == "waived"]
    assert (
        waived["status"] == "skipped"
        and "EX-900" in waived["skip_message"]
        and "CISO" in waived["skip_message"]
    )
    assert not [x for x in controls(docs["hostile estate"][0]).values() if x is not c and "waiver_data" in x]
    everything = controls(docs["all waived"][0])["11.3.3"]["waiver_data"]
    assert everything["skipped_due_to_waiver"] is True and len(everything["hvguard_waivers"]) == 2


def test_an_attestation_is_carried_as_attestation_data(docs: dict[str, Any]) -> None:
    attested = [c for c in controls(docs["hostile estate"][0]).values() if "attestation_data" in c]
    assert len(attested) == 1
    a = attested[0]["attestation_data"]
    assert a == {
        "control_id": attested[0]["id"],
        "explanation": ATTESTATION["statement"],
        "frequency": "184d",  # 2026-05-20 → 2026-11-20
        "status": "passed",
        "updated": ATTESTATION["attested_on"],
        "updated_by": ATTESTATION["attested_by"],
        "hvguard_attestations": a["hvguard_attestations"],
    }
    assert [x["id"] for x in a["hvguard_attestations"]] == ["AT-900"]
    (res,) = [r for r in attested[0]["results"] if r["hvguard"]["attestation"]]
    assert res["status"] == "passed" and "AT-900" in res["message"]


def expected_heimdall(statuses: list[str]) -> str:
    """The control status Heimdall should show for a measure whose findings have ``statuses``."""
    s = set(statuses)
    if "error" in s:
        return "Profile Error"
    if s <= {"not_applicable", "waived"}:
        return "Not Applicable"  # impact 0, or skipped due to waiver
    if s & {"fail", "warn"}:
        return "Failed"
    if "pass" in s:
        return "Passed"
    return "Not Reviewed"  # manual evidence owed


def _node() -> tuple[str, Path] | None:
    node = shutil.which("node")
    module = NODE_DIR / "node_modules" / "inspecjs" / "package.json"
    if node is None or not module.is_file():
        why = (
            "node is not installed" if node is None else "tests/node has no inspecjs (scripts/setup.sh test)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"inspecjs check cannot run under CI: {why}")
        pytest.skip(f"inspecjs check skipped: {why}")
    return node, module


def _inspecjs(node: str, path: Path) -> dict[str, Any]:
    r = subprocess.run(
        [node, str(NODE_DIR / "check_hdf.js"), str(path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=NODE_DIR,
    )  # fmt: skip
    assert r.returncode == 0, (path, r.stderr)
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def test_inspecjs_reads_every_estate_as_heimdall_would(
    docs: dict[str, Any], scanned: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    found = _node()
    assert found is not None
    node, module = found
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["inspecjs"]
    assert json.loads(module.read_text())["version"] == pinned
    for name, (doc, rep) in docs.items():
        path = tmp_path / f"{name.replace(' ', '-')}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        seen = _inspecjs(node, path)
        assert seen["inspecjs"] == pinned and seen["profiles"] == 1
        per: dict[str, list[str]] = defaultdict(list)
        for f in rep["results"]:
            per[f["measure"]].append(f["status"])
        got = {cid: c["status"] for cid, c in seen["controls"].items()}
        assert list(got) == list(load_catalog().ids), name
        assert got == {mid: expected_heimdall(per[mid]) for mid in got}, name
        for cid, c in seen["controls"].items():
            assert c["segments"] == [STATUS[s] for s in per[cid]], (name, cid)
            assert c["attested"] == ("attestation_data" in controls(doc)[cid])
    for name, doc in scanned.items():  # every scanned estate, judged by its own findings
        path = tmp_path / "scanned.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        seen = _inspecjs(node, path)["controls"]
        for cid, c in controls(doc).items():
            statuses = [r["hvguard"]["status"] for r in c["results"]]
            assert seen[cid]["status"] == expected_heimdall(statuses), (name, cid, statuses)
            assert seen[cid]["segments"] == [STATUS[s] for s in statuses], (name, cid)
    waived = _inspecjs(node, tmp_path / "all-waived.json")["controls"]["11.3.3"]
    assert waived["waived"] is True and waived["status"] == "Not Applicable"
