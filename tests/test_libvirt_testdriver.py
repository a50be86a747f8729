"""collect_libvirt against libvirt's built-in test driver (in-process, no daemon needed).

``test:///default`` is libvirt's stock fixture; ``test:///ABS/PATH/node.xml`` loads a node file. Our
fixture is ``tests/data/testdriver/node.xml``; virt-manager's ``testdriver.xml`` comes from the shared
corpus.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import register_namespace, tostring

import msgspec
import pytest
from defusedxml.ElementTree import parse as parse_xml

from hvguard.collect.libvirt.conn import TargetUnreachable, collect_libvirt
from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.facts import HypervisorFacts, Problem, VmFacts
from shared_paths import shared

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

NODE = Path(__file__).resolve().parent / "data" / "testdriver" / "node.xml"
NODE_URI = f"test://{NODE}"
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def collect(uri: str) -> tuple[HypervisorFacts, list[Problem]]:
    problems: list[Problem] = []
    facts = collect_libvirt(uri, problems=problems)
    assert facts is not None
    return facts, problems


def by_name(facts: HypervisorFacts) -> dict[str, VmFacts]:
    return {vm.name: vm for vm in facts.vms}


# --------------------------------------------------------------------------------------------------------
# test:///default


def test_default_connection() -> None:
    facts, problems = collect("test:///default")
    assert problems == []
    assert facts.uri == "test:///default"
    assert facts.driver == "test"
    assert facts.hypervisor_type == "TEST"
    assert facts.hypervisor_version and facts.hypervisor_version.count(".") == 2
    assert facts.libvirt_version and facts.libvirt_version.count(".") == 2
    assert facts.hostname
    assert facts.node is not None
    assert facts.node.cpus > 0
    assert facts.node.memory_kib > 0
    assert facts.node.memory_kib % 1024 == 0  # virNodeGetInfo reports MiB
    assert facts.capabilities is not None
    assert facts.capabilities.secmodels
    assert facts.capabilities.guests
    assert [vm.name for vm in facts.vms] == ["test"]
    (vm,) = facts.vms
    assert (vm.error, vm.active, vm.persistent, vm.domain_type) == (None, True, True, "test")


# --------------------------------------------------------------------------------------------------------
# our node file


@pytest.fixture(scope="module")
def node_facts() -> tuple[HypervisorFacts, list[Problem]]:
    return collect(NODE_URI)


def test_node_file_hypervisor(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    facts, problems = node_facts
    assert problems == []
    assert facts.driver == "test"
    assert facts.node is not None
    assert (facts.node.sockets, facts.node.cores, facts.node.threads) == (2, 8, 2)
    assert facts.node.cpus == 32
    assert facts.node.mhz == 2600
    assert facts.node.memory_kib == 67108864


def test_node_file_domains_sorted_and_states(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    facts, _ = node_facts
    assert [vm.name for vm in facts.vms] == ["kvm-hardened", "kvm-off", "qemu-loose", "qemu-transient"]
    assert all(vm.error is None for vm in facts.vms)
    states = {vm.name: (vm.domain_type, vm.active, vm.persistent) for vm in facts.vms}
    assert states == {
        "kvm-hardened": ("kvm", True, True),
        "kvm-off": ("kvm", False, True),
        "qemu-loose": ("qemu", True, True),
        "qemu-transient": ("qemu", True, False),
    }


def test_states_match_libvirt(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    """Active-from-XML and persistent-from-one-listing agree with the per-domain API calls."""
    facts, _ = node_facts
    conn = libvirt.openReadOnly(NODE_URI)
    try:
        for vm in facts.vms:
            dom = conn.lookupByName(vm.name)
            assert vm.active is bool(dom.isActive()), vm.name
            assert vm.persistent is bool(dom.isPersistent()), vm.name
            assert vm.uuid == dom.UUIDString()
    finally:
        conn.close()


def test_hardened_vm(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    vm = by_name(node_facts[0])["kvm-hardened"]
    assert vm.memory_kib == 4 * 1024 * 1024
    assert vm.current_memory_kib == 3072 * 1024
    assert (vm.vcpu.maximum, vm.vcpu.current, vm.vcpu.cpuset) == (4, 2, "2-5")
    assert (vm.cputune.shares, vm.cputune.period, vm.cputune.quota) == (2048, 100000, 50000)
    assert len(vm.cputune.vcpupins) == 2
    assert vm.cputune.emulatorpin == "6"
    assert vm.memtune.hard_limit_kib == 5 * 1024 * 1024
    assert vm.memtune.soft_limit_kib == 4096 * 1024
    assert vm.memory_backing.locked and vm.memory_backing.nosharepages
    assert vm.blkiotune.weight == 500
    assert vm.os.secure_boot is True
    (disk,) = vm.disks
    assert disk.encryption is not None
    assert disk.encryption.format == "luks"
    assert disk.iotune == {"total_bytes_sec": 104857600, "total_iops_sec": 2000}
    (iface,) = vm.interfaces
    assert iface.source == "default"
    assert iface.inbound is not None and iface.inbound.average == 10240
    assert iface.outbound is not None and iface.outbound.average == 5120
    assert iface.filterref == "clean-traffic"
    assert [(s.type, s.model) for s in vm.seclabels] == [("dynamic", "selinux")]
    assert [(t.model, t.backend, t.version) for t in vm.tpms] == [("tpm-crb", "emulator", "2.0")]
    assert vm.devices.usb_controllers == []
    assert vm.devices.memballoon == "none"
    (graphics,) = vm.devices.graphics
    assert graphics.listen == ["127.0.0.1"]


def test_console_password_seen_but_not_stored(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    facts, _ = node_facts
    vm = by_name(facts)["kvm-hardened"]
    # read-write connection → VIR_DOMAIN_XML_SECURE → libvirt shows passwd, we keep only the fact
    assert vm.devices.graphics[0].password_set is True
    assert b"s3cr3t-vnc" not in msgspec.json.encode(facts)


def test_loose_and_inactive_vms(node_facts: tuple[HypervisorFacts, list[Problem]]) -> None:
    vms = by_name(node_facts[0])
    loose = vms["qemu-loose"]
    assert [s.type for s in loose.seclabels] == ["none"]
    assert loose.disks[0].encryption is not None  # disk-level <encryption>
    assert loose.disks[0].encryption.secret_usage == "loose-disk"
    assert loose.devices.cdroms == 1
    assert loose.devices.usb_controllers == ["piix3-uhci"]
    assert loose.devices.usb_devices == 1
    assert loose.devices.graphics[0].listen == ["0.0.0.0"]
    assert loose.devices.graphics[0].password_set is False
    assert loose.devices.graphics[0].tls is False
    assert loose.devices.sounds == ["ich6"]
    assert loose.devices.watchdogs == ["i6300esb"]
    off = vms["kvm-off"]
    assert off.active is False
    assert off.memory_kib == 512 * 1024
    assert off.devices.rngs == ["random"]


def test_read_only_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(uri: str) -> Any:
        raise libvirt.libvirtError("read-write access denied by policy")

    monkeypatch.setattr(libvirt, "open", refuse)
    facts, problems = collect(NODE_URI)
    assert len(facts.vms) == 4
    # Without VIR_DOMAIN_XML_SECURE libvirt hides the passwd attribute; a Problem says so.
    assert by_name(facts)["kvm-hardened"].devices.graphics[0].password_set is False
    assert [p.source for p in problems] == ["virConnectOpenReadOnly"]
    assert "password" in problems[0].message


# --------------------------------------------------------------------------------------------------------
# per-domain failures, connection handling


class _ConnProxy:
    """Wraps a real test-driver connection to inject mid-scan events and record close()."""

    def __init__(self, real: Any, *, vanish: str | None = None, broken: str | None = None) -> None:
        self._real = real
        self._vanish = vanish
        self._broken = broken
        self.closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def listAllDomains(self, flags: int = 0) -> list[Any]:  # libvirt's method name
        domains = self._real.listAllDomains(flags)
        if flags == 0 and self._vanish:
            # undefined by someone else right after our listing: a real stale handle
            self._real.lookupByName(self._vanish).undefine()
        return [_DomProxy(d, self._broken) for d in domains]

    def close(self) -> int:
        self.closed = True
        return int(self._real.close())


class _DomProxy:
    def __init__(self, real: Any, broken: str | None) -> None:
        self._real = real
        self._broken = broken

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def XMLDesc(self, flags: int = 0) -> str:  # libvirt's method name
        if self._real.name() == self._broken:
            return str(self._real.XMLDesc(1 << 30))  # unsupported flag: a real libvirtError
        return str(self._real.XMLDesc(flags))


def test_vanished_and_broken_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = libvirt.open
    proxies: list[_ConnProxy] = []

    def open_proxy(uri: str) -> _ConnProxy:
        proxy = _ConnProxy(real_open(uri), vanish="kvm-off", broken="qemu-loose")
        proxies.append(proxy)
        return proxy

    monkeypatch.setattr(libvirt, "open", open_proxy)
    facts, problems = collect(NODE_URI)
    names = [vm.name for vm in facts.vms]
    assert names == ["kvm-hardened", "qemu-loose", "qemu-transient"]  # kvm-off vanished: skipped
    broken = by_name(facts)["qemu-loose"]
    assert broken.error and "\n" not in broken.error
    assert broken.persistent is True
    assert [(p.area, p.source) for p in problems] == [("vm:qemu-loose", "virDomainGetXMLDesc")]
    assert by_name(facts)["kvm-hardened"].error is None
    assert proxies and proxies[0].closed


def test_connection_closed_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = libvirt.open
    proxies: list[_ConnProxy] = []

    def open_proxy(uri: str) -> _ConnProxy:
        proxy = _ConnProxy(real_open(uri))
        proxies.append(proxy)
        return proxy

    def boom(*_args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(libvirt, "open", open_proxy)
    monkeypatch.setattr(_ConnProxy, "listAllDomains", boom)
    with pytest.raises(RuntimeError):
        collect_libvirt(NODE_URI, problems=[])
    assert proxies[0].closed


def test_libvirt_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # makes `import libvirt` raise ImportError
    problems: list[Problem] = []
    assert collect_libvirt("test:///default", problems=problems) is None
    assert [p.message for p in problems] == ["libvirt-python is not installed"]


@pytest.mark.parametrize("uri", ["qemu+tcp://127.0.0.1:1/system", "test:///nonexistent/file.xml"])
def test_unreachable(uri: str) -> None:
    problems: list[Problem] = []
    with pytest.raises(TargetUnreachable) as info:
        collect_libvirt(uri, problems=problems)
    assert info.value.uri == uri
    assert info.value.message
    assert "\n" not in info.value.message
    assert uri in str(info.value)


# --------------------------------------------------------------------------------------------------------
# virt-manager's testdriver.xml


def _corpus_testdriver() -> Path:
    return shared("corpus", "virt-manager", "testdriver", "testdriver.xml")


def test_corpus_testdriver(tmp_path: Path) -> None:
    """Every top-level <domain> of virt-manager's node file is returned and parses cleanly.

    The file has 14 top-level domains (other ``<domain>`` strings in it are snapshot copies and node
    device PCI addresses). Older libvirt refuses the whole file over one domain (libvirt 9.0:
    ``test-alternate-devs`` has ``<loader readonly>`` with firmware autoselection). Then the file must
    give ``TargetUnreachable`` with a one-line message, and a copy in ``tmp_path`` without the domains
    this libvirt refuses is collected instead; the refused ones must still parse with our parser.
    """
    source = _corpus_testdriver()
    register_namespace("test", TEST_NS)
    tree = parse_xml(source)
    root = tree.getroot()
    assert root is not None
    domains = root.findall("domain")
    names = sorted(d.findtext("name") or "" for d in domains)
    assert len(names) == 14

    try:
        facts, problems = collect(f"test://{source}")
    except TargetUnreachable as exc:
        assert exc.message and "\n" not in exc.message
        refused = _domains_libvirt_refuses(domains, tmp_path)
        assert refused, f"whole file refused but every domain loads alone: {exc.message}"
        for dom in refused:
            root.remove(dom)
        copy = tmp_path / "testdriver-accepted.xml"
        tree.write(copy, encoding="unicode")
        facts, problems = collect(f"test://{copy}")
        for dom in refused:
            vm = parse_domain_xml(tostring(dom, encoding="unicode"))
            assert vm.error is None, vm.error
        expected = sorted(set(names) - {d.findtext("name") or "" for d in refused})
        print(f"\nlibvirt refused {[d.findtext('name') for d in refused]}: {exc.message}")
    else:
        expected = names
    assert problems == []
    assert [vm.name for vm in facts.vms] == expected
    assert all(vm.error is None for vm in facts.vms), [(vm.name, vm.error) for vm in facts.vms if vm.error]
    vms = by_name(facts)
    assert vms["test-state-shutoff"].active is False
    assert vms["test-state-transient"].persistent is False
    assert vms["test-many-devices"].disks


def _domains_libvirt_refuses(domains: list[Any], tmp_path: Path) -> list[Any]:
    """Load each domain alone in a minimal node file; return those the test driver rejects."""
    refused = []
    for i, dom in enumerate(domains):
        node = tmp_path / f"single-{i}.xml"
        node.write_text(
            "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
            "<active>2</active><mhz>1000</mhz><model>i686</model></cpu><memory>8388608</memory>"
            f"{tostring(dom, encoding='unicode')}</node>"
        )
        try:
            libvirt.openReadOnly(f"test://{node}").close()
        except libvirt.libvirtError:
            refused.append(dom)
    return refused


def test_scan_speed_informal(tmp_path: Path) -> None:
    """Informal only: print how parsing compares with fetching for a few hundred domains."""
    text = NODE.read_text()
    start = text.index("  <domain type='kvm'>")
    end = text.index("</domain>", start) + len("</domain>")
    template = text[start:end]
    n = 300
    copies = [
        template.replace("kvm-hardened", f"bulk{i:04d}").replace(
            "11111111-2222-3333-4444-000000000001", f"22222222-2222-3333-4444-{i:012d}"
        )
        for i in range(n)
    ]
    node = tmp_path / "bulk.xml"
    node.write_text(text[:start] + "\n".join(copies) + text[end:])
    conn = libvirt.open(f"test://{node}")
    try:
        t0 = time.perf_counter()
        xmls = [d.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE) for d in conn.listAllDomains(0)]
        fetch = time.perf_counter() - t0
    finally:
        conn.close()
    t0 = time.perf_counter()
    vms = [parse_domain_xml(x) for x in xmls]
    parse = time.perf_counter() - t0
    assert len(vms) == n + 3
    assert all(vm.error is None for vm in vms)
    print(
        f"\n{len(xmls)} domains: fetch {fetch * 1e3:.1f} ms (in-process driver), parse {parse * 1e3:.1f} ms"
    )
