"""The published JSON Schemas: shipped files equal to what the generator gives from the models now,
``hvguard schema``, and every JSON document hvguard writes (reports of each test estate, bundles)
valid against them."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from hvguard.report import model
from hvguard.schemas import BASE_URL, SCHEMAS, file_name, schema_id, shipped_text
from hvguard.schemas.generate import GENERATORS, main, package_dir, render, report_schema, stale
from libvirt_env import requires_libvirtd

DATA = Path(__file__).parent / "data"
NODE = DATA / "testdriver" / "node.xml"
ROOTS = sorted(p for p in (DATA / "roots").iterdir() if p.is_dir())
WORKFLOW = DATA / "workflow"
#: A libvirt URI whose socket does not exist: the hypervisor is unreachable, the host files are read.
DEAD_SOCKET_URI = "qemu:///system?socket=/nonexistent/hvguard-test.sock"


def hv(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the hvguard CLI with no stdin."""
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def validator(name: str) -> Draft202012Validator:
    """A validator of the shipped schema ``name`` that also checks formats (dates, date-times)."""
    return Draft202012Validator(
        json.loads(shipped_text(name)), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid(name: str, doc: Any) -> None:
    """``doc`` is valid against schema ``name`` (every error listed when not)."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]
    assert errors == [], errors[:10]


# ---------------------------------------------------------------------------------------------------
# The shipped files and the generator
# ---------------------------------------------------------------------------------------------------
def test_shipped_schemas_are_what_the_generator_gives_from_the_models_now() -> None:
    # Fails after a model or validator-table change until `python -m hvguard.schemas` is run.
    assert list(GENERATORS) == list(SCHEMAS)
    assert stale(package_dir()) == []


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_each_schema_is_a_valid_draft_2020_12_schema_with_its_id(name: str) -> None:
    doc = json.loads(shipped_text(name))
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schema_id(name) == f"{BASE_URL}{name}-1.json"
    assert doc["title"].startswith("hvguard ") and len(doc["description"]) > 40


def test_a_field_added_to_the_report_model_appears_in_the_generated_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fields other work adds to the model (targets[].verdict, summary.by_target, selection …) need no
    # schema edit: the generator reads the model.
    class WithSelection(model.Report, frozen=True, kw_only=True):
        """The report with one more block."""

        added_block: dict[str, Any] | None = None

    before = report_schema()
    monkeypatch.setattr(model, "Report", WithSelection)
    after = report_schema()
    top = after["$defs"][after["$ref"].rsplit("/", 1)[-1]]
    assert "added_block" in top["properties"]
    assert "added_block" not in before["$defs"]["Report"]["properties"]
    assert top["properties"]["schema"]["const"] == "hvguard.report/1"


def test_check_mode_names_a_stale_file_and_regeneration_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_name(n) for n in SCHEMAS)
    assert main(["--check", "--out", str(tmp_path)]) == 0
    edited = tmp_path / file_name("exceptions")
    edited.write_text(edited.read_text().replace('"risk_owner"', '"owner"'))
    (tmp_path / file_name("bundle")).unlink()
    capsys.readouterr()
    assert main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "exceptions-1.json is out of date" in err and "bundle-1.json is out of date" in err
    assert "report-1.json" not in err
    assert main(["--out", str(tmp_path)]) == 0 and stale(tmp_path) == []


def test_the_script_and_the_module_write_the_same_files(tmp_path: Path) -> None:
    script = Path(__file__).parent.parent / "scripts" / "gen_schemas.py"
    r = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    for name in SCHEMAS:
        assert (tmp_path / "a" / file_name(name)).read_text(encoding="utf-8") == render(name)


def test_the_schemas_ship_in_the_package_data() -> None:
    # importlib.resources reads them from the installed package (the wheel includes src/hvguard/**).
    for name in SCHEMAS:
        assert (package_dir() / file_name(name)).is_file()
        assert json.loads(shipped_text(name))["$id"].endswith(file_name(name))


# ---------------------------------------------------------------------------------------------------
# hvguard schema
# ---------------------------------------------------------------------------------------------------
def test_schema_list_names_every_schema_with_a_one_line_description() -> None:
    r = hv("schema", "--list")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(SCHEMAS)
    for line, what in zip(lines, SCHEMAS.values(), strict=True):
        assert line.endswith(what)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schema_name_prints_the_shipped_schema(name: str) -> None:
    r = hv("schema", name)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == shipped_text(name)
    assert json.loads(r.stdout)["$id"] == schema_id(name)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schema", "reports"], "unknown schema 'reports'"),
        (["schema", "../report"], "unknown schema '../report'"),
        (["schema"], "give a schema NAME"),
        (["schema", "report", "--list"], "either --list or a schema NAME"),
    ],
)
def test_schema_usage_errors_are_one_line_exit_2(args: list[str], needle: str) -> None:
    r = hv(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and needle in r.stderr


# ---------------------------------------------------------------------------------------------------
# Reports and bundles hvguard writes validate
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("root", ROOTS, ids=[p.name for p in ROOTS])
def test_the_json_report_of_every_test_estate_validates(root: Path) -> None:
    r = hv("scan", f"test://{NODE}", "--root", str(root), "--format", "json", "--no-history")
    assert r.returncode in (0, 1), r.stderr
    assert_valid("report", json.loads(r.stdout))


def test_a_multi_target_report_with_an_unreachable_hypervisor_validates() -> None:
    good = DATA / "roots" / "kvm-good"
    r = hv(
        "scan", f"test://{NODE}", DEAD_SOCKET_URI, "local", "--root", str(good),
        "--format", "json", "--no-history",
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    assert len(rep["targets"]) == 3
    assert_valid("report", rep)


def test_a_bundle_its_evaluation_with_registers_and_an_old_bundle_validate(tmp_path: Path) -> None:
    good = DATA / "roots" / "kvm-good"
    plain, packed = tmp_path / "estate.json", tmp_path / "estate.json.gz"
    for out in (plain, packed):
        r = hv("collect", f"test://{NODE}", "--root", str(good), "--output", str(out))
        assert r.returncode == 0, r.stderr
    assert_valid("bundle", json.loads(plain.read_text(encoding="utf-8")))
    assert_valid("bundle", json.loads(gzip.decompress(packed.read_bytes())))
    r = hv(
        "evaluate", str(packed), "--exceptions", str(WORKFLOW / "exceptions.yaml"),
        "--attestations", str(WORKFLOW / "attestations.yaml"), "--as-of", "2026-06-01",
        "--no-history", "--format", "json",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["exceptions"] and rep["attestations"] and rep["source"]["bundle"]
    assert any(x["waiver"] for x in rep["results"]) and any(x["attestation"] for x in rep["results"])
    assert_valid("report", rep)
    # a bundle of an older facts model (migrated on read) still gives a valid report
    old = DATA / "bundles" / "v2-testdriver-kvm-good.json.gz"
    r = hv("evaluate", str(old), "--no-history", "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert_valid("report", json.loads(r.stdout))


@requires_libvirtd
@pytest.mark.libvirtd
def test_the_report_and_bundle_of_the_real_libvirtd_validate(tmp_path: Path) -> None:
    bundle = tmp_path / "real.json"
    r = hv("collect", "qemu:///system", "--output", str(bundle))
    assert r.returncode in (0, 1), r.stderr
    assert_valid("bundle", json.loads(bundle.read_text(encoding="utf-8")))
    r = hv("evaluate", str(bundle), "--no-history", "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert_valid("report", json.loads(r.stdout))


@pytest.fixture(scope="module")
def good_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A report and a bundle of the good test estate, as JSON text."""
    good = DATA / "roots" / "kvm-good"
    out = tmp_path_factory.mktemp("docs") / "b.json"
    assert hv("collect", f"test://{NODE}", "--root", str(good), "--output", str(out)).returncode == 0
    r = hv("scan", f"test://{NODE}", "--root", str(good), "--format", "json", "--no-history")
    return {"report": r.stdout, "bundle": out.read_text(encoding="utf-8")}


@pytest.mark.parametrize(
    ("name", "path", "bad"),
    [
        ("report", ["results", 0, "status"], "passed"),
        ("report", ["schema"], "hvguard.report/2"),
        ("report", ["as_of"], "2026-02-30"),
        ("report", ["summary", "by_status"], {"great": 1}),
        ("bundle", ["facts_version"], 99),
        ("bundle", ["targets", 0, "surprise"], True),
        ("bundle", ["targets", 0, "collection", "privileged"], "yes"),
    ],
)
def test_a_broken_document_is_refused(
    name: str, path: list[Any], bad: Any, good_documents: dict[str, str]
) -> None:
    # The schemas are not vacuous: one wrong value in a real document is an error.
    doc = json.loads(good_documents[name])
    assert_valid(name, doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = bad
    errors = list(validator(name).iter_errors(doc))
    assert errors, f"{name} accepted {path}={bad!r}"


def test_report_json_key_order_matches_the_schema_property_order() -> None:
    # The schema lists the report's keys in the order --format json writes them.
    doc = json.loads(shipped_text("report"))
    assert list(doc["$defs"]["Report"]["properties"]) == list(model.Report.__struct_fields__)
    assert list(doc["$defs"]["Result"]["properties"]) == list(model.Result.__struct_fields__)
    assert msgspec.json.schema(model.Report)["$defs"]["Report"]["required"] == list(
        model.Report.__struct_fields__
    )
