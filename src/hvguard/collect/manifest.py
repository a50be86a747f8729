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
    slow: bool = False
    """True for commands that take seconds (package-cache readers): a live collection starts them first,
    in the background, so they overlap with reading files."""


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
    Command(
        "krb5-keytab-stat",
        ("stat", "-c", "%s", "/etc/krb5.keytab"),
        "whether the host has a Kerberos keytab, and its size — never its keys (11.4.1)",
    ),
    # Operations (11.4.4, 11.4.8, 11.4.9, 11.4.12, 11.4.13): all read-only.
    Command(
        "ip6tables-save", ("ip6tables-save",), "the ip6tables ruleset (11.4.9, 11.4.12)", needs_root=True
    ),
    Command("ip-addr", ("ip", "-j", "addr", "show"), "interface addresses (11.4.12)"),
    Command(
        "file-meta",
        (
            "find",
            "/var/log/audit",
            "/var/lib/libvirt/images",
            "/var/log",
            "/var/lib/apt/periodic",
            "/run/reboot-required",
            "-maxdepth",
            "1",
            "-printf",
            "%m\\t%U\\t%G\\t%u\\t%g\\t%T@\\t%y\\t%p\\n",
        ),
        "owner, group, mode and age of log and image files, as the host sees them (11.2.8, 11.4.4, 11.4.8, "
        "11.4.10)",
        needs_root=True,
    ),
    Command(
        "ip-link", ("ip", "-d", "-j", "link", "show"), "bridges, bonds, VLANs and NICs (11.4.12, 11.4.13)"
    ),
    Command(
        "apt-list-upgradable",
        ("apt", "list", "--upgradable"),
        "pending updates and their suites, from the package cache; installs nothing (11.4.8)",
        timeout_s=60.0,
        slow=True,
    ),
    Command(
        "dnf-security-list",
        ("dnf", "-q", "-C", "updateinfo", "list", "--security"),
        "pending security advisories from the cached metadata (11.4.8)",
        timeout_s=60.0,
        slow=True,
    ),
    Command(
        "dnf-security-info",
        ("dnf", "-q", "-C", "updateinfo", "info", "--security"),
        "the issue date of each pending security advisory (11.4.8)",
        timeout_s=60.0,
        slow=True,
    ),
)

#: Files (glob patterns relative to the host root) the collectors read. The SSH transport fetches these.
FILES: tuple[str, ...] = (
    # Access control (11.2.2–11.2.5, 11.4.1–11.4.6). /etc/krb5.keytab is deliberately absent: key material.
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
    # Operations: logging (11.4.4, 11.4.10, 11.4.11)
    "etc/audit/auditd.conf",
    "etc/audit/audit.rules",
    "etc/audit/rules.d/*.rules",
    "etc/audit/plugins.d/*.conf",
    "etc/audisp/plugins.d/*.conf",
    "etc/audit/audisp-remote.conf",
    "etc/audisp/audisp-remote.conf",
    "etc/rsyslog.conf",
    "etc/rsyslog.d/*",
    "etc/syslog-ng/syslog-ng.conf",
    "etc/syslog-ng/conf.d/*",
    "etc/systemd/journald.conf",
    "etc/systemd/journald.conf.d/*.conf",
    "run/systemd/journald.conf",
    "run/systemd/journald.conf.d/*.conf",
    "usr/lib/systemd/journald.conf",
    "usr/local/lib/systemd/journald.conf.d/*.conf",
    "usr/lib/systemd/journald.conf.d/*.conf",
    "etc/systemd/journal-upload.conf",
    "etc/systemd/journal-upload.conf.d/*.conf",
    "usr/lib/systemd/journal-upload.conf.d/*.conf",
    "etc/systemd/system/*.wants/systemd-journal-upload.service",
    "usr/lib/systemd/system/systemd-journal-upload.service",
    "lib/systemd/system/systemd-journal-upload.service",
    "var/log/journal/*/fss",
    # Operations: firewall and listening sockets (11.4.9, 11.4.12)
    "etc/nftables.conf",
    "etc/nftables.d/*",
    "etc/sysconfig/nftables.conf",
    "etc/nftables/*.nft",
    "etc/iptables/rules.v4",
    "etc/iptables/rules.v6",
    "etc/sysconfig/iptables",
    "etc/sysconfig/ip6tables",
    "proc/net/tcp",
    "proc/net/tcp6",
    "proc/net/udp",
    "proc/net/udp6",
    # Operations: patches (11.4.8)
    "var/lib/apt/periodic/update-success-stamp",
    "etc/dpkg/dpkg.cfg",
    "etc/dnf/dnf.conf",
    "run/reboot-required",
    "run/reboot-required.pkgs",
    "var/run/reboot-required",
    "var/run/reboot-required.pkgs",
    "usr/share/update-notifier/notify-reboot-required",
    "etc/apt/apt.conf.d/*",
    "etc/dnf/automatic.conf",
    "etc/systemd/system/timers.target.wants/dnf*-automatic*.timer",
    # Operations: network (11.4.12, 11.4.13)
    "proc/net/route",
    "proc/net/ipv6_route",
    "proc/net/vlan/config",
    "sys/class/net/*/type",
    "sys/class/net/*/operstate",
    "sys/class/net/*/device",
    "sys/class/net/*/bridge",
    "sys/class/net/*/bonding",
    "sys/class/net/*/bonding/slaves",
    "sys/class/net/*/bonding/mode",
    "sys/class/net/*/tun_flags",
    "sys/class/net/*/master",
    "etc/libvirt/qemu/networks/*.xml",
    "run/libvirt/network/*.xml",
    # Operations: storage (11.2.8–11.2.10)
    "etc/libvirt/storage/*.xml",
    "run/libvirt/storage/*.xml",
    "proc/self/mountinfo",
    "proc/mounts",
    "etc/fstab",
    "etc/crypttab",
    "sys/dev/block/*",
    "sys/class/block/*",
    "sys/class/block/*/dm/uuid",
)

#: Paths whose existence, owner, group and mode the collectors judge but whose content must never be
#: copied (logs, VM images): the SSH transport should fetch these with ``stat`` only.
STAT_FILES: tuple[str, ...] = (
    # Access: does sshd start at boot (only the wants-links and rc links exist or not).
    "etc/systemd/system/*.wants/ssh*",
    "etc/rc[235].d/S*ssh*",
    # Access: is there a Kerberos keytab, and its size (never its keys).
    "etc/krb5.keytab",
    # Access: is sshd installed (access_sshd.SSHD_BINARIES, when sshd -T gives no answer).
    "usr/sbin/sshd",
    "usr/local/sbin/sshd",
    "sbin/sshd",
    "var/log/audit",
    "var/log/audit/*",
    "var/log/syslog",
    "var/log/messages",
    "var/log/auth.log",
    "var/log/secure",
    "var/log/kern.log",
    "var/log/daemon.log",
    "var/log/libvirt/libvirtd.log",
    "var/lib/libvirt/images",
    "var/lib/libvirt/images/*",
    # Patches (11.4.8): only their age says when the package lists were last refreshed (a few
    # hundred KiB of signed index that no check reads).
    "var/lib/apt/lists/*Release",
)

#: Directories whose entry names (not contents) the collectors read.
LIST_DIRS: tuple[str, ...] = (
    "sys/class/net",
    "sys/class/net/*/brif",
    "sys/class/block/*/slaves",
    "var/log/journal",
    "var/lib/libvirt/images",
)

#: Paths whose bytes hvguard never copies from a host, whatever a configuration file points at (key
#: material, password hashes, libvirt secrets): at most their existence, owner, mode and size are read.
NEVER_COPIED: tuple[str, ...] = (
    "etc/krb5.keytab",
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "etc/ssh/ssh_host_*_key",
    "etc/libvirt/secrets/*",
    "var/lib/libvirt/secrets/*",
    "etc/pki/*/private/*",
    "etc/ssl/private/*",
)
