"""Access-control facts of a Linux hypervisor host (SS-009 11.2.2–11.2.5, 11.4.1–11.4.3, 11.4.5, 11.4.6):
sshd, PAM, directory integration, accounts, sudoers, libvirt access control and polkit rules.

Conventions (beyond the package's): every parsed value keeps the host path of the file it came from
(``/etc/ssh/sshd_config``, not the path of an offline copy) and its 1-based line, so evidence and
remediations can point at the exact line. A group that could not be collected at all is ``None`` in
:class:`AccessFacts` (with a ``Problem`` of area ``host.access.<group>``); a file that exists but is
malformed is recorded in that group's ``errors`` as ``"FILE line N: reason"`` — the checks report those as
``error`` findings, never as a pass.
"""

from __future__ import annotations

import msgspec

from hvguard.facts.base import Model

__all__ = [
    "AccessFacts",
    "AccountsFacts",
    "AclProbe",
    "DirectoryFacts",
    "GroupInfo",
    "LocalAccount",
    "NssEntry",
    "PamEntry",
    "PamStack",
    "PolkitFacts",
    "PolkitFile",
    "PolkitRef",
    "PolkitRule",
    "SecondFactor",
    "SshdFacts",
    "SshdMatch",
    "SshdSetting",
    "SssdDomain",
    "SudoDefault",
    "SudoFacts",
    "SudoRule",
]


# --------------------------------------------------------------------------------------------------------
# sshd


class SshdSetting(Model, frozen=True, kw_only=True):
    """One sshd keyword as sshd uses it.

    ``keyword`` is the canonical lower-case name (aliases such as ``ChallengeResponseAuthentication``
    are folded into ``kbdinteractiveauthentication``). ``values`` holds one entry per argument for
    keywords sshd accumulates (AllowUsers, AllowGroups, DenyUsers, DenyGroups, ListenAddress, Port,
    HostKey, AcceptEnv) and a single entry (the arguments joined by one space) for first-value-wins
    keywords. ``file``/``line`` say where it was first set; both None means sshd's built-in default
    (only possible for values read from ``sshd -T``).
    """

    keyword: str
    values: list[str]
    file: str | None = None
    line: int | None = None


class SshdMatch(Model, frozen=True, kw_only=True):
    """A ``Match`` block: its criteria (lower-case attribute, pattern list) and the settings inside it.

    ``applies_globally`` is True for ``Match all`` (it applies to every connection, so sshd folds it into
    the effective global configuration too). ``settings`` follow first-value-wins inside the block.
    """

    criteria: list[list[str]]
    text: str
    file: str
    line: int
    applies_globally: bool = False
    settings: dict[str, SshdSetting] = {}


class SshdFacts(Model, frozen=True, kw_only=True):
    """sshd's configuration: the effective global settings and every Match block.

    ``installed`` is None when it cannot be told (an SSH-fetched host whose ``sshd -T`` did not run).
    ``source`` is ``"sshd -T"`` when the effective values come from sshd itself (live hosts, as root),
    else ``"config files"`` (hvguard's own reading of sshd_config and its Includes, with the same
    first-value-wins and accumulation rules as sshd); ``effective_note`` says why ``sshd -T`` was not
    used. ``service_enabled`` is whether the init system starts sshd at boot (None: unknown), with the
    links or scripts that show it in ``service_evidence``.
    """

    installed: bool | None = None
    config_file: str = "/etc/ssh/sshd_config"
    config_present: bool = False
    source: str = "config files"
    effective: dict[str, SshdSetting] = {}
    matches: list[SshdMatch] = []
    files: list[str] = []
    errors: list[str] = []
    effective_note: str | None = None
    service_enabled: bool | None = None
    service_evidence: list[str] = []


# --------------------------------------------------------------------------------------------------------
# PAM


class PamEntry(Model, frozen=True, kw_only=True):
    """One PAM rule line (after following ``@include``, ``include`` and ``substack``).

    ``control`` is the control word or the bracketed ``[value=action …]`` form as written; ``optional``
    is True for a ``-type`` line (silently skipped when the module is missing). ``via`` lists the
    include chain that brought the line in (empty for the service file itself).
    """

    type: str
    control: str
    module: str
    args: list[str] = []
    file: str
    line: int
    optional: bool = False
    via: list[str] = []


class SecondFactor(Model, frozen=True, kw_only=True):
    """A PAM module that adds a second authentication factor, and whether the stack enforces it.

    ``kind`` names the factor (``fido2-u2f``, ``totp``, ``oath``, ``yubikey-otp``, ``duo``,
    ``smartcard``, ``sssd-cert``). ``mandatory`` is True only when its control makes failure fatal
    (``required``/``requisite``/``[… default=die|bad]``) and no earlier rule can end the stack with
    success before it (``sufficient``, ``success=done``, a ``success=N`` jump over it). ``caveats`` holds
    what weakens it (``nullok``/``nouserok``: users without an enrolled token pass with one factor; the
    rule that can bypass it).
    """

    module: str
    kind: str
    control: str
    mandatory: bool
    file: str
    line: int
    caveats: list[str] = []


class PamStack(Model, frozen=True, kw_only=True):
    """The PAM configuration of one service (``sshd``, ``sudo``): its auth rules and second factors."""

    service: str
    file: str
    present: bool = False
    auth: list[PamEntry] = []
    second_factors: list[SecondFactor] = []
    errors: list[str] = []


# --------------------------------------------------------------------------------------------------------
# Directory integration


class SssdDomain(Model, frozen=True, kw_only=True):
    """A ``[domain/NAME]`` section of sssd.conf and the providers that decide identity and access.

    ``lines`` maps each key read here to its line in ``file``; absent providers are None (sssd then
    uses its own defaults: ``auth_provider``/``access_provider`` follow ``id_provider``, except that
    ``access_provider`` defaults to ``permit`` for ``ldap``/``proxy``).
    """

    name: str
    file: str
    line: int
    enabled: bool = True
    id_provider: str | None = None
    auth_provider: str | None = None
    access_provider: str | None = None
    realm: str | None = None
    simple_allow_groups: list[str] = []
    simple_allow_users: list[str] = []
    lines: dict[str, int] = {}


class NssEntry(Model, frozen=True, kw_only=True):
    """One nsswitch.conf database line: its sources in lookup order (actions like ``[NOTFOUND=return]``
    dropped)."""

    database: str
    sources: list[str]
    file: str
    line: int


class DirectoryFacts(Model, frozen=True, kw_only=True):
    """How the host's accounts are tied to an enterprise directory (sssd, realmd, Kerberos, nsswitch).

    ``keytab_present``/``keytab_size`` come from a stat of ``/etc/krb5.keytab`` — its key material is
    never read. ``sssd_mode`` is the octal permission mode (sssd refuses a config file readable by
    others).
    """

    sssd_file: str = "/etc/sssd/sssd.conf"
    sssd_present: bool = False
    sssd_mode: str | None = None
    sssd_services: list[str] = []
    sssd_domains: list[SssdDomain] = []
    realmd_present: bool = False
    realmd_sections: list[str] = []
    krb5_default_realm: str | None = None
    krb5_file: str = "/etc/krb5.conf"
    krb5_line: int | None = None
    keytab_present: bool | None = None
    keytab_size: int | None = None
    nsswitch: dict[str, NssEntry] = {}
    errors: list[str] = []


# --------------------------------------------------------------------------------------------------------
# Accounts and sudo


class LocalAccount(Model, frozen=True, kw_only=True):
    """A line of /etc/passwd. ``login_shell`` is False for nologin/false and similar (no interactive
    login); an empty shell field means /bin/sh, which is a login shell."""

    name: str
    uid: int
    gid: int
    shell: str
    home: str = ""
    login_shell: bool
    line: int


class GroupInfo(Model, frozen=True, kw_only=True):
    """A group of /etc/group: its explicit members and the accounts whose primary group it is.
    ``privileged`` marks the groups that grant host or hypervisor administration by themselves (sudo,
    wheel, admin, libvirt, kvm, libvirt-qemu, qemu)."""

    name: str
    gid: int
    members: list[str] = []
    primary_members: list[str] = []
    privileged: bool = False
    line: int


class AccountsFacts(Model, frozen=True, kw_only=True):
    """Local accounts and groups. ``groups`` holds every privileged group present and every other group
    with explicit members (groups that only serve as some account's primary group are left out)."""

    passwd_file: str = "/etc/passwd"  # noqa: S105 (a path, not a secret)
    group_file: str = "/etc/group"
    users: list[LocalAccount] = []
    groups: list[GroupInfo] = []
    errors: list[str] = []


class SudoRule(Model, frozen=True, kw_only=True):
    """One command grant of a sudoers user specification, with every alias resolved.

    ``principals`` are the users it applies to as sudo reads them (``alice``, ``%group``, ``%:group``,
    ``#uid``, ``%#gid``, ``+netgroup``, ``ALL``; a leading ``!`` excludes); ``written`` is the user list
    as written. ``runas`` is the run-as spec (``root`` when none is given). ``commands`` are the commands
    (``ALL``, paths with arguments, ``sudoedit …``, ``!`` for excluded ones). ``all_commands`` is True when
    ``ALL`` is granted (negations after ALL do not restrict it: sudo's own documentation says they are
    trivially bypassed). ``nopasswd`` when the ``NOPASSWD:`` tag applies.
    """

    principals: list[str]
    written: str
    hosts: list[str] = msgspec.field(default_factory=lambda: ["ALL"])
    runas: str = "root"
    commands: list[str]
    all_commands: bool = False
    nopasswd: bool = False
    tags: list[str] = []
    file: str
    line: int


class SudoDefault(Model, frozen=True, kw_only=True):
    """A ``Defaults`` line (kept as written: hvguard does not interpret most of them)."""

    text: str
    file: str
    line: int


class SudoFacts(Model, frozen=True, kw_only=True):
    """/etc/sudoers and every file it includes (``#include``/``@include``/``#includedir``/``@includedir``)."""

    present: bool = False
    files: list[str] = []
    rules: list[SudoRule] = []
    defaults: list[SudoDefault] = []
    errors: list[str] = []
    unreadable: list[str] = []
    """sudoers files and include directories that exist but could not be read (permissions, size,
    encoding): ``rules`` and ``defaults`` are then incomplete, so no check may pass or call sudo
    not applicable on them — each reports ``error`` naming these paths."""


# --------------------------------------------------------------------------------------------------------
# polkit rules (libvirt's ACL)


class PolkitRef(Model, frozen=True, kw_only=True):
    """A value found in a rule and its line."""

    value: str
    line: int


class PolkitRule(Model, frozen=True, kw_only=True):
    """One ``polkit.addRule``/``addAdminRule`` function, reduced by static analysis of its JavaScript.

    ``actions`` are string literals that name polkit actions or action prefixes (``org.…``);
    ``libvirt_api`` is True when one of them is a libvirt API action (``org.libvirt.api.…``).
    ``lookups`` are ``action.lookup("KEY")`` keys (``domain_name``, ``domain_uuid`` …), ``groups`` the
    ``subject.isInGroup("…")`` arguments, ``users`` the literals compared with ``subject.user``,
    ``results`` every ``polkit.Result.X`` returned. ``domain_denies``/``domain_allows`` are the lines of
    ``return polkit.Result.NO``/``YES`` statements whose enclosing conditions depend on a domain lookup
    (directly or through a variable assigned from one): per-VM decisions.
    """

    kind: str
    line: int
    actions: list[PolkitRef] = []
    libvirt_api: bool = False
    lookups: list[PolkitRef] = []
    groups: list[PolkitRef] = []
    users: list[PolkitRef] = []
    results: list[PolkitRef] = []
    domain_denies: list[int] = []
    domain_allows: list[int] = []


class PolkitFile(Model, frozen=True, kw_only=True):
    """A ``*.rules`` file in the order polkitd loads it (sorted by file name across both directories; a
    name in /etc/polkit-1/rules.d hides the same name in /usr/share/polkit-1/rules.d: ``shadowed_by``).
    ``error`` is the first syntax error (``FILE line N: …``) — polkitd skips such a file."""

    path: str
    order: int
    shadowed_by: str | None = None
    error: str | None = None
    rules: list[PolkitRule] = []


class PolkitFacts(Model, frozen=True, kw_only=True):
    """Every polkit rules file. ``method`` says how the rules were analysed: a static parse of the
    JavaScript, which cannot decide every program (the ACL probe can)."""

    directories: list[str] = []
    files: list[PolkitFile] = []
    method: str = "static analysis (tree-sitter JavaScript parse)"
    unreadable: list[str] = []
    """Rules directories that exist but could not be listed and rules files that could not be read
    (permissions): polkitd reads them, so the rules that apply are unknown — the checks report ``error``,
    never a static-analysis pass or fail on the part that was read."""


class AclProbe(Model, frozen=True, kw_only=True):
    """An active, read-only libvirt access probe run as ``user`` (``hvguard scan --probe-acl USER:VM``).

    ``outcome`` is ``allowed`` (the call succeeded), ``denied`` (libvirt or the socket refused it) or
    ``error`` (it could not tell: no such user or VM, timeout, daemon down); ``output`` is the command's
    combined output (trimmed), ``reason`` a one-line explanation.
    """

    user: str
    vm: str
    uri: str
    argv: list[str]
    outcome: str
    returncode: int | None = None
    output: str = ""
    reason: str = ""
    ran_at: str = ""


# --------------------------------------------------------------------------------------------------------
# The group


class AccessFacts(Model, frozen=True, kw_only=True):
    """Who may reach the host and its hypervisor, and how they authenticate.

    A group is None when its collector could not run (see the ``host.access.*`` problems). ``pam`` maps
    a service name (``sshd``, ``sudo``) to its stack. ``probes`` are the ACL probes requested with
    ``--probe-acl`` (empty when none was asked for).
    """

    sshd: SshdFacts | None = None
    pam: dict[str, PamStack] = {}
    directory: DirectoryFacts | None = None
    accounts: AccountsFacts | None = None
    sudo: SudoFacts | None = None
    polkit: PolkitFacts | None = None
    probes: list[AclProbe] = []
