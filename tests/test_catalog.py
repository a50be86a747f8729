"""The catalog data file against the standard's own text (../shared/standard)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from hvguard.catalog import load_catalog
from shared_paths import shared

ROW = re.compile(r"^(11\.\d\.\d+)\t(.*)\t([A-Z]{2}\.[A-Z]{2}-\d+(?: [A-Z]{2}\.[A-Z]{2}-\d+)*)\s*$", re.M)
APPX = re.compile(r"^([A-Z]{2}\.[A-Z]{2}-\d+)\t[^\t]+\t([\d., ]+)$", re.M)


def _standard() -> str:
    return shared("standard", "SS-009-hypervisor-security-standard.txt").read_text(encoding="utf-8")


def test_catalog_has_the_36_measures_of_the_standard_in_order() -> None:
    ids_in_text = [m.group(1) for m in ROW.finditer(_standard())]
    assert len(ids_in_text) == 36
    assert list(load_catalog().ids) == ids_in_text


def test_nist_ids_equal_section_11_and_appendix_a() -> None:
    text = _standard()
    from_rows = {m.group(1): m.group(3).split() for m in ROW.finditer(text)}
    from_appendix: dict[str, set[str]] = {}
    for nist, measures in APPX.findall(text):
        for mid in (x.strip() for x in measures.split(",")):
            if mid:
                from_appendix.setdefault(mid, set()).add(nist)
    cat = load_catalog()
    assert set(from_appendix) == set(cat.ids)
    for m in cat.measures:
        assert list(m.nist) == from_rows[m.id], m.id
        assert set(m.nist) == from_appendix[m.id], m.id


def test_measure_text_is_the_standards_wording() -> None:
    rows = {m.group(1): m.group(2) for m in ROW.finditer(_standard())}
    for m in load_catalog().measures:
        words = re.sub(r"<[^>]+>|•", " ", rows[m.id]).split()
        assert m.text.replace("- ", " ").split() == words, m.id


def test_modality_as_worded() -> None:
    cat = load_catalog()
    assert cat.measure("11.4.7").modality == "should"
    assert cat.measure("11.2.9").modality == "conditional"
    assert cat.measure("11.4.1").modality == "conditional"
    assert cat.measure("11.3.3").modality == "must"
    assert all(cat.measure(f"11.3.{i}").advisory_preamble for i in range(1, 11))
    assert not cat.measure("11.2.1").advisory_preamble
    assert "should" in cat.measure("11.2.1").notes
    assert {m.modality for m in cat.measures} == {"must", "should", "conditional"}
    assert all(m.manual_evidence and m.title for m in cat.measures)


def test_catalog_command_prints_json_list() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hvguard", "catalog", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    assert len(data) == 36
    assert {"id", "title", "modality", "nist"} <= set(data[0])
    assert data[0]["id"] == "11.1.1" and data[0]["nist"] == ["PR.DS-1", "PR.DS-5"]
