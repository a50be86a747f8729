"""The exceptions register (SS-009 §5): approved deviations, each with an owner, an approval and an expiry.

An entry covers one measure within a scope (target, subject and check globs). On the evaluation date
an *active* entry (approved_on ≤ date ≤ expires_on, whole days) turns a matching ``fail`` or ``warn``
into ``waived``, keeping the original status and evidence and attaching the exception. An expired or
not-yet-approved entry changes nothing but says so on the findings it would cover. ``error`` is never
waivable (nothing was evaluated) and ``manual`` needs an attestation, not an exception — both get a
note instead. The file is refused as a whole (exit 2) when any entry is wrong: a register that is
half-applied is worse than none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from hvguard.catalog import Catalog, load_catalog
from hvguard.findings import Finding, Status
from hvguard.workflow.dates import days_left, local_today
from hvguard.workflow.registerfile import Problem, RegisterError
from hvguard.workflow.scope import Scope, ScopeIndex, parse_scope
from hvguard.workflow.usage import EXPIRY_NOTICE_DAYS, EntryUse, SourceUse, state_on
from hvguard.workflow.validate import EntryReader, FieldSpec, field_names

KIND = "exceptions"
RISK_RATINGS = ("low", "medium", "high", "critical")
#: SS-009 is reviewed yearly; an exception approved for longer is allowed but flagged by lint.
LONG_VALIDITY_DAYS = 366

#: The fields of an entry (the JSON Schema of the file is generated from this table).
ENTRY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", "id", "The entry's unique id in the register, e.g. `EX-001` (text: quote numbers)."),
    FieldSpec("measure", "measure", "The SS-009 measure the exception covers, e.g. '11.3.3' (quoted)."),
    FieldSpec(
        "scope",
        "scope",
        "Which findings of the measure it covers: target, subject and check globs (all must match).",
    ),
    FieldSpec("title", "text", "A short name for the exception.", required=False),
    FieldSpec("justification", "text", "Why the measure cannot be met (the §5 risk record)."),
    FieldSpec("risk_owner", "text", "Who owns the accepted risk."),
    FieldSpec("approved_by", "text", "Who approved the exception."),
    FieldSpec(
        "approved_on",
        "date",
        "The approval date (YYYY-MM-DD); not in the future, not after expires_on.",
        why="the approval date is part of the §5 record",
    ),
    FieldSpec(
        "expires_on",
        "date",
        "The last day the exception is in effect (YYYY-MM-DD, a whole day in the evaluation's timezone).",
        why="every exception must have an expiry date",
    ),
    FieldSpec("risk_rating", "choice", "The rating of the accepted risk (any case).", choices=RISK_RATINGS),
    FieldSpec("compensating_controls", "text", "What reduces the risk meanwhile.", required=False),
    FieldSpec("reference", "text", "A ticket or corporate risk-register id.", required=False),
)
FIELDS = field_names(ENTRY_FIELDS)
_HINTS = {
    "expires": "did you mean expires_on?",
    "expiry": "did you mean expires_on?",
    "expiration_date": "did you mean expires_on?",
    "valid_until": "exceptions use expires_on",
    "frequency": "give expires_on as a calendar date; durations such as '1m' are ambiguous",
    "duration": "give expires_on as a calendar date; durations such as '1m' are ambiguous",
    "owner": "did you mean risk_owner?",
    "approver": "did you mean approved_by?",
    "rating": "did you mean risk_rating?",
    "severity": "did you mean risk_rating?",
    "ticket": "put a ticket or risk-register reference in reference",
}


class RiskException(msgspec.Struct, frozen=True):
    """One approved exception from the register."""

    id: str
    measure: str
    scope: Scope
    justification: str
    risk_owner: str
    approved_by: str
    approved_on: date
    expires_on: date
    """Last day the exception is in effect (whole day, evaluation timezone)."""
    risk_rating: str
    compensating_controls: str | None = None
    reference: str | None = None
    """A ticket or corporate risk-register id."""
    title: str | None = None
    line: int | None = None

    def state(self, as_of: date) -> str:
        """``active``, ``expired`` or ``pending`` on ``as_of``."""
        return state_on(self.approved_on, self.expires_on, as_of)

    def waiver(self, as_of: date) -> dict[str, Any]:
        """The ``Finding.waiver`` block (the documented shape plus measure, scope, reference,
        title and days_to_expiry)."""
        return {
            "id": self.id,
            "measure": self.measure,
            "scope": self.scope.to_json(),
            "title": self.title,
            "reference": self.reference,
            "risk_owner": self.risk_owner,
            "approved_by": self.approved_by,
            "approved_on": self.approved_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "days_to_expiry": days_left(self.expires_on, as_of),
            "risk_rating": self.risk_rating,
            "justification": self.justification,
            "compensating_controls": self.compensating_controls,
        }


class ExceptionRegister(msgspec.Struct, frozen=True):
    """A validated register file: its entries in file order and lint warnings."""

    path: Path
    sha256: str
    entries: tuple[RiskException, ...]
    warnings: tuple[Problem, ...] = ()


def _read_entry(reader: EntryReader, catalog: Catalog, today: date, as_of: date) -> RiskException | None:
    if not reader.is_mapping():
        return None
    reader.check_keys(_HINTS)
    ident = reader.ident()
    measure = reader.measure(catalog)
    scope = parse_scope(reader.entry, reader.data.get("scope"), reader.problems)
    if scope is None:
        reader.ok = False
    justification = reader.text("justification")
    owner = reader.text("risk_owner")
    approver = reader.text("approved_by")
    compensating = reader.text("compensating_controls")
    reference = reader.text("reference")
    title = reader.text("title")
    approved = reader.date("approved_on")
    expires = reader.date("expires_on")
    rating = reader.choice("risk_rating")
    if approved is not None and expires is not None and approved > expires:
        reader.problem(
            "expires_on", f"expires_on {expires} is before approved_on {approved}: approved after it expired"
        )
    if approved is not None and approved > today:
        reader.problem("approved_on", f"approved_on {approved} is in the future (today is {today})")
    if not reader.ok:
        return None
    assert ident and measure and scope and justification and owner and approver and approved and expires
    assert rating is not None
    if (expires - approved).days > LONG_VALIDITY_DAYS:
        reader.problem(
            "expires_on",
            f"valid for {(expires - approved).days} days: longer than a year (SS-009 is reviewed yearly)",
            severity="warning",
        )
    if expires < as_of:
        reader.problem("expires_on", f"expired on {expires}: renew or remove it", severity="warning")
    return RiskException(
        id=ident,
        measure=measure,
        scope=scope,
        justification=justification,
        risk_owner=owner,
        approved_by=approver,
        approved_on=approved,
        expires_on=expires,
        risk_rating=rating,
        compensating_controls=compensating,
        reference=reference,
        title=title,
        line=reader.entry.line,
    )


def check_exceptions(
    path: Path, *, today: date | None = None, as_of: date | None = None, catalog: Catalog | None = None
) -> tuple[ExceptionRegister | None, list[Problem]]:
    """Validate the register at ``path``: every problem (errors and warnings), and the register when
    there is no error.

    ``today`` (default: local today) refuses approval dates in the future — an approval cannot have
    happened yet; ``as_of`` (default: today) is the date expiry warnings are judged on. Raises
    :class:`RegisterError` only when the file cannot be parsed at all."""
    # PyYAML only when a file is read: the guard hook applies registers it unpickled.
    from hvguard.workflow.register_yaml import read_register

    cat = catalog or load_catalog()
    day = today or local_today()
    judged = as_of or day
    doc, problems = read_register(path, "exceptions", KIND)
    entries: list[RiskException] = []
    first_line: dict[str, int | None] = {}
    for entry in doc.entries:
        item = _read_entry(EntryReader(entry, problems, ENTRY_FIELDS), cat, day, judged)
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
    return ExceptionRegister(path, doc.sha256, tuple(entries), warnings), problems


def load_exceptions(
    path: Path, *, today: date | None = None, catalog: Catalog | None = None
) -> ExceptionRegister:
    """The validated register at ``path``; :class:`RegisterError` naming every bad entry otherwise."""
    register, problems = check_exceptions(path, today=today, catalog=catalog)
    if register is None:
        raise RegisterError(path, KIND, [p for p in problems if p.severity == "error"])
    return register


_WAIVABLE = (Status.FAIL, Status.WARN)


class _Tally(msgspec.Struct):
    """What one entry met while applying."""

    total: int = 0
    applied: int = 0
    open: int = 0
    """fail/warn findings it left as they were (the entry is expired or not yet approved)."""
    unwaivable: int = 0


def _waive(f: Finding, ex: RiskException, others: list[RiskException], as_of: date) -> None:
    before = f.status
    f.original_status = f.original_status or before
    f.status = Status.WAIVED
    f.waiver = ex.waiver(as_of)
    left = days_left(ex.expires_on, as_of)
    when = "expires today" if left == 0 else f"expires {ex.expires_on}, {left} day(s) left"
    notes = [
        f"waived by {ex.id} ({ex.risk_rating} risk; risk owner {ex.risk_owner}; approved by "
        f"{ex.approved_by} on {ex.approved_on}; {when}); status before the waiver: {before.value}"
    ]
    if others:
        notes.append(f"also covered by {', '.join(o.id for o in others)}")
    f.notes = [*f.notes, *notes]


def _note_unwaived(f: Finding, ex: RiskException, state: str, as_of: date) -> None:
    if f.status is Status.ERROR:
        note = (
            f"{ex.id} covers this measure but an error is never waived: the measure was not evaluated "
            "here (fix the cause; the exception applies once it can be evaluated)"
        )
    elif f.status is Status.MANUAL:
        note = (
            f"{ex.id} not applied: a manual finding needs an attestation (--attestations), not an exception"
        )
    elif state == "expired":
        note = f"{ex.id} expired on {ex.expires_on}: it no longer waives this finding"
    else:
        note = f"{ex.id} is approved from {ex.approved_on}, after the evaluation date {as_of}: not in effect"
    f.notes = [*f.notes, note]


def _entry_notes(ex: RiskException, state: str, as_of: date, seen: _Tally) -> tuple[str, ...]:
    left = days_left(ex.expires_on, as_of)
    if state == "expired":
        note = f"expired on {ex.expires_on} ({-left} day(s) before {as_of}): renew or remove it"
        if seen.open:
            note += f"; {seen.open} finding(s) in its scope are no longer waived"
        return (note,)
    if state == "pending":
        return (f"approved from {ex.approved_on}, after the evaluation date {as_of}: not in effect",)
    notes = []
    if seen.total == 0:
        notes.append(
            "matched no finding in this evaluation — no evaluated target/subject/check is in its scope "
            "(a stale register entry?)"
        )
    elif seen.applied == 0 and seen.open == 0 and seen.unwaivable == 0:
        notes.append(
            "matched only findings that pass or are not applicable: the measure is met in its scope, "
            "so the exception can be closed"
        )
    elif seen.applied == 0:
        notes.append("matched only findings it cannot waive (error or manual)")
    if left <= EXPIRY_NOTICE_DAYS:
        notes.append("expires today" if left == 0 else f"expires in {left} day(s), on {ex.expires_on}")
    return tuple(notes)


def apply_exceptions(
    findings: Iterable[Finding],
    register: ExceptionRegister,
    as_of: date,
    target_names: Mapping[str, frozenset[str]],
    target_groups: Mapping[str, tuple[str, ...]] | None = None,
) -> SourceUse:
    """Waive the findings active entries cover (in place) and return how each entry was used.

    With several active entries covering one finding, the first in file order is recorded as the
    waiver and the others are named in a note.
    """
    grouped: dict[str, list[RiskException]] = defaultdict(list)
    for ex in register.entries:
        grouped[ex.measure].append(ex)
    by_measure = {m: ScopeIndex.build(items, lambda ex: ex.scope) for m, items in grouped.items()}
    states = {ex.id: ex.state(as_of) for ex in register.entries}
    tally = {ex.id: _Tally() for ex in register.entries}
    none: frozenset[str] = frozenset()
    groups_of = target_groups or {}
    for f in findings:
        index = by_measure.get(f.measure)
        if index is None:
            continue
        names = target_names.get(f.target, none)
        groups = groups_of.get(f.target, ())
        matching = [ex for ex in index.candidates(f.subject) if ex.scope.matches(f, names, groups)]
        if not matching:
            continue
        for ex in matching:
            tally[ex.id].total += 1
        active = [ex for ex in matching if states[ex.id] == "active"]
        if f.status in _WAIVABLE and active:
            _waive(f, active[0], active[1:], as_of)
            tally[active[0].id].applied += 1
            continue
        for ex in matching:
            state = states[ex.id]
            if f.status in (Status.ERROR, Status.MANUAL):
                tally[ex.id].unwaivable += 1
                _note_unwaived(f, ex, state, as_of)
            elif f.status in _WAIVABLE:
                tally[ex.id].open += 1
                _note_unwaived(f, ex, state, as_of)
    return SourceUse(
        kind=KIND,
        path=str(register.path),
        sha256=register.sha256,
        entries=tuple(
            EntryUse(
                id=ex.id,
                measure=ex.measure,
                state=states[ex.id],
                valid_from=ex.approved_on,
                valid_until=ex.expires_on,
                days_left=days_left(ex.expires_on, as_of),
                matched=tally[ex.id].total,
                applied=tally[ex.id].applied,
                notes=_entry_notes(ex, states[ex.id], as_of, tally[ex.id]),
                scope=ex.scope.to_json(),
            )
            for ex in register.entries
        ),
    )
