"""What the image library checks (11.2.8–11.2.10, 11.3.8, 11.3.9) share: their subject, the finding for a
library that could not be read, and the verdict from a list of problems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hvguard.checks.base import CheckContext
from hvguard.facts import ImageLibraryFacts
from hvguard.findings import Finding

#: The subject of findings about the library as a whole.
LIBRARY = "library"


def unreadable(ctx: CheckContext, lib: ImageLibraryFacts) -> Finding:
    """``error``: the collector could not read the library's state (``lib.error`` says why)."""
    return ctx.error(LIBRARY, f"image library {lib.url}: {lib.error}", "image_library")


def judged(
    ctx: CheckContext,
    lib: ImageLibraryFacts,
    problems: Sequence[str],
    evidence: dict[str, Any],
    *,
    fix: str,
    passed: str,
) -> Finding:
    """``fail`` naming every problem (with ``fix``), or ``pass`` with the message ``passed``."""
    if problems:
        return ctx.failed(LIBRARY, f"Image library {lib.url}: " + "; ".join(problems) + ".", evidence, fix)
    return ctx.passed(LIBRARY, passed, evidence)
