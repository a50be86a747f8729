"""Gold configuration against the real libvirtd (qemu:///system): capture, drift, remediate, undo.

Only this run's ``hvg-test-<pid>-*`` domains are captured (``--match``) and changed; a domain of ours
outside the baseline proves that nothing else is touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvguard.baseline.apply import canonical
from libvirt_env import TestDomains, disk_xml, domain_xml, requires_libvirtd, user_interface_xml

pytestmark = [requires_libvirtd, pytest.mark.libvirtd]

URI = "qemu:///system"
TUNED = {"shares": 1024, "period": 100000, "quota": 50000}
MAC1, MAC2 = "52:54:00:4b:00:01", "52:54:00:4b:00:02"
BOTH_WAYS = {"inbound": {"average": 1000, "peak": 2000, "burst": 64}, "outbound": {"average": 1000}}
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-q", "-c", URI, *args], check=True, capture_output=True, text=True, timeout=120)


class Estate:
    """This module's domains and files."""

    def __init__(self, td: TestDomains, tmp: Path) -> None:
        self.td = td
        self.tmp = tmp
        self.data = tmp / "data"

    def name(self, suffix: str) -> str:
        return self.td.name(suffix)

    def xml(self, suffix: str) -> str:
        return str(self.td.conn.lookupByName(self.name(suffix)).XMLDesc(INACTIVE))

    def snapshot(self) -> dict[str, str]:
        return {s: canonical(self.xml(s)) for s in ("web1", "web2", "outside")}

    def check(self, baseline: Path) -> tuple[int, dict[str, Any]]:
        r = hv("baseline", "check", URI, "--baseline", str(baseline), "--format", "json")
        assert r.returncode in (0, 1), r.stderr
        report = json.loads(r.stdout)
        mine = [d for d in report["drift"] if d["subject"].startswith(f"vm:{self.td.prefix}")]
        assert mine == report["drift"], "drift outside this run's domains"
        return r.returncode, report

    def remediate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return hv("remediate", *args, "--data-dir", str(self.data))


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    tmp = tmp_path_factory.mktemp("baseline")
    with TestDomains() as td:
        for suffix, mac in (("web1", MAC1), ("web2", MAC2)):
            td.define(
                domain_xml(
                    td.name(suffix),
                    cputune=TUNED,
                    blkio_weight=500,
                    memtune={"soft_limit": 65536},
                    disks=[
                        disk_xml(
                            td.make_qcow2(f"{suffix}.qcow2"),
                            iotune={"total_bytes_sec": 10_485_760, "total_iops_sec": 500},
                        )
                    ],
                    interfaces=[user_interface_xml(mac=mac, bandwidth=BOTH_WAYS)],
                )
            )
        td.define(domain_xml(td.name("outside"), cputune={"shares": 256}))
        td.start(td.name("web2"))
        e = Estate(td, tmp)
        r = hv(
            "baseline",
            "capture",
            URI,
            "--match",
            f"{td.prefix}web*",
            "--no-host",
            "--output",
            str(tmp / "gold.yaml"),
        )
        assert r.returncode == 0, r.stderr
        yield e


def test_capture_then_one_virsh_change_is_exactly_one_drift_item(estate: Estate) -> None:
    gold = estate.tmp / "gold.yaml"
    text = gold.read_text(encoding="utf-8")
    assert f"name: {estate.name('web1')}" in text and estate.name("outside") not in text
    code, report = estate.check(gold)
    assert code == 0 and report["drift"] == [], report
    assert report["governed"] == {
        estate.name("web1"): estate.name("web1"),
        estate.name("web2"): estate.name("web2"),
    }

    virsh("schedinfo", estate.name("web1"), "--config", "vcpu_quota=80000")
    code, report = estate.check(gold)
    assert code == 1
    assert report["drift"] == [
        {
            "subject": f"vm:{estate.name('web1')}",
            "path": "cputune.quota",
            "expected": 50000,
            "actual": 80000,
            "class": estate.name("web1"),
        }
    ]


def test_dry_run_changes_nothing_apply_fixes_undo_restores_exactly(estate: Estate) -> None:
    gold = estate.tmp / "gold.yaml"
    before = estate.snapshot()
    dry = estate.remediate(URI, "--baseline", str(gold), "--format", "json")
    assert dry.returncode == 1, dry.stderr
    plan = json.loads(dry.stdout)
    [dom] = plan["domains"]
    assert dom["name"] == estate.name("web1")
    assert [(a["path"], a["method"], a["scope"]) for a in dom["actions"]] == [
        ("cputune.quota", "setSchedulerParametersFlags", "config")
    ]
    assert estate.snapshot() == before
    assert not (estate.data / "remediation").exists(), "a dry run writes no undo record"

    done = estate.remediate(URI, "--baseline", str(gold), "--apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    run_id = result["run_id"]
    assert result["complete"] is True
    run_dir = estate.data / "remediation" / run_id
    assert (run_dir / "manifest.json").is_file() and (run_dir / "plan.json").is_file()
    assert oct((run_dir / "before").stat().st_mode & 0o777) == "0o700"
    code, report = estate.check(gold)
    assert code == 0 and report["drift"] == []
    after = estate.snapshot()
    assert after["outside"] == before["outside"] and after["web2"] == before["web2"]

    scan = hv("scan", URI, "--format", "json", "--fail-on", "never")
    results = json.loads(scan.stdout)["results"]
    web1 = f"vm:{estate.name('web1')}"
    for measure in ("11.3.10", "11.3.4"):
        assert [r["status"] for r in results if r["measure"] == measure and r["subject"] == web1] == ["pass"]

    undo = estate.remediate("--undo", run_id)
    assert undo.returncode == 0, undo.stderr
    assert estate.snapshot() == before  # canonical XML identical to the state before --apply
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "undone"
    again = estate.remediate("--undo", run_id)
    assert again.returncode == 2 and "already undone" in again.stderr


def test_undo_is_refused_when_the_domain_changed_since_the_run(estate: Estate) -> None:
    gold = estate.tmp / "gold.yaml"
    virsh("schedinfo", estate.name("web1"), "--config", "vcpu_quota=80000")
    done = estate.remediate(URI, "--baseline", str(gold), "--apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    virsh("schedinfo", estate.name("web1"), "--config", "cpu_shares=333")
    refused = estate.remediate("--undo", run_id)
    assert refused.returncode == 2
    assert "changed since" in refused.stderr and "<shares>333</shares>" in refused.stdout
    assert "<shares>333</shares>" in estate.xml("web1")
    forced = estate.remediate("--undo", run_id, "--force")
    assert forced.returncode == 0, forced.stderr
    xml = estate.xml("web1")
    assert "<quota>80000</quota>" in xml and "<shares>1024</shares>" in xml
    virsh("schedinfo", estate.name("web1"), "--config", "vcpu_quota=50000")


def test_running_domain_gets_config_and_live_values_and_undo_restores_both(estate: Estate) -> None:
    gold = estate.tmp / "gold.yaml"
    web2 = estate.name("web2")
    dom = estate.td.conn.lookupByName(web2)
    before = estate.xml("web2")
    virsh("schedinfo", web2, "--config", "vcpu_quota=70000")
    virsh("schedinfo", web2, "--live", "vcpu_quota=70000")
    virsh("blkdeviotune", web2, "vda", "--live", "--total-iops-sec", "900")
    changed = estate.xml("web2")
    dry = json.loads(estate.remediate(URI, "--baseline", str(gold), "--format", "json").stdout)
    actions = {(a["path"], a["scope"]) for d in dry["domains"] for a in d["actions"]}
    assert actions == {("cputune.quota", "config+live"), ("disks[vda].iotune.total_iops_sec", "live")}

    done = estate.remediate(URI, "--baseline", str(gold), "--apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    assert dom.schedulerParametersFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE)["vcpu_quota"] == 50000
    assert dom.blockIoTune("vda", libvirt.VIR_DOMAIN_AFFECT_LIVE)["total_iops_sec"] == 500
    code, report = estate.check(gold)
    assert code == 0, report

    assert estate.remediate("--undo", run_id).returncode == 0
    assert canonical(estate.xml("web2")) == canonical(changed)
    assert dom.schedulerParametersFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE)["vcpu_quota"] == 70000
    assert dom.blockIoTune("vda", libvirt.VIR_DOMAIN_AFFECT_LIVE)["total_iops_sec"] == 900
    # back to the captured state for the next test
    assert estate.remediate(URI, "--baseline", str(gold), "--apply").returncode == 0
    assert canonical(estate.xml("web2")) == canonical(before)


def test_settings_without_an_api_and_removals_round_trip(estate: Estate) -> None:
    web1 = estate.name("web1")
    hand = estate.tmp / "hand.yaml"
    hand.write_text(
        f"""\
schema: hvguard.baseline/1
vm_classes:
  - name: strict
    match: {{name: "{web1}"}}
    settings:
      type: qemu
      vcpu: {{maximum: 2, current: 1}}
      memory: {{maximum_kib: 262144, current_kib: 196608}}
      cputune: {{shares: null, period: 200000, quota: 100000}}
      memtune: {{hard_limit_kib: 524288, soft_limit_kib: null}}
      blkiotune: {{weight: 200}}
      disks:
        vda: {{iotune: {{read_iops_sec: 100, write_iops_sec: 50}}}}
      interfaces:
        "{MAC1.upper()}": {{inbound: {{average: 3000, peak: null, burst: null}}, outbound: null}}
      seclabels: [{{model: dac, type: static, relabel: false, label: "+0:+0"}}]
""",
        encoding="utf-8",
    )
    before = estate.snapshot()
    code, report = estate.check(hand)
    assert code == 1 and len(report["drift"]) >= 10
    done = estate.remediate(URI, "--baseline", str(hand), "--apply", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    methods = {a["method"] for d in result["domains"] for a in d["actions"]}
    assert {
        "defineXML",
        "setVcpusFlags",
        "setMemoryFlags",
        "setBlockIoTune",
        "setSchedulerParametersFlags",
    } <= methods
    code, report = estate.check(hand)
    assert code == 0, report["drift"]
    xml = estate.xml("web1")
    assert "<domain type='qemu'" in xml and "<shares>" not in xml and "min_guarantee" not in xml
    assert estate.snapshot()["outside"] == before["outside"]

    assert estate.remediate("--undo", result["run_id"]).returncode == 0
    assert estate.snapshot() == before


def test_host_settings_become_a_playbook_that_passes_syntax_check(estate: Estate) -> None:
    host = estate.tmp / "host.yaml"
    host.write_text(
        "schema: hvguard.baseline/1\nhost:\n  qemu_conf:\n    hvguard_test_key: 1\n    vnc_tls: 1\n",
        encoding="utf-8",
    )
    book = estate.tmp / "host-playbook.yml"
    r = estate.remediate(URI, "--baseline", str(host), "--emit-ansible", str(book))
    assert r.returncode == 1, r.stderr
    text = book.read_text(encoding="utf-8")
    assert "hvguard_test_key = 1" in text
    ansible = shutil.which("ansible-playbook")
    assert ansible is not None, "scripts/setup.sh test installs ansible-core"
    check = subprocess.run(
        [ansible, "--syntax-check", "-i", "localhost,", str(book)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    again = estate.remediate(URI, "--baseline", str(host), "--emit-ansible", str(book))
    assert again.returncode == 2 and "exists" in again.stderr
