"""Offline bundles: round trip, and every kind of damaged file refused with one line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from factories import good_vm, target
from hvguard.collect.bundle import BundleError, make_bundle, read_bundle, write_bundle
from hvguard.facts import FACTS_VERSION


def test_round_trip_plain_and_gzip(tmp_path: Path) -> None:
    b = make_bundle([target([good_vm("a"), good_vm("b")])])
    for name in ("b.json", "b.json.gz"):
        write_bundle(b, tmp_path / name)
        back = read_bundle(tmp_path / name)
        assert back == b
    assert (tmp_path / "b.json.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_existing_file_is_not_overwritten_without_asking(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    out.write_text("keep me")
    with pytest.raises(BundleError, match="--force"):
        write_bundle(make_bundle([target()]), out)
    assert out.read_text() == "keep me"
    write_bundle(make_bundle([target()]), out, overwrite=True)
    assert read_bundle(out).targets[0].id == "qemu:///system"


def _bad(tmp_path: Path, data: bytes) -> str:
    f = tmp_path / "bad.json"
    f.write_bytes(data)
    with pytest.raises(BundleError) as info:
        read_bundle(f)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_damaged_bundles(tmp_path: Path) -> None:
    good = tmp_path / "g.json"
    write_bundle(make_bundle([target()]), good)
    data = good.read_bytes()
    assert "truncated or corrupt" in _bad(tmp_path, data[: len(data) // 2])
    assert "truncated or corrupt" in _bad(tmp_path, b"\x00\xff garbage")
    assert "corrupt gzip" in _bad(tmp_path, gzip.compress(data)[:40])
    raw = json.loads(data)
    raw["facts_version"] = 999
    assert "version 999 is not supported" in _bad(tmp_path, json.dumps(raw).encode())
    raw["facts_version"] = FACTS_VERSION
    raw["schema"] = "something/else"
    assert "not an hvguard bundle" in _bad(tmp_path, json.dumps(raw).encode())
    raw["schema"] = "hvguard.bundle/1"
    raw["targets"][0]["hypervisor"]["vms"][0]["vcpu"]["maximum"] = "many"
    assert "invalid bundle content" in _bad(tmp_path, json.dumps(raw).encode())
    raw["targets"][0]["hypervisor"]["vms"][0]["vcpu"] = {"maximum": 2, "surprise": 1}
    assert "invalid bundle content" in _bad(tmp_path, json.dumps(raw).encode())
    assert "not an hvguard bundle" in _bad(tmp_path, b"[1, 2]")
    with pytest.raises(BundleError, match="cannot read bundle"):
        read_bundle(tmp_path / "missing.json")
