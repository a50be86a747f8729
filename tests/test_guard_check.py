"""``hvguard guard check`` and the guard's decision (hvguard.guard.decide) on real libvirt domain XML.

Domains come from the test-driver node file (tests/data/testdriver/node.xml: kvm-hardened meets every VM
measure, kvm-off has no CPU quota, qemu-loose is TCG without limits) and virt-manager's XML corpus
(../shared/corpus); the host is that node (2 sockets x 8 cores, 64 GiB) with the kvm-good root,
snapshotted by hvguard.guard.snapshot.take.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from guard_env import node_domain_xml, snapshot_bundle
from hvguard.cli.app import run
from hvguard.collect.bundle import make_bundle, write_bundle
from hvguard.engine import binding_measures
from hvguard.guard.decide import DomainXmlError, parse_domain, with_vm
from hvguard.guard.policy import load_policy
from hvguard.guard.snapshot import load
from shared_paths import shared

EXCEPTIONS = """\
exceptions:
  - id: EX-G1-LIMITS
    measure: "11.3.10"
    scope: {subject: "vm:kvm-off"}
    justification: Batch VM throttled by the host's machine.slice until its limits are sized.
    risk_owner: Head of Platform
    approved_by: CISO
    approved_on: 2026-01-01
    expires_on: 2099-12-31
    risk_rating: low
"""


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_bundle(tmp_path_factory.mktemp("snapshot"))


def _write(tmp: Path, name: str, xml: str) -> Path:
    path = tmp / f"{name}.xml"
    path.write_text(xml, encoding="utf-8")
    return path


def _check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, Any, str]:
    code = run(["guard", "check", *map(str, args), "--format", "json"])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out.strip() else None, out.err


def _measures(record: dict[str, Any]) -> set[str]:
    return {v["measure"] for v in record["violations"]}


def test_a_compliant_domain_is_allowed_and_host_findings_never_block(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = _write(tmp_path, "hardened", node_domain_xml("kvm-hardened"))
    code, rec, err = _check(capsys, xml, "--host-facts", host_bundle)
    assert (code, err) == (0, "")
    assert rec["schema"] == "hvguard.guard-decision/1"
    assert (rec["domain"], rec["outcome"], rec["reason"], rec["mode"]) == (
        "kvm-hardened",
        "allowed",
        "compliant",
        "check",
    )
    assert rec["violations"] == [] and rec["source"] == str(xml)
    # The host itself fails measures (no /dev/kvm in the kvm-good root, no firewall …): reported only.
    assert any(h["status"] == "fail" for h in rec["host_findings"])
    assert rec["policy"]["host_facts_sha256"] and rec["policy"]["profile"] == "default"


def test_tcg_domain_type_is_refused_with_11_1(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = node_domain_xml("kvm-hardened").replace('<domain type="kvm">', '<domain type="qemu">', 1)
    assert 'type="qemu"' in xml
    code, rec, _ = _check(capsys, _write(tmp_path, "tcg", xml), "--host-facts", host_bundle)
    assert code == 1
    assert (rec["outcome"], rec["reason"]) == ("refused", "violations")
    assert _measures(rec) == {"11.1.1", "11.1.2"}
    assert all(v["fix"] and "type='kvm'" in v["fix"] for v in rec["violations"])


def test_vcpus_not_below_host_cores_is_refused_with_11_3_3(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = node_domain_xml("kvm-hardened")
    # The snapshot's host has 8 physical cores (the kvm-good root's /proc/cpuinfo: fewer than the
    # node's 2 x 8, so the conservative count is used).
    ok = re.sub(r"(<vcpu[^>]*>)4(</vcpu>)", r"\g<1>7\2", base)
    wide = re.sub(r"(<vcpu[^>]*>)4(</vcpu>)", r"\g<1>8\2", base)
    assert ok != base and wide != base
    code, rec, _ = _check(capsys, _write(tmp_path, "ok", ok), "--host-facts", host_bundle)
    assert code == 0, rec["violations"]
    code, rec, _ = _check(capsys, _write(tmp_path, "wide", wide), "--host-facts", host_bundle)
    assert code == 1
    assert _measures(rec) == {"11.3.3"}


def test_missing_cpu_io_and_bandwidth_limits_are_refused_with_11_3_10(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = node_domain_xml("kvm-hardened")
    bare = re.sub(r"<iotune>.*?</iotune>", "", base, flags=re.S)
    bare = re.sub(r"<bandwidth>.*?</bandwidth>", "", bare, flags=re.S)
    bare = re.sub(r"<quota>\d+</quota>", "", bare)
    code, rec, _ = _check(capsys, _write(tmp_path, "bare", bare), "--host-facts", host_bundle)
    assert code == 1
    assert _measures(rec) == {"11.3.10"}
    message = rec["violations"][0]["message"]
    assert "no CPU quota" in message and "bandwidth" in message and "I/O" in message
    # kvm-off from the node: only the CPU quota is missing.
    code, rec, _ = _check(
        capsys, _write(tmp_path, "off", node_domain_xml("kvm-off")), "--host-facts", host_bundle
    )
    assert code == 1 and _measures(rec) == {"11.3.10"}


def test_an_active_exception_covers_the_violation_and_the_record_names_it(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    register = tmp_path / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    xml = _write(tmp_path, "off", node_domain_xml("kvm-off"))
    code, rec, _ = _check(capsys, xml, "--host-facts", host_bundle, "--exceptions", register)
    assert code == 0
    assert (rec["outcome"], rec["reason"]) == ("allowed", "covered-by-exception")
    assert rec["covered"] == [
        {
            "measure": "11.3.10",
            "check": "kvm.vm-resource-limits",
            "status": "fail",
            "exception": "EX-G1-LIMITS",
            "expires_on": "2099-12-31",
        }
    ]
    assert rec["policy"]["exceptions_sha256"]
    # After it expires the same VM is refused again.
    code, rec, _ = _check(
        capsys, xml, "--host-facts", host_bundle, "--exceptions", register, "--as-of", "2100-01-01"
    )
    assert code == 1 and rec["covered"] == []


def test_several_files_give_an_array_and_text_names_each(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a", node_domain_xml("kvm-hardened"))
    b = _write(tmp_path, "b", node_domain_xml("qemu-loose"))
    code, recs, _ = _check(capsys, a, b, "--host-facts", host_bundle)
    assert code == 1
    assert [(r["domain"], r["outcome"]) for r in recs] == [
        ("kvm-hardened", "allowed"),
        ("qemu-loose", "refused"),
    ]
    assert run(["guard", "check", str(a), str(b), "--host-facts", str(host_bundle)]) == 1
    text = capsys.readouterr().out
    assert "ALLOWED kvm-hardened" in text and "REFUSED qemu-loose" in text and "fix: virsh edit" in text


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ("<domain type='kvm'><name>x</name>", "invalid XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<domain type='kvm'><name>&b;</name></domain>",
            "refused XML",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<domain type='kvm'><name>&x;</name></domain>",
            "refused XML",
        ),
        ("<network><name>default</name></network>", "root element is <network>"),
        ("<domain type='kvm'><vcpu>many</vcpu></domain>", "vcpu"),
        ("<domain type='kvm'></domain>", "no <name>"),
    ],
)
def test_bad_or_hostile_xml_is_one_line_and_exit_2(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str], content: str, expect: str
) -> None:
    good = _write(tmp_path, "good", node_domain_xml("kvm-hardened"))
    bad = _write(tmp_path, "bad", content)
    code = run(["guard", "check", str(good), str(bad), "--host-facts", str(host_bundle)])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""  # nothing judged when one input is bad
    assert out.err.count("\n") == 1 and out.err.startswith("hvguard: error: ")
    assert str(bad) in out.err and expect in out.err and "Traceback" not in out.err


def test_unusable_files_are_exit_2(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = _write(tmp_path, "x", node_domain_xml("kvm-hardened"))
    assert run(["guard", "check", str(tmp_path / "absent.xml"), "--host-facts", str(host_bundle)]) == 2
    assert "cannot read domain XML" in capsys.readouterr().err
    not_bundle = tmp_path / "nb.json"
    not_bundle.write_text("{}", encoding="utf-8")
    assert run(["guard", "check", str(xml), "--host-facts", str(not_bundle)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert run(["guard", "check", str(xml), "--host-facts", str(host_bundle), "--no-host"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_no_host_makes_host_dependent_measures_error_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rec, err = _check(capsys, _write(tmp_path, "h", node_domain_xml("kvm-hardened")), "--no-host")
    assert code == 2
    assert "11.3.3" in _measures(rec) and {v["status"] for v in rec["violations"]} == {"error"}
    assert err.count("\n") == 1 and "cannot be decided without host facts" in err and "11.3.3" in err
    # A violation the XML alone shows is still a refusal (exit 1).
    code, rec, _ = _check(capsys, _write(tmp_path, "q", node_domain_xml("qemu-loose")), "--no-host")
    assert code == 1 and {"11.1.1", "11.1.2", "11.3.10"} <= _measures(rec)


def _corpus_domains(limit: int) -> list[Path]:
    base = shared("corpus", "virt-manager")
    out = []
    for path in sorted(base.rglob("*.xml")):
        try:
            parse_domain(path.read_bytes(), str(path))
        except DomainXmlError:
            continue
        out.append(path)
        if len(out) == limit:
            break
    return out


def test_decisions_equal_the_vm_findings_evaluate_gives_for_the_same_facts(
    tmp_path: Path, host_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No second rule set: for each domain, guard check's violations are exactly the binding fail/error
    findings on that VM in `hvguard evaluate`'s JSON report of the same facts (snapshot + the VM)."""
    files = [_write(tmp_path, n, node_domain_xml(n)) for n in ("kvm-hardened", "kvm-off", "qemu-loose")]
    files += _corpus_domains(8)
    snapshot = load(host_bundle)
    policy = load_policy(None, None, None)
    binding = binding_measures(policy.catalog, policy.profile)
    refused = 0
    for path in files:
        vm = parse_domain(path.read_bytes(), str(path))
        facts_bundle = tmp_path / f"facts-{path.stem}.json"
        write_bundle(make_bundle([with_vm(snapshot, vm)]), facts_bundle, overwrite=True)
        run(["evaluate", str(facts_bundle), "--format", "json", "-o", "-", "--no-history"])
        report = json.loads(capsys.readouterr().out)
        expected = sorted(
            (f["measure"], f["check"], f["status"], f["message"])
            for f in report["results"]
            if f["subject"] == f"vm:{vm.name}"
            and f["measure"] in binding
            and f["status"] in ("fail", "error")
        )
        code, rec, _ = _check(capsys, path, "--host-facts", host_bundle)
        got = sorted((v["measure"], v["check"], v["status"], v["message"]) for v in rec["violations"])
        assert got == expected, path
        assert code == (1 if expected else 0)
        refused += bool(expected)
    assert 0 < refused < len(files)  # both outcomes were exercised
