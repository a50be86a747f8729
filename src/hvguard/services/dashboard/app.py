"""``hvguard serve``'s aiohttp application: the dashboard pages, the JSON API under ``/api/v1`` and
``/metrics``, all read-only (GET and HEAD; anything else is 405) and served only on hvguard's HTTPS
layer, which refuses any client without a certificate of the client CA before a handler runs.

Every view is computed by :class:`~hvguard.services.dashboard.views.Dashboard` in a worker thread (the
store is synchronous), then rendered as HTML (:mod:`pages`) or JSON (:mod:`api`).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from hvguard.history.store import HistoryError
from hvguard.services.dashboard import api
from hvguard.services.dashboard.api import in_thread
from hvguard.services.dashboard.metrics import CONTENT_TYPE
from hvguard.services.dashboard.pages import Pages, trend_chart
from hvguard.services.dashboard.views import FULL_DIFF_UP_TO, TREND_DAYS, BadRequest, Dashboard, NotFound

READ_METHODS = frozenset({"GET", "HEAD"})
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class DashboardApp:
    """The page handlers over one :class:`Dashboard`."""

    def __init__(self, dash: Dashboard, metrics: Callable[[], bytes]) -> None:
        self.dash = dash
        self.pages = Pages(dash.store.label)
        self.metrics_renderer = metrics

    def html(self, template: str, status: int = 200, **context: Any) -> Any:
        """A rendered page with the page CSP."""
        from aiohttp import web

        body = self.pages.render(template, **context)
        return web.Response(
            text=body,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": self.pages.csp},
        )

    async def estate(self, _request: Any) -> Any:
        """``/``: the estate summary."""
        view = await in_thread(self.dash.estate)
        return self.html(
            "estate.html",
            title="Estate",
            nav="estate",
            counts_=view["counts"],
            trend=view["trend"],
            chart=trend_chart(view["trend"]),
            trend_days=TREND_DAYS,
            groups=view["groups"],
            hosts=view["hosts"],
        )

    async def group(self, request: Any) -> Any:
        """``/groups/{group}``."""
        view = await in_thread(self.dash.group, request.match_info["group"])
        return self.html(
            "group.html", title=f"Group {view['group']}", group=view["group"], counts_=view["counts"],
            hosts=view["hosts"],
        )  # fmt: skip

    async def target(self, request: Any) -> Any:
        """``/targets/{target}``."""
        view = await in_thread(self.dash.target, request.match_info["target"])
        return self.html("target.html", title=f"Target {view['host'].target}", **view)

    async def vm(self, request: Any) -> Any:
        """``/targets/{target}/vms/{vm}``."""
        view = await in_thread(self.dash.vm, request.match_info["target"], request.match_info["vm"])
        return self.html(
            "vm.html", title=f"VM {view['vm']}", host=view["host"], vm=view["vm"], vm_status=view["status"],
            findings=view["findings"],
        )  # fmt: skip

    async def measures(self, _request: Any) -> Any:
        """``/measures``: the heat map."""
        view = await in_thread(self.dash.measures)
        return self.html("measures.html", title="Measures", nav="measures", **view)

    async def expiring(self, request: Any) -> Any:
        """``/expiring``."""
        days = api.int_query(request, "days", 30)
        view = await in_thread(self.dash.expiring, datetime.now(UTC), days)
        return self.html("expiring.html", title="Expiring", nav="expiring", **view)

    async def diff(self, request: Any) -> Any:
        """``/diff?from=SCAN&to=SCAN[&target=T]``: the form, and the diff once both are given."""
        old, new = api.query(request, "from") or "", api.query(request, "to") or ""
        target = api.query(request, "target") or None
        overview, result = None, None
        if old and new and target is None:
            overview = await in_thread(self.dash.diff_targets, old, new)
            shared = set(overview["from"].targets) & set(overview["to"].targets)
            if len(shared) <= FULL_DIFF_UP_TO:
                result = await in_thread(self.dash.diff, old, new, None)
        elif old and new:
            result = await in_thread(self.dash.diff, old, new, target)
        return self.html(
            "diff.html", title="Compare runs", nav="diff", diff=result, overview=overview, from_=old, to_=new,
            target=target, full_up_to=FULL_DIFF_UP_TO,
        )  # fmt: skip

    async def metrics(self, _request: Any) -> Any:
        """``/metrics``: Prometheus text format."""
        from aiohttp import web

        body = await in_thread(self.metrics_renderer)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def make_app(dash: Dashboard, metrics: Callable[[], bytes]) -> Any:
    """The aiohttp application (pages, API, ``metrics`` at ``/metrics``) with the read-only and error
    middleware."""
    from aiohttp import web

    pages = DashboardApp(dash, metrics)
    json_api = api.Api(dash)

    @web.middleware
    async def guard(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        if request.method not in READ_METHODS:
            response: Any = _error(request, pages, 405, "Method not allowed", "This service is read-only.")
            response.headers["Allow"] = "GET, HEAD"
        else:
            try:
                response = await handler(request)
            except NotFound as exc:
                response = _error(request, pages, 404, "Not found", str(exc))
            except BadRequest as exc:
                response = _error(request, pages, 400, "Bad request", str(exc))
            except HistoryError as exc:
                response = _error(request, pages, 503, "History unavailable", str(exc))
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                if exc.status == 404:
                    response = _error(request, pages, 404, "Not found", f"nothing at {request.path}")
                else:
                    response = _error(request, pages, exc.status, exc.reason, exc.reason)
            except Exception as exc:
                # One line in the server's log; the client learns nothing of the internals.
                sys.stderr.write(
                    f"hvguard serve: internal error on {request.path!r}: {type(exc).__name__}: {exc!r}\n"
                )
                response = _error(request, pages, 500, "Internal error", "The server could not show this.")
        response.headers.update(_COMMON_HEADERS)
        return response

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app.add_routes(
        [
            web.get("/", pages.estate),
            web.get("/groups/{group}", pages.group),
            web.get("/targets/{target}", pages.target),
            web.get("/targets/{target}/vms/{vm}", pages.vm),
            web.get("/measures", pages.measures),
            web.get("/expiring", pages.expiring),
            web.get("/diff", pages.diff),
            web.get("/metrics", pages.metrics),
            *json_api.routes(),
        ]
    )
    return app


def _error(request: Any, pages: DashboardApp, status: int, heading: str, message: str) -> Any:
    """An error as JSON under ``/api/``, else as a page."""
    from aiohttp import web

    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    return pages.html("error.html", status=status, title=heading, heading=heading, message=message)
