"""The platform-neutral resource shape fits vSphere: the stand-in mapper on hand-built API answers.

These are stand-ins (``tests/data/vsphere/stand_in_vms.json``, built from ``../shared/design/vsphere.md``
§2 and the documented data objects), not answers from a server or a simulator: they prove the shape and
the unit conversions, nothing about how ESXi behaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from hvguard.collect.vsphere.resources import MBIT_S, VSPHERE_UNSUPPORTED, resources_from_vsphere
from hvguard.facts import CpuLimit, Shares, VmResources

DATA = Path(__file__).parent / "data" / "vsphere" / "stand_in_vms.json"


def stand_in(name: str) -> dict[str, Any]:
    vms: dict[str, dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["vms"]
    return vms[name]


def test_set_limits_reservations_and_shares_stand_in() -> None:
    r = resources_from_vsphere(stand_in("web-limited"))
    assert r.vcpus == 4 and r.memory_bytes == 8192 * 1024 * 1024
    assert r.cpu_reservation_mhz == 1000
    assert r.cpu_limit == CpuLimit(mhz=4000)  # MHz only: never converted to CPU time
    assert r.cpu_shares == Shares(level="high", value=8000)
    assert r.memory_reservation_bytes == 2048 * 1024 * 1024
    assert r.memory_limit_bytes == 8192 * 1024 * 1024
    assert r.memory_shares == Shares(level="custom", value=123456)


def test_unlimited_minus_one_and_zero_reservation_are_unset_stand_in() -> None:
    r = resources_from_vsphere(stand_in("db-default"))
    assert r.cpu_limit is None and r.memory_limit_bytes is None
    assert r.cpu_reservation_mhz is None
    assert r.disks[0].total_iops_sec is None and r.nics[0].adapter_bytes_sec is None
    # Locked to the configured RAM: the reservation follows memoryMB, not the stored 0.
    assert r.memory_reservation_bytes == 4096 * 1024 * 1024


def test_shares_levels_keep_level_and_number_stand_in() -> None:
    r = resources_from_vsphere(stand_in("db-default"))
    assert r.cpu_shares == Shares(level="normal", value=2000)
    assert r.memory_shares == Shares(level="low", value=20480)
    assert r.disks[0].shares == Shares(level="normal", value=1000)
    # A level vSphere does not define is not guessed at.
    odd = {**stand_in("db-default"), "config.cpuAllocation": {"limit": -1, "shares": {"level": "max"}}}
    assert resources_from_vsphere(odd).cpu_shares is None


def test_disk_iops_and_nic_mbps_to_bytes_per_second_stand_in() -> None:
    r = resources_from_vsphere(stand_in("web-limited"))
    disk, cdrom = r.disks
    assert (disk.name, disk.device, disk.total_iops_sec, disk.encryption) == (
        "Hard disk 1",
        "disk",
        500,
        "vm-encryption",
    )
    assert disk.total_bytes_sec is None and disk.read_iops_sec is None
    assert (cdrom.name, cdrom.device) == ("CD/DVD drive 1", "cdrom")
    (nic,) = r.nics
    assert nic.name == "00:50:56:aa:bb:01"
    assert nic.adapter_bytes_sec == 100 * MBIT_S == 12_500_000  # 100 Mbit/s, decimal
    assert nic.inbound_bytes_sec is None and nic.outbound_bytes_sec is None


def test_devices_encryption_firmware_and_execution_stand_in() -> None:
    r = resources_from_vsphere(stand_in("web-limited"))
    assert r.passthrough == ["pci 0000:3b:00.0"]
    assert r.encryption_key == "3b2e9c1a-7f40-4c8e-9d6a-0f1e2d3c4b5a"
    assert (r.firmware, r.secure_boot, r.vtpm, r.hardware_virtualisation) == ("efi", True, True, "on")
    d = resources_from_vsphere(stand_in("db-default"))
    assert d.passthrough == [] and d.encryption_key is None and d.disks[0].encryption is None
    assert (d.firmware, d.secure_boot, d.vtpm, d.hardware_virtualisation) == ("bios", False, False, "auto")


def test_unsupported_is_distinct_from_unset_stand_in() -> None:
    r = resources_from_vsphere(stand_in("db-default"))
    assert r.unsupported == list(VSPHERE_UNSUPPORTED)
    # Unsupported on vSphere: no per-VM confinement switch, no per-direction adapter limit.
    assert "confinement" in r.unsupported and r.confinement is None
    assert "nic_inbound_limit" in r.unsupported
    # Unset but supported: a memory limit vSphere could set and this VM does not.
    assert r.memory_limit_bytes is None and "memory_limit" not in r.unsupported
    # Not read at all: the control stays None; the collector records the Problem.
    missing = {k: v for k, v in stand_in("web-limited").items() if k != "config.cpuAllocation"}
    m = resources_from_vsphere(missing)
    assert m.cpu_limit is None and m.cpu_shares is None and m.cpu_reservation_mhz is None


def test_the_stand_in_shape_round_trips_through_a_bundle_stand_in() -> None:
    r = resources_from_vsphere(stand_in("web-limited"))
    data = msgspec.json.encode(r)
    assert msgspec.json.decode(data, type=VmResources) == r
    assert b"null" not in data  # unset controls are left out, not written as null
