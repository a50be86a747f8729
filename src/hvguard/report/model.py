"""The report model: the ``hvguard.report/1`` document as typed structs — the documented contract.

``--format json`` is this model encoded by msgspec, and every other format renders from it, so all
formats of one evaluation agree. Fields are encoded in declaration order and every field is always
written (``null`` when unset, never omitted): the order below *is* the JSON key order, and changing it
changes the contract. Additions under ``hvguard.report/1`` are additive only (see the architecture
notes); ``msgspec.json.schema(Report)`` gives the JSON Schema of the document.

Blocks whose content is free-form (a finding's evidence, the exception or attestation that changed a
finding, profile threshold values) stay ``dict[str, Any]`` / ``Any``: their keys are documented on
:class:`hvguard.findings.Finding` and in the workflow modules, and typing them here would only restate
those shapes.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from hvguard.findings import Status, Verdict

#: The value of :attr:`Report.schema` for this model.
SCHEMA = "hvguard.report/1"


class _Block(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every report struct: immutable, keyword-only, plain data (no reference cycles, so the
    cycle collector need not track a 100,000-finding report)."""


class Tool(_Block, frozen=True):
    """The program that wrote the report."""

    name: Annotated[str, Meta(description="Always `hvguard`.")]
    version: Annotated[str, Meta(description="hvguard's version (the package version).")]


class CatalogRef(_Block, frozen=True):
    """The standard the targets were evaluated against (its measures are named by id in the results)."""

    id: Annotated[str, Meta(description="The catalog id, e.g. `SS-009`.")]
    version: Annotated[str, Meta(description="The catalog's version, e.g. `2.0`.")]


class Deviation(_Block, frozen=True):
    """One way the profile differs from the packaged default profile, as data."""

    kind: Annotated[str, Meta(description="What was changed: `threshold`, `advisory` or `modality`.")]
    key: Annotated[str, Meta(description="The threshold name or the measure id that was tailored.")]
    default: Annotated[Any, Meta(description="The packaged default value.")]
    value: Annotated[Any, Meta(description="The value the profile sets.")]
    direction: Annotated[
        str, Meta(description="`loosened`, `tightened` or `changed`: how the change moves the bar.")
    ]
    measures: Annotated[list[str], Meta(description="The measures it affects (empty: it may affect any).")]
    text: Annotated[str, Meta(description="The deviation as one line (the same as in `deviations`).")]


class ProfileBlock(_Block, frozen=True):
    """The profile the findings were judged with: its thresholds and how it deviates from the defaults."""

    name: Annotated[str, Meta(description="The profile's name (`default` for the packaged one).")]
    source: Annotated[
        str, Meta(description="Where it came from: `builtin:default` or the profile file's path.")
    ]
    thresholds: Annotated[
        dict[str, Any],
        Meta(description="Every threshold the checks read, name → value (numbers, strings, lists)."),
    ]
    advisory: Annotated[
        list[str], Meta(description="Measure ids tailored to advisory (a fail is reported as warn), sorted.")
    ]
    modality: Annotated[
        dict[str, str], Meta(description="Modality overrides, measure id → `must` or `should`, sorted.")
    ]
    tailored: Annotated[bool, Meta(description="True when anything differs from the packaged default.")]
    deviations: Annotated[list[str], Meta(description="Each deviation from the defaults as one line.")]
    deviation_details: Annotated[
        list[Deviation], Meta(description="`deviations` as data, in the same order.")
    ]


class EntryUse(_Block, frozen=True):
    """One entry of an exceptions register or attestations file as the evaluation saw it."""

    id: Annotated[str, Meta(description="The entry's id in its file.")]
    measure: Annotated[str, Meta(description="The measure the entry covers.")]
    state: Annotated[
        str, Meta(description="`active`, `expired` or `pending` (starts after the evaluation date).")
    ]
    valid_from: Annotated[date, Meta(description="First valid day (approval or attestation date).")]
    valid_until: Annotated[date, Meta(description="Last valid day (expiry or valid-until date).")]
    days_left: Annotated[
        int, Meta(description="Days from the evaluation date to the last valid day (negative: expired).")
    ]
    matched: Annotated[int, Meta(description="Findings within its measure and scope, whatever their status.")]
    applied: Annotated[int, Meta(description="Findings it changed (waived, or attested to pass/error).")]
    notes: Annotated[list[str], Meta(description="Stale, expired or expiring-soon notes on the entry.")]


class RegisterUse(_Block, frozen=True):
    """An exceptions register or attestations file used by the evaluation: where it came from and its
    entries' states."""

    path: Annotated[str, Meta(description="The file as given on the command line.")]
    sha256: Annotated[str, Meta(description="SHA-256 of the file's bytes, hex.")]
    entries: Annotated[int, Meta(description="How many entries the file has.")]
    by_state: Annotated[
        dict[str, int],
        Meta(description="Entries per state: `active`, `expired`, `pending` (always all three)."),
    ]
    applied: Annotated[int, Meta(description="Findings changed by the file's entries, in total.")]
    notes: Annotated[list[str], Meta(description="Every entry note, each prefixed by its entry id.")]
    entry_use: Annotated[list[EntryUse], Meta(description="Each entry's use, in file order.")]


class BundleProvenance(_Block, frozen=True):
    """The evidence bundle an evaluation read its facts from (``hvguard evaluate BUNDLE``)."""

    path: Annotated[str, Meta(description="The bundle file as given on the command line.")]
    sha256: Annotated[
        str, Meta(description="SHA-256 of the bundle file's bytes as stored (gzip or not), hex.")
    ]
    created_at: Annotated[
        str, Meta(description="When `hvguard collect` wrote it, as the bundle says (ISO 8601, UTC).")
    ]
    tool_version: Annotated[str, Meta(description="The hvguard version that wrote it, as the bundle says.")]
    signed_by: Annotated[
        str | None,
        Meta(
            description="SHA-256 (hex) of the DER SubjectPublicKeyInfo of the Ed25519 key its detached "
            "signature was verified with (`--verify`); null when no signature was verified — then "
            "nothing shows who wrote the bundle or that it was not edited."
        ),
    ]
    targets: Annotated[
        list[str],
        Meta(
            description="The ids of the targets this bundle gave the evaluation, as `targets[].id` names "
            "them (a `local` target of an estate of several bundles takes the bundle file's name)."
        ),
    ] = []


class Source(_Block, frozen=True):
    """Where the evaluated facts came from, when not from a live collection."""

    bundle: Annotated[
        BundleProvenance | None,
        Meta(description="The evidence bundle read when exactly one was; null otherwise (see `bundles`)."),
    ]
    bundles: Annotated[
        list[BundleProvenance],
        Meta(
            description="Every evidence bundle read (`hvguard evaluate BUNDLE_OR_DIR...`), in the order "
            "evaluated (a directory's bundles sorted by name); one entry for a single bundle."
        ),
    ] = []


class HypervisorInfo(_Block, frozen=True):
    """The hypervisor a target's libvirt connection answered from."""

    type: Annotated[str | None, Meta(description="The hypervisor type libvirt reports (e.g. `QEMU`).")]
    version: Annotated[str | None, Meta(description="The hypervisor's version.")]
    libvirt: Annotated[str | None, Meta(description="The libvirt version.")]


class CollectionProblem(_Block, frozen=True):
    """A fact that could not be collected or parsed on a target."""

    area: Annotated[
        str,
        Meta(description="The fact group, dotted (`host.cpu`, `host.qemu_conf`, `hypervisor`, `vm:NAME`)."),
    ]
    source: Annotated[str, Meta(description="The file, command or API call involved.")]
    message: Annotated[str, Meta(description="Why, in one line.")]


class TargetCollection(_Block, frozen=True):
    """With what privilege a target was collected, and what it could therefore not read."""

    privileged: Annotated[
        bool | None,
        Meta(
            description="True when collected as root (effective uid 0 locally; over SSH the remote script "
            "ran as root or through sudo); false without root; null when not recorded (an older bundle)."
        ),
    ]
    unreadable: Annotated[
        list[str],
        Meta(
            description="Host paths that exist but could not be read (permission denied); the measures that "
            "need them are `error`."
        ),
    ]
    tls_verified: Annotated[
        bool | None,
        Meta(
            description="For targets reached over TLS by hvguard itself (`vsphere://`): true when the "
            "server's certificate was verified, false when the user chose `--tls-insecure`; null for "
            "other targets."
        ),
    ] = None


class Target(_Block, frozen=True):
    """One target that was evaluated: what it is, when it was collected, and what could not be."""

    id: Annotated[str, Meta(description="The target as named on the command line (URI or `local`).")]
    platform: Annotated[str, Meta(description="The platform, e.g. `kvm-libvirt`.")]
    hostname: Annotated[
        str | None, Meta(description="The host's name (from its files, else from the hypervisor).")
    ]
    uri: Annotated[str | None, Meta(description="The hypervisor connection URI; null without one.")]
    hypervisor: Annotated[
        HypervisorInfo | None, Meta(description="The hypervisor that answered; null without a connection.")
    ]
    vm_count: Annotated[int, Meta(description="VMs defined on the hypervisor (0 without a connection).")]
    collected_at: Annotated[str, Meta(description="When the facts were collected (ISO 8601, UTC).")]
    collectors: Annotated[list[str], Meta(description="The collectors that ran, in order.")]
    unreachable: Annotated[
        str | None, Meta(description="Why nothing could be collected; null when the target answered.")
    ]
    problems: Annotated[
        list[CollectionProblem], Meta(description="Facts that could not be collected or parsed.")
    ]
    collection: Annotated[
        TargetCollection,
        Meta(description="Whether the collection ran privileged, and the paths it could not read."),
    ]
    verdict: Annotated[
        Verdict,
        Meta(
            description="`not_assessed` when nothing could be collected (`unreachable` says why); "
            "`not_compliant` when a binding measure (must or conditional, as the profile tailors it) has a "
            "`fail` or `error` finding on this target after waivers; else `compliant` (`warn`, `manual`, "
            "`waived`, `pass`, `not_applicable` leave it compliant; `summary.by_target` counts them)."
        ),
    ]
    groups: Annotated[
        list[str],
        Meta(
            description="The target's inventory groups (`--inventory`: Ansible groups, sorted; Ansible's "
            "implicit `all` and `ungrouped` are never listed); empty for a target given without an "
            "inventory or in no group."
        ),
    ] = []


class Result(_Block, frozen=True):
    """One finding: a verdict on one measure for one subject (``host`` or ``vm:NAME``) of one target."""

    measure: Annotated[str, Meta(description="The measure id, e.g. `11.3.3`.")]
    title: Annotated[str, Meta(description="The measure's title from the catalog.")]
    status: Annotated[Status, Meta(description="The verdict.")]
    target: Annotated[str, Meta(description="The id of the target (see `targets`).")]
    subject: Annotated[str, Meta(description="`host` or `vm:NAME`.")]
    message: Annotated[str, Meta(description="The verdict in words (for not_applicable: the reason).")]
    evidence: Annotated[
        dict[str, Any], Meta(description="The fact values the verdict was based on (free-form per check).")
    ]
    remediation: Annotated[
        str | None, Meta(description="The exact fix (config lines, libvirt XML, commands); null if none.")
    ]
    waiver: Annotated[
        dict[str, Any] | None,
        Meta(description="The active exception that turned a fail/warn into waived; null otherwise."),
    ]
    attestation: Annotated[
        dict[str, Any] | None,
        Meta(description="The attestation that turned manual into pass (or error); null otherwise."),
    ]
    check: Annotated[str, Meta(description="The id of the check that gave the verdict.")]
    method: Annotated[str, Meta(description="How the verdict was reached: `facts`, `probe`, `attestation` …")]
    original_status: Annotated[
        Status | None,
        Meta(
            description="The checks' own status when the engine changed it (advisory, waiver, attestation)."
        ),
    ]
    untailored_status: Annotated[
        Status | None,
        Meta(description="The status under the default thresholds, when a loosened profile changed it."),
    ]
    notes: Annotated[list[str], Meta(description="Notes on the verdict (tailoring, register entries).")]


class TargetSummary(_Block, frozen=True):
    """One target's roll-up: its verdict, its findings per status and the measures that decided it."""

    verdict: Annotated[Verdict, Meta(description="The target's verdict (the same as `targets[].verdict`).")]
    by_status: Annotated[
        dict[Status, int],
        Meta(
            description="This target's findings per status; every status, in roll-up order (a "
            "`not_assessed` target has its `engine.unreachable` errors, one per measure)."
        ),
    ]
    blocking_measures: Annotated[
        list[str],
        Meta(
            description="The binding measures with a `fail` or `error` finding on this target, in catalog "
            "order: why it is `not_compliant` (empty otherwise)."
        ),
    ]


class GroupSummary(_Block, frozen=True):
    """One inventory group's roll-up: how many of its targets are compliant, and each measure's worst
    status on them."""

    targets: Annotated[int, Meta(description="Targets in the group (directly or through a child group).")]
    compliant: Annotated[int, Meta(description="Of them, `compliant`.")]
    not_compliant: Annotated[int, Meta(description="Of them, `not_compliant`.")]
    not_assessed: Annotated[int, Meta(description="Of them, `not_assessed` (nothing could be collected).")]
    by_measure: Annotated[
        dict[str, Status],
        Meta(
            description="Every catalog measure → the worst status of its findings on the group's assessed "
            "targets (on all of them when none could be assessed), as `summary.by_measure` for the estate."
        ),
    ]


class Summary(_Block, frozen=True):
    """The roll-ups: findings per status, each measure's worst status, each target's verdict."""

    by_status: Annotated[
        dict[Status, int], Meta(description="Findings per status; every status, in roll-up order.")
    ]
    by_measure: Annotated[
        dict[str, Status],
        Meta(
            description="Every catalog measure (all of them, always) → the worst status of its findings on "
            "the assessed targets only (when no target could be assessed: `error`, from the unreachable "
            "targets' findings)."
        ),
    ]
    by_target: Annotated[
        dict[str, TargetSummary],
        Meta(description="Every target id (in target order) → its verdict and counts."),
    ]
    not_assessed: Annotated[
        int, Meta(description="How many targets are `not_assessed` (nothing could be collected).")
    ]
    by_group: Annotated[
        dict[str, GroupSummary],
        Meta(
            description="Every inventory group of the targets (sorted by name) → its roll-up; empty when no "
            "target has a group (`targets[].groups`)."
        ),
    ] = {}


class SelectionBlock(_Block, frozen=True):
    """The filters that chose which findings `results` holds (`--measure`, `--vm`, `--status` …).

    A selection cuts what is shown only: `summary` rolls up every finding of the evaluation. Always
    present; empty lists and `false` when no filter was given.
    """

    measures: Annotated[
        list[str], Meta(description="`--measure`: measure ids (`11.3.10`) or section ids (`11.3`) kept.")
    ]
    skip_measures: Annotated[
        list[str], Meta(description="`--skip-measure`: measure or section ids left out.")
    ]
    vms: Annotated[
        list[str],
        Meta(description="`--vm`: shell globs over VM names; findings of other VMs are left out."),
    ]
    skip_host: Annotated[
        bool, Meta(description="`--skip-host`: findings not about a VM (`host` …) are left out.")
    ]
    statuses: Annotated[list[Status], Meta(description="`--status`: the statuses kept (empty: all).")]
    results_total: Annotated[int, Meta(description="Findings in the evaluation, selected or not.")]
    results_selected: Annotated[int, Meta(description="Findings in `results` (those the filters kept).")]


class Report(_Block, frozen=True):
    """The ``hvguard.report/1`` document: one evaluation of one or more targets."""

    schema: Annotated[str, Meta(description="Always `hvguard.report/1`.")]
    generated_at: Annotated[str, Meta(description="When the report was written (ISO 8601, UTC, `Z`).")]
    tool: Annotated[Tool, Meta(description="The program that wrote it.")]
    catalog: Annotated[CatalogRef, Meta(description="The standard evaluated.")]
    profile: Annotated[ProfileBlock, Meta(description="The profile the findings were judged with.")]
    as_of: Annotated[date | None, Meta(description="The date exceptions and attestations were judged on.")]
    exceptions: Annotated[
        RegisterUse | None, Meta(description="The exceptions register used; null when none was given.")
    ]
    attestations: Annotated[
        RegisterUse | None, Meta(description="The attestations file used; null when none was given.")
    ]
    source: Annotated[
        Source | None,
        Meta(description="Where the facts came from when not collected live (a bundle); null for a scan."),
    ]
    targets: Annotated[list[Target], Meta(description="Every target, in the order given.")]
    results: Annotated[
        list[Result],
        Meta(description="Every finding the `selection` keeps (all by default), target by target."),
    ]
    summary: Annotated[Summary, Meta(description="The roll-ups.")]
    selection: Annotated[
        SelectionBlock, Meta(description="The filters that chose `results`; `summary` covers everything.")
    ]
