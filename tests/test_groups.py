"""Inventory groups on targets: the report's ``targets[].groups`` and ``summary.by_group`` roll-ups, and
``scope.groups`` in exceptions and attestations (matching any group of the finding's target)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import yaml

from factories import target
from hvguard.checks.base import HOST, Check, CheckContext
from hvguard.engine import evaluate
from hvguard.facts import TargetFacts
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile
from hvguard.report.build import report_dict
from hvguard.workflow.attestations import check_attestations, load_attestations
from hvguard.workflow.exceptions import check_exceptions, load_exceptions

TODAY = date(2026, 6, 1)
MUST = "11.3.3"
MANUAL = "11.4.9"


def fails_on(*tids: str) -> Check:
    """11.3.3: fail on the targets ``tids``, pass elsewhere."""

    def fn(ctx: CheckContext) -> Iterable[Finding]:
        if ctx.target.id in tids:
            yield ctx.failed(HOST, "bad", {"fact": 1}, "fix it")
        else:
            yield ctx.passed(HOST, "good")

    return Check(id="t.must", measure=MUST, reads=(), fn=fn, doc="")


def manual() -> Check:
    def fn(ctx: CheckContext) -> Iterable[Finding]:
        yield ctx.manual(HOST, "Evidence needed: the ruleset.")

    return Check(id="t.fw", measure=MANUAL, reads=(), fn=fn, doc="")


def grouped(tid: str, *groups: str) -> TargetFacts:
    return msgspec.structs.replace(target(tid=tid), groups=tuple(groups))


def unreachable(tid: str, *groups: str) -> TargetFacts:
    return msgspec.structs.replace(
        grouped(tid, *groups), host=None, hypervisor=None, unreachable="connection refused"
    )


ESTATE = [
    grouped("ssh://hv1", "site_a", "rack1"),
    grouped("ssh://hv2", "site_a"),
    grouped("ssh://hv3", "site_b"),
    unreachable("ssh://hv4", "site_b"),
    target(tid="ssh://loner"),
]


def test_targets_carry_their_groups_and_each_group_rolls_up_its_targets() -> None:
    ev = evaluate(ESTATE, default_profile(), checks=[fails_on("ssh://hv2")], as_of=TODAY)
    rep = report_dict(ev)
    assert [t["groups"] for t in rep["targets"]] == [
        ["rack1", "site_a"],
        ["site_a"],
        ["site_b"],
        ["site_b"],
        [],
    ]
    by_group = rep["summary"]["by_group"]
    assert list(by_group) == ["rack1", "site_a", "site_b"]
    site_a = by_group["site_a"]
    assert {k: site_a[k] for k in ("targets", "compliant", "not_compliant", "not_assessed")} == {
        "targets": 2,
        "compliant": 1,
        "not_compliant": 1,
        "not_assessed": 0,
    }
    assert site_a["by_measure"][MUST] == "fail"
    assert by_group["rack1"]["by_measure"][MUST] == "pass"
    # site_b: hv4 could not be assessed; its measures roll up the assessed hv3 only (the estate rule).
    site_b = by_group["site_b"]
    assert (site_b["compliant"], site_b["not_assessed"]) == (1, 1)
    assert site_b["by_measure"][MUST] == "pass"
    assert set(site_a["by_measure"]) == set(rep["summary"]["by_measure"])  # every catalog measure


def test_no_groups_no_roll_up() -> None:
    ev = evaluate([target()], default_profile(), checks=[fails_on()], as_of=TODAY)
    rep = report_dict(ev)
    assert rep["summary"]["by_group"] == {} and rep["targets"][0]["groups"] == []


def _exception(scope: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "EX-1",
        "measure": MUST,
        "scope": scope,
        "justification": "Site A keeps the old CPU pinning until the hardware refresh.",
        "risk_owner": "Head of Platform",
        "approved_by": "CISO",
        "approved_on": date(2026, 1, 10),
        "expires_on": date(2027, 1, 10),
        "risk_rating": "medium",
    }


def _register(tmp_path: Path, key: str, *entries: dict[str, Any]) -> Path:
    path = tmp_path / f"{key}.yaml"
    path.write_text(yaml.safe_dump({key: list(entries)}, sort_keys=False))
    return path


def test_exception_scoped_by_groups_waives_only_that_groups_targets(tmp_path: Path) -> None:
    path = _register(tmp_path, "exceptions", _exception({"groups": ["site_?", "nomatch"], "subject": "host"}))
    register = load_exceptions(path, today=TODAY)
    estate = [grouped("ssh://a", "site_a"), grouped("ssh://b", "other"), target(tid="ssh://c")]
    checks = [fails_on("ssh://a", "ssh://b", "ssh://c")]
    ev = evaluate(estate, default_profile(), checks=checks, exceptions=register, as_of=TODAY)
    statuses = {f.target: f.status for f in ev.findings if f.measure == MUST}
    assert statuses == {"ssh://a": Status.WAIVED, "ssh://b": Status.FAIL, "ssh://c": Status.FAIL}
    waived = next(f for f in ev.findings if f.target == "ssh://a" and f.measure == MUST)
    assert waived.waiver is not None and waived.waiver["scope"]["groups"] == ["site_?", "nomatch"]


def test_attestation_scoped_by_groups_covers_only_that_groups_targets(tmp_path: Path) -> None:
    entry = {
        "id": "AT-1",
        "measure": MANUAL,
        "scope": {"subject": "host", "groups": ["site_b"]},
        "statement": "The firewall admits only SSH and libvirt TLS from the management network.",
        "attested_by": "R. Patel",
        "attested_on": date(2026, 5, 1),
        "valid_until": date(2026, 11, 1),
    }
    found = load_attestations(_register(tmp_path, "attestations", entry), today=TODAY)
    estate = [grouped("ssh://a", "site_a"), grouped("ssh://b", "site_b", "x")]
    ev = evaluate(estate, default_profile(), checks=[manual()], attestations=found, as_of=TODAY)
    statuses = {f.target: f.status for f in ev.findings if f.measure == MANUAL}
    assert statuses == {"ssh://a": Status.MANUAL, "ssh://b": Status.PASS}


def test_scope_groups_must_be_a_non_empty_list_of_texts(tmp_path: Path) -> None:
    for bad in ("site_a", [], [""], [1]):
        path = _register(tmp_path, "exceptions", _exception({"groups": bad}))
        _, problems = check_exceptions(path, today=TODAY)
        assert any("scope.groups must be a non-empty list" in str(p) for p in problems), bad
    att = {
        "id": "AT-1",
        "measure": MANUAL,
        "scope": {"groups": "site_a"},
        "statement": "x",
        "attested_by": "R. Patel",
        "attested_on": date(2026, 5, 1),
        "valid_until": date(2026, 11, 1),
    }
    _, problems = check_attestations(_register(tmp_path, "attestations", att), today=TODAY)
    assert any("scope.groups" in str(p) for p in problems)


def test_terminal_markdown_and_html_show_groups_with_their_targets() -> None:
    from hvguard.report import renderer

    ev = evaluate(ESTATE, default_profile(), checks=[fails_on("ssh://hv2")], as_of=TODAY)
    table = renderer("table")(ev)
    assert "ssh://hv1 [rack1, site_a]:" in table
    assert "site_a: 2 target(s): 1 not compliant, 1 compliant" in table
    assert "ssh://loner:" in table  # a target in no group: no brackets
    md = renderer("markdown")(ev)
    assert "groups rack1, site\\_a" in md or "groups rack1, site_a" in md
    assert "- **Groups** (3):" in md
    html = renderer("html")(ev)
    assert '<th scope="col">Groups</th>' in html and "<td>rack1, site_a</td>" in html
    assert '<h3 id="h-groups">Groups</h3>' in html
    plain = renderer("html")(evaluate([target()], default_profile(), checks=[fails_on()], as_of=TODAY))
    assert '<th scope="col">Groups</th>' not in plain and "h-groups" not in plain


def test_register_list_and_export_show_an_entrys_groups(tmp_path: Path) -> None:
    import csv
    import io
    import os
    import subprocess
    import sys

    path = _register(tmp_path, "exceptions", _exception({"groups": ["site_a", "lab-*"], "subject": "host"}))

    def hvguard(*args: str) -> str:
        env = {**os.environ, "COLUMNS": "200"}
        argv = [sys.executable, "-m", "hvguard", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = hvguard("exceptions", "list", str(path), "--as-of", "2026-06-01")
    assert "(groups" in shown and "site_a," in shown and "lab-*)" in shown  # the table may wrap the cell
    (row,) = csv.DictReader(io.StringIO(hvguard("exceptions", "export", str(path), "--format", "csv")))
    assert row["groups"] == "site_a, lab-*"
