"""Facts model 2 → 3: older bundles and stored scans are migrated on read; other versions are refused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hvguard.collect.bundle import BundleError, make_bundle, read_bundle, write_bundle
from hvguard.collect.libvirt.resources import resources_from_libvirt
from hvguard.collect.migrate import can_migrate, migrate_target
from hvguard.collect.targets import collect_target
from hvguard.engine import evaluate
from hvguard.facts import FACTS_VERSION, ControlsOffered, TargetFacts, VmResources
from hvguard.history.compare import diff_scans
from hvguard.history.store import HistoryStore
from hvguard.profile import default_profile

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
GENERATED = re.compile(r'"generated_at": *"[^"]*"')


def estate() -> TargetFacts:
    """The test-driver node paired with an offline root: VMs and host facts both."""
    return collect_target(f"test://{NODE.resolve()}", root=DATA / "roots" / "kvm-good")


def as_version_2(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-3 target document as hvguard 2 wrote it: without the neutral facts."""
    hv = doc.get("hypervisor")
    if isinstance(hv, dict):
        hv.pop("controls_offered", None)
        for vm in hv.get("vms", []):
            vm.pop("resources", None)
    return doc


def hvguard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )


def test_version_2_bundle_evaluates_to_the_same_report(tmp_path: Path) -> None:
    v3 = tmp_path / "v3.json"
    write_bundle(make_bundle([estate()]), v3)
    raw = json.loads(v3.read_bytes())
    assert raw["facts_version"] == FACTS_VERSION == 5
    raw["facts_version"] = 2
    raw["targets"] = [as_version_2(t) for t in raw["targets"]]
    v2 = tmp_path / "v2.json"
    v2.write_text(json.dumps(raw), encoding="utf-8")
    assert "resources" not in v2.read_text(encoding="utf-8")

    # Read back, the version-2 bundle holds exactly the facts the version-3 one does, plus one problem
    # per target naming what a model-2 bundle does not record.
    old, new = read_bundle(v2), read_bundle(v3)
    (old_target,) = old.targets
    note = old_target.problems[-1]
    assert note.area == "bundle" and note.source == "facts model 2" and "11.4.10" in note.message
    assert (
        msgspec.structs.replace(
            old, targets=[msgspec.structs.replace(old_target, problems=old_target.problems[:-1])]
        )
        == new
    )

    reports = []
    for bundle in (v3, v2):
        r = hvguard("evaluate", str(bundle), "--format", "json", "--no-history")
        assert r.returncode in (0, 1) and not r.stderr, r.stderr
        report = json.loads(r.stdout)
        report.pop("generated_at")
        # The provenance names each file; the rest of the report is the same.
        assert report.pop("source")["bundle"]["path"] == str(bundle)
        reports.append((r.returncode, report))
    # The same verdicts; the model-2 bundle's target names what it does not record.
    (note,) = [p for p in reports[1][1]["targets"][0]["problems"] if p["area"] == "bundle"]
    assert note["source"] == "facts model 2"
    reports[1][1]["targets"][0]["problems"].remove(note)
    assert reports[0] == reports[1]


def test_a_bundle_written_by_hvguard_2_is_migrated() -> None:
    """``v2-testdriver-kvm-good.json.gz`` was written by ``hvguard collect`` at the commit before model 3
    (the test-driver node with the kvm-good root); its paths are that checkout's, which reading ignores."""
    bundle = read_bundle(DATA / "bundles" / "v2-testdriver-kvm-good.json.gz")
    assert bundle.facts_version == FACTS_VERSION
    (t,) = bundle.targets
    assert t.hypervisor is not None and len(t.hypervisor.vms) == 4
    assert t.hypervisor.controls_offered == ControlsOffered()  # the test driver: not assessed
    for vm in t.hypervisor.vms:
        assert vm.resources == resources_from_libvirt(vm) != VmResources()
    # The same estate collected now carries the same facts, collection metadata and paths aside.
    fresh = estate()
    assert fresh.hypervisor is not None
    assert [vm.resources for vm in t.hypervisor.vms] == [vm.resources for vm in fresh.hypervisor.vms]


@pytest.mark.parametrize("version", [1, 99])
def test_other_versions_are_refused_with_one_line(tmp_path: Path, version: int) -> None:
    good = tmp_path / "g.json"
    write_bundle(make_bundle([estate()]), good)
    raw = json.loads(good.read_bytes())
    raw["facts_version"] = version
    bad = tmp_path / f"v{version}.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BundleError) as info:
        read_bundle(bad)
    assert str(info.value) == (
        f"{bad}: facts model version {version} is not supported "
        "(this hvguard reads versions 2, 3, 4 and 5; re-collect with this version)"
    )
    r = hvguard("evaluate", str(bad), "--no-history")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"facts model version {version} is not supported" in lines[0], r.stderr


def test_migrate_target_refuses_what_it_cannot_migrate() -> None:
    assert [v for v in range(0, 7) if can_migrate(v)] == [2, 3, 4, 5] and not can_migrate(None)
    with pytest.raises(ValueError, match="version 1"):
        migrate_target(estate(), 1)


def _rewrite_stored_facts(db: Path, scan_id: int, version: int, edit: Any) -> None:
    """Turn one stored scan's facts into what an older hvguard stored (checksum included)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT target, facts, facts_encoding FROM hvguard_scan_targets WHERE scan_id = ?", (scan_id,)
        ).fetchall()
        for target, facts, encoding in rows:
            data = zlib.decompress(facts) if encoding == "json+zlib" else bytes(facts)
            old = json.dumps(edit(json.loads(data)), separators=(",", ":")).encode()
            conn.execute(
                "UPDATE hvguard_scan_targets SET facts = ?, facts_encoding = 'json', facts_sha256 = ?, "
                "facts_version = ? WHERE scan_id = ? AND target = ?",
                (old, hashlib.sha256(old).hexdigest(), version, scan_id, target),
            )


def test_history_migrates_version_2_facts_so_diff_shows_no_change(tmp_path: Path) -> None:
    ev = evaluate([estate()], default_profile())
    db = tmp_path / "h.sqlite3"
    with HistoryStore.open(str(db), create=True) as store:
        before = store.save(ev, command="scan", inputs=["x"])
        after = store.save(ev, command="scan", inputs=["x"])
    fresh_facts = None
    with HistoryStore.open(str(db), create=False) as store:
        fresh_facts = {t: s.facts for t, s in store.load(before).targets.items()}
    _rewrite_stored_facts(db, before, 2, as_version_2)

    with HistoryStore.open(str(db), create=False) as store:
        old, new = store.load(before), store.load(after)
    (target,) = old.targets
    assert old.targets[target].facts_version == FACTS_VERSION
    assert old.targets[target].facts == fresh_facts[target]  # the derived facts are back, identical
    d = diff_scans(old, new, [target])
    assert not d.changed and d.fact_changes == () and d.notes == ()


def test_history_keeps_version_1_facts_as_stored_and_notes_the_version(tmp_path: Path) -> None:
    ev = evaluate([estate()], default_profile())
    db = tmp_path / "h.sqlite3"
    with HistoryStore.open(str(db), create=True) as store:
        before = store.save(ev, command="scan", inputs=["x"])
        after = store.save(ev, command="scan", inputs=["x"])
    _rewrite_stored_facts(db, before, 1, as_version_2)
    with HistoryStore.open(str(db), create=False) as store:
        old, new = store.load(before), store.load(after)
    (target,) = old.targets
    assert old.targets[target].facts_version == 1
    d = diff_scans(old, new, [target])
    assert d.notes and "facts model version 1 → 5" in d.notes[0]
    # The derived facts of a libvirt target are never compared, so even unmigrated they add nothing.
    assert d.fact_changes == ()
