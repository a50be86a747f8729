"""What a file that is not a regular file is, in words: one wording for every reader that refuses one
(host files in offline roots, bundles, YAML inputs, key and secret files)."""

from __future__ import annotations

import stat


def kind_of(mode: int) -> str:
    """``a FIFO``, ``a character device``, ``a block device``, ``a socket``, ``a directory`` or ``a
    special file``, for the ``st_mode`` of a file that is not a regular file."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"
