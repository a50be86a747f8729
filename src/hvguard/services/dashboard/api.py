"""The JSON API under ``/api/v1`` — the same views as the pages, as data (described by
:mod:`hvguard.services.dashboard.openapi`, served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from hvguard.services.dashboard.data import group_json, register_json, target_json, trend_json
from hvguard.services.dashboard.views import EXPIRING_DAYS, BadRequest, Dashboard, finding_json

PREFIX = "/api/v1"


def query(request: Any, name: str) -> str | None:
    """A query parameter given at most once (400 when repeated: which one was meant is unclear)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} is given {len(values)} times")
    return str(values[0]) if values else None


def int_query(request: Any, name: str, default: int) -> int:
    """An integer query parameter, ``default`` when absent (400 when empty or not a whole number)."""
    raw = query(request, name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise BadRequest(f"{name} must be a whole number")
    return int(raw)


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking store call off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))


class Api:
    """The API handlers over one :class:`Dashboard`."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def routes(self) -> list[Any]:
        """The aiohttp routes (GET, which also answers HEAD)."""
        from aiohttp import web

        return [
            web.get(f"{PREFIX}/openapi.json", self.openapi),
            web.get(f"{PREFIX}/estate", self.estate),
            web.get(f"{PREFIX}/groups/{{group}}", self.group),
            web.get(f"{PREFIX}/targets", self.targets),
            web.get(f"{PREFIX}/targets/{{target}}", self.target),
            web.get(f"{PREFIX}/targets/{{target}}/vms/{{vm}}", self.vm),
            web.get(f"{PREFIX}/measures", self.measures),
            web.get(f"{PREFIX}/expiring", self.expiring),
            web.get(f"{PREFIX}/scans", self.scans),
            web.get(f"{PREFIX}/diff", self.diff),
            web.get(f"{PREFIX}/diff/targets", self.diff_targets),
        ]

    async def openapi(self, _request: Any) -> Any:
        """The OpenAPI 3.1 document of this API."""
        from aiohttp import web

        from hvguard.services.dashboard.openapi import document

        return web.json_response(document())

    async def estate(self, _request: Any) -> Any:
        """Verdict counts, trend, groups and every target's latest summary."""
        from aiohttp import web

        view = await in_thread(self.dash.estate)
        return web.json_response(
            {
                "counts": view["counts"],
                "trend": [trend_json(p) for p in view["trend"]],
                "groups": {g: group_json(c) for g, c in view["groups"].items()},
                "targets": [target_json(h) for h in view["hosts"]],
            }
        )

    async def group(self, request: Any) -> Any:
        """The targets of one group."""
        from aiohttp import web

        view = await in_thread(self.dash.group, request.match_info["group"])
        return web.json_response(
            {
                "group": view["group"],
                "counts": view["counts"],
                "targets": [target_json(h) for h in view["hosts"]],
            }
        )

    async def targets(self, request: Any) -> Any:
        """Every target's latest summary (``?group=`` for one group's)."""
        from aiohttp import web

        group = query(request, "group")
        if group is not None:
            view = await in_thread(self.dash.group, group)
        else:
            view = await in_thread(self.dash.estate)
        return web.json_response({"targets": [target_json(h) for h in view["hosts"]]})

    async def target(self, request: Any) -> Any:
        """One target: latest summary, measures, VMs, its scans."""
        from aiohttp import web

        view = await in_thread(self.dash.target, request.match_info["target"])
        return web.json_response(
            {
                "target": target_json(view["host"]),
                "measures": view["measures"],
                "vms": view["vms"],
                "host_findings": [finding_json(f) for f in view["host_findings"]],
                "scans": view["scans"],
            }
        )

    async def vm(self, request: Any) -> Any:
        """One VM of a target's latest scan with every finding, its evidence and fix."""
        from aiohttp import web

        view = await in_thread(self.dash.vm, request.match_info["target"], request.match_info["vm"])
        return web.json_response(
            {
                "target": target_json(view["host"]),
                "vm": view["vm"],
                "status": view["status"],
                "findings": [finding_json(f) for f in view["findings"]],
            }
        )

    async def measures(self, _request: Any) -> Any:
        """The heat map: per target, each measure's status; per measure, the totals."""
        from aiohttp import web

        view = await in_thread(self.dash.measures)
        ids = [m["measure"] for m in view["measures"]]
        return web.json_response(
            {
                "measures": view["measures"],
                "targets": {
                    h.target: {m: s for m, s in zip(ids, cells, strict=True) if s}
                    for h, cells in view["rows"]
                },
                "totals": view["totals"],
            }
        )

    async def expiring(self, request: Any) -> Any:
        """Exceptions and attestations expiring within ``?days=`` (30) days."""
        from aiohttp import web

        days = int_query(request, "days", EXPIRING_DAYS)
        view = await in_thread(self.dash.expiring, datetime.now(UTC), days)
        return web.json_response(
            {
                "days": view["days"],
                "until": view["until"].isoformat(),
                "entries": [register_json(e) for e in view["entries"]],
            }
        )

    async def scans(self, request: Any) -> Any:
        """The newest ``?limit=`` (20) scans."""
        from aiohttp import web

        limit = int_query(request, "limit", 20)
        return web.json_response({"scans": await in_thread(self.dash.scans, limit)})

    async def diff(self, request: Any) -> Any:
        """``hvguard diff``'s JSON between ``?from=`` and ``?to=`` (``&target=`` for one target)."""
        from aiohttp import web

        old, new = query(request, "from"), query(request, "to")
        if not old or not new:
            raise BadRequest("from and to are required (a scan id, latest, previous or latest~N)")
        result = await in_thread(self.dash.diff, old, new, query(request, "target") or None)
        return web.json_response(result.to_json())

    async def diff_targets(self, request: Any) -> Any:
        """Per target, the verdict and measure statuses that changed between ``?from=`` and ``?to=``."""
        from aiohttp import web

        old, new = query(request, "from"), query(request, "to")
        if not old or not new:
            raise BadRequest("from and to are required (a scan id, latest, previous or latest~N)")
        view = await in_thread(self.dash.diff_targets, old, new)
        return web.json_response(
            {
                "from": view["from"].to_json(),
                "to": view["to"].to_json(),
                "unchanged": view["unchanged"],
                "changed": [c.to_json() for c in view["changed"]],
            }
        )
