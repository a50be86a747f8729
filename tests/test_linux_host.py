"""The Linux host collector on hand-made roots (tests/data/roots/*) and on this machine.

Each fixture root is copied to a temporary directory; the parts git cannot hold or that need a mode or
owner (efivars, NUL-separated command lines, symlinks, /dev/kvm) are added there by ``make_root``.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from hvguard.collect.linux import host as linux_host
from hvguard.collect.linux.host import collect_host
from hvguard.collect.linux.host_firmware import EFI_GLOBAL_GUID
from hvguard.collect.linux.host_qemu import qemu_vm_name, split_qemu_opts
from hvguard.facts import (
    ConfValue,
    CpuFacts,
    HostFacts,
    IommuFacts,
    KvmFacts,
    Problem,
    QemuProcess,
    SecureBootFacts,
    TpmFacts,
)

ROOTS = Path(__file__).parent / "data" / "roots"

# EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, little-endian, as efivarfs prefixes it.
EFI_ATTRS = struct.pack("<I", 0x7)


def _efivar(root: Path, name: str, data: bytes) -> None:
    path = root / "sys/firmware/efi/efivars" / f"{name}-{EFI_GLOBAL_GUID}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _process(root: Path, pid: int, *, comm: str, args: list[str], uid: int, exe: str | None = None) -> None:
    base = root / "proc" / str(pid)
    base.mkdir(parents=True)
    (base / "comm").write_text(comm + "\n")
    (base / "cmdline").write_bytes(b"".join(arg.encode() + b"\0" for arg in args))
    (base / "status").write_text(f"Name:\t{comm}\nState:\tS (sleeping)\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    if exe is not None:
        (base / "exe").symlink_to(exe)


def _dev_kvm(root: Path, mode: int, gid: int) -> None:
    path = root / "dev/kvm"
    path.write_bytes(b"")
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, 0, gid)


def _extras_kvm_good(root: Path) -> None:
    (root / "etc/systemd/system").mkdir(parents=True)
    # Absolute and dangling inside the root: only the link text is used, never followed.
    (root / "etc/systemd/system/default.target").symlink_to("/usr/lib/systemd/system/multi-user.target")
    _dev_kvm(root, 0o660, 36)
    _efivar(root, "SecureBoot", EFI_ATTRS + b"\x01")
    _efivar(root, "SetupMode", EFI_ATTRS + b"\x00")
    _process(
        root,
        4242,
        comm="qemu-kvm",
        args=["/usr/libexec/qemu-kvm", "-name", "guest=web,,01,debug-threads=on", "-S", "-enable-kvm"],
        uid=107,
        exe="/usr/libexec/qemu-kvm",
    )
    # comm is cut to 15 characters by the kernel.
    _process(root, 4300, comm="qemu-system-x86", args=["qemu-system-x86_64", "-name", "db"], uid=107)
    _process(root, 1, comm="systemd", args=["/usr/lib/systemd/systemd", "--switched-root"], uid=0)
    # A kernel thread: empty command line, even though its name matches.
    (root / "proc/2").mkdir()
    (root / "proc/2/comm").write_text("kvm\n")
    (root / "proc/2/cmdline").write_bytes(b"")
    (root / "proc/2/status").write_text("Name:\tkvm\nUid:\t0\t0\t0\t0\n")
    (root / "proc/self").symlink_to("4242")


def _extras_kvm_bad(root: Path) -> None:
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/default.target").symlink_to("graphical.target")
    _dev_kvm(root, 0o666, 0)
    _efivar(root, "SecureBoot", EFI_ATTRS + b"\x00")
    _efivar(root, "SetupMode", EFI_ATTRS + b"\x01")
    _process(
        root,
        5000,
        comm="qemu-system-x86",
        args=["qemu-system-x86_64", "-enable-kvm", "-name", "vm1", "-m", "2048"],
        uid=0,
        exe="/usr/bin/qemu-system-x86_64 (deleted)",
    )
    _process(root, 5001, comm="kvm", args=["kvm", "-m", "512"], uid=1000)
    # Vanished between listing proc/ and reading its status: skipped, not a problem.
    (root / "proc/5002").mkdir()
    (root / "proc/5002/comm").write_text("qemu-system-aar\n")
    (root / "proc/5002/cmdline").write_bytes(b"qemu-system-aarch64\0")


def _extras_minimal(root: Path) -> None:
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/default.target").symlink_to("graphical.target")
    (root / "lib").symlink_to("usr/lib")


def _extras_broken(root: Path) -> None:
    (root / "proc/meminfo").write_bytes(b"MemTotal:       \xff\xfe kB\n")
    _efivar(root, "SecureBoot", b"\x07\x00\x00")


EXTRAS: dict[str, Callable[[Path], None]] = {
    "kvm-good": _extras_kvm_good,
    "kvm-bad": _extras_kvm_bad,
    "minimal": _extras_minimal,
    "broken": _extras_broken,
}


@pytest.fixture
def make_root(tmp_path: Path) -> Callable[[str], Path]:
    """Copy ``tests/data/roots/NAME`` to a temporary root and add its generated parts."""

    def make(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(ROOTS / name, root, symlinks=True)
        EXTRAS[name](root)
        return root

    return make


def collect(root: Path, **kwargs: bool) -> tuple[HostFacts, list[Problem]]:
    problems: list[Problem] = []
    facts = collect_host(root, problems=problems, **kwargs)
    return facts, problems


# --------------------------------------------------------------------------------------------------------
# kvm-good: every control on


@pytest.fixture
def good(make_root: Callable[[str], Path]) -> tuple[Path, HostFacts, list[Problem]]:
    root = make_root("kvm-good")
    facts, problems = collect(root)
    return root, facts, problems


def test_good_root_has_no_problems(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, problems = good
    assert problems == []
    assert facts.root == str(good[0])


def test_good_identity(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    # Offline, etc/hostname comes first; its comment line is skipped.
    assert facts.hostname == "kvm-good.example.org"
    assert (facts.os_id, facts.os_version) == ("rhel", "9.4")
    assert facts.default_target == "multi-user.target"


def test_good_cpu_counts_cores_not_threads(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = good
    assert facts.cpu == CpuFacts(
        vendor="GenuineIntel",
        model="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        flags=facts.cpu.flags,
        sockets=2,
        physical_cores=8,
        logical_cpus=16,
        source=str(root / "proc/cpuinfo"),
    )
    # The union over all processors: avx512f is listed on processor 0 only.
    assert {"vmx", "ept", "vpid", "avx512f", "ht"} <= set(facts.cpu.flags)
    assert facts.cpu.flags == sorted(facts.cpu.flags)


def test_good_memory(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = good
    assert facts.memory.total_kib == 263842324
    assert facts.memory.source == str(root / "proc/meminfo")


def test_good_kvm(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    if os.geteuid() != 0:
        pytest.skip("giving dev/kvm to gid 36 needs root")
    assert facts.kvm == KvmFacts(
        modules=["kvm", "kvm_intel"],
        dev_kvm_present=True,
        dev_kvm_mode="0660",
        dev_kvm_group="kvm",  # gid 36 resolved through the root's etc/group, not this machine's
        ept=True,
        npt=None,
    )


def test_good_iommu(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    assert facts.iommu == IommuFacts(
        groups=4, cmdline_flags=["intel_iommu=on", "iommu=pt", "iommu.passthrough=0"]
    )


def test_good_tpm(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    assert facts.tpm == TpmFacts(
        present=True,
        version_major=2,
        event_log_present=True,
        ima_measurements=3,
        attestation_agents=["keylime", "tboot"],
    )


def test_good_secure_boot(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = good
    assert facts.secure_boot == SecureBootFacts(
        uefi=True,
        enabled=True,
        setup_mode=False,
        source=str(root / f"sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL_GUID}"),
    )


def test_good_kernel(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    kernel = facts.kernel
    assert kernel.release == "5.14.0-427.el9.x86_64"
    assert kernel.cmdline is not None
    assert kernel.cmdline.startswith("BOOT_IMAGE=(hd0,gpt2)/vmlinuz")
    assert kernel.lockdown == "confidentiality"
    assert kernel.sig_enforce is True
    assert kernel.tainted == 0
    # cmdline: module_blacklist= (verbatim) and modprobe.blacklist= (kmod form); modprobe.d: blacklist
    # lines, install ... /bin/false|true, a backslash-continued line. Not: usr/lib's blacklist.conf (hidden
    # by etc's file of the same name), an install running a real command, a file not ending in .conf.
    assert kernel.module_blacklist == [
        "cramfs",
        "firewire_core",
        "floppy",
        "nouveau",
        "pcspkr",
        "snd_pcsp",
        "thunderbolt",
        "usb_storage",
    ]


def test_good_libvirt_configs(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = good
    qemu = facts.qemu_conf
    assert qemu.path == str(root / "etc/libvirt/qemu.conf")
    assert (qemu.present, qemu.error) == (True, None)
    assert qemu.values["user"] == ConfValue(value="qemu", line=4)
    assert qemu.values["security_driver"] == ConfValue(value="selinux", line=8)
    assert qemu.values["security_require_confined"].value == 1
    assert qemu.values["cgroup_device_acl"].line == 13
    assert len(qemu.values["cgroup_device_acl"].value) == 7  # type: ignore[arg-type]
    assert qemu.values["namespaces"].value == ["mount"]
    assert qemu.values["vnc_listen"].value == "127.0.0.1"
    assert qemu.values["max_processes"].value == -1
    assert facts.libvirtd_conf.values["access_drivers"].value == ["polkit"]
    assert facts.libvirtd_conf.values["listen_tcp"].value == 0


def test_good_qemu_processes(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    assert facts.qemu_processes == [
        # libvirt doubles commas in names; QEMU reads ",," as one comma.
        QemuProcess(pid=4242, user="qemu", uid=107, vm_name="web,01"),
        QemuProcess(pid=4300, user="qemu", uid=107, vm_name="db"),
    ]


def test_live_flag_prefers_the_kernel_hostname(make_root: Callable[[str], Path]) -> None:
    facts, _ = collect(make_root("kvm-good"), live=True)
    assert facts.hostname == "kvm-good"


def test_facts_survive_a_bundle_round_trip(good: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = good
    assert msgspec.json.decode(msgspec.json.encode(facts), type=HostFacts) == facts


# --------------------------------------------------------------------------------------------------------
# kvm-bad: AMD host with every control off


@pytest.fixture
def bad(make_root: Callable[[str], Path]) -> tuple[Path, HostFacts, list[Problem]]:
    root = make_root("kvm-bad")
    facts, problems = collect(root)
    return root, facts, problems


def test_bad_root_has_no_problems_only_bad_facts(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    assert bad[2] == []


def test_bad_identity(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = bad
    assert facts.hostname == "kvm-bad"
    # A rolling release has no VERSION_ID: an answer, not a gap.
    assert (facts.os_id, facts.os_version) == ("debian", None)
    assert facts.default_target == "graphical.target"


def test_bad_cpu_topology_from_sysfs(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = bad
    assert facts.cpu.vendor == "AuthenticAMD"
    assert (facts.cpu.sockets, facts.cpu.physical_cores, facts.cpu.logical_cpus) == (1, 4, 8)
    assert facts.cpu.source == f"{root}/proc/cpuinfo + {root}/sys/devices/system/cpu"
    assert {"svm", "npt"} <= set(facts.cpu.flags)


def test_bad_kvm(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = bad
    assert facts.kvm.modules == ["kvm", "kvm_amd"]
    assert (facts.kvm.dev_kvm_present, facts.kvm.dev_kvm_mode) == (True, "0666")
    if os.geteuid() == 0:
        assert facts.kvm.dev_kvm_group == "root"
    # kvm_amd's npt is an int parameter on older kernels: "0" is off. No kvm_intel: ept not applicable.
    assert (facts.kvm.ept, facts.kvm.npt) == (None, False)


def test_bad_iommu_tpm_secure_boot(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = bad
    assert facts.iommu == IommuFacts(groups=0, cmdline_flags=["amd_iommu=off"])
    # securityfs is mounted (it has lockdown and lsm) but holds no TPM log and no IMA directory.
    assert facts.tpm == TpmFacts(present=False, event_log_present=False, ima_measurements=0)
    assert facts.secure_boot == SecureBootFacts(
        uefi=True,
        enabled=False,
        setup_mode=True,
        source=str(root / f"sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL_GUID}"),
    )


def test_bad_kernel(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = bad
    assert facts.kernel.lockdown == "none"
    assert facts.kernel.sig_enforce is False
    assert facts.kernel.tainted == 12288
    assert facts.kernel.tainted & (1 << 13)  # TAINT_UNSIGNED_MODULE
    assert facts.kernel.module_blacklist == []


def test_bad_libvirt_configs(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    root, facts, _ = bad
    # Set twice: libvirt uses the first assignment.
    assert facts.qemu_conf.values["security_driver"] == ConfValue(value="none", line=3)
    assert facts.qemu_conf.values["user"].value == "root"
    assert facts.libvirtd_conf.path == str(root / "etc/libvirt/libvirtd.conf")
    assert (facts.libvirtd_conf.present, facts.libvirtd_conf.error) == (False, None)


def test_bad_qemu_processes(bad: tuple[Path, HostFacts, list[Problem]]) -> None:
    _, facts, _ = bad
    assert facts.qemu_processes == [
        QemuProcess(pid=5000, user="root", uid=0, vm_name="vm1"),
        # No such account in the root's etc/passwd: the number stands in.
        QemuProcess(pid=5001, user="1000", uid=1000, vm_name=None),
    ]


# --------------------------------------------------------------------------------------------------------
# minimal: an offline image (no proc, sys or dev)


def test_minimal_offline_root(make_root: Callable[[str], Path]) -> None:
    root = make_root("minimal")
    facts, problems = collect(root)
    assert facts.hostname == "offline-image"
    assert (facts.os_id, facts.os_version) == ("ubuntu", "24.04")  # from usr/lib/os-release
    assert facts.default_target == "graphical.target"
    assert facts.cpu == CpuFacts(source=str(root / "proc/cpuinfo"))
    assert facts.memory.total_kib is None
    assert facts.kvm.dev_kvm_present is None
    assert facts.tpm.present is None
    assert facts.secure_boot.uefi is None
    assert (facts.kernel.release, facts.kernel.cmdline, facts.kernel.sig_enforce) == (None, None, None)
    assert facts.qemu_conf.present is False
    # Nothing runs in an image: not a gap, so no problem for it.
    assert facts.qemu_processes is None
    assert {p.area for p in problems} == {
        "host.cpu",
        "host.memory",
        "host.kvm",
        "host.iommu",
        "host.tpm",
        "host.secure_boot",
        "host.kernel",
    }
    runtime = [p for p in problems if "this fact needs the running system" in p.message]
    assert {(p.area, p.source) for p in runtime} >= {
        ("host.cpu", str(root / "proc")),
        ("host.kvm", str(root / "dev")),
        ("host.secure_boot", str(root / "sys")),
    }


# --------------------------------------------------------------------------------------------------------
# broken: present but unusable → the fact is None and a Problem names the file


def test_broken_root(make_root: Callable[[str], Path]) -> None:
    root = make_root("broken")
    facts, problems = collect(root)
    found = {(p.area, p.source, p.message) for p in problems}

    assert facts.cpu.logical_cpus is None
    assert ("host.cpu", str(root / "proc/cpuinfo"), "cannot read: is a directory, not a file") in found

    assert facts.memory.total_kib is None
    assert ("host.memory", str(root / "proc/meminfo"), "line 1: not valid UTF-8 text") in found

    assert facts.kernel.tainted is None
    assert (
        "host.kernel",
        str(root / "proc/sys/kernel/tainted"),
        "expected an integer, found 'lots'",
    ) in found

    assert facts.kvm.ept is None
    assert (
        "host.kvm",
        str(root / "sys/module/kvm_intel/parameters/ept"),
        "expected Y/N or 1/0, found 'maybe'",
    ) in found

    assert facts.kernel.lockdown is None
    assert ("host.kernel", str(root / "sys/kernel/security/lockdown"), "no [level] in 'garbage'") in found

    assert facts.secure_boot.uefi is True
    assert facts.secure_boot.enabled is None
    efivar = str(root / f"sys/firmware/efi/efivars/SecureBoot-{EFI_GLOBAL_GUID}")
    assert ("host.secure_boot", efivar, "3 bytes: too short for an EFI boolean") in found

    assert facts.os_id is None
    assert ("host.os", str(root / "etc/os-release"), "line 2: unbalanced quotes") in found

    qemu_path = str(root / "etc/libvirt/qemu.conf")
    assert facts.qemu_conf.present is True
    assert facts.qemu_conf.values == {}
    assert facts.qemu_conf.error == f"{qemu_path} line 12: unterminated string"
    assert ("host.qemu_conf", qemu_path, f"{qemu_path} line 12: unterminated string") in found

    libvirtd_path = str(root / "etc/libvirt/libvirtd.conf")
    assert facts.libvirtd_conf.error == f"{libvirtd_path}: is a directory, not a file"
    assert any(p.area == "host.libvirtd_conf" and p.source == libvirtd_path for p in problems)

    # What could be read still is.
    assert facts.hostname == "broken"
    assert facts.kernel.release == "6.8.0"
    assert facts.iommu.groups == 1


def test_every_problem_is_one_line_under_a_host_area(make_root: Callable[[str], Path]) -> None:
    for name in EXTRAS:
        _, problems = collect(make_root(name))
        for problem in problems:
            assert problem.area.startswith("host.")
            assert "\n" not in problem.message


def test_a_bug_in_one_group_becomes_a_problem(
    make_root: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_: object) -> CpuFacts:
        raise RuntimeError("boom")

    monkeypatch.setattr(linux_host, "collect_cpu", explode)
    facts, problems = collect(make_root("kvm-good"))
    assert facts.cpu == CpuFacts()
    assert [p.message for p in problems if p.area == "host.cpu"] == ["internal error: RuntimeError: boom"]
    assert facts.memory.total_kib == 263842324


def test_ima_log_is_counted_in_chunks(make_root: Callable[[str], Path]) -> None:
    root = make_root("kvm-good")
    log = root / "sys/kernel/security/ima/ascii_runtime_measurements"
    line = b"10 " + b"a" * 40 + b" ima-ng sha256:" + b"b" * 64 + b" /usr/bin/something\n"
    # Several read chunks, and a last line without its newline.
    log.write_bytes(line * 30000 + line.rstrip(b"\n"))
    facts, _ = collect(root)
    assert facts.tpm.ima_measurements == 30001


# --------------------------------------------------------------------------------------------------------
# QEMU command lines


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["qemu-system-x86_64", "-name", "guest=web,debug-threads=on"], "web"),
        (["qemu-system-x86_64", "-name", "web"], "web"),
        (["qemu-system-x86_64", "-name", "web,process=qemu:web"], "web"),
        (["qemu-system-x86_64", "--name", "process=p,guest=db"], "db"),
        (["qemu-system-x86_64", "-name", "guest=a,,b"], "a,b"),
        (["qemu-system-x86_64", "-name", "process=p"], None),
        (["qemu-system-x86_64", "-m", "1024"], None),
        (["qemu-system-x86_64", "-name"], None),
    ],
)
def test_qemu_vm_name(args: list[str], name: str | None) -> None:
    assert qemu_vm_name(args) == name


def test_split_qemu_opts() -> None:
    assert split_qemu_opts("guest=a,,b,debug-threads=on") == ["guest=a,b", "debug-threads=on"]
    assert split_qemu_opts("") == [""]


# --------------------------------------------------------------------------------------------------------
# This machine


def test_live_collection_of_this_machine() -> None:
    problems: list[Problem] = []
    facts = collect_host(Path("/"), problems=problems)
    assert facts.root == "/"
    assert facts.memory.total_kib is not None and facts.memory.total_kib > 0
    assert facts.cpu.logical_cpus is not None and facts.cpu.logical_cpus >= 1
    assert facts.kernel.release == os.uname().release
    assert facts.hostname
    assert facts.qemu_processes is not None  # proc/ exists on a running system
    for problem in problems:
        assert problem.area.startswith("host.")
        assert problem.source.startswith("/")
