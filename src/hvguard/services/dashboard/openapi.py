"""The OpenAPI 3.1 document of the dashboard's JSON API (``GET /api/v1/openapi.json``).

Kept in step with the routes by tests/test_dashboard.py (every route documented, nothing documented
that is not routed) and checked against the running API by schemathesis
(tests/test_dashboard_api_contract.py)."""

from __future__ import annotations

from typing import Any

from hvguard import __version__

_STATUS = ["pass", "fail", "warn", "manual", "not_applicable", "error", "waived"]
_VERDICT = ["compliant", "not_compliant", "not_assessed"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        **extra,
    }


def _int_map() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": {"type": "string"}}),
    "Counts": _obj({v: {"type": "integer", "minimum": 0} for v in _VERDICT}),
    "Target": _obj(
        {
            "target": {"type": "string"},
            "host_name": {"type": ["string", "null"]},
            "platform": {"type": "string"},
            "groups": {"type": "array", "items": {"type": "string"}},
            "verdict": {"enum": _VERDICT},
            "blocking": {"type": "array", "items": {"type": "string"}},
            "by_status": _int_map(),
            "by_measure": {"type": "object", "additionalProperties": {"enum": [*_STATUS, ""]}},
            "vms": {"type": "integer", "minimum": 0},
            "scan_id": {"type": "integer"},
            "scanned_at": {"type": "string", "format": "date-time"},
        }
    ),
    "TrendPoint": _obj(
        {
            "day": {"type": "string", "format": "date"},
            **{v: {"type": "integer", "minimum": 0} for v in _VERDICT},
        }
    ),
    "GroupCounts": _obj(
        {
            "targets": {"type": "integer", "minimum": 0},
            **{v: {"type": "integer", "minimum": 0} for v in _VERDICT},
        }
    ),
    "Finding": _obj(
        {
            "measure": {"type": "string"},
            "check": {"type": "string"},
            "subject": {"type": "string"},
            "status": {"enum": _STATUS},
            "original_status": {"enum": [*_STATUS, None]},
            "message": {"type": "string"},
            "remediation": {"type": ["string", "null"]},
            "waiver_id": {"type": ["string", "null"]},
            "evidence": {"type": "object"},
        }
    ),
    "Scan": _obj(
        {
            "id": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "tool_version": {"type": "string"},
            "command": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "string"}},
            "targets": {"type": "array", "items": {"type": "string"}},
            "profile": _obj(
                {
                    "name": {"type": "string"},
                    "tailored": {"type": "boolean"},
                    "deviations": {"type": "array", "items": {"type": "string"}},
                }
            ),
            "by_status": _int_map(),
        }
    ),
    "Expiring": _obj(
        {
            "kind": {"enum": ["exceptions", "attestations"]},
            "id": {"type": "string"},
            "measure": {"type": "string"},
            "valid_from": {"type": "string", "format": "date"},
            "valid_until": {"type": "string", "format": "date"},
            "days_left": {"type": "integer", "minimum": 0},
            "scope": {"type": "object"},
            "source": {"type": "string"},
            "scan_id": {"type": "integer"},
        }
    ),
    "Diff": _obj(
        {
            "schema": {"const": "hvguard.diff/1"},
            "from": _ref("Scan"),
            "to": _ref("Scan"),
            "targets": {"type": "array", "items": {"type": "string"}},
            "changed": {"type": "boolean"},
            "transitions": {"type": "array", "items": {"type": "object"}},
            "fact_changes": {"type": "array", "items": {"type": "object"}},
            "subjects": {"type": "object"},
            "unaudited_xml_changes": {"type": "array", "items": {"type": "object"}},
            "notes": {"type": "array", "items": {"type": "string"}},
        }
    ),
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "A query parameter that cannot be used"),
    "404": _json(_ref("Error"), "No such target, VM, group or scan"),
    "503": _json(_ref("Error"), "The history database cannot be read"),
}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _get(
    op_id: str, summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "parameters": params or [],
            "responses": {"200": _json(ok), **_ERRORS},
        }
    }


_SCAN_REFS = [
    _query("from", {"type": "string", "minLength": 1}, "Older scan: id, latest, previous, latest~N", True),
    _query("to", {"type": "string", "minLength": 1}, "Newer scan", True),
]
_VERDICT_OR_NONE = {"enum": [*_VERDICT, None]}
_STATUS_OR_NONE = {"enum": [*_STATUS, None]}
_TARGET = _path_param("target", "The target id (URI) as stored, percent-encoded")
_TARGETS = {"type": "array", "items": _ref("Target")}

PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": _get("openapi", "This document", {"type": "object"}),
    "/api/v1/estate": _get(
        "estate",
        "Verdict counts, the trend, the groups and every target's latest summary",
        _obj(
            {
                "counts": _ref("Counts"),
                "trend": {"type": "array", "items": _ref("TrendPoint")},
                "groups": {"type": "object", "additionalProperties": _ref("GroupCounts")},
                "targets": _TARGETS,
            }
        ),
    ),
    "/api/v1/groups/{group}": _get(
        "group",
        "The targets of one group",
        _obj({"group": {"type": "string"}, "counts": _ref("Counts"), "targets": _TARGETS}),
        [_path_param("group", "The group name")],
    ),
    "/api/v1/targets": _get(
        "targets",
        "Every target's latest summary",
        _obj({"targets": _TARGETS}),
        [_query("group", {"type": "string"}, "Only the targets of this group")],
    ),
    "/api/v1/targets/{target}": _get(
        "target",
        "One target: its latest summary, measures, VMs, host findings and scans",
        _obj(
            {
                "target": _ref("Target"),
                "measures": {
                    "type": "array",
                    "items": _obj(
                        {
                            "measure": {"type": "string"},
                            "title": {"type": "string"},
                            "status": {"enum": [*_STATUS, ""]},
                            "findings": {"type": "integer", "minimum": 0},
                        }
                    ),
                },
                "vms": {
                    "type": "array",
                    "items": _obj({"name": {"type": "string"}, "status": {"enum": [*_STATUS, ""]}}),
                },
                "host_findings": {"type": "array", "items": _ref("Finding")},
                "scans": {"type": "array", "items": _ref("Scan")},
            }
        ),
        [_TARGET],
    ),
    "/api/v1/targets/{target}/vms/{vm}": _get(
        "vm",
        "One VM of a target's latest scan: every finding with its evidence and fix",
        _obj(
            {
                "target": _ref("Target"),
                "vm": {"type": "string"},
                "status": {"enum": [*_STATUS, ""]},
                "findings": {"type": "array", "items": _ref("Finding")},
            }
        ),
        [_TARGET, _path_param("vm", "The VM name, percent-encoded")],
    ),
    "/api/v1/measures": _get(
        "measures",
        "Per target, each measure's status; per measure, how many targets have each status",
        _obj(
            {
                "measures": {
                    "type": "array",
                    "items": _obj({"measure": {"type": "string"}, "title": {"type": "string"}}),
                },
                "targets": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": {"enum": _STATUS}},
                },
                "totals": {"type": "object", "additionalProperties": _int_map()},
            }
        ),
    ),
    "/api/v1/expiring": _get(
        "expiring",
        "Exceptions and attestations used by the stored scans that expire soon",
        _obj(
            {
                "days": {"type": "integer"},
                "until": {"type": "string", "format": "date"},
                "entries": {"type": "array", "items": _ref("Expiring")},
            }
        ),
        [_query("days", {"type": "integer", "minimum": 0, "maximum": 3660, "default": 30}, "Window in days")],
    ),
    "/api/v1/scans": _get(
        "scans",
        "The newest scans",
        _obj({"scans": {"type": "array", "items": _ref("Scan")}}),
        [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}, "How many")],
    ),
    "/api/v1/diff": _get(
        "diff",
        "What changed between two runs (hvguard diff's JSON)",
        _ref("Diff"),
        [*_SCAN_REFS, _query("target", {"type": "string"}, "Compare this target only")],
    ),
    "/api/v1/diff/targets": _get(
        "diff_targets",
        "Per target, the verdict and measure statuses that changed between two runs (stored summaries)",
        _obj(
            {
                "from": _ref("Scan"),
                "to": _ref("Scan"),
                "unchanged": {"type": "integer", "minimum": 0},
                "changed": {
                    "type": "array",
                    "items": _obj(
                        {
                            "target": {"type": "string"},
                            "old_verdict": _VERDICT_OR_NONE,
                            "new_verdict": _VERDICT_OR_NONE,
                            "measures": {
                                "type": "array",
                                "items": _obj(
                                    {
                                        "measure": {"type": "string"},
                                        "old": _STATUS_OR_NONE,
                                        "new": _STATUS_OR_NONE,
                                    }
                                ),
                            },
                        }
                    ),
                },
            }
        ),
        _SCAN_REFS,
    ),
}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hvguard estate API",
            "version": __version__,
            "description": (
                "Read-only view of the hvguard scan history: SS-009 verdicts per target, measures across "
                "the estate, VM drill-down, expiring exceptions and attestations, and the diff of two runs. "
                "Every request needs a client certificate of the server's client CA (mutual TLS)."
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"clientCertificate": {"type": "mutualTLS"}},
        },
        "security": [{"clientCertificate": []}],
        "paths": PATHS,
    }
