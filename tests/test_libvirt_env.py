"""The helpers in libvirt_env work, against the test driver and against the real libvirtd."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import defusedxml.ElementTree as DET
import libvirt
import pytest

import libvirt_env
from libvirt_env import (
    TestDomains,
    disk_xml,
    domain_xml,
    luks_disk_xml,
    make_luks_qcow2,
    requires_libvirtd,
    run_prefix,
    user_interface_xml,
)

PASSPHRASE = "s3cret,with a comma"  # a comma must survive QEMU's option syntax


def _our_domains(uri: str, prefix: str) -> list[str]:
    conn = libvirt.open(uri)
    try:
        return sorted(d.name() for d in conn.listAllDomains() if d.name().startswith(prefix))
    finally:
        conn.close()


def _pids_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (QEMU carries guest=NAME, swtpm its state dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(proc.name))
    return pids


def test_builders_and_cleanup_on_the_test_driver() -> None:
    prefix = run_prefix() + "drv-"
    with TestDomains("test:///default", prefix=prefix) as td:
        with pytest.raises(ValueError, match="must start with"):
            td.define(domain_xml("not-a-test-domain"))
        a = td.define(
            domain_xml(
                td.name("a"),
                cputune={"shares": 512},
                blkio_weight=300,
                interfaces=[user_interface_xml(bandwidth={"inbound": {"average": 1000}})],
                tpm=True,
            )
        )
        td.define(domain_xml(td.name("b"), dom_type="qemu", firmware="efi", vcpus=2))
        td.start(a)
        assert a.isActive()
        assert td.created == [td.name("a"), td.name("b")]
        assert _our_domains("test:///default", prefix) == [td.name("a"), td.name("b")]
    assert _our_domains("test:///default", prefix) == []
    with pytest.raises(ValueError, match="must start with 'hvg-test-'"):
        TestDomains(prefix="other-")


def test_make_luks_qcow2_retries_only_the_qemu_img_timing_flake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # qemu-img fails ~15 % of LUKS creations here ("Unable to get accurate CPU usage"); each real
    # creation costs ~2.4 s of PBKDF2 timing, so the retry is checked with a stand-in for qemu-img.
    calls: list[list[str]] = []

    def flaky(argv: list[str]) -> None:
        calls.append(argv)
        if len(calls) < 3:
            raise RuntimeError("qemu-img failed (1): qemu-img: x: Unable to get accurate CPU usage")
        Path(argv[-2]).write_bytes(b"QFI\xfb")

    monkeypatch.setattr(libvirt_env, "_run", flaky)
    img = make_luks_qcow2(tmp_path / "a.qcow2", "1M", PASSPHRASE)
    assert img.read_bytes() == b"QFI\xfb"
    assert len(calls) == 3
    assert "secret,id=s0,data=s3cret,,with a comma" in calls[0]

    def broken(argv: list[str]) -> None:
        calls.append(argv)
        raise RuntimeError("qemu-img failed (1): qemu-img: x: No space left on device")

    calls.clear()
    monkeypatch.setattr(libvirt_env, "_run", broken)
    with pytest.raises(RuntimeError, match="No space left"):
        make_luks_qcow2(tmp_path / "b.qcow2", "1M", PASSPHRASE)
    assert len(calls) == 1


@requires_libvirtd
def test_helpers_against_the_real_libvirtd() -> None:
    uri = "qemu:///system"
    prefix = run_prefix()
    with TestDomains(uri) as td:
        # a kvm and a TCG domain; only the kvm one runs
        kvm = td.define(
            domain_xml(
                td.name("kvm"),
                dom_type="kvm",
                cputune={"shares": 512, "period": 100000, "quota": 50000},
                blkio_weight=300,
                interfaces=[user_interface_xml(bandwidth={"inbound": {"average": 1000}})],
            )
        )
        tcg = td.define(domain_xml(td.name("tcg"), dom_type="qemu"))
        td.start(kvm)
        assert kvm.info()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert not tcg.isActive()
        assert kvm.schedulerParameters()["cpu_shares"] == 512
        assert DET.fromstring(kvm.XMLDesc(0)).get("type") == "kvm"
        assert _pids_mentioning(f"guest={td.name('kvm')},")

        # a LUKS qcow2 + libvirt secret, attached next to a throttled plain disk; the domain starts
        plain = td.make_qcow2("plain.qcow2")
        luks = td.make_luks_qcow2("luks.qcow2", secret=PASSPHRASE)
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "--output=json", str(luks)], capture_output=True, text=True, check=True
            ).stdout
        )
        assert info["format-specific"]["data"]["encrypt"]["format"] == "luks"
        secret_uuid = td.define_secret(luks, PASSPHRASE)
        enc = td.define(
            domain_xml(
                td.name("luks"),
                disks=[
                    disk_xml(plain, iotune={"total_bytes_sec": 10485760}),
                    luks_disk_xml(luks, secret_uuid),
                ],
            )
        )
        td.start(enc)
        assert enc.isActive()
        assert enc.blockIoTune("vda", 0)["total_bytes_sec"] == 10485760
        enc_xml = DET.fromstring(enc.XMLDesc(0))
        assert enc_xml.find("devices/disk/encryption[@format='luks']") is not None

        # a vTPM (swtpm) domain and a Secure Boot one (NVRAM); both start
        tpm = td.define(domain_xml(td.name("tpm"), machine="q35", tpm=True))
        td.start(tpm)
        tpm_uuid = tpm.UUIDString()
        tpm_state = Path("/var/lib/libvirt/swtpm") / tpm_uuid
        assert tpm_state.is_dir()
        assert _pids_mentioning(str(tpm_state))  # swtpm runs
        # KVM here has no SMM, which Secure Boot needs: TCG
        efi = td.define(domain_xml(td.name("efi"), dom_type="qemu", firmware="efi-secure"))
        td.start(efi)
        nvram_text = DET.fromstring(efi.XMLDesc(0)).findtext("os/nvram")
        assert nvram_text
        nvram = Path(nvram_text)
        assert nvram.is_file()

        assert _our_domains(uri, prefix) == sorted(td.created)
        assert len(td.created) == 5
        image_dir = td.image_dir

    # everything is gone: domains, secret, images, vTPM state, NVRAM, QEMU and swtpm processes
    assert _our_domains(uri, prefix) == []
    conn = libvirt.open(uri)
    try:
        with pytest.raises(libvirt.libvirtError):
            conn.secretLookupByUUIDString(secret_uuid)
    finally:
        conn.close()
    assert not image_dir.exists()
    assert not tpm_state.exists()
    assert not nvram.exists()
    assert _pids_mentioning(f"guest={prefix}") == []
    assert _pids_mentioning(str(tpm_state)) == []
