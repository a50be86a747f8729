"""Published JSON Schemas (draft 2020-12) of hvguard's documents: the JSON report, evidence bundles and
every YAML input.

The ``*.json`` files beside this module are generated from the models and validator tables by
:mod:`hvguard.schemas.generate` (``python -m hvguard.schemas``) and shipped in the package; a test fails
when they differ from what the generator gives now, so a model change forces a regeneration. This module
only reads the shipped files, so ``hvguard schema NAME`` imports no model.
"""

from __future__ import annotations

from importlib import resources

#: Every published schema: name → what it describes, in one line (``hvguard schema --list``).
SCHEMAS: dict[str, str] = {
    "report": "the JSON report (`--format json`, hvguard.report/1)",
    "bundle": "an evidence bundle written by `hvguard collect` (hvguard.bundle/1), as uncompressed JSON",
    "exceptions": "the exceptions register (`--exceptions FILE`, YAML)",
    "attestations": "the attestations file (`--attestations FILE`, YAML)",
    "profile": "a profile (`--profile FILE`, YAML): thresholds, advisory and modality tailoring",
    "baseline": "a gold configuration (`hvguard baseline … FILE`, hvguard.baseline/1, YAML)",
    "watch-config": "the configuration file of `hvguard watch --config FILE` (YAML)",
    "config": "the defaults file /etc/hvguard/config.yaml or ~/.config/hvguard/config.yaml (YAML)",
    "guard-decision": "a guard decision (hvguard.guard-decision/1): a decisions.jsonl line",
    "guard-status": "`guard status --format json` (hvguard.guard-status/1): the installed guard and its pins",
}

#: Where the schemas are published: each file's ``$id`` is this plus its file name.
BASE_URL = "https://hvguard.dev/schemas/"


def file_name(name: str) -> str:
    """The shipped file of schema ``name`` (``report`` → ``report-1.json``)."""
    return f"{name}-1.json"


def schema_id(name: str) -> str:
    """The ``$id`` URL of schema ``name``."""
    return BASE_URL + file_name(name)


def shipped_text(name: str) -> str:
    """The shipped JSON Schema ``name`` as text; KeyError for a name not in :data:`SCHEMAS`."""
    if name not in SCHEMAS:
        raise KeyError(name)
    return resources.files(__name__).joinpath(file_name(name)).read_text(encoding="utf-8")
