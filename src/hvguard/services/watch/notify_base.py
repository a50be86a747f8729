"""The interface every notification channel implements."""

from __future__ import annotations

from typing import Any, Protocol


class NotifyError(Exception):
    """A delivery attempt failed; the message is one line and holds no secret."""


class Notifier(Protocol):
    """Sends one notification; returns only when the channel accepted it, raises :class:`NotifyError`
    otherwise (the outbox keeps the notification and retries)."""

    key: str
    """The stable channel id (``webhook:URL`` …), safe to log."""

    def send(self, payload: dict[str, Any], body: str) -> None:
        """Deliver ``payload`` whose exact JSON text is ``body``."""


def one_line(exc: BaseException) -> str:
    """An exception as one line (type name when it has no text)."""
    return " ".join(str(exc).split()) or type(exc).__name__
