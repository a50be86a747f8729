"""A vSphere target end to end through the engine: every measure is judged by a vSphere check, subjects
follow the shared contract, fixes quote hostile names, and a bundle replays the same verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hvguard.catalog import load_catalog
from hvguard.checks.support.vsphere import ps, vm_subjects
from hvguard.collect.bundle import make_bundle, read_bundle, write_bundle
from hvguard.engine import evaluate
from hvguard.facts import TargetFacts
from hvguard.findings import Status
from hvguard.profile import default_profile
from vsphere_factories import esxi_target, good_host, good_vm, vcenter_target, with_options

SUBJECT = re.compile(r"^(host|vcenter|host:.+|vm:.+)$")


@pytest.mark.parametrize("target", [esxi_target(), vcenter_target()], ids=["esxi", "vcenter"])
def test_every_measure_is_judged_by_a_vsphere_check(target: TargetFacts) -> None:
    ev = evaluate([target], default_profile())
    judged = {
        f.measure
        for f in ev.findings
        if f.check.startswith("vsphere.") and f.status is not Status.NOT_APPLICABLE
    }
    assert judged == set(load_catalog().ids)
    assert not [f for f in ev.findings if f.check == "engine.manual"]
    assert all(f.check.startswith("vsphere.") for f in ev.findings)


@pytest.mark.parametrize("target", [esxi_target(), vcenter_target()], ids=["esxi", "vcenter"])
def test_compliant_facts_give_no_fail_or_error(target: TargetFacts) -> None:
    ev = evaluate([target], default_profile())
    bad = [
        (f.measure, f.check, f.status.value, f.message)
        for f in ev.findings
        if f.status in (Status.FAIL, Status.ERROR)
    ]
    assert bad == []
    assert all(SUBJECT.match(f.subject) for f in ev.findings)


def test_subjects_follow_the_contract() -> None:
    esxi = evaluate([esxi_target()], default_profile())
    assert {f.subject for f in esxi.findings if f.check.startswith("vsphere.")} <= {"host", "vm:web1"}
    vc = evaluate([vcenter_target()], default_profile())
    subjects = {f.subject for f in vc.findings if f.check.startswith("vsphere.")}
    assert {"vcenter", "host:esx1.example.org", "host:esx2.example.org", "vm:web1", "vm:db1"} <= subjects
    assert "host" not in subjects


def test_ambiguous_vm_names_get_their_datacenter_and_folder() -> None:
    vms = [
        good_vm("web", "vm-1", folder="Prod"),
        good_vm("web", "vm-2", folder="Test/Web"),
        good_vm("db", "vm-3"),
    ]
    vs = vcenter_target(vms=vms).vsphere
    assert vs is not None
    subjects = vm_subjects(vs)
    assert subjects == {"vm-1": "vm:DC1/Prod/web", "vm-2": "vm:DC1/Test/Web/web", "vm-3": "vm:db"}


def test_every_vsphere_fail_carries_a_fix_and_hostile_names_stay_quoted() -> None:
    evil = "esx'; Remove-Item C:\\ -Recurse #"
    host = with_options(
        good_host(evil, "host-66", acceptance_level="community"), **{"Syslog.global.logHost": "udp://x:514"}
    )
    vm = good_vm("vm'; Stop-Computer #", "vm-66", "host-66", extra_config={})
    ev = evaluate([vcenter_target(hosts=[host], vms=[vm])], default_profile())
    fails = [f for f in ev.findings if f.check.startswith("vsphere.") and f.status is Status.FAIL]
    assert {"11.2.1", "11.2.7", "11.4.10"} <= {f.measure for f in fails}
    for f in fails:
        assert f.remediation
        assert evil not in f.remediation.replace(ps(evil), "")
        assert "vm'; Stop-Computer #" not in f.remediation.replace(ps("vm'; Stop-Computer #"), "")


def test_ps_quoting_doubles_quotes() -> None:
    assert ps("o'brien") == "'o''brien'"
    assert ps("a\u2019b") == "'a\u2019\u2019b'"


def test_a_bundle_replays_the_same_vsphere_verdicts(tmp_path: Path) -> None:
    targets = [esxi_target(), vcenter_target(vms=[good_vm(extra_config={})])]
    path = tmp_path / "vs.json.gz"
    write_bundle(make_bundle(targets), path)
    replayed = read_bundle(path).targets
    a = evaluate(targets, default_profile())
    b = evaluate(replayed, default_profile())
    key = [(f.target, f.measure, f.check, f.subject, f.status, f.message) for f in a.findings]
    assert key == [(f.target, f.measure, f.check, f.subject, f.status, f.message) for f in b.findings]
    assert any(f.status is Status.FAIL for f in a.findings)


def test_evaluate_renders_a_vsphere_bundle_in_every_format(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    bundle = tmp_path / "vs.json"
    write_bundle(make_bundle([esxi_target(), vcenter_target(vms=[good_vm(extra_config={})])]), bundle)
    for fmt in ("json", "html", "sarif", "junit", "csv", "oscal", "markdown", "hdf", "table"):
        out = tmp_path / f"report.{fmt}"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "hvguard",
                "-q",
                "evaluate",
                str(bundle),
                "--no-history",
                "--format",
                fmt,
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert r.returncode == 1 and not r.stderr, (fmt, r.stderr)
        assert out.stat().st_size > 0
    rep = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {t["platform"] for t in rep["targets"]} == {"vmware-esxi", "vmware-vcenter"}
    assert len(rep["summary"]["by_measure"]) == 36
    fails = [x for x in rep["results"] if x["status"] == "fail"]
    assert [(x["measure"], x["subject"]) for x in fails] == [("11.2.7", "vm:web1")]
    assert "isolation.device.connectable.disable" in fails[0]["remediation"]
