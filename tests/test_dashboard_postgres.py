"""``hvguard serve`` over a PostgreSQL history (a real cluster of the test's own, as
tests/test_history_postgres.py starts it): the same answers as over SQLite, and the database password
never shown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dashboard_env import Server, make_certs, populate, start
from test_history_postgres import Cluster, cluster  # noqa: F401 (the fixture)

#: (PostgreSQL server, SQLite server, the PostgreSQL password)
Served = tuple[Server, Server, str]


def _stable(answer: dict[str, Any]) -> dict[str, Any]:
    """The estate answer without what differs between two stores of the same scans (times)."""
    for t in answer["targets"]:
        t.pop("scanned_at")
    answer.pop("trend")
    return answer


@pytest.fixture(scope="module")
def servers(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # noqa: F811
    """The same two scans stored in PostgreSQL and in SQLite, each served."""
    tmp = tmp_path_factory.mktemp("dash-pg")
    url = cluster.url(cluster.new_database())
    populate(url, tmp)
    populate(tmp / "history.sqlite3")
    certs = make_certs(tmp)
    pg_server, sqlite_server = start(url, certs), start(tmp / "history.sqlite3", certs)
    try:
        yield next(pg_server), next(sqlite_server), cluster.password
    finally:
        pg_server.close()
        sqlite_server.close()


def test_postgresql_and_sqlite_answer_alike(servers: Served) -> None:
    pg, lite, _ = servers
    assert _stable(pg.get("/api/v1/estate").json()) == _stable(lite.get("/api/v1/estate").json())
    assert pg.get("/api/v1/measures").json() == lite.get("/api/v1/measures").json()
    assert [e["id"] for e in pg.get("/api/v1/expiring").json()["entries"]] == ["EX-SOON"]


def test_the_database_password_is_never_shown(servers: Served) -> None:
    pg, _, password = servers
    for path in ("/", "/measures", "/targets/nosuch", "/api/v1/targets/nosuch", "/api/v1/scans"):
        assert password not in pg.get(path).text, path
