"""Operational facts of a Linux hypervisor host (SS-009 11.2.8–11.2.10 storage, 11.4.4, 11.4.8–11.4.13):
audit and system logging, firewall and listening sockets, patch state, network layout, storage pools.

Every fact read from a configuration file keeps where it was written (``path`` and ``line``), so a
finding can point at the exact line to change. A file that exists but cannot be parsed is kept as a
:class:`ConfigIssue` (file, line, reason): checks turn those into ``error`` findings rather than guess.
``None`` means "not known" (with a matching :class:`~hvguard.facts.Problem` under
``host.operations.<group>``); an empty list means "looked, found none".
"""

from __future__ import annotations

from hvguard.facts.base import Model

__all__ = [
    "AuditFacts",
    "AuditRule",
    "ConfigIssue",
    "FileStat",
    "FirewallChain",
    "FirewallFacts",
    "FirewallRule",
    "FirewallSet",
    "JournalUpload",
    "JournaldFacts",
    "LibvirtNetwork",
    "ListeningSocket",
    "LogFileTarget",
    "LogForward",
    "LoggingFacts",
    "MountPoint",
    "NetInterface",
    "NetworkFacts",
    "OperationsFacts",
    "PatchFacts",
    "PendingUpdate",
    "SettingAt",
    "StorageFacts",
    "StoragePool",
]


class ConfigIssue(Model, frozen=True, kw_only=True):
    """A configuration file (or command output) hvguard could not parse: where, and why."""

    path: str
    line: int | None = None
    message: str

    def where(self) -> str:
        """``path:line`` (or the path alone)."""
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class SettingAt(Model, frozen=True, kw_only=True):
    """One ``key = value`` setting and the file line that set it (the last one wins)."""

    value: str
    path: str
    line: int

    def where(self) -> str:
        """``path:line``."""
        return f"{self.path}:{self.line}"


class FileStat(Model, frozen=True, kw_only=True):
    """Owner, group and permission bits of a file or directory, as the host reports them.

    ``owner``/``group`` are names from the host's own passwd/group (the number as text when unknown);
    ``has_acl`` is True when a POSIX access ACL is attached (its entries widen the mode bits shown).
    """

    path: str
    exists: bool = True
    is_dir: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None
    has_acl: bool | None = None
    mtime: float | None = None


# --------------------------------------------------------------------------------------------------------
# Logging


class AuditRule(Model, frozen=True, kw_only=True):
    """An auditd file watch (``-w PATH -p wa -k KEY`` or ``-a … -F dir=/path= -F perm=``)."""

    path: str
    line: int
    text: str
    watch: str
    perms: str = "rwxa"
    key: str | None = None


class AuditFacts(Model, frozen=True, kw_only=True):
    """auditd: its rules (as augenrules merges them), live state, log permissions and forwarding.

    ``enable_flag`` is the last ``-e N`` of the effective rules (2 = immutable until reboot) and
    ``enable_flag_at`` its ``path:line``; ``live_enabled`` is ``auditctl -s``'s ``enabled`` value when
    that could be run. ``remote_*`` describe the audisp-remote plugin (au-remote.conf, audisp-remote.conf);
    ``remote_plugin_refused`` says why an ``active = yes`` plugin does not run (auditd refuses it).
    ``config_files``: owner and mode of /etc/audit, auditd.conf, audit.rules, rules.d and its rule files.
    """

    installed: bool | None = None
    rules_source: str | None = None
    rule_files: list[str] = []
    watches: list[AuditRule] = []
    enable_flag: int | None = None
    enable_flag_at: str | None = None
    live_enabled: int | None = None
    live_note: str | None = None
    log_file: str = "/var/log/audit/audit.log"
    log_dir: FileStat | None = None
    log_files: list[FileStat] = []
    config_files: list[FileStat] = []
    syslog_plugin_active: bool = False
    remote_plugin_active: bool = False
    remote_plugin_at: str | None = None
    remote_plugin_refused: str | None = None
    remote_server: SettingAt | None = None
    remote_port: SettingAt | None = None
    remote_transport: SettingAt | None = None
    issues: list[ConfigIssue] = []


class LogForward(Model, frozen=True, kw_only=True):
    """One place where logs leave the host for a remote server.

    ``daemon``: rsyslog, syslog-ng, journal-upload or audisp-remote. ``protocol``: udp, tcp, relp, http,
    https, krb5. ``tls`` is True only when the transport is encrypted (rsyslog StreamDriverMode 1 with a
    TLS driver, syslog-ng transport("tls"), https). ``auth_mode`` is how the server is authenticated
    (rsyslog ``x509/name``, ``x509/fingerprint``, ``x509/certvalid``, ``anon``; syslog-ng peer-verify).
    """

    daemon: str
    path: str
    line: int | None = None
    text: str = ""
    target: str | None = None
    port: int | None = None
    protocol: str = "udp"
    tls: bool = False
    driver: str | None = None
    auth_mode: str | None = None
    permitted_peers: list[str] = []
    ca_file: str | None = None

    def where(self) -> str:
        """``path:line`` of the directive."""
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class LogFileTarget(Model, frozen=True, kw_only=True):
    """A file a log daemon is configured to write (rsyslog omfile), and the mode it creates it with.

    ``create_mode`` is the configured mode (None when the configured value is malformed) and
    ``create_mode_from`` where it comes from; ``umask`` the daemon's configured umask (None: the
    process's own), applied on creation.
    """

    daemon: str
    path: str
    line: int | None = None
    text: str = ""
    file: str
    create_mode: int | None = None
    create_mode_from: str = ""
    umask: int | None = None
    umask_from: str | None = None

    def where(self) -> str:
        """``path:line`` of the action."""
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def effective_mode(self) -> int | None:
        """The mode a newly created file gets (create mode less the umask)."""
        if self.create_mode is None:
            return None
        return self.create_mode & ~(self.umask or 0)


class JournalUpload(Model, frozen=True, kw_only=True):
    """systemd-journal-upload: its configured URL and whether the unit is enabled."""

    url: SettingAt | None = None
    trust: SettingAt | None = None
    enabled: bool = False
    installed: bool = False


class JournaldFacts(Model, frozen=True, kw_only=True):
    """systemd-journald's effective settings (journald.conf plus drop-ins, later files winning).

    ``fss_keys`` lists the Forward Secure Sealing key files found under var/log/journal/*/fss.
    """

    files: list[str] = []
    storage: SettingAt | None = None
    seal: SettingAt | None = None
    forward_to_syslog: SettingAt | None = None
    persistent_dir: bool = False
    fss_keys: list[str] = []
    upload: JournalUpload = JournalUpload()


class LoggingFacts(Model, frozen=True, kw_only=True):
    """Audit and system logging: auditd, rsyslog, syslog-ng, journald and every remote forward."""

    audit: AuditFacts = AuditFacts()
    rsyslog_files: list[str] = []
    rsyslog_imfile: list[str] = []
    syslog_ng_files: list[str] = []
    journald: JournaldFacts = JournaldFacts()
    forwards: list[LogForward] = []
    files_written: list[LogFileTarget] = []
    log_files: list[FileStat] = []
    other_log_files: list[FileStat] = []
    other_log_files_truncated: bool = False
    issues: list[ConfigIssue] = []


# --------------------------------------------------------------------------------------------------------
# Firewall


class FirewallRule(Model, frozen=True, kw_only=True):
    """One filter rule reduced to what decides which traffic it admits.

    Empty ``protocols``/``dports``/``saddrs``/``iifs`` mean "any". ``saddrs`` holds addresses, CIDRs or
    ``@set`` references; ``other`` the matches hvguard does not interpret (the rule is then treated as
    conditional, never as admitting everything).
    """

    where: str
    text: str = ""
    verdict: str | None = None
    jump: str | None = None
    protocols: list[str] = []
    dports: list[str] = []
    saddrs: list[str] = []
    iifs: list[str] = []
    ct_states: list[str] = []
    other: list[str] = []


class FirewallChain(Model, frozen=True, kw_only=True):
    """A chain: base chains carry their netfilter ``hook`` and default ``policy``."""

    backend: str
    family: str
    table: str
    name: str
    hook: str | None = None
    policy: str | None = None
    where: str = ""
    rules: list[FirewallRule] = []


class FirewallSet(Model, frozen=True, kw_only=True):
    """A named nftables set or ipset (``@name``) and its elements."""

    family: str
    table: str
    name: str
    elements: list[str] = []


class ListeningSocket(Model, frozen=True, kw_only=True):
    """A listening TCP socket or bound UDP socket from /proc/net, with its process when known."""

    proto: str
    address: str
    port: int
    inode: int | None = None
    process: str | None = None
    pid: int | None = None


class FirewallFacts(Model, frozen=True, kw_only=True):
    """The host packet filter and what listens.

    ``sources`` names what the ruleset was read from (the live ``nft -j list ruleset`` /
    ``iptables-save``, or configuration files); ``live`` is True when it came from the running kernel.
    ``listening`` is None when /proc/net was not available (an offline root).
    """

    sources: list[str] = []
    live: bool = False
    chains: list[FirewallChain] = []
    sets: list[FirewallSet] = []
    listening: list[ListeningSocket] | None = None
    notes: list[str] = []
    issues: list[ConfigIssue] = []


# --------------------------------------------------------------------------------------------------------
# Patches


class PendingUpdate(Model, frozen=True, kw_only=True):
    """An update the package manager would install, and whether it is a security update.

    ``kept_back``: apt has a newer version but its upgrade cannot install it (unmet dependencies); its
    candidate and archive are not shown, so whether it is a security update is unknown (``security``
    stays False)."""

    package: str
    installed: str | None = None
    candidate: str = ""
    suite: str | None = None
    security: bool = False
    advisory: str | None = None
    issued: str | None = None
    kept_back: bool = False


class PatchFacts(Model, frozen=True, kw_only=True):
    """Patch state: pending updates, when the package lists were refreshed, reboot-required, automation.

    ``pending`` is None when it could not be determined (``pending_note`` says why). Times are POSIX
    seconds (file modification times on the host).
    """

    manager: str | None = None
    source: str | None = None
    pending: list[PendingUpdate] | None = None
    pending_note: str | None = None
    lists_updated: float | None = None
    lists_updated_source: str | None = None
    reboot_required: bool | None = None
    reboot_required_since: float | None = None
    reboot_packages: list[str] = []
    auto_updates: bool | None = None
    auto_updates_at: str | None = None
    auto_updates_detail: str | None = None
    issues: list[ConfigIssue] = []


# --------------------------------------------------------------------------------------------------------
# Network


class NetInterface(Model, frozen=True, kw_only=True):
    """A network interface. ``kind``: physical, bridge, bond, vlan, loopback, tap, virtual.

    ``master`` is the bridge or bond it is enslaved to; ``addresses`` are CIDRs (when known).
    """

    name: str
    kind: str
    physical: bool = False
    master: str | None = None
    bridge_ports: list[str] = []
    bond_slaves: list[str] = []
    bond_mode: str | None = None
    vlan_parent: str | None = None
    vlan_id: int | None = None
    addresses: list[str] = []
    operstate: str | None = None


class LibvirtNetwork(Model, frozen=True, kw_only=True):
    """A libvirt virtual network definition: its bridge and forward mode (None = isolated).

    ``error`` says why a definition file could not be used (unreadable, not XML, not a network): the
    network is then known by its file name only, and nothing about its path may be concluded."""

    name: str
    path: str
    bridge: str | None = None
    forward_mode: str | None = None
    forward_devs: list[str] = []
    error: str | None = None


class NetworkFacts(Model, frozen=True, kw_only=True):
    """Interfaces, bridges, bonds, VLANs, addresses, the default route and libvirt's networks.

    ``interfaces`` is None when sysfs was not available (an offline root without sys/);
    ``addresses_known`` says whether interface addresses were read (``ip -j addr`` or proc).
    """

    interfaces: list[NetInterface] | None = None
    addresses_known: bool = False
    default_route_interfaces: list[str] = []
    libvirt_networks: list[LibvirtNetwork] = []
    issues: list[ConfigIssue] = []


# --------------------------------------------------------------------------------------------------------
# Storage


class StoragePool(Model, frozen=True, kw_only=True):
    """A libvirt storage pool definition (etc/libvirt/storage, or run/libvirt/storage when active).

    ``source_format`` is the netfs/fs format (nfs, cifs, glusterfs…); ``mount_options`` the pool's own
    ``<fs:mount_opts>``; ``auth_type`` the ``<auth type=…>`` (chap, ceph).
    """

    name: str
    type: str
    path: str
    target_path: str | None = None
    source_hosts: list[str] = []
    source_dir: str | None = None
    source_devices: list[str] = []
    source_name: str | None = None
    source_format: str | None = None
    protocol_version: str | None = None
    auth_type: str | None = None
    mount_options: list[str] = []
    active: bool | None = None


class MountPoint(Model, frozen=True, kw_only=True):
    """A mounted (or fstab-configured) file system and whether its block device is dm-crypt backed.

    ``encrypted`` is True when the device or any device beneath it is a dm-crypt mapping (``CRYPT-``
    dm uuid, or a crypttab entry offline); None when the chain could not be followed. ``crypt_chain``
    lists the devices walked (``dm-1 → dm-0 (CRYPT-LUKS2-…) → sda3``).
    """

    mountpoint: str
    fstype: str
    source: str
    options: list[str] = []
    device: str | None = None
    encrypted: bool | None = None
    crypt_chain: list[str] = []
    origin: str = "mountinfo"


class StorageFacts(Model, frozen=True, kw_only=True):
    """Storage pools, mounts (with encryption), and permissions of image directories and files.

    ``mounts`` is None when no mount table (proc/self/mountinfo, proc/mounts, etc/fstab) was readable.
    ``image_dirs`` holds each pool target directory (and libvirt's default image directory);
    ``images`` the files inside them (at most ``MAX_IMAGES``; ``images_truncated`` says when cut).
    """

    pools: list[StoragePool] = []
    mounts: list[MountPoint] | None = None
    image_dirs: list[FileStat] = []
    images: list[FileStat] = []
    images_truncated: bool = False
    issues: list[ConfigIssue] = []


class OperationsFacts(Model, frozen=True, kw_only=True):
    """How the host logs, filters traffic, is patched, is wired and stores VM images.

    A group is None when its collector failed outright (a :class:`~hvguard.facts.Problem` under
    ``host.operations.<group>`` says why).
    """

    logging: LoggingFacts | None = None
    firewall: FirewallFacts | None = None
    patches: PatchFacts | None = None
    network: NetworkFacts | None = None
    storage: StorageFacts | None = None
