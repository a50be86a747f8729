"""Attestations (SS-009 §4): signed-off statements, with evidence, for what facts cannot show.

An attestation covers one measure within a scope. On the evaluation date a *valid* attestation
(attested_on ≤ date ≤ valid_until, whole days) turns a matching ``manual`` finding into ``pass`` and
says by whom and until when. Only ``manual`` is attestable: a ``fail`` stays a fail (a statement does
not outweigh collected facts) and an ``error`` stays an error; both get a note. An expired attestation
leaves the finding ``manual`` with a note.

Evidence items are files (``path``, read relative to the attestations file, with the ``sha256`` they
had when attested) or links (``url``). A file whose digest differs, or that is missing, makes the
finding ``error``: the attested evidence is not what is on disk. A link cannot be fetched (hvguard
makes no network calls for this) and is recorded as "not verified: url". It does not stop the pass:
the attestation itself — a named person's dated statement — is what SS-009 accepts, as an attestation
with no evidence list does; the report shows plainly which evidence was and was not verified.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from hvguard.catalog import Catalog, load_catalog
from hvguard.findings import Finding, Status
from hvguard.workflow.dates import days_left, local_today
from hvguard.workflow.registerfile import Entry, Problem, RegisterError
from hvguard.workflow.scope import Scope, ScopeIndex, parse_scope
from hvguard.workflow.usage import EXPIRY_NOTICE_DAYS, EntryUse, SourceUse, state_on
from hvguard.workflow.validate import EntryReader, FieldSpec, field_names

KIND = "attestations"
#: The fields of an entry (the JSON Schema of the file is generated from this table).
ENTRY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", "id", "The entry's unique id in the file, e.g. `AT-001` (text: quote numbers)."),
    FieldSpec("measure", "measure", "The SS-009 measure attested, e.g. '11.4.9' (quoted)."),
    FieldSpec(
        "scope",
        "scope",
        "Which findings of the measure it covers: target, subject and check globs (all must match).",
    ),
    FieldSpec("statement", "text", "What the signatory states is true."),
    FieldSpec("attested_by", "text", "Who signed the statement off."),
    FieldSpec(
        "attested_on",
        "date",
        "The date the statement was signed off (YYYY-MM-DD); not in the future, not after valid_until.",
        why="the date the statement was signed off",
    ),
    FieldSpec(
        "valid_until",
        "date",
        "The last day the attestation holds (YYYY-MM-DD, a whole day in the evaluation's timezone).",
        why="every attestation must say until when it holds",
    ),
    FieldSpec(
        "evidence",
        "evidence",
        "Files (path with the sha256 they had when attested, relative to this file) or links (url).",
        required=False,
    ),
    FieldSpec("reference", "text", "A ticket or document reference.", required=False),
)
FIELDS = field_names(ENTRY_FIELDS)
#: The fields of one evidence item: exactly one of path or url; a path needs its sha256.
EVIDENCE_ITEM_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("path", "text", "A file, relative to the attestations file (or absolute).", required=False),
    FieldSpec("url", "text", "A link (scheme://…); recorded as not verified.", required=False),
    FieldSpec("sha256", "text", "The file's SHA-256 when attested, 64 hex digits.", required=False),
    FieldSpec("description", "text", "What the evidence is.", required=False),
)
EVIDENCE_FIELDS = field_names(EVIDENCE_ITEM_FIELDS)
_HINTS = {
    "expires_on": "attestations use valid_until",
    "expires": "did you mean valid_until?",
    "expiration_date": "did you mean valid_until?",
    "frequency": "give valid_until as a calendar date; durations such as '1m' are ambiguous",
    "updated": "did you mean attested_on?",
    "updated_by": "did you mean attested_by?",
    "explanation": "did you mean statement?",
    "status": "an attestation records that a manual measure is met; a known gap belongs in the exceptions "
    "register",
}
#: A file evidence item's digest, after surrounding blanks are removed.
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class EvidenceItem(msgspec.Struct, frozen=True):
    """One piece of evidence: a file with its digest at attestation time, or a link."""

    path: str | None
    url: str | None
    sha256: str | None
    description: str | None = None


class EvidenceCheck(msgspec.Struct, frozen=True):
    """What verifying one evidence item found."""

    item: EvidenceItem
    verified: bool
    result: str
    """``sha256 ok``, ``sha256 mismatch``, ``missing``, ``unreadable: …`` or ``not verified: url``."""
    actual_sha256: str | None = None

    @property
    def failed(self) -> bool:
        """True when the item contradicts the attestation (a file that is not what was attested)."""
        return self.item.path is not None and not self.verified

    def to_json(self) -> dict[str, Any]:
        """The item and its verification, as it appears in ``Finding.attestation['evidence']``."""
        out: dict[str, Any] = {"path": self.item.path} if self.item.path else {"url": self.item.url}
        out.update(
            {
                "sha256": self.item.sha256,
                "description": self.item.description,
                "verified": self.verified,
                "result": self.result,
            }
        )
        if self.actual_sha256 and self.actual_sha256 != self.item.sha256:
            out["actual_sha256"] = self.actual_sha256
        return out

    def __str__(self) -> str:
        detail = ""
        if self.actual_sha256 and self.item.sha256 and self.actual_sha256 != self.item.sha256:
            detail = f" (attested {self.item.sha256[:16]}…, file has {self.actual_sha256[:16]}…)"
        return f"{self.item.path or self.item.url}: {self.result}{detail}"


class Attestation(msgspec.Struct, frozen=True):
    """One signed-off statement from the attestations file."""

    id: str
    measure: str
    scope: Scope
    statement: str
    attested_by: str
    attested_on: date
    valid_until: date
    """Last day the attestation holds (whole day, evaluation timezone)."""
    evidence: tuple[EvidenceItem, ...] = ()
    reference: str | None = None
    line: int | None = None

    def state(self, as_of: date) -> str:
        """``active``, ``expired`` or ``pending`` on ``as_of``."""
        return state_on(self.attested_on, self.valid_until, as_of)

    def block(self, as_of: date, checks: tuple[EvidenceCheck, ...]) -> dict[str, Any]:
        """The ``Finding.attestation`` block (the documented shape plus measure, scope, reference and
        days_to_expiry; each evidence item carries its verification result)."""
        return {
            "id": self.id,
            "measure": self.measure,
            "scope": self.scope.to_json(),
            "statement": self.statement,
            "attested_by": self.attested_by,
            "attested_on": self.attested_on.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "days_to_expiry": days_left(self.valid_until, as_of),
            "reference": self.reference,
            "evidence": [c.to_json() for c in checks],
        }


class AttestationSet(msgspec.Struct, frozen=True):
    """A validated attestations file: entries in file order, lint warnings, and where evidence lives."""

    path: Path
    sha256: str
    entries: tuple[Attestation, ...]
    warnings: tuple[Problem, ...] = ()
    evidence_root: Path = msgspec.field(default_factory=Path)
    """The attestations file's directory: relative evidence paths are read from here."""


def _evidence(reader: EntryReader) -> tuple[EvidenceItem, ...]:
    raw = reader.data.get("evidence")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.problem("evidence", "evidence must be a list of {path, sha256} or {url} items")
        return ()
    items = []
    for n, item in enumerate(raw, start=1):
        where = f"evidence item {n}"
        if not isinstance(item, dict):
            reader.problem("evidence", f"{where} must be a mapping with path and sha256, or url")
            continue
        unknown = sorted(str(k) for k in item if k not in EVIDENCE_FIELDS)
        if unknown:
            reader.problem("evidence", f"{where}: unknown key(s) {', '.join(unknown)}")
        path, url, digest, desc = (item.get(k) for k in EVIDENCE_FIELDS)
        if (path is None) == (url is None):
            reader.problem("evidence", f"{where} needs exactly one of path or url")
            continue
        for name, value in (("path", path), ("url", url), ("sha256", digest), ("description", desc)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                reader.problem(
                    "evidence", f"{where}: {name} must be non-empty text (quote it), got {value!r}"
                )
        if path is not None and digest is None:
            reader.problem(
                "evidence", f"{where}: a file needs the sha256 it had when attested (sha256sum {path})"
            )
        if isinstance(digest, str) and not SHA256_HEX.fullmatch(digest.strip()):
            reader.problem("evidence", f"{where}: sha256 must be 64 hex digits, got {digest!r}")
        if isinstance(url, str) and "://" not in url:
            reader.problem("evidence", f"{where}: url {url!r} has no scheme (https://…)")
        items.append(
            EvidenceItem(
                path=path.strip() if isinstance(path, str) else None,
                url=url.strip() if isinstance(url, str) else None,
                sha256=digest.strip().lower() if isinstance(digest, str) else None,
                description=desc.strip() if isinstance(desc, str) else None,
            )
        )
    return tuple(items)


def _read_entry(
    entry: Entry, problems: list[Problem], catalog: Catalog, today: date, as_of: date
) -> Attestation | None:
    reader = EntryReader(entry, problems, ENTRY_FIELDS)
    if not reader.is_mapping():
        return None
    reader.check_keys(_HINTS)
    ident = reader.ident()
    measure = reader.measure(catalog)
    scope = parse_scope(entry, reader.data.get("scope"), problems)
    if scope is None:
        reader.ok = False
    statement = reader.text("statement")
    by = reader.text("attested_by")
    reference = reader.text("reference")
    on = reader.date("attested_on")
    until = reader.date("valid_until")
    evidence = _evidence(reader)
    if on is not None and until is not None and on > until:
        reader.problem("valid_until", f"valid_until {until} is before attested_on {on}")
    if on is not None and on > today:
        reader.problem("attested_on", f"attested_on {on} is in the future (today is {today})")
    if not reader.ok:
        return None
    assert ident and measure and scope and statement and by and on and until
    if until < as_of:
        reader.problem("valid_until", f"expired on {until}: attest again or remove it", severity="warning")
    return Attestation(
        id=ident,
        measure=measure,
        scope=scope,
        statement=statement,
        attested_by=by,
        attested_on=on,
        valid_until=until,
        evidence=evidence,
        reference=reference,
        line=entry.line,
    )


def check_attestations(
    path: Path, *, today: date | None = None, as_of: date | None = None, catalog: Catalog | None = None
) -> tuple[AttestationSet | None, list[Problem]]:
    """Validate the attestations file at ``path``: every problem, and the set when there is no error.

    ``today`` (default: local today) refuses attestation dates in the future; ``as_of`` (default:
    today) is the date expiry warnings are judged on. Raises :class:`RegisterError` only when the file
    cannot be parsed at all. Evidence digests are not checked here (see :func:`verify_evidence`)."""
    # PyYAML only when a file is read: the guard hook applies registers it unpickled.
    from hvguard.workflow.register_yaml import read_register

    cat = catalog or load_catalog()
    day = today or local_today()
    judged = as_of or day
    doc, problems = read_register(path, "attestations", KIND)
    entries: list[Attestation] = []
    first_line: dict[str, int | None] = {}
    for entry in doc.entries:
        item = _read_entry(entry, problems, cat, day, judged)
        label = entry.label
        if label in first_line and not label.startswith("entry #"):
            problems.append(
                Problem(label, f"duplicate id (first used on line {first_line[label]})", entry.line)
            )
        first_line.setdefault(label, entry.line)
        if item is not None:
            entries.append(item)
    if any(p.severity == "error" for p in problems):
        return None, problems
    warnings = tuple(p for p in problems if p.severity == "warning")
    root = path.resolve().parent
    return AttestationSet(path, doc.sha256, tuple(entries), warnings, root), problems


def load_attestations(
    path: Path, *, today: date | None = None, catalog: Catalog | None = None
) -> AttestationSet:
    """The validated attestations at ``path``; :class:`RegisterError` naming every bad entry otherwise."""
    found, problems = check_attestations(path, today=today, catalog=catalog)
    if found is None:
        raise RegisterError(path, KIND, [p for p in problems if p.severity == "error"])
    return found


def _sha256_file(path: Path) -> str:
    import hashlib  # only when an attestation in effect lists a file

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_evidence(att: Attestation, root: Path) -> tuple[EvidenceCheck, ...]:
    """Check each evidence item of ``att``: files by sha256 (relative paths from ``root``), links are
    recorded as not verified."""
    out = []
    for item in att.evidence:
        if item.path is None:
            out.append(EvidenceCheck(item, False, "not verified: url"))
            continue
        file = root / item.path
        if not file.is_file():
            out.append(EvidenceCheck(item, False, "missing" if not file.exists() else "not a file"))
            continue
        try:
            actual = _sha256_file(file)
        except OSError as exc:
            out.append(EvidenceCheck(item, False, f"unreadable: {exc.strerror or exc}"))
            continue
        ok = actual == item.sha256
        out.append(EvidenceCheck(item, ok, "sha256 ok" if ok else "sha256 mismatch", actual))
    return tuple(out)


def _attest(
    f: Finding, att: Attestation, checks: tuple[EvidenceCheck, ...], others: list[str], as_of: date
) -> bool:
    """Apply a valid attestation to a manual finding; True when it passed (False: evidence error)."""
    f.original_status = f.original_status or f.status
    f.method = "attestation"
    f.attestation = att.block(as_of, checks)
    asked = f.message
    bad = [c for c in checks if c.failed]
    if bad:
        f.status = Status.ERROR
        f.message = f"attestation {att.id} cannot be accepted: evidence " + "; ".join(str(c) for c in bad)
        f.remediation = (
            "Find out why the evidence differs from what was attested. If the change is legitimate, "
            "attest again and record the new digest (sha256sum "
            + " ".join(c.item.path or "" for c in bad)
            + f") in {att.id}; otherwise restore the attested file."
        )
        f.notes = [*f.notes, f"was manual: {asked}"]
        return False
    f.status = Status.PASS
    left = days_left(att.valid_until, as_of)
    until = f"valid until {att.valid_until}" + (" (last day)" if left == 0 else f" ({left} day(s) left)")
    f.message = f"attested by {att.attested_by} on {att.attested_on}, {until} [{att.id}]: {att.statement}"
    verified = sum(1 for c in checks if c.verified)
    notes = [f"manual → pass by attestation {att.id}; was manual: {asked}"]
    if checks:
        notes.append(f"evidence: {verified} of {len(checks)} item(s) verified by sha256")
    for c in checks:
        if not c.verified:
            notes.append(f"evidence not verified: url {c.item.url} (hvguard does not fetch links)")
    if not checks:
        notes.append("no evidence listed: the pass rests on the attester's statement alone")
    if others:
        notes.append(f"also attested by {', '.join(others)}")
    f.notes = [*f.notes, *notes]
    return True


def _note_not_applied(f: Finding, att: Attestation, state: str, as_of: date) -> None:
    if f.status in (Status.FAIL, Status.WARN):
        note = (
            f"{att.id} not applied: only manual findings can be attested; this one is {f.status.value} on "
            "collected facts (an accepted risk belongs in the exceptions register)"
        )
    elif f.status is Status.ERROR:
        note = f"{att.id} not applied: the measure could not be evaluated here (error); fix the cause first"
    elif state == "expired":
        note = f"{att.id} expired on {att.valid_until}: the measure needs a fresh attestation"
    else:
        note = f"{att.id} was attested on {att.attested_on}, after the evaluation date {as_of}: not in effect"
    f.notes = [*f.notes, note]


class _Tally(msgspec.Struct):
    total: int = 0
    applied: int = 0
    manual: int = 0
    refused: int = 0
    evidence_errors: int = 0


def _entry_notes(att: Attestation, state: str, as_of: date, seen: _Tally) -> tuple[str, ...]:
    left = days_left(att.valid_until, as_of)
    if state == "expired":
        extra = f"; {seen.manual} finding(s) in its scope are manual again" if seen.manual else ""
        return (f"expired on {att.valid_until} ({-left} day(s) before {as_of}): attest again{extra}",)
    if state == "pending":
        return (f"attested on {att.attested_on}, after the evaluation date {as_of}: not in effect",)
    notes = []
    if seen.total == 0:
        notes.append(
            "matched no finding in this evaluation — no evaluated target/subject/check is in its scope "
            "(a stale entry?)"
        )
    elif seen.applied == 0 and seen.refused:
        notes.append("matched only findings it cannot attest (fail, warn or error on collected facts)")
    elif seen.applied == 0:
        notes.append("matched no manual finding: the measure is decided by facts in its scope")
    if seen.evidence_errors:
        notes.append(f"evidence does not match on {seen.evidence_errors} finding(s): reported as error")
    if left <= EXPIRY_NOTICE_DAYS:
        notes.append("valid until today" if left == 0 else f"expires in {left} day(s), on {att.valid_until}")
    return tuple(notes)


def apply_attestations(
    findings: Iterable[Finding],
    attestations: AttestationSet,
    as_of: date,
    target_names: Mapping[str, frozenset[str]],
    target_groups: Mapping[str, tuple[str, ...]] | None = None,
) -> SourceUse:
    """Apply valid attestations to the manual findings they cover (in place); return how each entry
    was used. Evidence is verified once per attestation, only for attestations in effect."""
    grouped: dict[str, list[Attestation]] = defaultdict(list)
    for att in attestations.entries:
        grouped[att.measure].append(att)
    by_measure = {m: ScopeIndex.build(items, lambda a: a.scope) for m, items in grouped.items()}
    states = {a.id: a.state(as_of) for a in attestations.entries}
    tally = {a.id: _Tally() for a in attestations.entries}
    verified: dict[str, tuple[EvidenceCheck, ...]] = {}
    none: frozenset[str] = frozenset()
    groups_of = target_groups or {}
    for f in findings:
        index = by_measure.get(f.measure)
        if index is None:
            continue
        names = target_names.get(f.target, none)
        groups = groups_of.get(f.target, ())
        matching = [a for a in index.candidates(f.subject) if a.scope.matches(f, names, groups)]
        if not matching:
            continue
        for a in matching:
            tally[a.id].total += 1
        active = [a for a in matching if states[a.id] == "active"]
        if f.status is Status.MANUAL and active:
            att = active[0]
            if att.id not in verified:
                verified[att.id] = verify_evidence(att, attestations.evidence_root)
            tally[att.id].applied += 1
            if not _attest(f, att, verified[att.id], [a.id for a in active[1:]], as_of):
                tally[att.id].evidence_errors += 1
            continue
        for a in matching:
            if f.status in (Status.FAIL, Status.WARN, Status.ERROR):
                tally[a.id].refused += 1
                _note_not_applied(f, a, states[a.id], as_of)
            elif f.status is Status.MANUAL:
                tally[a.id].manual += 1
                _note_not_applied(f, a, states[a.id], as_of)
    return SourceUse(
        kind=KIND,
        path=str(attestations.path),
        sha256=attestations.sha256,
        entries=tuple(
            EntryUse(
                id=a.id,
                measure=a.measure,
                state=states[a.id],
                valid_from=a.attested_on,
                valid_until=a.valid_until,
                days_left=days_left(a.valid_until, as_of),
                matched=tally[a.id].total,
                applied=tally[a.id].applied,
                notes=_entry_notes(a, states[a.id], as_of, tally[a.id]),
                scope=a.scope.to_json(),
            )
            for a in attestations.entries
        ),
    )
