"""Against the real libvirtd (qemu:///system): define compliant and non-compliant ``hvg-test-*``
domains, start some, scan through the CLI and assert the exact per-VM verdicts.

Other domains may exist on this machine-wide daemon; assertions only look at this run's domains.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvguard.collect.bundle import read_bundle
from libvirt_env import (
    TestDomains,
    disk_xml,
    domain_xml,
    requires_libvirtd,
    user_interface_xml,
)

pytestmark = [requires_libvirtd, pytest.mark.libvirtd]

URI = "qemu:///system"
TUNED = {"shares": 1024, "period": 100000, "quota": 50000}
IOTUNE = {"total_bytes_sec": 10_485_760, "total_iops_sec": 500}
BOTH_WAYS = {"inbound": {"average": 1000, "peak": 2000, "burst": 64}, "outbound": {"average": 1000}}


class Estate:
    """The domains this module defines, the CLI's JSON report and the collected bundle."""

    def __init__(self, td: TestDomains, report: dict[str, Any], bundle: Path, cores: int) -> None:
        self.td = td
        self.report = report
        self.bundle = bundle
        self.cores = cores

    def status(self, measure: str, suffix: str) -> list[str]:
        """Statuses of ``measure`` for our VM ``suffix``."""
        subject = f"vm:{self.td.name(suffix)}"
        return [
            r["status"] for r in self.report["results"] if r["measure"] == measure and r["subject"] == subject
        ]

    def finding(self, measure: str, suffix: str) -> dict[str, Any]:
        subject = f"vm:{self.td.name(suffix)}"
        found = [r for r in self.report["results"] if r["measure"] == measure and r["subject"] == subject]
        assert len(found) == 1, found
        return found[0]


def _host_cores() -> int:
    conn = libvirt.openReadOnly(URI)
    try:
        _model, _mem, _cpus, _mhz, nodes, sockets, cores, _threads = conn.getInfo()
    finally:
        conn.close()
    return int(nodes * sockets * cores)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    cores = _host_cores()
    with TestDomains(URI) as td:
        luks = td.make_luks_qcow2("secure.qcow2", secret="hvg-test passphrase")
        secret = td.define_secret(luks, "hvg-test passphrase")
        td.define_and_start(
            domain_xml(
                td.name("secure"),
                vcpus=1,
                cputune=TUNED,
                blkio_weight=500,
                disks=[disk_xml(luks, iotune=IOTUNE, luks_secret_uuid=secret)],
                interfaces=[user_interface_xml(bandwidth=BOTH_WAYS)],
                tpm=True,
            )
        )
        td.define(domain_xml(td.name("tcg"), dom_type="qemu", vcpus=1))
        td.define(domain_xml(td.name("wide"), vcpus=cores, cputune=TUNED))
        plain = td.make_qcow2("plain.qcow2")
        td.define_and_start(
            domain_xml(
                td.name("plain"),
                vcpus=1,
                cputune=TUNED,
                disks=[disk_xml(plain)],
                interfaces=[user_interface_xml(bandwidth={"inbound": {"average": 1000}})],
            )
        )
        td.define(domain_xml(td.name("unconfined"), vcpus=1, cputune=TUNED, extra="<seclabel type='none'/>"))

        r = _cli("scan", URI, "--format", "json", "--fail-on", "never")
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        bundle = tmp_path_factory.mktemp("bundle") / "estate.json"
        c = _cli("collect", URI, "--output", str(bundle))
        assert c.returncode == 0, c.stderr
        yield Estate(td, report, bundle, cores)


def test_every_measure_is_reported_and_our_vms_are_collected(estate: Estate) -> None:
    by_measure = estate.report["summary"]["by_measure"]
    assert len(by_measure) == 36
    assert estate.report["targets"][0]["unreachable"] is None
    subjects = {r["subject"] for r in estate.report["results"]}
    for suffix in ("secure", "tcg", "wide", "plain", "unconfined"):
        assert f"vm:{estate.td.name(suffix)}" in subjects


def test_collected_facts_match_what_was_defined(estate: Estate) -> None:
    (target,) = read_bundle(estate.bundle).targets
    assert target.hypervisor is not None and target.host is not None
    vms = {vm.name: vm for vm in target.hypervisor.vms}
    secure = vms[estate.td.name("secure")]
    assert secure.active is True and secure.persistent is True and secure.domain_type == "kvm"
    assert secure.cputune.shares == 1024 and secure.cputune.quota == 50000
    assert secure.blkiotune.weight == 500
    assert secure.disks[0].encryption is not None and secure.disks[0].encryption.format == "luks"
    assert secure.disks[0].iotune == IOTUNE
    assert secure.interfaces[0].outbound is not None and secure.interfaces[0].outbound.average == 1000
    assert [(t.model, t.backend, t.version) for t in secure.tpms] == [("tpm-crb", "emulator", "2.0")]
    assert vms[estate.td.name("tcg")].active is False and vms[estate.td.name("tcg")].domain_type == "qemu"
    assert vms[estate.td.name("wide")].vcpu.maximum == estate.cores
    # The running QEMU processes are seen with the account they run as (Debian: libvirt-qemu).
    procs = target.host.qemu_processes or []
    ours = {p.vm_name: p.user for p in procs if p.vm_name and p.vm_name.startswith(estate.td.prefix)}
    assert set(ours) == {estate.td.name("secure"), estate.td.name("plain")}
    assert all(user != "root" for user in ours.values())


def test_domain_type_verdicts(estate: Estate) -> None:
    for suffix in ("secure", "wide", "plain"):
        assert estate.status("11.1.1", suffix) == ["pass"], suffix
        assert estate.status("11.1.2", suffix) == ["pass"], suffix
    assert estate.status("11.1.1", "tcg") == ["fail"]
    assert estate.status("11.1.2", "tcg") == ["fail"]
    assert "type='kvm'" in estate.finding("11.1.1", "tcg")["remediation"]


def test_vcpu_verdicts(estate: Estate) -> None:
    assert estate.status("11.3.3", "wide") == ["fail"]
    fix = estate.finding("11.3.3", "wide")["remediation"]
    assert f"virsh setvcpus {estate.td.name('wide')} {estate.cores - 1} --maximum --config" in fix
    expected_small = "pass" if estate.cores > 1 else "fail"
    for suffix in ("secure", "tcg", "plain", "unconfined"):
        assert estate.status("11.3.3", suffix) == [expected_small], suffix


def test_resource_limit_verdicts(estate: Estate) -> None:
    assert estate.status("11.3.10", "secure") == ["pass"]
    plain = estate.finding("11.3.10", "plain")
    assert plain["status"] == "fail"
    assert "outbound" in plain["message"] and "blkdeviotune" in plain["remediation"]
    assert "domiftune" in plain["remediation"]
    tcg = estate.finding("11.3.10", "tcg")
    assert tcg["status"] == "fail" and "vcpu_quota" in tcg["remediation"]
    assert "min_guarantee" not in json.dumps(estate.report)


def test_encryption_and_confinement_verdicts(estate: Estate) -> None:
    assert estate.status("11.2.9", "secure") == ["pass"]
    assert estate.status("11.2.9", "plain") == ["fail"]
    assert estate.status("11.2.10", "secure") == ["pass"]
    assert estate.status("11.2.7", "unconfined") == ["fail"]
    assert estate.status("11.2.7", "secure") == ["pass"]
