"""The comparison rules of ``hvguard diff`` on hand-made facts, and the store's own guarantees
(compressed facts round-trip, corrupt facts are refused) through the store API on a SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from factories import good_vm, target
from hvguard.engine import evaluate
from hvguard.facts import Problem, QemuProcess, VcpuFacts
from hvguard.history.compare import diff_scans, fact_changes, status_transitions
from hvguard.history.records import ScanSummary, StoredFinding, StoredScan, StoredTarget
from hvguard.history.store import HistoryError, HistoryStore
from hvguard.profile import default_profile


def plain(obj: Any) -> dict[str, Any]:
    return dict(msgspec.json.decode(msgspec.json.encode(obj)))


def finding(subject: str, measure: str, status: str, check: str = "c", target: str = "t") -> StoredFinding:
    return StoredFinding(
        target=target,
        subject=subject,
        measure=measure,
        check=check,
        status=status,
        original_status=None,
        message=f"{measure} {status}",
        remediation=None,
        waiver_id=None,
        evidence={},
    )


def summary(scan_id: int) -> ScanSummary:
    return ScanSummary(
        id=scan_id,
        created_at=datetime(2026, 1, scan_id, tzinfo=UTC),
        tool_version="t",
        command="scan",
        inputs=("t",),
        targets=("t",),
        profile_name="default",
        profile_tailored=False,
        profile_deviations=(),
        by_status={},
    )


def test_a_second_check_turning_fail_under_a_failing_measure_still_shows() -> None:
    old = [finding("host", "11.2.1", "fail", "a"), finding("host", "11.2.1", "pass", "b")]
    new = [finding("host", "11.2.1", "fail", "a"), finding("host", "11.2.1", "fail", "b")]
    (t,) = status_transitions(old, new, ["t"])
    assert (t.old, t.new, t.old_statuses, t.new_statuses) == (
        "fail",
        "fail",
        ("fail", "pass"),
        ("fail", "fail"),
    )
    # Same statuses in another order: no transition.
    assert status_transitions(old, list(reversed(old)), ["t"]) == []


def test_fail_to_waived_added_removed_and_order() -> None:
    old = [
        finding("vm:a", "11.3.3", "fail"),
        finding("vm:gone", "11.3.3", "pass"),
        finding("host", "11.1.2", "pass"),
    ]
    new = [
        finding("vm:a", "11.3.3", "waived"),
        finding("vm:new", "11.3.3", "fail"),
        finding("host", "11.1.10", "warn"),
    ]
    got = [(t.subject, t.measure, t.kind, t.old, t.new) for t in status_transitions(old, new, ["t"])]
    assert got == [
        ("host", "11.1.2", "removed", "pass", None),
        ("host", "11.1.10", "added", None, "warn"),  # 11.1.10 after 11.1.2: numeric, not text order
        ("vm:a", "11.3.3", "changed", "fail", "waived"),
        ("vm:gone", "11.3.3", "removed", "pass", None),
        ("vm:new", "11.3.3", "added", None, "fail"),
    ]
    # Findings of targets not compared are left out.
    assert status_transitions(old, [*new, finding("vm:x", "11.3.3", "fail", target="other")], ["t"])[
        -1
    ].subject == ("vm:new")


def test_collection_metadata_and_qemu_pids_are_not_changes() -> None:
    host = target().host
    assert host is not None
    before = target(
        host=replace_host(host, [QemuProcess(pid=100, user="libvirt-qemu", uid=64055, vm_name="web1")])
    )
    after = msgspec.structs.replace(
        target(
            host=replace_host(host, [QemuProcess(pid=222, user="libvirt-qemu", uid=64055, vm_name="web1")])
        ),
        collection=msgspec.structs.replace(
            before.collection, collected_at="2027-01-01T00:00:00Z", duration_s=9.5, tool_version="2"
        ),
    )
    assert fact_changes("t", plain(before), plain(after)) == []
    # A QEMU process now running as root is a change, keyed by its VM, not by position.
    rooted = target(host=replace_host(host, [QemuProcess(pid=7, user="root", uid=0, vm_name="web1")]))
    got = [(c.path, c.old, c.new) for c in fact_changes("t", plain(before), plain(rooted))]
    assert got == [
        ("host.qemu_processes[web1].user", "libvirt-qemu", "root"),
        ("host.qemu_processes[web1].uid", 64055, 0),
    ]


def replace_host(host: Any, procs: list[QemuProcess]) -> Any:
    return msgspec.structs.replace(host, qemu_processes=procs)


def test_problems_are_matched_by_area_and_source() -> None:
    p1 = Problem(area="host.tpm", source="/sys/class/tpm", message="unreadable")
    p2 = Problem(area="host.cpu", source="/proc/cpuinfo", message="truncated")
    p2b = Problem(area="host.cpu", source="/proc/cpuinfo", message="empty")
    got = fact_changes("t", plain(target(problems=[p1, p2])), plain(target(problems=[p2b])))
    assert [(c.path, c.kind) for c in got] == [
        ("problems[host.tpm: /sys/class/tpm]", "removed"),
        ("problems[host.cpu: /proc/cpuinfo].message", "changed"),
    ]


def test_vm_disks_and_interfaces_keyed() -> None:
    vm = good_vm()
    disk2 = msgspec.structs.replace(vm.disks[0], target="vdb", source_path="/img/b.qcow2")
    nic = msgspec.structs.replace(vm.interfaces[0], mac="52:54:00:00:00:01")
    old = target([msgspec.structs.replace(vm, disks=[vm.disks[0]], interfaces=[nic])])
    new = target(
        [
            msgspec.structs.replace(
                vm,
                disks=[disk2, msgspec.structs.replace(vm.disks[0], readonly=True)],
                interfaces=[msgspec.structs.replace(nic, source="isolated")],
            )
        ]
    )
    got = [(c.path, c.kind) for c in fact_changes("t", plain(old), plain(new))]
    assert got == [
        ("hypervisor.vms[web1].disks[vda].readonly", "changed"),
        ("hypervisor.vms[web1].disks[vdb]", "added"),
        ("hypervisor.vms[web1].interfaces[52:54:00:00:00:01].source", "changed"),
    ]


def test_lists_of_plain_values_are_matched_by_value() -> None:
    host = target().host
    assert host is not None
    flags = ["vmx", "ept", "vpid"]
    old = target(host=msgspec.structs.replace(host, cpu=msgspec.structs.replace(host.cpu, flags=flags)))
    new_cpu = msgspec.structs.replace(host.cpu, flags=["aes", "vmx", "vpid"])
    new = target(host=msgspec.structs.replace(host, cpu=new_cpu))
    got = [(c.path, c.old, c.new, c.kind) for c in fact_changes("t", plain(old), plain(new))]
    assert got == [
        ("host.cpu.flags[ept]", "ept", None, "removed"),
        ("host.cpu.flags[aes]", None, "aes", "added"),
    ]


def test_facts_version_difference_is_noted() -> None:
    facts = plain(target())
    old = StoredScan(summary(1), {"t": StoredTarget("t", "kvm-libvirt", 1, facts)})
    new = StoredScan(summary(2), {"t": StoredTarget("t", "kvm-libvirt", 2, facts)})
    d = diff_scans(old, new, ["t"])
    assert not d.changed and d.notes and "facts model version 1 → 2" in d.notes[0]


# --------------------------------------------------------------------------------------------------------
# the store


def test_large_facts_are_compressed_and_round_trip(tmp_path: Path) -> None:
    tgt = target([good_vm(f"vm{i:03d}") for i in range(80)])
    ev = evaluate([tgt], default_profile())
    db = tmp_path / "h.sqlite3"
    with HistoryStore.open(str(db), create=True) as store:
        sid = store.save(ev, command="scan", inputs=["qemu:///system"])
    with sqlite3.connect(db) as conn:
        ((encoding, size),) = conn.execute("SELECT facts_encoding, length(facts) FROM hvguard_scan_targets")
    raw = msgspec.json.encode(tgt)
    assert encoding == "json+zlib" and size < len(raw) / 4
    with HistoryStore.open(str(db), create=False) as store:
        loaded = store.load(sid)
    assert loaded.targets["qemu:///system"].facts == msgspec.json.decode(raw)
    assert len(loaded.findings) == len(ev.findings)
    assert [(f.subject, f.measure, f.status) for f in loaded.findings] == [
        (f.subject, f.measure, f.status.value) for f in ev.findings
    ]
    # Tampered facts are refused, never diffed as if they were true.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE hvguard_scan_targets SET facts_sha256 = ?", ("0" * 64,))
    with (
        HistoryStore.open(str(db), create=False) as store,
        pytest.raises(HistoryError, match="checksum mismatch"),
    ):
        store.load(sid)


def test_waiver_and_original_status_are_stored(tmp_path: Path) -> None:
    ev = evaluate([target([good_vm(vcpu=VcpuFacts(maximum=16))])], default_profile())
    f = next(f for f in ev.findings if f.measure == "11.3.3")
    f.original_status, f.status = f.status, f.status.WAIVED
    f.waiver = {"id": "EX-7", "risk_owner": "cto"}
    db = tmp_path / "h.sqlite3"
    with HistoryStore.open(str(db), create=True) as store:
        store.save(ev, command="scan", inputs=[])
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status, original_status, waiver_id FROM hvguard_findings WHERE measure = '11.3.3'"
        ).fetchone()
    assert row == ("waived", "fail", "EX-7")


def test_reading_never_creates(tmp_path: Path) -> None:
    db = tmp_path / "none" / "h.sqlite3"
    with HistoryStore.open(str(db), create=False) as store:
        assert store.list_scans() == []
        with pytest.raises(HistoryError, match="no scans recorded"):
            store.resolve("latest")
    assert not db.parent.exists()
