"""libvirt's configuration files (qemu.conf, libvirtd.conf) seen through libvirt's defaults.

Every check reads a libvirt setting through :class:`Conf`: the file's value with its ``FILE:LINE``, or
the built-in default from :data:`DEFAULTS` — the one table of libvirt/QEMU defaults, confirmed in
upstream libvirt source:

``src/qemu/qemu.conf.in`` and ``src/qemu/qemu_conf.c`` (``virQEMUDriverConfigNew``)
    ``security_driver``: auto-detect (SELinux, else AppArmor, else none; DAC is always stacked);
    ``security_default_confined = 1``; ``security_require_confined = 0``; ``seccomp_sandbox = 1``
    (-1 internally: on whenever QEMU supports it); ``dynamic_ownership = 1``; ``namespaces = ["mount"]``
    (privileged daemon); ``cgroup_device_acl`` = :data:`DEFAULT_CGROUP_DEVICE_ACL`; ``nbd_tls = 0``;
    ``migrate_tls_force = 0``; ``default_tls_x509_verify`` unset (migration and backup servers then
    verify client certificates, VNC does not); ``clear_emulator_capabilities = 1`` (the option is listed
    as deleted in the libvirt 9.0 augeas lens — newer releases always clear capabilities); ``user`` and
    ``group`` = the build-time ``@QEMU_USER@``/``@QEMU_GROUP@`` ("libvirt-qemu" on Debian, "qemu" on
    Fedora/RHEL, "root" on builds configured so), which the facts cannot show.
``src/remote/libvirtd.conf.in``
    ``listen_tls = 1`` (only with ``--listen`` or socket activation); ``listen_tcp = 0``;
    ``auth_tcp = "sasl"``; ``auth_tls = "none"``; ``unix_sock_ro_perms = "0777"``;
    ``unix_sock_rw_perms = "0770"``; ``unix_sock_admin_perms = "0700"``; ``auth_unix_ro``/``auth_unix_rw``
    = ``@default_auth@`` ("polkit" when built with polkit, else "none"; polkit's shipped
    ``org.libvirt.unix.monitor`` action allows any local user); ``access_drivers`` = the "nop" driver
    ("no access control checks are done once a client has authenticated"); ``tls_no_verify_certificate
    = 0``; ``audit_level = 1``.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import msgspec

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext
from hvguard.facts import ConfFile, HostFacts

#: libvirt's built-in cgroup device allow-list (qemu.conf.in, current upstream). Older releases omit
#: /dev/userfaultfd; anything else added widens every VM's device access.
DEFAULT_CGROUP_DEVICE_ACL = frozenset(
    {
        "/dev/null",
        "/dev/full",
        "/dev/zero",
        "/dev/random",
        "/dev/urandom",
        "/dev/ptmx",
        "/dev/kvm",
        "/dev/userfaultfd",
    }
)

_BUILD_DEFAULT_AUTH = "build default (polkit or none)"

#: The value libvirt uses when a key is absent, per file (``host.<file>``). Keys whose default the facts
#: cannot show (qemu.conf ``user``/``group``: build-time) or that are unset by default are not listed:
#: they read as None. Text values describe a default that is not a literal setting.
DEFAULTS: dict[str, dict[str, Any]] = {
    "qemu_conf": {
        "security_driver": "auto-detect",
        "security_default_confined": 1,
        "security_require_confined": 0,
        "seccomp_sandbox": 1,
        "namespaces": ["mount"],
        "dynamic_ownership": 1,
        "cgroup_device_acl": sorted(DEFAULT_CGROUP_DEVICE_ACL),
        "cgroup_controllers": "auto-detect",
        "clear_emulator_capabilities": 1,
        "nbd_tls": 0,
        "migrate_tls_force": 0,
    },
    "libvirtd_conf": {
        "listen_tls": 1,
        "listen_tcp": 0,
        "auth_tcp": "sasl",
        "auth_tls": "none",
        "tls_no_verify_certificate": 0,
        "unix_sock_group": "root",
        "unix_sock_ro_perms": "0777",
        "unix_sock_rw_perms": "0770",
        "unix_sock_admin_perms": "0700",
        "auth_unix_ro": _BUILD_DEFAULT_AUTH,
        "auth_unix_rw": _BUILD_DEFAULT_AUTH,
        "access_drivers": [],
        "audit_level": 1,
        "log_outputs": "libvirt default (journald under systemd)",
    },
}


class ConfValueError(CannotEvaluate):
    """A setting whose value libvirt itself would reject (wrong type); reported as ``error``."""

    def __init__(self, path: str, key: str, line: int | None, value: object, want: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        problem = f"{where}: {key} = {value!r} is not {want}"
        super().__init__(HOST, f"{path}: {problem}", evidence={"file": path, "invalid_setting": problem})
        self.path = path


class Setting(msgspec.Struct, frozen=True):
    """One effective setting: its value and where it came from (a file line or libvirt's default)."""

    path: str
    key: str
    value: Any
    line: int | None
    file_present: bool

    @property
    def explicit(self) -> bool:
        """True when the key is written in the file (False: libvirt's built-in default applies)."""
        return self.line is not None

    @property
    def source(self) -> str:
        """``FILE:LINE``, or which default applies."""
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return "default (key absent)" if self.file_present else f"default ({self.path} absent)"

    def evidence(self) -> dict[str, Any]:
        """The value and its source, as evidence."""
        return {"value": self.value, "source": self.source}

    def where(self) -> str:
        """Where a fix goes: the line to change, or the file to add the key to."""
        if self.line is not None:
            return f"{self.path} line {self.line}"
        return f"{self.path} (add)"

    def as_int(self) -> int:
        """The value as libvirt reads an integer or boolean setting."""
        v = self.value
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, str) and re.fullmatch(r"\s*-?\d+\s*", v):
            return int(v)
        raise ConfValueError(self.path, self.key, self.line, v, "an integer")

    def as_str(self) -> str:
        """The value as a string setting."""
        if isinstance(self.value, str):
            return self.value
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            return str(self.value)
        raise ConfValueError(self.path, self.key, self.line, self.value, "a string")

    def as_list(self) -> list[str]:
        """The value as a list setting (libvirt also accepts a single string for most list keys)."""
        if isinstance(self.value, list):
            return [str(x) for x in self.value]
        if isinstance(self.value, str):
            return [self.value]
        raise ConfValueError(self.path, self.key, self.line, self.value, "a list of strings")

    def as_mode(self) -> int:
        """An octal permission string such as ``"0770"``."""
        raw = str(self.value).strip()
        if isinstance(self.value, bool) or not re.fullmatch(r"[0-7]{1,4}", raw):
            raise ConfValueError(self.path, self.key, self.line, self.value, "an octal mode")
        return int(raw, 8)


class Conf:
    """A parsed libvirt config file (``host.<which>``) seen through libvirt's defaults."""

    __slots__ = ("file", "which")

    def __init__(self, file: ConfFile, which: str) -> None:
        self.file = file
        self.which = which

    @property
    def path(self) -> str:
        """The file's path."""
        return self.file.path

    def get(self, key: str) -> Setting:
        """The effective setting ``key``: the file's value, else libvirt's default (:data:`DEFAULTS`)."""
        return self._setting(key, DEFAULTS[self.which].get(key))

    def written(self, key: str) -> Setting:
        """The setting as the file writes it: None (no default) when the key is absent."""
        return self._setting(key, None)

    def _setting(self, key: str, default: Any) -> Setting:
        cv = self.file.values.get(key)
        if cv is None:
            return Setting(self.path, key, default, None, self.file.present)
        return Setting(self.path, key, cv.value, cv.line, self.file.present)


def fmt_value(value: Any) -> str:
    """A value written the way libvirt config files spell it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[ " + ", ".join(f'"{v}"' for v in value) + " ]"
    return f'"{value}"'


def fix_line(s: Setting, value: Any) -> str:
    """One remediation line: where to write ``key = value``."""
    return f"{s.where()}: {s.key} = {fmt_value(value)}"


def load_conf(ctx: CheckContext, host: HostFacts, which: str) -> Conf:
    """``host.<which>`` (``qemu_conf`` or ``libvirtd_conf``) as a :class:`Conf`.

    A malformed file raises :class:`CannotEvaluate` naming the file and line; so does an unread file
    (recorded as a problem) — only a file that truly does not exist means "libvirt's defaults apply".
    """
    cf: ConfFile = getattr(host, which)
    if cf.error is not None:
        raise CannotEvaluate(
            HOST,
            f"{posixpath.basename(cf.path)} settings (unusable file: {cf.error})",
            evidence={"file": cf.path, "parse_error": cf.error},
        )
    if not cf.present and ctx.problems(f"host.{which}"):
        raise CannotEvaluate(HOST, f"{cf.path} (it could not be read)", f"host.{which}")
    return Conf(cf, which)


def restart_note() -> str:
    """The restart every qemu.conf / libvirtd.conf change needs."""
    return "Then restart the daemon: systemctl restart libvirtd (virtqemud on modular-daemon hosts)."


MODULAR_NOTE = (
    "libvirtd.conf applies to the monolithic libvirtd; hosts running modular daemons (virtqemud, "
    "virtproxyd) read virtqemud.conf/virtproxyd.conf instead, which are not collected yet."
)
