"""Unit tests for hvguard.collect.libvirt.domain_xml on hand-written libvirt XML."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from hvguard.collect.libvirt.domain_xml import CapabilitiesError, parse_capabilities_xml, parse_domain_xml
from hvguard.facts import (
    Bandwidth,
    BlkioDevice,
    DiskEncryption,
    SecLabel,
    SecModel,
    Tpm,
    VcpuPin,
    VmFacts,
)


def dom(body: str = "", *, attrs: str = "type='kvm'", devices: str = "") -> str:
    """A minimal domain document with ``body`` after <name> and ``devices`` inside <devices>."""
    return (
        f"<domain {attrs}><name>vm1</name><uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>"
        f"<memory>1048576</memory><vcpu>1</vcpu>{body}<devices>{devices}</devices></domain>"
    )


def ok(xml: str) -> VmFacts:
    vm = parse_domain_xml(xml)
    assert vm.error is None, vm.error
    return vm


def failed(xml: str, **kw: str) -> VmFacts:
    vm = parse_domain_xml(xml, **kw)
    assert vm.error, "expected an error"
    assert "\n" not in vm.error
    return vm


# --------------------------------------------------------------------------------------------------------
# identity


def test_identity_fields() -> None:
    xml = dom(attrs="type='kvm' id='7'")
    vm = ok(xml)
    assert vm.name == "vm1"
    assert vm.uuid == "c7a5fdbd-cdaf-9455-926a-d65c16db1809"
    assert vm.domain_type == "kvm"
    assert vm.active is True
    assert vm.persistent is None  # only the connection collector knows
    assert vm.xml_sha256 == hashlib.sha256(xml.encode()).hexdigest()
    assert vm.metadata_tags == {}


@pytest.mark.parametrize(("attrs", "active"), [("type='qemu'", False), ("type='qemu' id='-1'", False)])
def test_inactive(attrs: str, active: bool) -> None:
    assert ok(dom(attrs=attrs)).active is active


def test_name_hint_wins() -> None:
    assert ok(dom()).name == "vm1"
    assert parse_domain_xml(dom(), name_hint="from-api").name == "from-api"


# --------------------------------------------------------------------------------------------------------
# os and Secure Boot


def test_os_fields() -> None:
    vm = ok(
        dom(
            "<os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type>"
            "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.secboot.fd</loader>"
            "<nvram>/var/lib/libvirt/qemu/nvram/vm1_VARS.fd</nvram></os>"
        )
    )
    assert vm.os.type == "hvm"
    assert vm.os.arch == "x86_64"
    assert vm.os.machine == "pc-q35-8.2"
    assert vm.os.firmware is None
    assert vm.os.loader == "/usr/share/OVMF/OVMF_CODE.secboot.fd"
    assert vm.os.loader_secure is True
    assert vm.os.secure_boot is True


@pytest.mark.parametrize(
    ("os_xml", "expected"),
    [
        # firmware autoselection with the secure-boot feature
        (
            "<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/>"
            "</firmware></os>",
            True,
        ),
        # Secure Boot capable firmware without enrolled keys does not enforce anything
        (
            "<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/>"
            "<feature enabled='no' name='enrolled-keys'/></firmware></os>",
            False,
        ),
        (
            "<os firmware='efi'><type>hvm</type><firmware><feature enabled='no' name='secure-boot'/>"
            "</firmware></os>",
            False,
        ),
        ("<os><type>hvm</type><loader secure='yes' type='pflash'>/c.fd</loader></os>", True),
        ("<os><type>hvm</type><loader secure='no' type='pflash'>/c.fd</loader></os>", False),
        ("<os firmware='bios'><type>hvm</type></os>", False),
        ("<os><type>hvm</type></os>", False),  # legacy BIOS default
        ("<os firmware='efi'><type>hvm</type></os>", None),  # UEFI, state not in the XML
        ("<os><type>hvm</type><loader type='pflash'>/OVMF_CODE.fd</loader></os>", None),
    ],
)
def test_secure_boot(os_xml: str, expected: bool | None) -> None:
    assert ok(dom(os_xml)).os.secure_boot is expected


def test_os_firmware_attr() -> None:
    assert ok(dom("<os firmware='efi'><type>hvm</type></os>")).os.firmware == "efi"


# --------------------------------------------------------------------------------------------------------
# vcpu, memory and units


def test_vcpu() -> None:
    xml = dom().replace("<vcpu>1</vcpu>", "<vcpu placement='static' cpuset='1-4,^3' current='2'>8</vcpu>")
    vm = ok(xml)
    assert (vm.vcpu.maximum, vm.vcpu.current, vm.vcpu.placement, vm.vcpu.cpuset) == (8, 2, "static", "1-4,^3")


def test_vcpu_default_when_absent() -> None:
    vm = ok("<domain type='kvm'><name>x</name></domain>")
    assert vm.vcpu.maximum == 1
    assert vm.memory_kib is None


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        ("1048576", None, 1048576),  # default unit is KiB
        ("1024", "b", 1),
        ("1025", "bytes", 2),  # rounded up, as libvirt does
        ("1000", "KB", 977),  # KB = 1000 bytes
        ("5", "k", 5),
        ("5", "KiB", 5),
        ("1", "MB", 977),
        ("3", "M", 3072),
        ("3", "MiB", 3072),
        ("1", "GB", 976563),
        ("2", "G", 2097152),
        ("2", "GiB", 2097152),
        ("1", "TB", 976562500),
        ("1", "T", 1073741824),
        ("1", "TiB", 1073741824),
        ("2", "gib", 2097152),  # libvirt compares units case-insensitively
    ],
)
def test_memory_units(value: str, unit: str | None, kib: int) -> None:
    unit_attr = f" unit='{unit}'" if unit else ""
    xml = dom(
        f"<currentMemory{unit_attr}>{value}</currentMemory>"
        f"<maxMemory slots='4'{unit_attr}>{value}</maxMemory>"
    ).replace("<memory>1048576</memory>", f"<memory{unit_attr}>{value}</memory>")
    vm = ok(xml)
    assert vm.memory_kib == kib
    assert vm.current_memory_kib == kib
    assert vm.max_memory_kib == kib


@pytest.mark.parametrize(
    "xml",
    [
        dom().replace("<vcpu>1</vcpu>", "<vcpu>two</vcpu>"),
        dom().replace("<memory>1048576</memory>", "<memory unit='parsec'>1</memory>"),
        dom().replace("<memory>1048576</memory>", "<memory>-5</memory>"),
        dom().replace("<memory>1048576</memory>", "<memory>1_000</memory>"),
        dom("<cputune><shares>lots</shares></cputune>"),
        dom("<memtune><hard_limit unit='G'>1.5</hard_limit></memtune>"),
        dom(devices="<graphics type='vnc' port='59x0'/>"),
        dom(devices="<interface type='network'><bandwidth><inbound average='fast'/></bandwidth></interface>"),
    ],
)
def test_bad_numbers_give_error_not_exception(xml: str) -> None:
    vm = failed(xml)
    assert vm.name == "vm1"  # the name was readable, so it is kept
    assert vm.xml_sha256 is not None
    assert vm.disks == []


# --------------------------------------------------------------------------------------------------------
# tunables


def test_cputune() -> None:
    vm = ok(
        dom(
            "<cputune><shares>2048</shares><period>100000</period><quota>-1</quota>"
            "<global_period>1000000</global_period><global_quota>500000</global_quota>"
            "<emulator_period>100000</emulator_period><emulator_quota>20000</emulator_quota>"
            "<vcpupin vcpu='0' cpuset='1'/><vcpupin vcpu='1' cpuset='2-3'/><emulatorpin cpuset='4'/>"
            "<vcpusched vcpus='0' scheduler='fifo' priority='1'/></cputune>"
        )
    )
    t = vm.cputune
    assert (t.shares, t.period, t.quota) == (2048, 100000, -1)
    assert (t.global_period, t.global_quota) == (1000000, 500000)
    assert (t.emulator_period, t.emulator_quota) == (100000, 20000)
    assert t.vcpupins == [VcpuPin(vcpu=0, cpuset="1"), VcpuPin(vcpu=1, cpuset="2-3")]
    assert t.emulatorpin == "4"


def test_memtune_units() -> None:
    vm = ok(
        dom(
            "<memtune><hard_limit unit='G'>2</hard_limit><soft_limit unit='MB'>1</soft_limit>"
            "<swap_hard_limit>4096</swap_hard_limit>"
            "<min_guarantee unit='bytes'>2048</min_guarantee></memtune>"
        )
    )
    assert vm.memtune.hard_limit_kib == 2097152
    assert vm.memtune.soft_limit_kib == 977
    assert vm.memtune.swap_hard_limit_kib == 4096
    assert vm.memtune.min_guarantee_kib == 2


def test_memory_backing() -> None:
    vm = ok(
        dom(
            "<memoryBacking><hugepages><page size='2' unit='M'/></hugepages><nosharepages/><locked/>"
            "<source type='memfd'/><access mode='shared'/></memoryBacking>"
        )
    )
    mb = vm.memory_backing
    assert (mb.locked, mb.hugepages, mb.nosharepages, mb.source_type) == (True, True, True, "memfd")
    empty = ok(dom()).memory_backing
    assert (empty.locked, empty.hugepages, empty.nosharepages) == (False, False, False)
    assert empty.source_type is None


def test_blkiotune() -> None:
    vm = ok(
        dom(
            "<blkiotune><weight>800</weight>"
            "<device><path>/dev/sda</path><weight>1000</weight><read_bytes_sec>10000</read_bytes_sec>"
            "<write_bytes_sec>20000</write_bytes_sec><read_iops_sec>300</read_iops_sec>"
            "<write_iops_sec>400</write_iops_sec></device>"
            "<device><path>/dev/sdb</path><weight>500</weight></device></blkiotune>"
        )
    )
    assert vm.blkiotune.weight == 800
    assert vm.blkiotune.devices == [
        BlkioDevice(
            path="/dev/sda",
            weight=1000,
            read_bytes_sec=10000,
            write_bytes_sec=20000,
            read_iops_sec=300,
            write_iops_sec=400,
        ),
        BlkioDevice(path="/dev/sdb", weight=500),
    ]


# --------------------------------------------------------------------------------------------------------
# disks


def test_file_disk_with_iotune_and_disk_level_encryption() -> None:
    vm = ok(
        dom(
            devices="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            "<source file='/var/lib/libvirt/images/a.qcow2'/><target dev='vda' bus='virtio'/>"
            "<encryption format='luks'>"
            "<secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/></encryption>"
            "<iotune><total_bytes_sec>1000000</total_bytes_sec><read_iops_sec>400</read_iops_sec>"
            "<total_iops_sec_max>900</total_iops_sec_max><group_name>g1</group_name></iotune></disk>"
        )
    )
    (d,) = vm.disks
    assert (d.device, d.type, d.target, d.bus, d.driver_type) == ("disk", "file", "vda", "virtio", "qcow2")
    assert d.source_path == "/var/lib/libvirt/images/a.qcow2"
    assert d.encryption == DiskEncryption(
        format="luks",
        secret_type="passphrase",
        secret_uuid="0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f",
    )
    # every integer child of <iotune>; group_name is not a number and is left out
    assert d.iotune == {"total_bytes_sec": 1000000, "read_iops_sec": 400, "total_iops_sec_max": 900}
    assert (d.readonly, d.shareable, d.source_tls) == (False, False, None)


def test_source_level_encryption_and_network_disk() -> None:
    vm = ok(
        dom(
            devices="<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
            "<source protocol='rbd' name='pool/image' tls='yes'>"
            "<host name='mon1.example.com' port='6789'/><host name='mon2.example.com'/>"
            "<host name='::1' port='6790'/>"
            "<encryption format='luks' engine='librbd'>"
            "<secret type='passphrase' usage='rbd-key'/></encryption>"
            "</source><target dev='vdb' bus='virtio'/><shareable/></disk>"
        )
    )
    (d,) = vm.disks
    assert d.type == "network"
    assert d.source_protocol == "rbd"
    assert d.source_name == "pool/image"
    assert d.source_hosts == ["mon1.example.com:6789", "mon2.example.com", "[::1]:6790"]
    assert d.source_tls is True
    assert d.shareable is True
    assert d.encryption == DiskEncryption(
        format="luks",
        secret_type="passphrase",
        secret_usage="rbd-key",
    )
    assert d.source_path is None


@pytest.mark.parametrize(
    ("disk", "field", "value"),
    [
        (
            "<disk type='block' device='lun'><source dev='/dev/sdc'/><target dev='sda'/></disk>",
            "source_path",
            "/dev/sdc",
        ),
        (
            "<disk type='dir' device='disk'><source dir='/srv/fat'/><target dev='hdb'/></disk>",
            "source_path",
            "/srv/fat",
        ),
        (
            "<disk type='volume'><source pool='p1' volume='v1'/><target dev='vdc'/></disk>",
            "source_pool",
            "p1",
        ),
        (
            "<disk type='volume'><source pool='p1' volume='v1'/><target dev='vdc'/></disk>",
            "source_volume",
            "v1",
        ),
        (
            "<disk type='network' device='disk'><source protocol='nbd'>"
            "<host transport='unix' socket='/run/nbd.sock'/></source></disk>",
            "source_hosts",
            ["unix:/run/nbd.sock"],
        ),
        ("<disk type='network' device='disk'><source protocol='nbd' tls='no'/></disk>", "source_tls", False),
        ("<disk type='file'><source file='/a'/></disk>", "device", "disk"),
    ],
)
def test_disk_source_kinds(disk: str, field: str, value: object) -> None:
    (d,) = ok(dom(devices=disk)).disks
    assert getattr(d, field) == value


def test_disk_source_seclabels() -> None:
    vm = ok(
        dom(
            devices="<disk type='file' device='disk'><source file='/a.img'>"
            "<seclabel model='selinux' relabel='no'/>"
            "<seclabel model='dac' relabel='yes'><label>107:107</label></seclabel></source>"
            "<target dev='vda'/></disk>"
        )
    )
    assert vm.disks[0].seclabels == [
        SecLabel(model="selinux", relabel=False),
        SecLabel(model="dac", relabel=True, label="107:107"),
    ]
    assert vm.seclabels == []  # disk labels are not domain labels


def test_cdrom_floppy_usb_disk_counts() -> None:
    vm = ok(
        dom(
            devices="<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sda' bus='sata'/>"
            "<readonly/></disk>"
            "<disk type='file' device='cdrom'><target dev='sdb' bus='sata'/><readonly/></disk>"
            "<disk type='file' device='floppy'><source file='/f.img'/><target dev='fda' bus='fdc'/></disk>"
            "<disk type='file' device='disk'><source file='/u.img'/><target dev='sdc' bus='usb'/></disk>"
        )
    )
    assert vm.devices.cdroms == 2
    assert vm.devices.floppies == 1
    assert vm.devices.usb_devices == 1
    assert vm.disks[0].readonly is True
    assert vm.disks[1].source_path is None  # empty tray


# --------------------------------------------------------------------------------------------------------
# interfaces


def test_interface_with_bandwidth_and_filter() -> None:
    vm = ok(
        dom(
            devices="<interface type='network'><mac address='52:54:00:aa:bb:cc'/>"
            "<source network='default' portid='x' bridge='virbr0'/><target dev='vnet3'/>"
            "<model type='virtio'/><filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.1'/>"
            "</filterref><bandwidth><inbound average='1000' peak='5000' floor='200' burst='1024'/>"
            "<outbound average='128' peak='256' burst='256'/></bandwidth></interface>"
        )
    )
    (i,) = vm.interfaces
    assert (i.type, i.mac, i.model, i.source, i.target_dev) == (
        "network",
        "52:54:00:aa:bb:cc",
        "virtio",
        "default",
        "vnet3",
    )
    assert i.inbound == Bandwidth(average=1000, peak=5000, burst=1024, floor=200)
    assert i.outbound == Bandwidth(average=128, peak=256, burst=256)
    assert i.filterref == "clean-traffic"


def test_interface_without_bandwidth() -> None:
    (i,) = ok(dom(devices="<interface type='user'><model type='e1000'/></interface>")).interfaces
    assert (i.source, i.inbound, i.outbound, i.filterref) == (None, None, None, None)


def test_interface_only_inbound() -> None:
    xml = dom(
        devices="<interface type='bridge'><source bridge='br0'/>"
        "<bandwidth><inbound average='5'/></bandwidth></interface>"
    )
    (i,) = ok(xml).interfaces
    assert i.inbound == Bandwidth(average=5)
    assert i.outbound is None


@pytest.mark.parametrize(
    ("iface", "source"),
    [
        ("<interface type='bridge'><source bridge='br0'/></interface>", "br0"),
        ("<interface type='direct'><source dev='eth0' mode='vepa'/></interface>", "eth0"),
        (
            "<interface type='vhostuser'><source type='unix' path='/tmp/vh.sock' mode='server'/></interface>",
            "/tmp/vh.sock",
        ),
        ("<interface type='udp'><source address='192.0.2.1' port='5555'/></interface>", "192.0.2.1:5555"),
        (
            "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' "
            "bus='0x03' slot='0x10' function='0x2'/></source></interface>",
            "pci 0000:03:10.2",
        ),
    ],
)
def test_interface_sources(iface: str, source: str) -> None:
    assert ok(dom(devices=iface)).interfaces[0].source == source


# --------------------------------------------------------------------------------------------------------
# seclabels, hostdevs


def test_domain_seclabels() -> None:
    vm = ok(
        dom(
            "<seclabel type='dynamic' model='selinux' relabel='yes'>"
            "<label>system_u:system_r:svirt_t:s0:c1,c2</label>"
            "<imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel></seclabel>"
            "<seclabel type='static' model='dac' relabel='no'><label>+107:+107</label></seclabel>"
            "<seclabel type='none'/>"
        )
    )
    assert vm.seclabels == [
        SecLabel(
            type="dynamic",
            model="selinux",
            relabel=True,
            label="system_u:system_r:svirt_t:s0:c1,c2",
            imagelabel="system_u:object_r:svirt_image_t:s0:c1,c2",
        ),
        SecLabel(type="static", model="dac", relabel=False, label="+107:+107"),
        SecLabel(type="none"),
    ]


@pytest.mark.parametrize(
    ("hostdev", "mode", "htype", "source", "managed"),
    [
        (
            "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
            "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>",
            "subsystem",
            "pci",
            "pci 0000:01:00.0",
            True,
        ),
        (
            "<hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc077'/>"
            "</source></hostdev>",
            "subsystem",
            "usb",
            "usb 046d:c077",
            None,
        ),
        (
            "<hostdev mode='subsystem' type='usb' managed='no'><source><address bus='1' device='3'/>"
            "</source></hostdev>",
            "subsystem",
            "usb",
            "usb bus=1 device=3",
            False,
        ),
        (
            "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
            "<address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>",
            "subsystem",
            "mdev",
            "mdev c2177883-f1bb-47f0-914d-32a22e3a8804",
            None,
        ),
        (
            "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/>"
            "<address bus='0' target='0' unit='1'/></source></hostdev>",
            "subsystem",
            "scsi",
            "scsi scsi_host0:0:0:1",
            None,
        ),
        (
            "<hostdev mode='subsystem' type='scsi_host'>"
            "<source protocol='vhost' wwpn='naa.5001405df3e54061'/></hostdev>",
            "subsystem",
            "scsi_host",
            "scsi_host vhost:naa.5001405df3e54061",
            None,
        ),
        (
            "<hostdev mode='capabilities' type='storage'><source><block>/dev/sdf1</block></source></hostdev>",
            "capabilities",
            "storage",
            "storage /dev/sdf1",
            None,
        ),
    ],
)
def test_hostdevs(hostdev: str, mode: str, htype: str, source: str, managed: bool | None) -> None:
    (h,) = ok(dom(devices=hostdev)).hostdevs
    assert (h.mode, h.type, h.source, h.managed) == (mode, htype, source, managed)


# --------------------------------------------------------------------------------------------------------
# emulated devices


def test_usb_controllers_and_devices() -> None:
    vm = ok(
        dom(
            devices="<controller type='usb' index='0' model='qemu-xhci' ports='15'/>"
            "<controller type='usb' index='1'/><controller type='pci' model='pcie-root'/>"
            "<input type='tablet' bus='usb'/><input type='keyboard' bus='ps2'/><hub type='usb'/>"
            "<hostdev mode='subsystem' type='usb'>"
            "<source><vendor id='0x1'/><product id='0x2'/></source></hostdev>"
            "<redirdev bus='usb' type='spicevmc'/><redirdev bus='usb' type='spicevmc'/>"
        )
    )
    assert vm.devices.usb_controllers == ["qemu-xhci", "default"]
    assert vm.devices.usb_devices == 3  # tablet, hub, usb hostdev
    assert vm.devices.redirdevs == 2


def test_usb_model_none_means_no_usb() -> None:
    vm = ok(dom(devices="<controller type='usb' model='none'/>"))
    assert vm.devices.usb_controllers == []


def test_character_and_misc_devices() -> None:
    vm = ok(
        dom(
            devices="<serial type='pty'><target port='0'/></serial><serial type='tcp'/>"
            "<parallel type='pty'/>"
            "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
            "<channel type='spicevmc'/><channel type='pty'/>"
            "<console type='pty'><target type='serial'/></console>"
            "<sound model='ich9'/><sound model='usb'/>"
            "<smartcard mode='host'/>"
            "<watchdog model='i6300esb' action='reset'/><watchdog model='itco'/>"
            "<video><model type='virtio' heads='1'/></video><video><model type='bochs'/></video>"
            "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
            "<rng model='virtio'><backend model='egd' type='tcp'/></rng>"
            "<memballoon model='virtio'/>"
        )
    )
    d = vm.devices
    assert (d.serials, d.parallels, d.channels, d.consoles) == (2, 1, 3, 1)
    assert d.sounds == ["ich9", "usb"]
    assert d.smartcards == 1
    assert d.watchdogs == ["i6300esb", "itco"]
    assert d.videos == ["virtio", "bochs"]
    assert d.rngs == ["random", "egd"]
    assert d.memballoon == "virtio"


def test_no_devices_defaults() -> None:
    d = ok("<domain type='kvm'><name>bare</name></domain>").devices
    assert d.memballoon is None
    assert d.graphics == []
    assert (d.serials, d.usb_devices, d.cdroms) == (0, 0, 0)


def test_memballoon_none() -> None:
    assert ok(dom(devices="<memballoon model='none'/>")).devices.memballoon == "none"


def test_tpms() -> None:
    vm = ok(
        dom(
            devices="<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"
            "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>"
        )
    )
    assert vm.tpms == [
        Tpm(model="tpm-crb", backend="emulator", version="2.0"),
        Tpm(model="tpm-tis", backend="passthrough"),
    ]


# --------------------------------------------------------------------------------------------------------
# graphics


def test_vnc_password_is_never_stored() -> None:
    secret = "Tr0ub4dor-and-3"
    xml = dom(
        devices=f"<graphics type='vnc' port='5901' autoport='no' listen='0.0.0.0' passwd='{secret}' "
        "passwdValidTo='2030-01-01T00:00:00'><listen type='address' address='0.0.0.0'/></graphics>"
    )
    vm = ok(xml)
    (g,) = vm.devices.graphics
    assert g.type == "vnc"
    assert g.password_set is True
    assert g.listen == ["0.0.0.0"]
    assert (g.autoport, g.port, g.tls) == (False, 5901, None)
    assert secret not in msgspec.json.encode(vm).decode()
    assert secret not in repr(vm)


def test_empty_passwd_counts_as_set() -> None:
    # libvirt documents passwd='' as "console access disabled", which is protected too.
    (g,) = ok(dom(devices="<graphics type='spice' autoport='yes' passwd=''/>")).devices.graphics
    assert g.password_set is True


def test_no_password() -> None:
    (g,) = ok(dom(devices="<graphics type='vnc' port='-1' autoport='yes'/>")).devices.graphics
    assert (g.password_set, g.autoport, g.port, g.listen) == (False, True, -1, [])


@pytest.mark.parametrize(
    ("graphics", "tls"),
    [
        ("<graphics type='spice' autoport='yes' defaultMode='secure'/>", True),
        ("<graphics type='spice' autoport='yes'><channel name='main' mode='secure'/></graphics>", True),
        ("<graphics type='spice' autoport='yes'><channel name='main' mode='insecure'/></graphics>", False),
        ("<graphics type='spice' autoport='yes' defaultMode='any'/>", False),
        ("<graphics type='vnc' autoport='yes'/>", None),
        ("<graphics type='sdl'/>", None),
    ],
)
def test_graphics_tls(graphics: str, tls: bool | None) -> None:
    assert ok(dom(devices=graphics)).devices.graphics[0].tls is tls


@pytest.mark.parametrize(
    ("graphics", "listen"),
    [
        ("<graphics type='vnc' listen='127.0.0.1'/>", ["127.0.0.1"]),
        ("<graphics type='vnc'><listen type='address' address='::1'/></graphics>", ["::1"]),
        ("<graphics type='vnc'><listen type='address'/></graphics>", []),  # qemu.conf default
        ("<graphics type='spice'><listen type='network' network='mgmt'/></graphics>", ["network:mgmt"]),
        (
            "<graphics type='spice' listen='10.0.0.5'>"
            "<listen type='network' address='10.0.0.5' network='mgmt'/></graphics>",
            ["10.0.0.5"],
        ),
        ("<graphics type='vnc'><listen type='socket' socket='/run/vnc.sock'/></graphics>", ["socket"]),
        ("<graphics type='vnc' socket='/run/vnc.sock'/>", ["socket"]),
        ("<graphics type='spice'><listen type='none'/></graphics>", ["none"]),
        (
            "<graphics type='vnc' listen='0.0.0.0'><listen type='address' address='0.0.0.0'/>"
            "<listen type='address' address='192.0.2.9'/></graphics>",
            ["0.0.0.0", "192.0.2.9"],
        ),
    ],
)
def test_graphics_listen(graphics: str, listen: list[str]) -> None:
    assert ok(dom(devices=graphics)).devices.graphics[0].listen == listen


# --------------------------------------------------------------------------------------------------------
# bad and hostile input

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE domain [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain type='kvm'><name>&lol9;</name></domain>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "http://attacker.invalid/evil.dtd">
<domain type='kvm'><name>x</name></domain>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain type='kvm'><name>&xxe;</name></domain>
"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_DTD, EXTERNAL_ENTITY], ids=["laughs", "dtd", "xxe"])
def test_hostile_xml_is_refused(xml: str) -> None:
    vm = failed(xml, name_hint="evil")
    assert vm.name == "evil"
    assert "DTDForbidden" in (vm.error or "")
    assert "root:" not in (vm.error or "")  # nothing from /etc/passwd


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        (dom()[:-20], "invalid XML"),  # truncated
        ("", "invalid XML"),
        ("not xml at all", "invalid XML"),
        ("<domain><name>a</name></domain><domain/>", "invalid XML"),  # two documents
        ("<network><name>default</name></network>", "root element is <network>, not <domain>"),
        ("<domainCapabilities/>", "not <domain>"),
        ("<d:domain xmlns:d='urn:x'/>", "not <domain>"),
    ],
)
def test_unparsable_input(xml: str, fragment: str) -> None:
    vm = failed(xml)
    assert fragment in (vm.error or "")
    assert vm.name == "?"
    assert vm.xml_sha256 == hashlib.sha256(xml.encode()).hexdigest()


def test_error_uses_name_hint() -> None:
    assert failed("<oops", name_hint="guest7").name == "guest7"


def test_wrong_type_never_raises() -> None:
    vm = parse_domain_xml(b"<domain/>")  # type: ignore[arg-type]
    assert vm.error


def test_foreign_namespaces_are_ignored() -> None:
    vm = ok(
        dom(
            "<metadata><app:info xmlns:app='urn:app'><app:vcpu>lots</app:vcpu></app:info></metadata>"
            "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
            "<qemu:arg value='-s'/></qemu:commandline>"
        )
    )
    assert vm.metadata_tags == {}


# --------------------------------------------------------------------------------------------------------
# capabilities

CAPS = """<capabilities>
  <host>
    <uuid>e5f3c1a2-0000-0000-0000-000000000000</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Skylake-Client-IBRS</model>
      <vendor>Intel</vendor>
      <microcode version='240'/>
      <topology sockets='1' dies='1' cores='4' threads='2'/>
      <feature name='vmx'/>
      <feature name='md-clear'/>
      <pages unit='KiB' size='4'/>
    </cpu>
    <topology><cells num='1'><cell id='0'><cpus num='8'/></cell></cells></topology>
    <secmodel><model>selinux</model><doi>0</doi>
      <baselabel type='kvm'>system_u:system_r:svirt_t:s0</baselabel></secmodel>
    <secmodel><model>dac</model><doi>0</doi><baselabel type='kvm'>+107:+107</baselabel></secmodel>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-x86_64</emulator>
      <machine>pc</machine><domain type='qemu'/><domain type='kvm'/></arch>
  </guest>
  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'><domain type='qemu'/></arch>
  </guest>
</capabilities>"""


def test_capabilities() -> None:
    caps = parse_capabilities_xml(CAPS)
    assert (caps.host_arch, caps.cpu_vendor, caps.cpu_model) == ("x86_64", "Intel", "Skylake-Client-IBRS")
    assert caps.cpu_features == ["vmx", "md-clear"]
    assert (caps.topology_sockets, caps.topology_cores, caps.topology_threads) == (1, 4, 2)
    assert caps.secmodels == [SecModel(model="selinux", doi="0"), SecModel(model="dac", doi="0")]
    assert [(g.os_type, g.arch, g.domain_types) for g in caps.guests] == [
        ("hvm", "x86_64", ["qemu", "kvm"]),
        ("hvm", "i686", ["qemu"]),
    ]


def test_capabilities_minimal() -> None:
    caps = parse_capabilities_xml("<capabilities><host><cpu><arch>aarch64</arch></cpu></host></capabilities>")
    assert caps.host_arch == "aarch64"
    assert caps.topology_sockets is None
    assert caps.secmodels == []
    assert caps.guests == []


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        ("<capabilities><host>", "invalid capabilities XML"),
        ("<domainCapabilities/>", "root element is <domainCapabilities>, not <capabilities>"),
        (BILLION_LAUGHS.replace("domain", "capabilities"), "DTDForbidden"),
        (EXTERNAL_DTD.replace("domain", "capabilities"), "DTDForbidden"),
        (
            "<capabilities><host><cpu><topology sockets='one'/></cpu></host></capabilities>",
            "bad integer",
        ),
    ],
)
def test_capabilities_errors(xml: str, fragment: str) -> None:
    with pytest.raises(CapabilitiesError) as info:
        parse_capabilities_xml(xml)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_hvguard_policy_tags_from_metadata() -> None:
    xml = """<domain type='kvm'><name>db1</name><memory>1024</memory><vcpu>1</vcpu>
      <metadata>
        <other:app xmlns:other="http://example.com/app"><tag name="guaranteed_ram">no</tag></other:app>
        <hvguard:policy xmlns:hvguard="https://hvguard.dev/xmlns/policy/1">
          <hvguard:tag name="guaranteed_ram">yes</hvguard:tag>
          <tag name="class">database</tag>
        </hvguard:policy>
      </metadata></domain>"""
    vm = parse_domain_xml(xml)
    assert vm.error is None
    assert vm.metadata_tags == {"hvguard.guaranteed_ram": "yes", "hvguard.class": "database"}
