"""Image names and versions as the library accepts them, and its one-line error type.

Light on purpose (no database or crypto imports): the ``push`` client checks names with it before it
connects, and every command starts faster for it.
"""

from __future__ import annotations

import re

#: Image names: slash-separated segments (the first segments are the image's group), no dot segments.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class StoreError(Exception):
    """The store cannot be created, opened or changed as asked (one line)."""


def check_image_name(name: str) -> str:
    """``name`` if it is a valid image name (``group/…/image``); path tricks such as ``..`` are refused."""
    segments = name.split("/")
    if len(name) > 200 or not all(_SEGMENT.match(s) and s not in {".", ".."} for s in segments):
        raise StoreError(
            f"invalid image name {name!r}: '/'-separated segments of letters, digits, '.', '_', '+', '-' "
            "(no empty, '.' or '..' segment)"
        )
    return name


def check_version(version: str) -> str:
    """``version`` if it is a valid image version."""
    if not _VERSION.match(version) or version in {".", ".."}:
        raise StoreError(f"invalid image version {version!r}")
    return version


def group_of(name: str) -> str:
    """An image's group: its name without the last segment (``""`` for a top-level image)."""
    return name.rpartition("/")[0]
