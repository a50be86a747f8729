"""The dashboard's JSON API against its own OpenAPI document, by schemathesis: generated requests to
every operation of a real ``hvguard serve`` over mutual TLS, against a populated history store; every
response must be documented (status, content type, body schema) and none may be a server error.

The example count is bounded (``MAX_EXAMPLES`` per operation) so this fits in CI; raise it with
``HVGUARD_SCHEMATHESIS_EXAMPLES`` for a longer local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from dashboard_env import Server, make_certs, populate, start
from hvguard.services.dashboard.openapi import document

MAX_EXAMPLES = int(os.environ.get("HVGUARD_SCHEMATHESIS_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``hvguard serve`` over a store with two scans of the test estate."""
    tmp = tmp_path_factory.mktemp("dash-api")
    db = tmp / "history.sqlite3"
    populate(db)
    yield from start(db, make_certs(tmp))


@pytest.fixture(scope="module")
def session(server: Server) -> Iterator[requests.Session]:
    """A requests session that presents the client certificate and trusts the server's CA."""
    with requests.Session() as s:
        s.cert = server.certs.client
        s.verify = str(server.certs.server_ca)
        yield s


def tls(server: Server) -> dict[str, Any]:
    """Per-request TLS settings: schemathesis passes ``verify`` itself, which would override a session's."""
    return {"cert": server.certs.client, "verify": str(server.certs.server_ca)}


# The document itself, loaded when the module is collected (the server serves exactly this document:
# tests/test_dashboard.py checks it); requests go to the running server's URL.
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_answers_as_documented(case: Any, server: Server, session: requests.Session) -> None:
    case.call_and_validate(base_url=server.url, session=session, timeout=60, **tls(server))


def test_populated_answers_match_the_document(server: Server, session: requests.Session) -> None:
    """Generated names mostly meet 404s; the stored targets, VMs (hostile and unicode names, whose
    ``/`` must be percent-encoded, which the generated requests do not do), groups, scans and register
    entries must validate against the document too."""
    from urllib.parse import quote

    from dashboard_env import BAD, HOSTILE_TARGET, HOSTILE_VM, UNICODE_VM

    ops = {op.path: op for op in (r.ok() for r in schema.get_all_operations())}
    names = {"target": "x", "vm": "x", "group": "x"}  # the case's own request is not sent
    cases = [
        ("/api/v1/estate", "/api/v1/estate"),
        ("/api/v1/targets", "/api/v1/targets?group=site-a"),
        ("/api/v1/targets/{target}", f"/api/v1/targets/{quote(BAD, safe='')}"),
        ("/api/v1/targets/{target}/vms/{vm}", f"/api/v1/targets/{quote(BAD, safe='')}/vms/db1"),
        (
            "/api/v1/targets/{target}/vms/{vm}",
            f"/api/v1/targets/{quote(HOSTILE_TARGET, safe='')}/vms/{quote(UNICODE_VM, safe='')}",
        ),
        (
            "/api/v1/targets/{target}/vms/{vm}",
            f"/api/v1/targets/{quote(HOSTILE_TARGET, safe='')}/vms/{quote(HOSTILE_VM, safe='')}",
        ),
        ("/api/v1/groups/{group}", "/api/v1/groups/site-a"),
        ("/api/v1/measures", "/api/v1/measures"),
        ("/api/v1/expiring", "/api/v1/expiring?days=100"),
        ("/api/v1/scans", "/api/v1/scans?limit=5"),
        ("/api/v1/diff", "/api/v1/diff?from=1&to=2"),
    ]
    for template, path in cases:
        response = session.get(server.url + path, timeout=60, **tls(server))
        assert response.status_code == 200, (path, response.text[:200])
        params = {k: v for k, v in names.items() if "{" + k + "}" in template}
        ops[template].Case(path_parameters=params).validate_response(response)
