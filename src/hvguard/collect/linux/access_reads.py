"""What the access-control collector reads and runs (its declaration; the manifest and the SSH fetch
list are assembled from it). Plain data, so the manifest can gather it without importing the collector.
"""

from __future__ import annotations

from hvguard.collect.interface import Command, Fetch, read_files, stat_files

#: Read-only commands of the access-control collector.
ACCESS_COMMANDS: tuple[Command, ...] = (
    Command(
        "sshd-effective-config",
        ("sshd", "-T"),
        "sshd's effective configuration (11.4.2, 11.4.3, 11.4.6)",
        needs_root=True,
    ),
    Command(
        "krb5-keytab-stat",
        ("stat", "-c", "%s", "/etc/krb5.keytab"),
        "whether the host has a Kerberos keytab, and its size — never its keys (11.4.1)",
    ),
)

#: Every path the access-control collector reads: files whole, then paths judged by existence and mode.
ACCESS_READS: tuple[Fetch, ...] = (
    *read_files(
        # Access control (11.2.2–11.2.5, 11.4.1–11.4.6). /etc/krb5.keytab is deliberately absent: keys.
        "etc/ssh/sshd_config",
        "etc/ssh/sshd_config.d/*",
        "etc/ssh/sshd_not_to_be_run",
        "etc/pam.d/*",
        "usr/lib/pam.d/*",
        "etc/passwd",
        "etc/group",
        "etc/sudoers",
        "etc/sudoers.d/*",
        "etc/sssd/sssd.conf",
        "etc/sssd/conf.d/*.conf",
        "etc/realmd.conf",
        "etc/krb5.conf",
        "etc/nsswitch.conf",
        "etc/polkit-1/rules.d/*.rules",
        "usr/share/polkit-1/rules.d/*.rules",
        "run/polkit-1/rules.d/*.rules",
        "usr/local/share/polkit-1/rules.d/*.rules",
        "etc/systemd/system/sshd.service",
    ),
    *stat_files(
        # Access: does sshd start at boot (only the wants-links and rc links exist or not).
        "etc/systemd/system/*.wants/ssh*",
        "etc/rc[235].d/S*ssh*",
        # Access: is there a Kerberos keytab, and its size (never its keys).
        "etc/krb5.keytab",
        # Access: is sshd installed (access_sshd.SSHD_BINARIES, when sshd -T gives no answer).
        "usr/sbin/sshd",
        "usr/local/sbin/sshd",
        "sbin/sshd",
    ),
)
