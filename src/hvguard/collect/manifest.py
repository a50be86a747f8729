"""The manifest: every read-only command and file hvguard may read on a host.

Collectors never run anything that is not listed here. ``hvguard collect --dry-run`` prints this list,
and the SSH transport runs exactly these commands (and reads exactly these files) on a remote host, so
an administrator can review what hvguard will do before granting it access. Every command must be
read-only: it reports state and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A read-only command: its manifest name, argument vector, why hvguard runs it."""

    name: str
    argv: tuple[str, ...]
    purpose: str
    needs_root: bool = False
    """True when the command only gives full answers as root (sshd -T reads the host keys)."""
    timeout_s: float = 20.0


def _commands(*items: Command) -> dict[str, Command]:
    return {c.name: c for c in items}


#: Read-only commands, by name. Collectors ask for a result by name (``source.run(name)``).
COMMANDS: dict[str, Command] = _commands(
    Command(
        "sshd-effective-config",
        ("sshd", "-T"),
        "sshd's effective configuration (11.4.2, 11.4.3, 11.4.6)",
        needs_root=True,
    ),
    Command(
        "nft-ruleset",
        ("nft", "-j", "list", "ruleset"),
        "the nftables ruleset (11.4.9, 11.4.12)",
        needs_root=True,
    ),
    Command("iptables-save", ("iptables-save",), "the iptables ruleset (11.4.9, 11.4.12)", needs_root=True),
    Command(
        "auditctl-status", ("auditctl", "-s"), "whether audit rules are immutable (11.4.4)", needs_root=True
    ),
)

#: Files (glob patterns relative to the host root) the collectors read. The SSH transport fetches these.
FILES: tuple[str, ...] = ()
