"""Base of the facts model and the pieces every part shares: problems and parsed config files."""

from __future__ import annotations

import msgspec


class Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Base of every facts struct: immutable, keyword-only, strict when decoded from a bundle.

    ``gc=False``: facts are plain data that never form reference cycles, so the cycle collector need
    not track them — a fleet's or a 10,000-VM bundle's facts otherwise make every full collection walk
    them all.
    """


class Problem(Model, frozen=True, kw_only=True):
    """A fact that could not be collected or parsed.

    ``area`` is a dotted fact-group name (``host.cpu``, ``host.qemu_conf``, ``hypervisor``, ``vm:NAME``),
    ``source`` the file, command or API call involved, ``message`` a one-line reason.
    """

    area: str
    source: str
    message: str


class ConfValue(Model, frozen=True, kw_only=True):
    """One setting from a libvirt-style config file: its parsed value and where it was written."""

    value: str | int | bool | list[str]
    line: int


class ConfFile(Model, frozen=True, kw_only=True):
    """A parsed configuration file (qemu.conf, libvirtd.conf).

    ``present`` is False when the file does not exist (built-in defaults then apply); ``error`` holds the
    parse error (file and line) when it exists but could not be parsed.
    """

    path: str
    present: bool = False
    values: dict[str, ConfValue] = {}
    error: str | None = None
