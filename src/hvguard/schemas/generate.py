"""Generate the published JSON Schemas from the models and the validators' tables.

- ``report`` and ``bundle``: ``msgspec.json.schema`` of the typed report (:mod:`hvguard.report.model`)
  and of the facts bundle (:class:`hvguard.facts.Bundle`) — a field added to a model appears here.
- ``baseline`` and ``watch-config``: the msgspec structs those files are decoded into, plus the value
  tables their loaders check (host facts, iotune limits, config-key syntax, syslog facilities).
- ``exceptions``, ``attestations`` and ``profile``: built from the tables the validators read
  (:class:`hvguard.workflow.validate.FieldSpec` rows, scope keys, profile keys and threshold types).

Rules a schema cannot state (dates relative to today, one value compared with another, duplicate ids,
secrets that must exist) stay with hvguard's own validation; each schema's description says so.
Regular expressions are written so that Python's ``re`` (used by ``jsonschema``) and ECMA-262 (editors)
read them alike: ``(?![\\s\\S])`` ends a match instead of ``$``, which Python also lets match before a
final newline.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from hvguard.schemas import SCHEMAS, file_name, schema_id

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_END = r"(?![\s\S])"
Schema = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _whole(regex: str, *, blanks: bool = False) -> str:
    """A pattern matching a whole string by ``regex`` (surrounding blanks allowed when ``blanks``: the
    validators strip text before they check it)."""
    pad = r"\s*" if blanks else ""
    return f"^{pad}(?:{regex}){pad}{_END}"


def _alternatives(values: Iterable[str], *, fold: bool = False) -> str:
    """A regex alternation of ``values`` (any case when ``fold``, spelt out: ECMA-262 has no ``(?i)``)."""

    def one(value: str) -> str:
        if not fold:
            return re.escape(value)
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in value)

    return "|".join(one(v) for v in values)


def _padded_choice(values: Sequence[str], *, fold: bool = False) -> Schema:
    """One of ``values``, as a validator that strips (and, with ``fold``, lower-cases) the text reads it:
    the exact values first (editors offer them), then the same with blanks or another case."""
    return {
        "anyOf": [
            {"enum": list(values)},
            {"type": "string", "pattern": _whole(_alternatives(values, fold=fold), blanks=True)},
        ]
    }


def _msgspec_schema(model: Any) -> Schema:
    schema: Schema = msgspec.json.schema(model)
    return schema


def _top(schema: Schema) -> Schema:
    """The definition the generated schema's root ``$ref`` points at."""
    name = str(schema["$ref"]).rsplit("/", 1)[-1]
    top: Schema = schema["$defs"][name]
    return top


def _tidy(node: Any) -> Any:
    """``node`` with reStructuredText literals in descriptions (````x````) written as Markdown (```x```),
    which editors render."""
    if isinstance(node, dict):
        return {
            k: v.replace("``", "`") if k == "description" and isinstance(v, str) else _tidy(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    return node


def _document(name: str, title: str, description: str, body: Schema) -> Schema:
    """``body`` with the identifying keywords first."""
    head: Schema = {"$schema": DRAFT, "$id": schema_id(name), "title": title, "description": description}
    doc: Schema = _tidy({**head, **{k: v for k, v in body.items() if k not in head}})
    return doc


def _doc(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring, on one line."""
    text = (obj.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------------
# report, bundle
# --------------------------------------------------------------------------------------------------
def report_schema() -> Schema:
    """The ``hvguard.report/1`` document, from :class:`hvguard.report.model.Report`."""
    from hvguard.report import model

    body = _msgspec_schema(model.Report)
    _top(body)["properties"]["schema"]["const"] = model.SCHEMA
    description = (
        f"{_doc(model.Report)} `--format json` writes it with keys in the order listed here and every "
        f"field present (null when unset). Changes under {model.SCHEMA} are additive only: consumers must "
        "accept object keys they do not know."
    )
    return _document("report", f"hvguard report ({model.SCHEMA})", description, body)


def bundle_schema() -> Schema:
    """The ``hvguard.bundle/1`` evidence bundle, from :class:`hvguard.facts.Bundle`."""
    from hvguard import facts

    body = _msgspec_schema(facts.Bundle)
    props = _top(body)["properties"]
    props["schema"]["const"] = facts.BUNDLE_SCHEMA
    props["facts_version"]["const"] = facts.FACTS_VERSION
    description = (
        f"{_doc(facts.Bundle)} The facts model of version {facts.FACTS_VERSION} as `hvguard collect` "
        "writes it (uncompressed JSON; a `.gz` bundle is this, gzip-compressed). Older facts versions "
        "hvguard can still read are migrated on read and are not described here. Unknown keys are refused."
    )
    return _document("bundle", f"hvguard evidence bundle ({facts.BUNDLE_SCHEMA})", description, body)


# --------------------------------------------------------------------------------------------------
# exceptions, attestations
# --------------------------------------------------------------------------------------------------
_TEXT = r"\S"  # non-empty text: the validators refuse text that is empty once stripped


def _measure_ids() -> tuple[str, ...]:
    from hvguard.catalog import load_catalog

    return tuple(load_catalog().ids)


def _scope_schema(description: str) -> Schema:
    from hvguard.workflow.scope import LIST_SCOPE_KEYS, PLAIN_SUBJECTS, SCOPE_FIELDS

    props: Schema = {}
    for key, text in SCOPE_FIELDS.items():
        if key in LIST_SCOPE_KEYS:
            item = {"type": "string", "pattern": _TEXT}
            props[key] = {"description": text, "type": "array", "items": item, "minItems": 1}
            continue
        props[key] = {"description": text, "type": "string", "pattern": _TEXT}
    plain = _whole(_alternatives(PLAIN_SUBJECTS), blanks=True)
    props["subject"]["allOf"] = [{"pattern": f"{plain}|:"}]
    return {
        "description": description,
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "minProperties": 1,
    }


def _text_schema(description: str, required: bool) -> Schema:
    kind: str | list[str] = "string" if required else ["string", "null"]
    return {"description": description, "type": kind, "pattern": _TEXT}


def _evidence_schema(description: str) -> Schema:
    from hvguard.workflow.attestations import EVIDENCE_ITEM_FIELDS, SHA256_HEX

    props = {f.name: _text_schema(f.description, f.required) for f in EVIDENCE_ITEM_FIELDS}
    props["url"]["allOf"] = [{"pattern": "://"}]
    props["sha256"]["allOf"] = [{"pattern": _whole(SHA256_HEX.pattern, blanks=True)}]

    def given(key: str) -> Schema:
        return {"required": [key], "properties": {key: {"not": {"type": "null"}}}}

    item: Schema = {
        "description": "A file (path and the sha256 it had when attested) or a link (url).",
        "type": "object",
        "properties": props,
        "additionalProperties": False,
        "oneOf": [given("path"), given("url")],
        "if": given("path"),
        "then": given("sha256"),
    }
    return {"description": description, "type": ["array", "null"], "items": item}


def _field_schema(spec: Any) -> Schema:
    """The schema of one :class:`~hvguard.workflow.validate.FieldSpec` row."""
    if spec.kind in ("id", "text"):
        return _text_schema(spec.description, spec.required)
    if spec.kind == "measure":
        return {"description": spec.description, **_padded_choice(_measure_ids())}
    if spec.kind == "scope":
        return _scope_schema(spec.description)
    if spec.kind == "date":
        return {"description": spec.description, "type": "string", "format": "date"}
    if spec.kind == "choice":
        return {"description": spec.description, **_padded_choice(spec.choices, fold=True)}
    if spec.kind == "evidence":
        return _evidence_schema(spec.description)
    raise ValueError(f"no schema for field kind {spec.kind!r} ({spec.name})")


def _register_schema(name: str, list_key: str, module: Any, entry_title: str) -> Schema:
    specs = module.ENTRY_FIELDS
    entry: Schema = {
        "title": entry_title,
        "type": "object",
        "properties": {spec.name: _field_schema(spec) for spec in specs},
        "required": [spec.name for spec in specs if spec.required],
        "additionalProperties": False,
    }
    body: Schema = {
        "type": "object",
        "properties": {list_key: {"type": ["array", "null"], "items": {"$ref": "#/$defs/Entry"}}},
        "required": [list_key],
        "additionalProperties": False,
        "$defs": {"Entry": entry},
    }
    description = (
        f"{_doc(module)} hvguard also refuses what a schema cannot state: duplicate ids or keys, "
        "dates in the future, and a start date after the end date."
    )
    return _document(name, f"hvguard {name} file", description, body)


def exceptions_schema() -> Schema:
    """The exceptions register, from :data:`hvguard.workflow.exceptions.ENTRY_FIELDS`."""
    from hvguard.workflow import exceptions

    return _register_schema("exceptions", "exceptions", exceptions, "Exception")


def attestations_schema() -> Schema:
    """The attestations file, from :data:`hvguard.workflow.attestations.ENTRY_FIELDS`."""
    from hvguard.workflow import attestations

    return _register_schema("attestations", "attestations", attestations, "Attestation")


# --------------------------------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------------------------------
def _default_profile_comments() -> dict[str, str]:
    """The comment block above each threshold in the packaged ``profiles/default.yaml`` (a key with no
    comment of its own shares the block above it): the documentation of every default."""
    text = resources.files("hvguard").joinpath("profiles/default.yaml").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    block: list[str] = []
    fresh = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not fresh:
                block, fresh = [], True
            block.append(stripped.lstrip("#").strip())
            continue
        fresh = False
        key = re.match(r"\s+([a-z_]+):", line)
        if key and block:
            out[key.group(1)] = " ".join(block)
    return out


def _threshold_schema(key: str, kind: type, default: Any, comment: str) -> Schema:
    from hvguard.profile import NON_NEGATIVE_THRESHOLDS, PORT_SPEC, POSITIVE_THRESHOLDS, THRESHOLD_CHOICES

    out: Schema = {"description": comment or key}
    if kind is float:
        out["type"] = "number"
    elif kind is int:
        out["type"] = "integer"
    elif kind is str:
        out["type"] = "string"
    elif kind is tuple:
        out["type"] = "array"
        out["items"] = {"type": "string", "minLength": 1}
    else:
        raise ValueError(f"no schema for threshold type {kind.__name__} ({key})")
    if key in THRESHOLD_CHOICES:
        out["enum"] = list(THRESHOLD_CHOICES[key])
    if key in NON_NEGATIVE_THRESHOLDS:
        out["minimum"] = 0
    if key in POSITIVE_THRESHOLDS:
        out["exclusiveMinimum"] = 0
    if key == "firewall_allowed_ports":
        out["items"]["pattern"] = _whole(PORT_SPEC.pattern)
    out["default"] = list(default) if isinstance(default, tuple) else default
    return out


def profile_schema() -> Schema:
    """A profile file, from :data:`hvguard.profile.PROFILE_KEYS`, :class:`hvguard.profile.Thresholds`
    and the comments of the packaged default profile."""
    from hvguard import profile

    comments = _default_profile_comments()
    defaults = profile.Thresholds()
    thresholds = {
        name: _threshold_schema(
            name, profile.THRESHOLD_TYPES[name], getattr(defaults, name), comments.get(name, "")
        )
        for name in profile.Thresholds.__struct_fields__
    }
    ids = list(_measure_ids())
    # name and description are shown as text whatever YAML made of them, so any value is accepted.
    props: Schema = {key: {"description": text} for key, text in profile.PROFILE_KEYS.items()}
    props["thresholds"].update(
        {"type": ["object", "null"], "properties": thresholds, "additionalProperties": False}
    )
    props["advisory"].update({"type": ["array", "null"], "items": {"enum": ids}})
    props["modality"].update(
        {
            "type": ["object", "null"],
            "propertyNames": {"enum": ids},
            "additionalProperties": {"enum": list(profile.MODALITIES)},
        }
    )
    body: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    description = (
        f"{_doc(profile)} hvguard also checks what a schema cannot state: "
        "0 < memory_overcommit_pass_max <= memory_overcommit_warn_max once merged with the defaults, "
        "and no measure both in advisory and set to modality must."
    )
    return _document("profile", "hvguard profile", description, body)


# --------------------------------------------------------------------------------------------------
# baseline, watch-config
# --------------------------------------------------------------------------------------------------
def baseline_schema() -> Schema:
    """The ``hvguard.baseline/1`` gold configuration, from :class:`hvguard.baseline.schema.Baseline`."""
    from hvguard.baseline import schema as baseline

    body = _msgspec_schema(baseline.Baseline)
    defs = body["$defs"]
    defs["Baseline"]["properties"]["schema"]["const"] = baseline.SCHEMA
    host = defs["HostSettings"]["properties"]
    host["facts"]["propertyNames"] = {"enum": list(baseline.HOST_FACT_PATHS)}
    for conf in ("qemu_conf", "libvirtd_conf"):
        host[conf]["propertyNames"] = {"pattern": _whole(baseline.CONF_KEY.pattern)}
    iotune = defs["DiskSettings"]["properties"]["iotune"]
    iotune["propertyNames"] = {"enum": list(baseline.IOTUNE_KEYS)}
    iotune["additionalProperties"] = {"type": "integer", "exclusiveMinimum": 0}
    description = (
        f"{_doc(baseline)} hvguard also checks what a schema cannot state: unique class names, "
        "non-empty match patterns, vCPU and memory maxima against current values, quotes in libvirt "
        "strings."
    )
    return _document("baseline", f"hvguard baseline ({baseline.SCHEMA})", description, body)


def watch_config_schema() -> Schema:
    """The ``hvguard watch --config`` file, from :class:`hvguard.services.watch.config.WatchFile`."""
    from hvguard.services.watch import config

    body = _msgspec_schema(config.WatchFile)
    facility = body["$defs"]["SyslogFile"]["properties"]["facility"]
    facility["enum"] = list(config.SYSLOG_FACILITIES)
    description = (
        "The configuration of `hvguard watch`: libvirt URIs, state and profile files, timings and the "
        "notification channels (webhook, syslog, e-mail). Secrets are named by file or environment "
        "variable, never written here. hvguard also checks at start what a schema cannot state: value "
        "ranges (timeouts, intervals, ports), https-only webhooks, syslog target syntax, readable "
        "certificate and secret files, and at least one channel."
    )
    return _document("watch-config", "hvguard watch configuration", description, body)


def config_schema() -> Schema:
    """The defaults file (``/etc/hvguard/config.yaml``, ``~/.config/hvguard/config.yaml``), from the
    table of every command's options (:mod:`hvguard.schemas.config_keys`)."""
    from hvguard.schemas.config_keys import NOT_CONFIGURABLE, OPTION_NAMES

    names = sorted(OPTION_NAMES - NOT_CONFIGURABLE)
    # hvguard reads `fail_on` as `fail-on`; both spellings are named so an editor accepts either.
    options: Schema = {
        spelling: {"description": f"Default of --{name} for every command that has it."}
        for name in names
        for spelling in dict.fromkeys((name, name.replace("-", "_")))
    }
    per_command: Schema = {
        "type": "object",
        "properties": {k: {"description": f"Default of {k} for this command."} for k in options},
        "additionalProperties": False,
    }
    body: Schema = {
        "type": ["object", "null"],
        "properties": {
            **options,
            "commands": {
                "description": "Command name (`scan`, `exceptions export`) → option defaults for it only.",
                "type": "object",
                "additionalProperties": per_command,
            },
        },
        "additionalProperties": False,
    }
    description = (
        "Option defaults for hvguard's commands: option names as on the command line without `--`. "
        "Command line > HVGUARD_<OPTION> variables > the user file > the system file. hvguard also "
        "checks what a schema cannot state: each value's type as its option converts it, paths relative "
        "to the file, and that the file is not writable by group or others."
    )
    return _document("config", "hvguard configuration file", description, body)


def guard_decision_schema() -> Schema:
    """The ``hvguard.guard-decision/1`` record, from :class:`hvguard.guard.record.GuardDecision`."""
    from hvguard.guard import record

    body = _msgspec_schema(record.GuardDecision)
    _top(body)["properties"]["schema"]["const"] = record.SCHEMA
    description = (
        f"{_doc(record.GuardDecision)} One per line in the guard's decisions.jsonl; `hvguard guard check "
        "--format json` prints one (an array of them for several files). Keys in the order listed here, "
        f"every field present (null when unset). Changes under {record.SCHEMA} are additive only."
    )
    return _document("guard-decision", f"hvguard guard decision ({record.SCHEMA})", description, body)


def guard_status_schema() -> Schema:
    """``hvguard guard status --format json``, from :class:`hvguard.guard.status.GuardStatus`."""
    from hvguard.guard import status

    body = _msgspec_schema(status.GuardStatus)
    _top(body)["properties"]["schema"]["const"] = status.SCHEMA
    description = (
        f"{_doc(status.GuardStatus)} Keys in the order listed here, every field present. Changes under "
        f"{status.SCHEMA} are additive only."
    )
    return _document("guard-status", f"hvguard guard status ({status.SCHEMA})", description, body)


#: Schema name → its generator.
GENERATORS: dict[str, Callable[[], Schema]] = {
    "report": report_schema,
    "bundle": bundle_schema,
    "exceptions": exceptions_schema,
    "attestations": attestations_schema,
    "profile": profile_schema,
    "baseline": baseline_schema,
    "watch-config": watch_config_schema,
    "config": config_schema,
    "guard-decision": guard_decision_schema,
    "guard-status": guard_status_schema,
}


def render(name: str) -> str:
    """Schema ``name`` as the text of its shipped file."""
    return json.dumps(GENERATORS[name](), indent=2, ensure_ascii=False) + "\n"


def package_dir() -> Path:
    """The directory the shipped schemas live in (this package's)."""
    return Path(__file__).resolve().parent


def stale(directory: Path) -> list[str]:
    """The schemas whose file in ``directory`` is missing or differs from what the generator gives."""
    out = []
    for name in SCHEMAS:
        path = directory / file_name(name)
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hvguard.schemas [--check] [--out DIR]``: write (or check) every schema."""
    parser = argparse.ArgumentParser(
        prog="python -m hvguard.schemas", description="Generate hvguard's published JSON Schemas."
    )
    parser.add_argument("--out", type=Path, default=package_dir(), help="directory (default: the package)")
    parser.add_argument("--check", action="store_true", help="only say which files are out of date (exit 1)")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale(args.out)
        for name in out_of_date:
            where = args.out / file_name(name)
            print(f"{where} is out of date: run python -m hvguard.schemas", file=sys.stderr)
        return 1 if out_of_date else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        (args.out / file_name(name)).write_text(render(name), encoding="utf-8")
        print(args.out / file_name(name))
    return 0
