"""The image library with its metadata in a real PostgreSQL (``library init --metadata-db URL``): a server
on loopback, the same push → approve → pull path as with SQLite, and the rows really in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from library_env import Library, ext4_image, hvguard, make_store, need, start_server
from test_history_postgres import Cluster, cluster  # noqa: F401  (the module's PostgreSQL fixture)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def pg_lib(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> Iterator[tuple[Library, str]]:  # noqa: F811
    need("qemu-img", "mkfs.ext4", "debugfs")
    tmp = tmp_path_factory.mktemp("pglib")
    url = cluster.url(cluster.new_database())
    yield from ((lib, url) for lib in start_server(make_store(tmp, init_extra=("--metadata-db", url)), tmp))


def test_push_approve_pull_with_metadata_in_postgresql(pg_lib: tuple[Library, str], tmp_path: Path) -> None:
    lib, url = pg_lib
    image = ext4_image(tmp_path, "pg")
    pushed = hvguard(
        "library", "push", lib.url, image, "--name", "linux/pg", "--version", "1", *lib.client("pete")
    )
    assert pushed.returncode == 0, pushed.stderr
    image_id = pushed.stdout.strip()
    approved = hvguard("library", "approve", lib.url, image_id, *lib.client("anna"))
    assert approved.returncode == 0, approved.stderr
    out = tmp_path / "pulled.qcow2"
    pulled = hvguard("library", "pull", lib.url, image_id, "--output", out, *lib.client("rita"))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_bytes() == image.read_bytes()
    manifest = json.loads((tmp_path / "pulled.qcow2.manifest.json").read_text())["manifest"]
    assert manifest["name"] == "linux/pg" and manifest["approver"] == "anna"
    # The rows are in PostgreSQL, not in a SQLite file beside the store.
    assert not (lib.store / "library.sqlite3").exists()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM library_images").fetchall()]
    assert names == ["linux/pg"]
