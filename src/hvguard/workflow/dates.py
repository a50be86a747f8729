"""Calendar dates for registers and attestations: strict ISO parsing and end-of-day validity.

Approval, attestation and expiry dates are calendar dates, not instants. An entry valid until
2026-11-27 is valid for the whole of that day in the evaluation's timezone, so validity is decided by
comparing dates (``as_of <= until``) — never by converting to timestamps, which is how a date-only
expiry ends at midnight UTC and expires early east of Greenwich or late west of it.
"""

from __future__ import annotations

import re
from datetime import date, datetime

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class DateFormatError(ValueError):
    """A value that is not a calendar date in ISO form (YYYY-MM-DD)."""


def parse_calendar_date(value: object) -> date:
    """``value`` as a date: a YAML date or a ``"YYYY-MM-DD"`` string; anything else is refused.

    Refused on purpose: timestamps (a validity is a whole day), ``2026-1-10`` and ``10/01/2026``
    (ambiguous or not ISO), numbers, and impossible dates such as ``2026-02-30``.
    """
    if isinstance(value, datetime):  # checked first: datetime is a subclass of date
        raise DateFormatError(f"{value.isoformat()} is a timestamp; give a calendar date YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_DATE.fullmatch(text):
            raise DateFormatError(f"{value!r} is not an ISO date YYYY-MM-DD")
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise DateFormatError(f"{value!r} is not a real date ({exc})") from exc
    raise DateFormatError(f"{value!r} is not a date; give YYYY-MM-DD")


def local_today() -> date:
    """Today's date in the local timezone (``TZ``), the default evaluation date."""
    return date.today()


def days_left(until: date, as_of: date) -> int:
    """Whole days from ``as_of`` to ``until``: 0 on the last valid day, negative once expired."""
    return (until - as_of).days
