"""``scan --library``: per VM, whether each disk's image is a signed library image (11.3.9).

Real ``qemu-img`` overlays on an image pulled from a running library, domains of libvirt's real test
driver pointing at them, and the real scan: a read-only backing base, a pulled manifest beside the disk,
an image id in hvguard's domain ``<metadata>``, a tampered base, an unknown id and a disk with no evidence.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from factories import run, target
from hvguard.checks.s11_3 import library_service as s3
from hvguard.facts import ImageLibraryFacts, LibraryDiskImage
from hvguard.findings import Status
from library_env import REPO, Library, ext4_image, hvguard, make_store, need, start_server

NS = "https://hvguard.dev/xmlns/policy/1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    need("qemu-img", "mkfs.ext4", "debugfs")
    tmp = tmp_path_factory.mktemp("vmlib")
    yield from start_server(make_store(tmp), tmp)


def _domain(
    name: str, disk: Path, *, fmt: str = "qcow2", image_id: str | None = None, readonly: bool = False
) -> str:
    meta = ""
    if image_id:
        meta = (
            f"<metadata><hvguard:policy xmlns:hvguard='{NS}'>"
            f"<hvguard:image disk='vda' id='{image_id}'/></hvguard:policy></metadata>"
        )
    return f"""
  <domain type='kvm'>
    <name>{name}</name>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    {meta}
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='{fmt}'/>
        <source file='{disk}'/>
        <target dev='vda' bus='virtio'/>{"<readonly/>" if readonly else ""}
      </disk>
    </devices>
  </domain>"""


def _overlay(base: Path, path: Path) -> Path:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(path)], check=True
    )
    return path


def test_each_disk_gets_its_provenance(served: Library, tmp_path: Path) -> None:
    image_id = hvguard(
        "library",
        "push",
        served.url,
        ext4_image(tmp_path, "g"),
        "--name",
        "linux/vm",
        "--version",
        "1",
        *served.client("pete"),
        check=True,
    ).stdout.strip()
    hvguard("library", "approve", served.url, image_id, *served.client("anna"), check=True)
    pulled = tmp_path / "pulled.qcow2"
    hvguard("library", "pull", served.url, image_id, "--output", pulled, *served.client("rita"), check=True)
    assert pulled.with_name("pulled.qcow2.manifest.json").is_file()

    # (a) a read-only base that is the library image, without any manifest beside it
    bare = tmp_path / "bare-base.qcow2"
    shutil.copyfile(pulled, bare)
    # (b) the pulled image used directly as a writable disk, its manifest beside it
    direct = tmp_path / "direct.qcow2"
    shutil.copyfile(pulled, direct)
    shutil.copyfile(pulled.with_name("pulled.qcow2.manifest.json"), tmp_path / "direct.qcow2.manifest.json")
    # a base whose bytes were changed after the pull, its (genuine) manifest beside it
    tampered = tmp_path / "tampered.qcow2"
    shutil.copyfile(pulled, tampered)
    with open(tampered, "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x01")
    shutil.copyfile(pulled.with_name("pulled.qcow2.manifest.json"), tmp_path / "tampered.qcow2.manifest.json")
    # another image passed off as the library's with an edited manifest (its signature no longer holds)
    forged = tmp_path / "forged.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(forged), "8M"], check=True)
    envelope = json.loads(pulled.with_name("pulled.qcow2.manifest.json").read_text())
    envelope["manifest"]["version"] = "2"
    (tmp_path / "forged.qcow2.manifest.json").write_text(json.dumps(envelope))
    plain = tmp_path / "plain.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(plain), "16M"], check=True)
    meta = tmp_path / "meta.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(meta), "16M"], check=True)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.is_file()}

    domains = [
        _domain("hvg-test-backing", _overlay(bare, tmp_path / "a.qcow2")),
        _domain("hvg-test-manifest", direct),
        _domain("hvg-test-readonly", bare, readonly=True),
        _domain("hvg-test-metadata", meta, image_id=image_id),
        _domain("hvg-test-tampered", _overlay(tampered, tmp_path / "t.qcow2")),
        _domain("hvg-test-forged", _overlay(forged, tmp_path / "f.qcow2"), fmt="qcow2"),
        _domain("hvg-test-unknown-id", plain, image_id="00000000-0000-4000-8000-000000000000"),
        _domain("hvg-test-none", _overlay(plain, tmp_path / "n.qcow2")),
    ]
    node = tmp_path / "node.xml"
    node.write_text("<node>" + "".join(domains) + "</node>")
    before |= {p: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.suffix == ".qcow2"}
    out = tmp_path / "r.json"
    proc = hvguard(
        "scan",
        f"test://{node}",
        "--root",
        REPO / "tests/data/roots/kvm-good",
        "--no-history",
        "--format",
        "json",
        "--output",
        out,
        "--fail-on",
        "never",
        "--library",
        served.url,
        *served.client("rita"),
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    vm = {r["subject"]: r for r in results if r["check"] == "library.vm-images"}
    assert vm["vm:hvg-test-backing"]["status"] == "pass", vm["vm:hvg-test-backing"]
    disk = vm["vm:hvg-test-backing"]["evidence"]["disks"][0]
    assert disk["provenance"] == "backing" and disk["image_id"] == image_id and disk["base"] == str(bare)
    assert vm["vm:hvg-test-manifest"]["status"] == "pass"
    # a disk attached read-only is hashed itself
    assert vm["vm:hvg-test-readonly"]["status"] == "pass"
    assert vm["vm:hvg-test-readonly"]["evidence"]["disks"][0]["base"] == str(bare)
    assert vm["vm:hvg-test-manifest"]["evidence"]["disks"][0]["provenance"] == "manifest"
    assert vm["vm:hvg-test-metadata"]["status"] == "pass"
    assert vm["vm:hvg-test-metadata"]["evidence"]["disks"][0]["provenance"] == "metadata"
    assert vm["vm:hvg-test-tampered"]["status"] == "fail"
    assert "is not the signed image" in vm["vm:hvg-test-tampered"]["message"]
    assert vm["vm:hvg-test-forged"]["status"] == "fail"
    forged_disk = vm["vm:hvg-test-forged"]["evidence"]["disks"][0]
    assert forged_disk["signature_valid"] is False and forged_disk["provenance"] == "manifest"
    assert vm["vm:hvg-test-unknown-id"]["status"] == "fail"
    assert "not in the library" in vm["vm:hvg-test-unknown-id"]["message"]
    assert vm["vm:hvg-test-none"]["status"] == "manual"
    # reading provenance writes nothing: every disk, base and manifest is as it was
    assert {p: p.stat().st_mtime_ns for p in before} == before


def _vm_status(disks: list[LibraryDiskImage]) -> list[Status]:
    lib = ImageLibraryFacts(url="https://lib:8443", vm_disks=disks)
    from msgspec.structs import replace

    return [f.status for f in run(s3.library_vm_images, replace(target(), image_library=lib), "11.3.9")]


def test_a_bad_disk_outweighs_good_ones_and_unreadable_is_error() -> None:
    good = LibraryDiskImage(vm="v", disk="vda", provenance="backing", image_id="1", signature_valid=True)
    bad = LibraryDiskImage(vm="v", disk="vdb", provenance="metadata", image_id="2", signature_valid=False)
    unknown = LibraryDiskImage(vm="v", disk="vdc")
    unread = LibraryDiskImage(vm="v", disk="vdd", error="cannot read /x: Permission denied")
    assert _vm_status([good]) == [Status.PASS]
    assert _vm_status([good, unknown]) == [Status.MANUAL]
    assert _vm_status([good, unknown, unread]) == [Status.ERROR]
    assert _vm_status([good, unread, bad]) == [Status.FAIL]
    assert _vm_status([]) == []
