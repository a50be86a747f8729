"""Every option name of every command, so a configuration file is checked without importing them all.

Importing every command module to learn its options would cost each run more than half a second; this
table is kept equal to the commands' real options by ``tests/test_config_file.py``, which prints the new
table when a command gains or loses an option.
"""

from __future__ import annotations

OPTION_NAMES: frozenset[str] = frozenset(
    {
        "accept-new-host-key",
        "ansible-hosts",
        "apply",
        "as-of",
        "attestations",
        "baseline",
        "check-config",
        "concurrency",
        "config",
        "config-only",
        "coverage",
        "data-dir",
        "db",
        "dry-run",
        "emit-ansible",
        "exceptions",
        "expiring-within",
        "fail-on",
        "force",
        "format",
        "identity",
        "keys",
        "known-hosts",
        "limit",
        "list",
        "log-level",
        "match",
        "measure",
        "no-history",
        "no-host",
        "output",
        "platform",
        "poll-interval",
        "probe-acl",
        "profile",
        "quiet",
        "reconnect-max",
        "retry-max",
        "root",
        "sign",
        "skip-host",
        "skip-measure",
        "ssh-timeout",
        "state",
        "status",
        "sudo",
        "syslog",
        "syslog-ca",
        "target",
        "undo",
        "verbose",
        "verify",
        "vm",
        "webhook",
        "webhook-ca",
        "webhook-secret-file",
    }
)
