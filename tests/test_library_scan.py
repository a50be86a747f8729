"""``scan --library``: the image library's state as facts, and the checks that turn 11.2.8-11.2.10,
11.3.8 and 11.3.9 from manual into pass/fail with evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from msgspec.structs import replace

from factories import run, target
from hvguard.checks.s11_2 import library_service as s2
from hvguard.checks.s11_3 import images as s3_images
from hvguard.checks.s11_3 import library_service as s3
from hvguard.facts import ImageLibraryFacts, LibraryFailingImage, LibraryGrant, LibraryKeySlot, LibraryUser
from hvguard.findings import Status
from library_env import REPO, Library, ext4_image, hvguard, make_store, need, start_server

MEASURES = ("11.2.8", "11.2.9", "11.2.10", "11.3.8", "11.3.9")


def good_library(**changes: object) -> ImageLibraryFacts:
    """Facts of a well-run library."""
    lib = ImageLibraryFacts(
        url="https://lib:8443",
        store_id="s",
        tls_version="TLSv1.3",
        tls_minimum="TLSv1.2",
        client_certificates="required",
        plaintext_http_answered=False,
        totp_for_admin_calls=True,
        users=[
            LibraryUser(name="alice", role="admin"),
            LibraryUser(name="pete", role="publisher", grants=[LibraryGrant(group="linux")]),
            LibraryUser(name="rita", role="reader", grants=[LibraryGrant(group="*")]),
        ],
        keyslots=[LibraryKeySlot(name="alice", kdf="argon2id", memory_kib=65536, time_cost=3)],
        cipher="AES-256-GCM",
        kdf="argon2id",
        min_passphrase=12,
        min_zxcvbn_score=3,
        signing_algorithm="ed25519",
        signing_key_bits=256,
        signing_key_id="ab" * 32,
        guest_inspection="required",
        gate_profile_sha256="cd" * 32,
        images_total=2,
        images_by_status={"approved": 2},
    )
    return replace(lib, **changes)


CHECKS = [
    (s2.library_access, "11.2.8"),
    (s2.library_encryption, "11.2.9"),
    (s2.library_tls, "11.2.10"),
    (s3.library_gate, "11.3.8"),
    (s3.library_signatures, "11.3.9"),
]


def _status(check: object, measure: str, lib: ImageLibraryFacts | None) -> list[Status]:
    return [f.status for f in run(check, replace(target(), image_library=lib), measure)]


@pytest.mark.parametrize(("check", "measure"), CHECKS)
def test_good_library_passes_and_no_library_yields_nothing(check: object, measure: str) -> None:
    assert _status(check, measure, good_library()) == [Status.PASS]
    assert _status(check, measure, None) == []
    assert _status(check, measure, ImageLibraryFacts(url="https://x", error="connection refused")) == [
        Status.ERROR
    ]


@pytest.mark.parametrize(
    ("check", "measure", "changes"),
    [
        (s2.library_access, "11.2.8", {"client_certificates": "optional"}),
        (s2.library_access, "11.2.8", {"totp_for_admin_calls": False}),
        (
            s2.library_access,
            "11.2.8",
            {"users": [LibraryUser(name="a", role="admin"), LibraryUser(name="b", role="admin")]},
        ),
        (s2.library_encryption, "11.2.9", {"cipher": "AES-128-CBC"}),
        (s2.library_encryption, "11.2.9", {"keyslots": []}),
        (
            s2.library_encryption,
            "11.2.9",
            {"keyslots": [LibraryKeySlot(name="alice", kdf="pbkdf2", memory_kib=0)]},
        ),
        (
            s2.library_encryption,
            "11.2.9",
            {"keyslots": [LibraryKeySlot(name="rita", kdf="argon2id", memory_kib=65536)]},
        ),
        (s2.library_encryption, "11.2.9", {"min_passphrase": 8}),
        (s2.library_tls, "11.2.10", {"plaintext_http_answered": True}),
        (s2.library_tls, "11.2.10", {"tls_version": "TLSv1.1"}),
        (
            s3.library_gate,
            "11.3.8",
            {"failing_gate": [LibraryFailingImage(id="1", name="linux/x", version="1")]},
        ),
        (s3.library_signatures, "11.3.9", {"approved_unsigned": 1}),
        (s3.library_signatures, "11.3.9", {"signing_algorithm": "rsa-pss-2048"}),
    ],
)
def test_each_problem_fails(check: object, measure: str, changes: dict[str, object]) -> None:
    assert _status(check, measure, good_library(**changes)) == [Status.FAIL]


def test_gate_warns_when_inspection_is_off_or_profile_changed() -> None:
    assert _status(s3.library_gate, "11.3.8", good_library(guest_inspection="off")) == [Status.WARN]
    assert _status(s3.library_gate, "11.3.8", good_library(gated_under_other_profile=1)) == [Status.WARN]


def test_manual_image_checks_give_way_to_the_library() -> None:
    assert _status(s3_images.image_ss025, "11.3.8", None) == [Status.MANUAL]
    assert _status(s3_images.image_signatures, "11.3.9", None) == [Status.MANUAL]
    assert _status(s3_images.image_ss025, "11.3.8", good_library()) == []
    assert _status(s3_images.image_signatures, "11.3.9", good_library()) == []


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    need("qemu-img", "mkfs.ext4", "debugfs")
    tmp = tmp_path_factory.mktemp("scanlib")
    yield from start_server(make_store(tmp), tmp)


def _scan(lib: Library, out: Path, *extra: str | Path) -> dict[str, object]:
    node = REPO / "tests/data/testdriver/node.xml"
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
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(out.read_text()))


def test_scan_with_a_real_library(served: Library, tmp_path: Path) -> None:
    image_id = hvguard(
        "library",
        "push",
        served.url,
        ext4_image(tmp_path, "g"),
        "--name",
        "linux/a",
        "--version",
        "1",
        *served.client("pete"),
        check=True,
    ).stdout.strip()
    hvguard("library", "approve", served.url, image_id, *served.client("anna"), check=True)
    report = _scan(served, tmp_path / "r.json", "--library", served.url, *served.client("rita"))
    by_measure = report["summary"]["by_measure"]  # type: ignore[index]
    results = report["results"]  # type: ignore[assignment]
    lib_results = {r["measure"]: r for r in results if r["subject"] == "library"}  # type: ignore[union-attr]
    assert set(lib_results) == set(MEASURES)
    for m in MEASURES:
        assert lib_results[m]["status"] == "pass", lib_results[m]
    assert by_measure["11.3.8"] == "pass"  # no longer manual
    # 11.3.9 also judges each VM's disks: the fixture's disk files are not on this host, so no evidence
    vm_results = [r for r in results if r["check"] == "library.vm-images"]  # type: ignore[index]
    assert vm_results and all(r["status"] == "manual" for r in vm_results)  # type: ignore[index]
    assert any("is not on this host" in r["message"] for r in vm_results)  # type: ignore[index]
    assert by_measure["11.3.9"] == "manual"
    assert lib_results["11.2.10"]["evidence"]["plaintext_http_answered"] is False
    assert lib_results["11.3.9"]["evidence"]["signing_algorithm"] == "ed25519"
    # without --library the image measures stay manual
    plain = _scan(served, tmp_path / "p.json")
    assert plain["summary"]["by_measure"]["11.3.9"] == "manual"  # type: ignore[index]


def test_scan_with_an_unreachable_library_is_error(served: Library, tmp_path: Path) -> None:
    report = _scan(served, tmp_path / "r.json", "--library", "https://127.0.0.1:9", *served.client("rita"))
    assert report["summary"]["by_measure"]["11.3.9"] == "error"  # type: ignore[index]


def test_library_options_need_each_other(served: Library, tmp_path: Path) -> None:
    proc = hvguard("scan", "--library", served.url, "--no-history")
    assert proc.returncode == 2 and "--cert" in proc.stderr
