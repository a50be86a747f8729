"""``hvguard serve``: the estate dashboard and its JSON API against a history store populated through the
real ``HistoryStore.save``, over real mutual TLS (trustme certificates) to a real ``hvguard serve``
process."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from dashboard_env import (
    BAD,
    DOWN,
    GOOD,
    GROUPS,
    HOSTILE_TARGET,
    HOSTILE_VM,
    REPO,
    TARGETS,
    UNICODE_VM,
    Populated,
    Server,
    make_certs,
    populate,
    serve_args,
    start,
)
from hvguard.catalog import load_catalog

PAGES = ("/", "/measures", "/expiring", "/diff", "/diff?from=1&to=2")


def q(value: str) -> str:
    """A path segment."""
    return quote(value, safe="")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Populated]:
    """A history database with two scans of the four-target estate."""
    db = tmp_path_factory.mktemp("dash") / "history.sqlite3"
    return db, populate(db)


@pytest.fixture(scope="module")
def server(stored: tuple[Path, Populated], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``hvguard serve`` over the populated store."""
    yield from start(stored[0], make_certs(tmp_path_factory.mktemp("certs")))


def test_the_estate_page_shows_each_targets_verdict_as_the_engine_decided(
    server: Server, stored: tuple[Path, Populated]
) -> None:
    page = server.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    verdicts = {t: v.verdict.value for t, v in stored[1].latest.verdicts.items()}
    api = server.get("/api/v1/estate").json()
    assert {t["target"]: t["verdict"] for t in api["targets"]} == verdicts
    assert api["counts"] == {
        v: list(verdicts.values()).count(v) for v in ("not_assessed", "not_compliant", "compliant")
    }
    words = {"compliant": "Compliant", "not_compliant": "Not compliant", "not_assessed": "Not assessed"}
    for t, v in verdicts.items():
        row = page.text.split(f'href="/targets/{q(t)}"', 1)[1].split("</tr>", 1)[0]
        assert f'<span class="verdict v-{v}">{words[v]}</span>' in row, t
    # the trend chart is inline SVG with a text alternative and its figures in a table
    assert '<svg role="img" aria-labelledby="trend-title"' in page.text
    assert "<caption>Targets per verdict per day</caption>" in page.text


def test_no_page_runs_script_and_every_response_is_locked_down(server: Server) -> None:
    for path in PAGES:
        r = server.get(path)
        assert r.status_code == 200, path
        assert "<script" not in r.text, path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, path
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"


def test_hostile_and_unicode_names_are_escaped_and_reachable(server: Server) -> None:
    pages = [server.get(p).text for p in ("/", "/measures", f"/targets/{q(HOSTILE_TARGET)}")]
    vm_page = server.get(f"/targets/{q(HOSTILE_TARGET)}/vms/{q(HOSTILE_VM)}")
    assert vm_page.status_code == 200
    for text in [*pages, vm_page.text]:
        assert "<script>" not in text and "<b>evil</b>" not in text
    assert "&lt;b&gt;evil&lt;/b&gt;" in pages[0]
    assert "<h1>VM &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in vm_page.text
    # the link the target page gives to the unicode VM works and names it
    link = f'href="/targets/{q(HOSTILE_TARGET)}/vms/{q(UNICODE_VM)}"'
    assert link in pages[2]
    page = server.get(f"/targets/{q(HOSTILE_TARGET)}/vms/{q(UNICODE_VM)}")
    assert page.status_code == 200 and f"<h1>VM {UNICODE_VM}</h1>" in page.text


def test_the_vm_drill_down_shows_evidence_and_fixes(server: Server, stored: tuple[Path, Populated]) -> None:
    failing = [
        f
        for f in stored[1].latest.findings
        if f.target == BAD and f.subject == "vm:db1" and f.status.value == "fail"
    ]
    assert failing, "db1 is oversized in the latest scan"
    page = server.get(f"/targets/{q(BAD)}/vms/db1").text
    api = server.get(f"/api/v1/targets/{q(BAD)}/vms/db1").json()
    assert api["status"] == "fail"
    shown = {(f["measure"], f["check"]): f for f in api["findings"]}
    for f in failing:
        got = shown[(f.measure, f.check)]
        assert (
            got["status"] == "fail" and got["remediation"] == f.remediation and got["evidence"] == f.evidence
        )
        assert f.remediation and _html(f.remediation) in page
        for key in f.evidence:
            assert f"&#34;{key}&#34;" in page, key


def _html(text: str) -> str:
    import html

    return html.escape(text, quote=True).replace("&quot;", "&#34;").replace("&#x27;", "&#39;")


def test_the_target_page_lists_measures_vms_and_scans(server: Server, stored: tuple[Path, Populated]) -> None:
    page = server.get(f"/targets/{q(BAD)}").text
    api = server.get(f"/api/v1/targets/{q(BAD)}").json()
    assert [m["measure"] for m in api["measures"]] == list(load_catalog().ids)
    assert {v["name"] for v in api["vms"]} == {"web2", "db1"}
    assert [s["id"] for s in api["scans"]] == [stored[1].second, stored[1].first]
    assert f'href="/targets/{q(BAD)}/vms/db1"' in page
    assert f"/diff?from={stored[1].first}&amp;to={stored[1].second}&amp;target={q(BAD)}" in page


def test_the_heat_map_is_a_table_of_words(server: Server, stored: tuple[Path, Populated]) -> None:
    page = server.get("/measures").text
    api = server.get("/api/v1/measures").json()
    ids = list(load_catalog().ids)
    assert set(api["targets"]) == set(TARGETS)
    assert api["targets"][BAD]["11.3.3"] == "fail"
    assert sum(api["totals"]["11.3.3"].values()) == len(TARGETS)
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert head.count('<th scope="col">') == len(ids) + 1
    row = page.split(f'href="/targets/{q(BAD)}"', 1)[1].split("</tr>", 1)[0]
    cells = row.split("<td>")[1:]
    assert len(cells) == len(ids)
    assert '<span class="st st-fail">FAIL</span>' in cells[ids.index("11.3.3")]


def test_the_diff_of_two_runs_is_hvguard_diffs(server: Server, stored: tuple[Path, Populated]) -> None:
    first, second = stored[1].first, stored[1].second
    api = server.get(f"/api/v1/diff?from={first}&to={second}").json()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = ["diff", str(first), str(second), "--db", str(stored[0]), "--format", "json"]
    cli = subprocess.run(
        [sys.executable, "-m", "hvguard", *args], capture_output=True, text=True, env=env, check=False
    )
    assert cli.returncode == 1, cli.stderr  # something changed
    assert api == json.loads(cli.stdout)
    moved = [t for t in api["transitions"] if t["target"] == BAD and t["subject"] == "vm:db1"]
    assert any(t["measure"] == "11.3.3" and t["new"] == "fail" for t in moved)
    page = server.get(f"/diff?from=previous&to=latest&target={q(BAD)}").text
    assert f"Scan {first} → scan {second}" in page and "vm:db1" in page


@pytest.mark.parametrize(
    "path",
    [
        "/targets/qemu%3A%2F%2Fnowhere%2Fsystem",
        f"/targets/{q(GOOD)}/vms/nosuchvm",
        f"/targets/{q(DOWN)}/vms/web1",
        "/groups/nosuchgroup",
        "/diff?from=1&to=999",
        "/diff?from=bogus&to=1",
        "/no/such/page",
    ],
)
def test_unknown_names_are_404_pages_and_404_json(server: Server, path: str) -> None:
    page = server.get(path)
    assert page.status_code == 404 and "<h1>Not found</h1>" in page.text
    api = server.get("/api/v1" + path)
    assert api.status_code == 404 and "error" in api.json()


def test_bad_query_values_are_400(server: Server) -> None:
    for path in (
        "/api/v1/scans?limit=0",
        "/api/v1/scans?limit=x",
        "/api/v1/expiring?days=-1",
        "/api/v1/diff",
    ):
        r = server.get(path)
        assert r.status_code == 400 and r.json()["error"], path
    assert server.get("/expiring?days=abc").status_code == 400


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_everything_is_read_only(server: Server, method: str) -> None:
    for path in ("/", "/api/v1/estate", "/metrics", f"/api/v1/targets/{q(GOOD)}", "/no/such/page"):
        r = requests.request(
            method,
            server.url + path,
            cert=server.certs.client,
            verify=str(server.certs.server_ca),
            timeout=30,
        )
        assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD", (method, path)
    assert server.get("/", stream=True).status_code == 200
    head = requests.head(
        server.url + "/api/v1/estate",
        cert=server.certs.client,
        verify=str(server.certs.server_ca),
        timeout=30,
    )
    assert head.status_code == 200 and not head.content


@pytest.mark.parametrize("path", ["/", "/metrics", "/api/v1/estate", "/api/v1/openapi.json"])
def test_a_client_certificate_of_the_client_ca_is_required_everywhere(server: Server, path: str) -> None:
    verify = str(server.certs.server_ca)
    # Refused in the handshake (TLS 1.3 reports it once the client reads: the connection is reset or
    # closed with an alert, which requests raises as SSLError or ConnectionError).
    with pytest.raises(requests.exceptions.ConnectionError):  # no certificate
        requests.get(server.url + path, verify=verify, timeout=30)
    with pytest.raises(requests.exceptions.ConnectionError):  # a certificate of another CA
        requests.get(server.url + path, cert=server.certs.stranger, verify=verify, timeout=30)
    assert server.get(path).status_code == 200


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_older_than_1_2_is_refused(server: Server) -> None:
    import socket

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(server.certs.server_ca))
    ctx.load_cert_chain(*server.certs.client)
    try:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(sock, server_hostname=host)


def test_the_openapi_document_lists_exactly_the_api_routes(server: Server) -> None:
    from hvguard.services.dashboard.api import Api
    from hvguard.services.dashboard.openapi import document

    doc = server.get("/api/v1/openapi.json").json()
    assert doc == document() and doc["openapi"].startswith("3.1")
    routed = {r.path for r in Api.__new__(Api).routes()}
    assert set(doc["paths"]) == routed
    assert all(set(ops) == {"get"} for ops in doc["paths"].values())


def _serve(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "hvguard", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_serve_refuses_what_it_cannot_use_in_one_line(tmp_path: Path, stored: tuple[Path, Populated]) -> None:
    certs = make_certs(tmp_path)
    cases: list[tuple[list[str], str]] = [
        (serve_args(tmp_path / "missing.sqlite3", certs), "no scans recorded"),
        ([*serve_args(stored[0], certs)[:4], "nonsense", *serve_args(stored[0], certs)[5:]], "--listen"),
        (
            [
                *serve_args(stored[0], certs)[:6],
                str(tmp_path / "nope.crt"),
                *serve_args(stored[0], certs)[7:],
            ],
            "--tls-cert",
        ),
    ]
    for args, words in cases:
        r = _serve(*args)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            args,
            r.stderr,
        )
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "missing.sqlite3").exists()  # reading never creates a database


def test_groups_roll_up_their_targets(server: Server, stored: tuple[Path, Populated]) -> None:
    verdicts = {t: v.verdict.value for t, v in stored[1].latest.verdicts.items()}
    api = server.get("/api/v1/estate").json()
    assert set(api["groups"]) == {g for gs in GROUPS.values() for g in gs}
    members = [t for t, gs in GROUPS.items() if "site-a" in gs]
    site_a = api["groups"]["site-a"]
    assert site_a["targets"] == len(members)
    assert site_a["not_compliant"] == sum(verdicts[t] == "not_compliant" for t in members)
    page = server.get("/groups/site-a").text
    assert all(f'href="/targets/{q(t)}"' in page for t in members) and q(DOWN) not in page
    assert [t["target"] for t in server.get("/api/v1/targets?group=site-a").json()["targets"]] == sorted(
        members
    )
    # a hostile group name is escaped where it is listed and reachable by its link
    estate = server.get("/").text
    assert (
        "<i>lab</i>" not in estate
        and f'href="/groups/{q("<i>lab</i>")}">&lt;i&gt;lab&lt;/i&gt;</a>' in estate
    )
    lab = server.get(f"/groups/{q('<i>lab</i>')}")
    assert lab.status_code == 200 and "<h1>Group &lt;i&gt;lab&lt;/i&gt;</h1>" in lab.text


def test_expiring_lists_what_ends_within_the_window(server: Server) -> None:
    page = server.get("/expiring").text
    assert "EX-SOON" in page and "EX-LATER" not in page
    api = server.get("/api/v1/expiring").json()
    assert [(e["id"], e["days_left"], e["kind"]) for e in api["entries"]] == [("EX-SOON", 10, "exceptions")]
    wide = server.get("/api/v1/expiring?days=100").json()
    assert [e["id"] for e in wide["entries"]] == ["EX-SOON", "EX-LATER"]


def test_the_trend_chart_starts_at_the_first_counted_day_and_scales_to_the_peak() -> None:
    from datetime import date, timedelta

    from hvguard.history.estate import TrendPoint
    from hvguard.services.dashboard.pages import trend_chart

    start = date(2026, 1, 1)
    counts = [(0, 0, 0), (0, 0, 0), (2, 1, 0), (3, 0, 1), (4, 0, 0)]
    points = [TrendPoint(start + timedelta(days=i), *c) for i, c in enumerate(counts)]
    chart = trend_chart(points)
    assert chart is not None and chart.first == "2026-01-03" and chart.last == "2026-01-05" and chart.max == 4
    lines = {s.verdict: [tuple(map(float, p.split(","))) for p in s.points.split()] for s in chart.series}
    assert all(len(line) == 3 for line in lines.values())
    assert lines["compliant"][-1] == (chart.right, chart.top)  # the peak touches the top
    assert lines["not_compliant"][-1][1] == chart.bottom  # zero sits on the axis
    assert trend_chart(points[:2]) is None  # nothing counted yet: no chart


def test_concurrent_readers_get_the_same_answer(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = ["/api/v1/estate", "/api/v1/measures", f"/api/v1/targets/{q(BAD)}"] * 6
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda p: (p, server.get(p)), paths))
    assert all(r.status_code == 200 for _, r in answers)
    for path in set(paths):
        assert len({r.text for p, r in answers if p == path}) == 1, path


def test_metrics_are_served_to_certificate_holders(server: Server, stored: tuple[Path, Populated]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    r = server.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    one_hot = [
        s
        for s in families["hvguard_measure_status"].samples
        if s.labels["target"] == BAD and s.labels["measure"] == "11.3.3"
    ]
    assert {s.labels["status"] for s in one_hot if s.value == 1} == {"fail"}
    compliant = {s.labels["target"]: s.value for s in families["hvguard_target_compliant"].samples}
    verdicts = stored[1].latest.verdicts
    assert compliant == {t: float(v.verdict.value == "compliant") for t, v in verdicts.items()}
    assert not any("vm" in s.labels for f in families.values() for s in f.samples)  # no per-VM labels


def test_an_estate_wide_comparison_lists_the_targets_that_changed(
    server: Server, stored: tuple[Path, Populated]
) -> None:
    first, second = stored[1].first, stored[1].second
    api = server.get(f"/api/v1/diff/targets?from={first}&to={second}").json()
    assert (api["from"]["id"], api["to"]["id"]) == (first, second)
    changed = {c["target"]: c for c in api["changed"]}
    assert set(changed) == {BAD} and api["unchanged"] == len(TARGETS) - 1  # only db1 grew
    assert {"measure": "11.3.3", "old": "pass", "new": "fail"} in changed[BAD]["measures"]
    full = server.get(f"/api/v1/diff?from={first}&to={second}").json()
    assert {t["target"] for t in full["transitions"]} == set(changed)  # the same targets as the full diff
    page = server.get(f"/diff?from={first}&to={second}").text
    assert f'href="/diff?from={first}&amp;to={second}&amp;target={q(BAD)}"' in page
    same = server.get(f"/api/v1/diff/targets?from={second}&to={second}").json()
    assert same["changed"] == [] and same["unchanged"] == len(TARGETS)
