"""``ssh://[user@]host[:port]`` targets: parsing and validation (no SSH library imported here).

Kept apart from the transport so that ``validate_target`` and the CLI can check a target list without
loading asyncssh.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hvguard.collect.interface import CollectError

SSH_SCHEME = "ssh"
DEFAULT_PORT = 22
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONCURRENCY = 32

# What ssh(1) itself accepts as a user name on the command line is broad; refusing control characters,
# spaces and shell metacharacters costs nothing and keeps log lines and known_hosts entries clean.
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9._:-]{1,253}")


class SshTargetError(CollectError, ValueError):
    """An ``ssh://`` target string hvguard cannot use (a usage error)."""


@dataclass(frozen=True)
class SshTarget:
    """One parsed ``ssh://`` target: ``user`` is None when the target names none (the SSH default
    applies: ``~/.ssh/config`` or the local user name)."""

    text: str
    host: str
    port: int = DEFAULT_PORT
    user: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` as shown in messages (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host as an OpenSSH known_hosts line names it: ``host`` on port 22, else ``[host]:port``."""
        if self.port == DEFAULT_PORT:
            return self.host
        return f"[{self.host}]:{self.port}"


def is_ssh_target(target: str) -> bool:
    """True for strings that use the ``ssh://`` scheme."""
    return target.lower().startswith(f"{SSH_SCHEME}://")


def parse_ssh_target(target: str) -> SshTarget:
    """Parse ``ssh://[user@]host[:port]``; raise :class:`SshTargetError` with a one-line reason."""
    if not is_ssh_target(target):
        raise SshTargetError(f"{target}: not an ssh:// target")
    try:
        parts = urlsplit(target)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
        raise SshTargetError(f"{target}: not a valid URI ({exc})") from None
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise SshTargetError(f"{target}: an ssh:// target is ssh://[user@]host[:port], with no path or query")
    if parts.password is not None:
        # A password in the target would end up in reports, bundles and shell history.
        raise SshTargetError(f"{target}: passwords in targets are not supported; use keys or ssh-agent")
    host = parts.hostname
    if not host:
        raise SshTargetError(f"{target}: no host name")
    if not _HOST.fullmatch(host):
        raise SshTargetError(f"{target}: {host!r} is not a host name or address")
    try:
        port = parts.port
    except ValueError:
        raise SshTargetError(f"{target}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise SshTargetError(f"{target}: the port must be a number from 1 to 65535")
    user = unquote(parts.username) if parts.username is not None else None
    if user is not None and not _USER.fullmatch(user):
        raise SshTargetError(f"{target}: {user!r} is not a user name")
    return SshTarget(text=target, host=host, port=port or DEFAULT_PORT, user=user)


class SshOptionError(CollectError, ValueError):
    """A bad SSH option (unreadable --identity, malformed known_hosts): a usage error."""


def default_known_hosts() -> Path:
    """``~/.ssh/known_hosts`` of the user running hvguard."""
    return Path("~/.ssh/known_hosts").expanduser()


@dataclass(frozen=True)
class HostSsh:
    """One target's own SSH settings (from an inventory: ``ansible_ssh_private_key_file``,
    ``ansible_become``), on top of the run's options."""

    identity: Path | None = None
    sudo: bool = False


@dataclass(frozen=True)
class SshOptions:
    """How ``ssh://`` targets are reached (the CLI's ``--known-hosts``, ``--accept-new-host-key``,
    ``--identity``, ``--sudo``, ``--ssh-timeout`` and ``--concurrency``)."""

    known_hosts: Path = field(default_factory=default_known_hosts)
    accept_new_host_key: bool = False
    identity: Path | None = None
    sudo: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    """Per target: connecting, authenticating and running the script."""
    concurrency: int = DEFAULT_CONCURRENCY
    hosts: Mapping[str, HostSsh] = field(default_factory=dict, compare=False)
    """Per target (the ``ssh://`` text as given): its own key and sudo, e.g. from ``--inventory``."""

    def identity_for(self, target: str) -> Path | None:
        """The private key for ``target``: its own (inventory) key, else ``--identity``."""
        own = self.hosts.get(target)
        return own.identity if own is not None and own.identity is not None else self.identity

    def sudo_for(self, target: str) -> bool:
        """Whether ``target``'s script runs through ``sudo -n``: ``--sudo``, or the target's own setting."""
        own = self.hosts.get(target)
        return self.sudo or (own is not None and own.sudo)

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise SshOptionError("--ssh-timeout must be more than 0 seconds")
        if self.concurrency < 1:
            raise SshOptionError("--concurrency must be at least 1")
