"""What the operations collector reads and runs (its declaration; the manifest and the SSH fetch list
are assembled from it). Plain data, so the manifest can gather it without importing the collector.
"""

from __future__ import annotations

from hvguard.collect.interface import Command, Fetch, list_dirs, read_files, stat_files

#: Read-only commands of the operations collector (11.4.4, 11.4.8, 11.4.9, 11.4.12, 11.4.13).
OPERATIONS_COMMANDS: tuple[Command, ...] = (
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
        "apt-get-simulate-dist-upgrade",
        ("apt-get", "-s", "--ignore-hold", "dist-upgrade"),
        "pending updates, held packages' included, and the archive (label, suite) of each, from the "
        "package lists: a simulation that installs nothing and takes no lock (11.4.8)",
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

#: Every path the operations collector reads: files whole, paths judged by existence, owner, mode and
#: age (logs, VM images: never their bytes), and directories whose entry names it reads.
OPERATIONS_READS: tuple[Fetch, ...] = (
    *read_files(
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
        "etc/apt/apt.conf",
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
    ),
    *stat_files(
        "etc/audit",
        "etc/audit/rules.d",
        "var/log/audit",
        "var/log/audit/*",
        # Every log file below /var/log (11.4.10: none may be world-writable), three levels deep.
        "var/log/*",
        "var/log/*/*",
        "var/log/*/*/*",
        "var/log/.[!.]*",
        "var/log/*/.[!.]*",
        "var/log/*/*/.[!.]*",
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
    ),
    *list_dirs(
        "sys/class/net",
        "sys/class/net/*/brif",
        "sys/class/block/*/slaves",
        "var/log/journal",
        "var/lib/libvirt/images",
        "var/log",
        "var/log/*",
        "var/log/*/*",
    ),
)
