"""The JUnit XML report (``--format junit``): SS-009 as test results for CI dashboards.

One ``<testsuite>`` per SS-009 section; one ``<testcase>`` per measure × subject × target, named
``classname="SS009.s11_3"`` and ``name="11.3.3 vm:db1"``. Jenkins (and most JUnit readers) split the
classname at its last dot into package and class, so the classname holds exactly one dot — the standard,
then the section — and the dotted measure id goes in the name. With several targets in one report the
name also carries the target (``11.3.3 vm:db1 [qemu+ssh://hv1/system]``) so test cases stay unique; a
one-target report keeps the short names, which stay the same from run to run. Several findings of one
measure on one subject fold into one test case with the worst status:

- ``fail`` → ``<failure type="fail">``; ``error`` (could not evaluate) → ``<error type="error">``;
- ``manual``, ``not_applicable`` and ``waived`` → ``<skipped>`` with the reason (the evidence still
  needed, why it does not apply, or the exception id, approver and expiry);
- ``warn`` (an advisory measure not met) and ``pass`` pass: ``warn`` does not fail hvguard's default
  ``--fail-on fail`` either, and its message is kept in ``<system-out>``.

Every case's findings — message, evidence as JSON, remediation, waiver, attestation — are in the text
of its ``<failure>``/``<error>`` or else in its ``<system-out>``, so nothing the HTML report shows is
lost. The counts on each ``<testsuite>`` and on ``<testsuites>`` are the counts of the elements inside.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # building XML only; parsing untrusted XML uses defusedxml

from hvguard.engine import Evaluation
from hvguard.report.build import ReportView, report_view
from hvguard.report.common import (
    LABEL,
    Case,
    attestation_text,
    cases,
    compact_json,
    rank,
    waiver_text,
    xml_safe,
)
from hvguard.report.model import Report, Result

SKIPPED = frozenset({"manual", "not_applicable", "waived"})


def _finding_text(r: Result) -> str:
    lines = [f"[{LABEL[r.status]}] {r.message}"]
    if r.original_status:
        lines.append(f"  original status: {r.original_status.value}")
    if r.waiver:
        lines.append(f"  waived: {waiver_text(r.waiver)}")
        if r.waiver.get("justification"):
            lines.append(f"  justification: {r.waiver['justification']}")
    if r.attestation:
        lines.append(f"  attested: {attestation_text(r.attestation)}")
    for note in r.notes:
        lines.append(f"  note: {note}")
    lines.append(f"  evidence: {compact_json(r.evidence)}")
    if r.remediation:
        fix = r.remediation.strip().replace("\n", "\n    ")
        lines.append(f"  remediation:\n    {fix}")
    return "\n".join(lines)


def _reason(case: Case[Result]) -> str:
    """The one-line reason a case was skipped or failed (its worst finding's message)."""
    top = max(case.results, key=lambda r: rank(r.status))
    text = top.message
    if top.status == "waived" and top.waiver:
        text = f"waived by {waiver_text(top.waiver)}: {text}"
    return f"{top.status.value}: {text}"


def classname(catalog_id: str, section: str) -> str:
    """``SS009.s11_3``: one dot only, between the standard (package) and the section (class)."""
    package = re.sub(r"[^A-Za-z0-9_]", "", catalog_id) or "catalog"
    return f"{package}.s{re.sub(r'[^A-Za-z0-9_]', '_', section)}"


def case_name(case: Case[Result], several_targets: bool) -> str:
    """``11.3.10 vm:web1``, with `` [target]`` appended when the report has several targets."""
    name = f"{case.measure} {case.subject}"
    return xml_safe(f"{name} [{case.target}]" if several_targets else name)


def testcase(case: Case[Result], cls: str, *, several_targets: bool = False) -> ET.Element:
    """The ``<testcase>`` of one measure × subject × target, in class ``cls``."""
    tc = ET.Element(
        "testcase",
        {"classname": cls, "name": case_name(case, several_targets), "time": "0"},
    )
    status = case.status
    detail = xml_safe("\n\n".join(_finding_text(r) for r in case.results))
    reason = xml_safe(_reason(case))
    if status == "fail":
        ET.SubElement(tc, "failure", {"type": "fail", "message": reason}).text = detail
    elif status == "error":
        ET.SubElement(tc, "error", {"type": "error", "message": reason}).text = detail
    else:
        if status in SKIPPED:
            ET.SubElement(tc, "skipped", {"message": reason})
        # a failure or error already carries the details; everything else keeps them here
        ET.SubElement(tc, "system-out").text = detail
    return tc


def _register_props(rep: Report) -> list[tuple[str, str]]:
    props = [("as_of", rep.as_of.isoformat())] if rep.as_of else []
    for kind, use in (("exceptions", rep.exceptions), ("attestations", rep.attestations)):
        if use:
            props += [(f"{kind}.path", use.path), (f"{kind}.sha256", use.sha256)]
    return props


def _count(suite: ET.Element) -> dict[str, int]:
    cases_ = suite.findall("testcase")
    return {
        "tests": len(cases_),
        "failures": sum(1 for c in cases_ if c.find("failure") is not None),
        "errors": sum(1 for c in cases_ if c.find("error") is not None),
        "skipped": sum(1 for c in cases_ if c.find("skipped") is not None),
    }


def junit_tree(view: ReportView) -> ET.Element:
    """The report as an ElementTree ``<testsuites>`` element."""
    rep, catalog = view.report, view.catalog
    section_of = {m.id: m.section for m in catalog.measures}
    order = {m.id: i for i, m in enumerate(catalog.measures)}
    all_cases = sorted(cases(rep.results), key=lambda c: order[c.measure])
    root = ET.Element("testsuites", {"name": f"hvguard {catalog.id} v{catalog.version}"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    stamp = rep.generated_at.removesuffix("Z")
    hostnames = ",".join(str(t.hostname or t.id) for t in rep.targets)
    p = rep.profile
    several = len({t.id for t in rep.targets} | {c.target for c in all_cases}) > 1
    for sec, title in catalog.sections.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": f"{catalog.id} {sec} {title}",
                "timestamp": stamp,
                "hostname": xml_safe(hostnames or "none"),
                "time": "0",
            },
        )
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("tool", f"{rep.tool.name} {rep.tool.version}"),
            ("catalog", f"{catalog.id} v{catalog.version}"),
            ("profile", f"{p.name} ({p.source})"),
            ("profile.tailored", str(p.tailored).lower()),
            *((f"profile.deviation.{i}", d) for i, d in enumerate(p.deviations, 1)),
            *((f"target.{i}", t.id) for i, t in enumerate(rep.targets, 1)),
            *_register_props(rep),
        ):
            ET.SubElement(props, "property", {"name": name, "value": xml_safe(value)})
        for case in all_cases:
            if section_of[case.measure] == sec:
                suite.append(testcase(case, classname(catalog.id, sec), several_targets=several))
        counts = _count(suite)
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", "0")
    return root


def render(ev: Evaluation) -> str:
    """Render the JUnit XML report (UTF-8, with an XML declaration)."""
    root = junit_tree(report_view(ev))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
