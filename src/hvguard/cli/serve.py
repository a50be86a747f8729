"""``hvguard serve``: the estate dashboard, its JSON API and ``/metrics`` over HTTPS with client
certificates required on every endpoint (the views reveal the estate's weaknesses), read-only.

Needs the ``serve`` extra (aiohttp, Jinja2; prometheus-client for ``/metrics``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from hvguard.cli.errors import EXIT_OK, UserError
from hvguard.cli.options import db_option

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command("serve")
@db_option
@click.option("--listen", required=True, help="HOST:PORT to listen on (port 0: any free port).")
@click.option("--tls-cert", type=_FILE, required=True, help="The server's certificate (PEM).")
@click.option("--tls-key", type=_FILE, required=True, help="Its private key (PEM).")
@click.option(
    "--client-ca",
    type=_FILE,
    required=True,
    help="CA (PEM) whose client certificates may read the dashboard; every request needs one.",
)
def serve(db: str | None, listen: str, tls_cert: Path, tls_key: Path, client_ca: Path) -> int:
    """Serve the estate dashboard, its JSON API (/api/v1) and /metrics from the scan history.

    HTTPS only (TLS 1.2 or newer) with a client certificate required on every request; read-only.
    The base URL is printed once the port accepts; SIGTERM or SIGINT stops it.
    """
    try:
        import aiohttp  # noqa: F401
        import jinja2  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise UserError(
            f"hvguard serve needs the serve extra (pip install 'hvguard[serve]'): {exc}"
        ) from None
    from hvguard.catalog import load_catalog
    from hvguard.history.store import HistoryError, HistoryStore
    from hvguard.services.dashboard.app import make_app
    from hvguard.services.dashboard.metrics import render_metrics
    from hvguard.services.dashboard.metrics_warm import WarmMetrics
    from hvguard.services.dashboard.views import Dashboard
    from hvguard.services.web.server import WebError, run, server_context

    try:
        ctx = server_context(tls_cert, tls_key, client_ca)
        with HistoryStore.open(db, create=False) as store:
            if not store.list_scans(limit=1):
                raise UserError(f"no scans recorded in {store.label} yet: run hvguard scan first")
            dash = Dashboard(store, load_catalog())
            # Scrapes are answered from the last rendering; a thread renders again after each scan.
            metrics = WarmMetrics(partial(render_metrics, store))
            metrics.start()
            try:
                run(make_app(dash, metrics), listen, ctx)
            finally:
                metrics.stop()
    except (WebError, HistoryError) as exc:
        raise UserError(str(exc)) from None
    return EXIT_OK
