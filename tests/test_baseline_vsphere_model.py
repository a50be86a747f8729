"""The vSphere parts of a baseline without a simulator: the schema's new keys, drift rules (unreadable
options, redacted values, duplicate names, wildcards, KVM ``resources``) and the PowerCLI script's quoting.
The real-API round trip is tests/test_baseline_vsphere.py."""

from __future__ import annotations

import msgspec
import pytest

from hvguard.baseline.capture import capture
from hvguard.baseline.drift import target_drift
from hvguard.baseline.powercli import powercli_script
from hvguard.baseline.schema import Baseline, BaselineError, parse_baseline
from hvguard.facts import DiskResources, NicResources, VmResources
from vsphere_factories import esxi_target, good_host, good_vm, vcenter_target, with_options

HEAD = "schema: hvguard.baseline/1\n"


def err(text: str) -> str:
    with pytest.raises(BaselineError) as exc:
        parse_baseline(HEAD + text, "b.yaml")
    return str(exc.value)


def test_new_keys_are_validated_with_their_line() -> None:
    assert "line 5" in err("vsphere_hosts:\n  - name: a\n    match: '*'\n    advanced_options: {K: [1]}\n")
    assert "match must not be empty" in err("vsphere_hosts:\n  - {name: a, match: ''}\n")
    assert "used twice" in err("vsphere_hosts:\n  - {name: a, match: x}\n  - {name: a, match: y}\n")
    assert "unknown key 'iops'" in err(
        "vm_classes:\n  - name: a\n    match: {name: a}\n"
        "    settings: {resources: {disks: {'*': {iops: 1}}}}\n"
    )
    bad = err(
        "vm_classes:\n  - name: a\n    match: {name: a}\n    settings: {resources: {cpu_limit_mhz: -5}}\n"
    )
    assert "line 5" in bad and "must not be negative" in bad
    assert "level custom needs a value" in err(
        "vm_classes:\n  - name: a\n    match: {name: a}\n"
        "    settings: {resources: {memory_shares: {level: custom}}}\n"
    )
    warned = parse_baseline(
        HEAD + "vsphere_hosts:\n  - {name: a, match: '*'}\n  - {name: b, match: esx1}\n", "b"
    )
    assert warned.warnings == ("host class 'a' matches every host, so later ones never apply: b",)
    assert "cpu_shares" in err(
        "vm_classes:\n  - name: a\n    match: {name: a}\n"
        "    settings: {resources: {cpu_shares: {level: extreme}}}\n"
    )


def _load(doc: dict[str, object]) -> Baseline:
    import yaml

    return parse_baseline(yaml.safe_dump(doc), "gold.yaml").baseline


def test_capture_of_a_vcenter_round_trips_without_drift() -> None:
    target = vcenter_target()
    doc = capture(target)
    assert doc["vsphere_hosts"] and all(c["advanced_options"] for c in doc["vsphere_hosts"])
    baseline = _load(doc)
    report = target_drift(baseline, target, "gold.yaml")
    assert (report.items, report.errors, report.exit_code()) == ([], [], 0)
    assert report.host_checked and len(report.governed) == len(doc["vm_classes"])


def test_options_drift_unreadable_is_error_and_a_missing_key_is_drift() -> None:
    host = good_host(moref="ha-host")
    baseline = _load(
        {
            "schema": "hvguard.baseline/1",
            "vsphere_hosts": [
                {
                    "name": "all",
                    "match": "*",
                    "advanced_options": {"DCUI.Access": "root", "UserVars.DcuiTimeOut": 600, "Nope.Key": 1},
                }
            ],
        }
    )
    changed = with_options(
        host, unreadable={"DCUI.Access": "NoPermission: denied"}, **{"UserVars.DcuiTimeOut": True}
    )
    report = target_drift(baseline, esxi_target(host=changed), "gold.yaml")
    assert {(i.subject, i.path, i.expected, i.actual) for i in report.items} == {
        ("host", "advanced_options.UserVars.DcuiTimeOut", 600, True),  # a bool is not the number 600
        ("host", "advanced_options.Nope.Key", 1, None),
    }
    assert [e.message for e in report.errors] == [
        "advanced option DCUI.Access could not be read: NoPermission: denied"
    ]
    assert report.exit_code() == 2


def test_wildcard_disks_and_nics_and_resources_on_kvm() -> None:
    import factories

    res = VmResources(
        vcpus=2,
        disks=[
            DiskResources(name="vda", device="disk", total_iops_sec=100),
            DiskResources(name="sda", device="cdrom"),
        ],
        nics=[NicResources(name="52:54:00:AA:BB:CC", adapter_bytes_sec=None)],
    )
    vm = msgspec.structs.replace(factories.good_vm("web1"), resources=res)
    baseline = _load(
        {
            "schema": "hvguard.baseline/1",
            "vm_classes": [
                {
                    "name": "web",
                    "match": {"name": "web*"},
                    "settings": {
                        "resources": {
                            "vcpus": 2,
                            "disks": {"*": {"total_iops_sec": 200}},
                            "nics": {"52:54:00:aa:bb:cc": {"adapter_bytes_sec": 1000}},
                        }
                    },
                }
            ],
        }
    )
    report = target_drift(baseline, factories.target(vms=[vm]), "gold.yaml")
    assert {(i.path, i.expected, i.actual) for i in report.items} == {
        ("resources.disks[vda].total_iops_sec", 200, 100),  # the CD-ROM is not a disk
        ("resources.nics[52:54:00:aa:bb:cc].adapter_bytes_sec", 1000, None),
    }


def test_powercli_quotes_names_and_uses_ids_for_duplicate_vm_names() -> None:
    hostile_host = good_host(name="esx'1$(calc)", moref="host-11")
    vms = [good_vm(name="twin", moref="vm-1"), good_vm(name="twin", moref="vm-2", folder="Other")]
    target = vcenter_target(hosts=[hostile_host], vms=vms)
    doc = capture(target)
    baseline = _load(doc)
    changed = vcenter_target(
        hosts=[with_options(hostile_host, **{"DCUI.Access": "evil'; rm"})],
        vms=[
            vms[0],
            msgspec.structs.replace(vms[1], resources=msgspec.structs.replace(vms[1].resources, vcpus=9)),
        ],
    )
    report = target_drift(baseline, changed, "gold.yaml")
    script = powercli_script(report, baseline, changed, source="gold.yaml")
    assert "Get-VMHost -Name 'esx''1$(calc)' | Get-AdvancedSetting -Name 'DCUI.Access' | " in script
    wanted = doc["vsphere_hosts"][0]["advanced_options"]["DCUI.Access"]
    assert f"Set-AdvancedSetting -Value '{wanted}' -Confirm:$false" in script
    # Two VMs called twin: capture keeps the first; the second (its own subject) is matched by the same
    # class, and the script addresses it by id, never by the ambiguous name.
    assert "$vm = Get-VM -Id 'VirtualMachine-vm-2'" in script
    comments = [line for line in script.splitlines() if "evil" in line]
    assert comments and all(line.startswith("#") for line in comments)


def test_powercli_resets_reservations_the_baseline_leaves_unset() -> None:
    vm = good_vm(name="web1", moref="vm-1")  # 1000 MHz and 4 GiB reserved
    target = vcenter_target(vms=[vm])
    doc = capture(target)
    wanted = next(c for c in doc["vm_classes"] if c["name"] == "web1")["settings"]["resources"]
    wanted["cpu_reservation_mhz"] = None
    wanted["memory_reservation_bytes"] = None
    baseline = _load(doc)
    report = target_drift(baseline, target, "gold.yaml")
    script = powercli_script(report, baseline, target, source="gold.yaml")
    line = next(x for x in script.splitlines() if x.startswith("Get-VMResourceConfiguration"))
    assert "-CpuReservationMhz 0" in line and "-MemReservationMB 0" in line
