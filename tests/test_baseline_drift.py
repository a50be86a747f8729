"""Drift between hand-made facts and a baseline: exactly the differing values, nothing governed missed."""

from __future__ import annotations

from typing import Any

import msgspec

from factories import conf, good_host, good_vm, target
from hvguard.baseline.capture import capture, render
from hvguard.baseline.drift import DriftItem, target_drift
from hvguard.baseline.schema import parse_baseline
from hvguard.facts import Bandwidth, ConfFile, CpuTune, Disk, Interface, SecLabel, TargetFacts

HEAD = "schema: hvguard.baseline/1\n"


def drift(baseline_text: str, tgt: TargetFacts) -> list[dict[str, Any]]:
    report = target_drift(parse_baseline(baseline_text, "b.yaml").baseline, tgt, "b.yaml")
    assert report.errors == [], report.errors
    return [i.to_json() for i in report.items]


def roundtrip(tgt: TargetFacts) -> str:
    return render(capture(tgt), target=tgt.id, when="2026-01-01T00:00:00Z")


def test_a_capture_checks_clean_against_the_facts_it_came_from() -> None:
    vms = [
        good_vm(
            "web1",
            seclabels=[
                SecLabel(type="dynamic", model="dac", relabel=True, label="+107:+107"),
                SecLabel(
                    type="static", model="selinux", relabel=False, label="system_u:system_r:svirt_t:s0:c1"
                ),
            ],
        ),
        good_vm("db1", uuid="00000000-0000-0000-0000-000000000002"),
    ]
    tgt = target(vms, host=good_host(qemu_conf=conf("/etc/libvirt/qemu.conf", security_driver="selinux")))
    text = roundtrip(tgt)
    report = target_drift(parse_baseline(text, "b.yaml").baseline, tgt, "b.yaml")
    assert report.items == [] and report.errors == [] and report.host_checked
    assert report.governed == {"web1": "web1", "db1": "db1"}
    assert "security_driver: selinux" in text and "svirt_t:s0:c1" in text
    # libvirt's default (dynamic, relabelled) is shown only in a running VM's XML: not configuration.
    assert "type: dynamic" not in text and "+107:+107" not in text


def test_one_changed_value_is_exactly_one_item() -> None:
    tgt = target([good_vm("web1")])
    text = roundtrip(tgt)
    changed = target([good_vm("web1", cputune=CpuTune(shares=1024, period=100000, quota=80000))])
    assert drift(text, changed) == [
        {"subject": "vm:web1", "path": "cputune.quota", "expected": 50000, "actual": 80000, "class": "web1"}
    ]


def test_absent_keys_are_not_governed_and_null_means_unset() -> None:
    text = HEAD + (
        "vm_classes:\n- name: web\n  match: {name: 'web*'}\n"
        "  settings: {cputune: {quota: 50000, shares: null}}\n"
    )
    vm = good_vm("web1", cputune=CpuTune(shares=2048, period=250000, quota=50000))
    assert drift(text, target([vm])) == [
        {"subject": "vm:web1", "path": "cputune.shares", "expected": None, "actual": 2048, "class": "web"}
    ]


def test_star_covers_every_disk_and_iotune_is_compared_whole() -> None:
    text = HEAD + (
        "vm_classes:\n- name: all\n  match: {name: '*'}\n  settings:\n"
        "    disks:\n      '*': {iotune: {total_bytes_sec: 50000000, total_iops_sec: 500}}\n"
        "      vdb: {iotune: {total_iops_sec: 100}}\n"
    )
    disks = [
        Disk(
            target="vda",
            iotune={"total_bytes_sec": 50_000_000, "total_iops_sec": 500, "read_iops_sec_max": 9},
        ),
        Disk(target="vdb", iotune={"total_iops_sec": 100}),
        Disk(target="vdc", iotune={}),
        Disk(target="sda", device="cdrom"),  # "*" covers device 'disk' only
    ]
    items = drift(text, target([good_vm("web1", disks=disks)]))
    assert [(i["path"], i["expected"], i["actual"]) for i in items] == [
        ("disks[vda].iotune.read_iops_sec_max", None, 9),
        ("disks[vdc].iotune.total_bytes_sec", 50000000, None),
        ("disks[vdc].iotune.total_iops_sec", 500, None),
    ]


def test_a_named_disk_or_interface_that_is_missing_is_drift() -> None:
    text = HEAD + (
        "vm_classes:\n- name: web\n  match: {name: web1}\n  settings:\n"
        "    disks: {vdz: {iotune: {total_iops_sec: 5}}}\n"
        "    interfaces: {'52:54:00:AA:BB:CC': {inbound: {average: 1000}}}\n"
    )
    items = drift(text, target([good_vm("web1")]))
    assert [(i["path"], i["actual"]) for i in items] == [
        ("disks[vdz]", None),
        ("interfaces[52:54:00:aa:bb:cc]", None),
    ]


def test_interfaces_by_mac_with_a_direction_that_must_be_unlimited() -> None:
    text = HEAD + (
        "vm_classes:\n- name: web\n  match: {name: web1}\n  settings:\n"
        "    interfaces: {'*': {inbound: {average: 1000, peak: null}, outbound: null}}\n"
    )
    nic = Interface(
        mac="52:54:00:00:00:01", inbound=Bandwidth(average=2000, peak=10), outbound=Bandwidth(average=5)
    )
    items = drift(text, target([good_vm("web1", interfaces=[nic])]))
    assert [(i["path"], i["expected"], i["actual"]) for i in items] == [
        ("interfaces[52:54:00:00:00:01].inbound.average", 1000, 2000),
        ("interfaces[52:54:00:00:00:01].inbound.peak", None, 10),
        (
            "interfaces[52:54:00:00:00:01].outbound",
            None,
            {"average": 5, "peak": None, "burst": None, "floor": None},
        ),
    ]


def test_first_matching_class_wins_and_the_overlap_is_warned() -> None:
    text = HEAD + (
        "vm_classes:\n"
        "- name: tagged\n  match: {metadata: {class: web}}\n  settings: {vcpu: {maximum: 4}}\n"
        "- name: by-name\n  match: {name: 'web*'}\n  settings: {vcpu: {maximum: 2}}\n"
    )
    tagged = good_vm("web1", metadata_tags={"hvguard.class": "web"})
    plain = good_vm("web2")
    other = good_vm("db1")
    report = target_drift(parse_baseline(text, "b").baseline, target([tagged, plain, other]), "b")
    assert report.governed == {"web1": "tagged", "web2": "by-name"}
    assert report.ungoverned == ["db1"]
    assert [(i.subject, i.path) for i in report.items] == [("vm:web1", "vcpu.maximum")]
    assert report.warnings == ["vm:web1 matches classes 'tagged' and 'by-name': the first ('tagged') applies"]


def test_an_exact_name_class_without_its_vm_is_drift_and_a_pattern_without_vms_a_warning() -> None:
    text = HEAD + (
        "vm_classes:\n- name: gone\n  match: {name: gone1}\n  settings: {type: kvm}\n"
        "- name: none\n  match: {name: 'none-*'}\n  settings: {type: kvm}\n"
    )
    report = target_drift(parse_baseline(text, "b").baseline, target([good_vm("web1")]), "b")
    assert report.items == [DriftItem("vm:gone1", "domain", "defined", None, "gone")]
    assert report.warnings == ["class 'none' matches no VM on qemu:///system"]
    assert report.exit_code() == 1


def test_host_config_keys_and_facts_drift() -> None:
    text = HEAD + (
        "host:\n  qemu_conf: {security_driver: selinux, vnc_listen: null, namespaces: [mount]}\n"
        "  libvirtd_conf: {auth_tcp: sasl}\n  facts: {kernel.lockdown: confidentiality}\n"
    )
    host = good_host(
        qemu_conf=conf(
            "/etc/libvirt/qemu.conf", security_driver="none", vnc_listen="0.0.0.0", namespaces=["mount"]
        ),
        libvirtd_conf=ConfFile(path="/etc/libvirt/libvirtd.conf", present=False),
    )
    items = drift(text, target([], host=host))
    assert [(i["subject"], i["path"], i["expected"], i["actual"]) for i in items] == [
        ("host", "qemu_conf.security_driver", "selinux", "none"),
        ("host", "qemu_conf.vnc_listen", None, "0.0.0.0"),
        ("host", "libvirtd_conf.auth_tcp", "sasl", None),
        ("host", "facts.kernel.lockdown", "confidentiality", "integrity"),
    ]


def test_unreadable_subjects_are_errors_never_no_drift() -> None:
    text = (
        HEAD
        + "host:\n  qemu_conf: {user: qemu}\n"
        + "vm_classes:\n- name: all\n  match: {name: '*'}\n  settings: {type: kvm}\n"
    )
    b = parse_baseline(text, "b").baseline
    broken = good_host(qemu_conf=ConfFile(path="/etc/libvirt/qemu.conf", present=True, error="line 3: bad"))
    report = target_drift(b, target([good_vm("web1", error="invalid XML")], host=broken), "b")
    assert [(e.subject, e.message) for e in report.errors] == [
        ("host", "qemu.conf is unusable: line 3: bad"),
        ("vm:web1", "cannot read this VM: invalid XML"),
    ]
    assert report.exit_code() == 2
    remote = msgspec.structs.replace(target([]), host=None)
    assert target_drift(b, remote, "b").exit_code() == 2
