"""KVM/libvirt → platform-neutral resource facts, on real domain XML through the existing parser."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import msgspec
import pytest
from defusedxml.ElementTree import parse

from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.collect.libvirt.resources import (
    LIBVIRT_UNSUPPORTED,
    controls_offered_by_libvirt,
    resources_from_libvirt,
    with_neutral_facts,
)
from hvguard.collect.targets import collect_target
from hvguard.facts import (
    Confinement,
    ControlsOffered,
    CpuLimit,
    DiskResources,
    HypervisorFacts,
    NicResources,
    Shares,
    VmFacts,
    VmResources,
)

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GIB = 1024**3


def node_domains() -> dict[str, VmFacts]:
    """Every domain of the test-driver node file, parsed by hvguard's domain XML parser."""
    out = {}
    root = parse(NODE).getroot()
    assert root is not None
    for el in root.iter("domain"):
        vm = parse_domain_xml(ET.tostring(el, encoding="unicode"))
        assert vm.error is None, vm.error
        out[vm.name] = vm
    return out


def dom(body: str, *, kind: str = "kvm", os: str = "<os><type arch='x86_64'>hvm</type></os>") -> VmFacts:
    vm = parse_domain_xml(
        f"<domain type='{kind}'><name>t</name><memory unit='GiB'>2</memory><vcpu>2</vcpu>{os}{body}</domain>"
    )
    assert vm.error is None, vm.error
    return vm


def test_hardened_node_domain_maps_every_control() -> None:
    r = resources_from_libvirt(node_domains()["kvm-hardened"])
    assert r.vcpus == 4 and r.memory_bytes == 4 * GIB
    assert r.cpu_limit == CpuLimit(cpus_per_vcpu=0.5)  # quota 50000 / period 100000: half a CPU per vCPU
    assert r.cpu_shares == Shares(level="custom", value=2048)
    assert r.cpu_reservation_mhz is None and "cpu_reservation" in r.unsupported
    assert r.memory_limit_bytes == 5 * GIB  # memtune hard_limit
    assert r.memory_reservation_bytes == 4 * GIB  # memoryBacking locked: the whole RAM
    assert r.memory_shares is None and "memory_shares" in r.unsupported
    assert r.io_shares == Shares(level="custom", value=500)
    assert r.disks == [
        DiskResources(
            name="vda", device="disk", total_bytes_sec=104857600, total_iops_sec=2000, encryption="luks"
        )
    ]
    # <bandwidth> average is KiB/s: ×1024 to bytes/s
    assert r.nics == [
        NicResources(name="52:54:00:00:00:01", inbound_bytes_sec=10240 * 1024, outbound_bytes_sec=5120 * 1024)
    ]
    assert r.confinement == Confinement(models=["selinux"])
    assert (r.firmware, r.secure_boot, r.vtpm, r.hardware_virtualisation) == ("efi", True, True, "on")
    assert r.passthrough == [] and r.encryption_key is None
    assert r.unsupported == list(LIBVIRT_UNSUPPORTED)


def test_loose_node_domain_is_unset_not_unsupported() -> None:
    r = resources_from_libvirt(node_domains()["qemu-loose"])
    assert r.cpu_limit is None and r.cpu_shares is None and r.memory_limit_bytes is None
    assert r.memory_reservation_bytes is None and "memory_reservation" not in r.unsupported
    hda, hdc = r.disks
    assert (hda.name, hda.device, hda.encryption, hda.total_bytes_sec) == ("hda", "disk", "qcow", None)
    assert (hdc.name, hdc.device) == ("hdc", "cdrom")
    assert r.nics == [NicResources(name="52:54:00:00:00:02")]
    assert r.confinement == Confinement(opted_out=True)  # <seclabel type='none'/>
    assert (r.firmware, r.secure_boot, r.hardware_virtualisation) == ("bios", False, "off")  # TCG


def test_offline_root_definition_maps() -> None:
    text = (DATA / "roots" / "ops-good" / "etc" / "libvirt" / "qemu" / "web1.xml").read_text()
    r = resources_from_libvirt(parse_domain_xml(text, name_hint="web1"))
    assert (r.vcpus, r.memory_bytes) == (2, 2 * GIB)
    assert [d.name for d in r.disks] == ["vda"] and [n.name for n in r.nics] == ["#1", "#2"]
    assert r.confinement == Confinement()  # no <seclabel>: the host default applies


def test_global_quota_and_unlimited_quota() -> None:
    vm = dom(
        "<cputune><period>200000</period><quota>-1</quota>"
        "<global_period>100000</global_period><global_quota>150000</global_quota></cputune>"
    )
    assert resources_from_libvirt(vm).cpu_limit == CpuLimit(cpus=1.5)  # a negative quota is no limit
    # No period: libvirt's default 100 ms. A quota ≥ period is recorded as it is (it never throttles).
    assert resources_from_libvirt(dom("<cputune><quota>150000</quota></cputune>")).cpu_limit == CpuLimit(
        cpus_per_vcpu=1.5
    )


def test_blkiotune_throttle_binds_with_iotune_the_tighter_wins() -> None:
    vm = dom(
        "<blkiotune><device><path>/img/a.qcow2</path><weight>300</weight>"
        "<read_bytes_sec>1000</read_bytes_sec><write_iops_sec>50</write_iops_sec></device></blkiotune>"
        "<devices><disk type='file' device='disk'><source file='/img/a.qcow2'/><target dev='vda'/>"
        "<iotune><read_bytes_sec>5000</read_bytes_sec><write_iops_sec>0</write_iops_sec>"
        "<total_iops_sec>0</total_iops_sec></iotune></disk></devices>"
    )
    (disk,) = resources_from_libvirt(vm).disks
    assert disk == DiskResources(
        name="vda",
        device="disk",
        read_bytes_sec=1000,
        write_iops_sec=50,  # iotune 0 = no limit; the device throttle binds
        shares=Shares(level="custom", value=300),
    )


def test_hugepages_hostdevs_and_firmware_attribute() -> None:
    vm = dom(
        "<memoryBacking><hugepages/></memoryBacking>"
        "<memtune><soft_limit unit='GiB'>1</soft_limit><min_guarantee unit='GiB'>1</min_guarantee></memtune>"
        "<devices><hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev></devices>",
        os="<os firmware='efi'><type arch='x86_64'>hvm</type></os>",
    )
    r = resources_from_libvirt(vm)
    assert r.memory_reservation_bytes == 2 * GIB  # hugepages: pre-reserved whole RAM
    assert r.memory_limit_bytes is None  # soft_limit and min_guarantee are neither limit nor guarantee
    assert r.passthrough == ["pci 0000:01:00.0"]
    assert r.firmware == "efi"


def test_unreadable_domain_has_the_empty_default() -> None:
    vm = parse_domain_xml("<domain", name_hint="broken")
    assert vm.error is not None
    assert resources_from_libvirt(vm) == VmResources()


@pytest.mark.parametrize(
    ("driver", "uri", "offered"),
    [
        ("QEMU", "qemu:///system", True),
        ("qemu", "qemu+ssh://host/system", True),
        (None, "qemu:///session", True),  # a qemu URI counts when the driver name is missing
        ("QEMU", "file:///etc/libvirt/qemu", True),  # stored definitions
        ("Test", "test:///default", False),  # known but not assessed: every field None
        ("LXC", "lxc:///", False),
        (None, "test:///default", None),  # driver unknown
    ],
)
def test_controls_offered_by_driver(driver: str | None, uri: str, offered: bool | None) -> None:
    got = controls_offered_by_libvirt(driver, uri)
    if offered is None:
        assert got is None
    elif offered:
        assert got is not None
        assert all(
            getattr(got, f) is True
            for f in ("memory_limit", "memory_guarantee", "memory_priority", "cpu_limit", "cpu_guarantee")
        )
        assert got.cpu_priority is True and got.approximate == ["memory_priority", "cpu_guarantee"]
    else:
        assert got == ControlsOffered()


def test_test_driver_scan_fills_the_neutral_facts() -> None:
    t = collect_target(f"test://{NODE.resolve()}")
    hv = t.hypervisor
    assert hv is not None and hv.vms
    assert hv.controls_offered == ControlsOffered()  # the test driver's offer is not assessed
    for vm in hv.vms:
        assert vm.resources == resources_from_libvirt(vm) != VmResources()


def test_stored_definitions_scan_offers_the_qemu_controls() -> None:
    t = collect_target("local", root=DATA / "roots" / "ops-good")
    assert t.hypervisor is not None and t.hypervisor.controls_offered is not None
    assert t.hypervisor.controls_offered.memory_guarantee is True
    assert [vm.resources.vcpus for vm in t.hypervisor.vms] == [2]


def test_with_neutral_facts_is_idempotent_and_keeps_the_libvirt_facts() -> None:
    hv = HypervisorFacts(uri="qemu:///system", driver="QEMU", vms=list(node_domains().values()))
    once = with_neutral_facts(hv)
    assert once is not None and with_neutral_facts(once) == once
    strip = [msgspec.structs.replace(vm, resources=VmResources()) for vm in once.vms]
    assert strip == hv.vms
    assert with_neutral_facts(None) is None
