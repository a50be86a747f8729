"""sshd's configuration: ``sshd -T`` where it runs, else hvguard's own reading of sshd_config.

The reader follows OpenSSH's ``servconf.c`` (checked against upstream and against ``sshd -T`` of the
OpenSSH on the test machine, see ``tests/test_access_sshd_real.py``):

- Lines: leading/trailing whitespace stripped; ``#`` starts a comment line; ``Keyword value``,
  ``Keyword=value`` or ``Keyword = value``; keywords are case-insensitive. Arguments are split like
  ``argv_split``: double or single quotes group, a backslash escapes a quote, a backslash or (outside
  quotes) a space; an argument starting with ``#`` ends the line. An unterminated quote is an error.
- First value wins for most keywords; AllowUsers, DenyUsers, AllowGroups, DenyGroups, AcceptEnv, HostKey,
  HostCertificate, Port and ListenAddress accumulate every value in order; a second Subsystem of the
  same name is an error (OpenSSH up to 9.4 refuses it).
- ``Include`` takes globs; a relative path is relative to ``/etc/ssh``; matches are read in sorted order;
  an included file does not change the includer's Match state, and an Include inside a Match block
  includes conditionally. Nesting deeper than 16 files is an error (as in sshd).
- ``Match`` blocks run to the next Match or the end of the file. Without connection details (what
  ``sshd -T`` shows and what hvguard reports as *effective*) only ``Match all`` applies. Directives that
  sshd forbids inside Match blocks (Port, ListenAddress, UsePAM …) are errors there.
- Unknown keywords are errors (sshd refuses to start: "Bad configuration option"); deprecated and
  unsupported ones are accepted and ignored, as sshd does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.source import CommandResult, HostSource
from hvguard.collect.reader import ReadError
from hvguard.facts import SshdFacts, SshdMatch, SshdSetting

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_DIR = "/etc/ssh"
MAX_INCLUDE_DEPTH = 16

#: Binaries whose presence shows sshd is installed (offline roots).
SSHD_BINARIES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")

#: Links and scripts that make an init system start sshd at boot.
SSHD_ENABLE_MARKERS = (
    "/etc/systemd/system/multi-user.target.wants/ssh.service",
    "/etc/systemd/system/multi-user.target.wants/sshd.service",
    "/etc/systemd/system/sockets.target.wants/ssh.socket",
    "/etc/systemd/system/sockets.target.wants/sshd.socket",
    "/etc/systemd/system/sshd.service",
)
SSHD_DISABLE_MARKERS = ("/etc/ssh/sshd_not_to_be_run",)
SYSV_RUNLEVEL_DIRS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc5.d")

# Keyword tables (upstream servconf.c plus Debian's GSSAPI key-exchange and DebianBanner patches).
# Canonical name → allowed inside Match. Aliases map to their canonical name.
_GLOBAL_ONLY = """
usepam port hostkey hostkeyagent pidfile modulifile logingracetime syslogfacility hostkeyalgorithms
kerberosorlocalpasswd kerberosticketcleanup kerberosgetafstoken gssapicleanupcredentials
gssapidelegatecredentials gssapistrictacceptorcheck listenaddress addressfamily printmotd printlastlog
ignoreuserknownhosts xauthlocation strictmodes permituserenvironment compression tcpkeepalive ciphers
macs maxstartups persourcemaxstartups persourcenetblocksize persourcepenalties persourcepenaltyexemptlist
usedns hostcertificate kexalgorithms versionaddendum fingerprinthash securitykeyprovider sshdsessionpath
sshdauthpath debianbanner gssapikeyexchange gssapistorecredentialsonrekey gssapikexalgorithms
""".split()  # noqa: SIM905 (a word list reads better than 44 quoted strings)
_MATCH_OK = """
pamservicename permitrootlogin loglevel logverbose hostbasedauthentication hostbasedusesnamefrompacketonly
hostbasedacceptedalgorithms pubkeyauthentication pubkeyacceptedalgorithms pubkeyauthoptions
kerberosauthentication gssapiauthentication passwordauthentication kbdinteractiveauthentication
ignorerhosts x11forwarding x11displayoffset x11uselocalhost permitemptypasswords rekeylimit
allowtcpforwarding allowagentforwarding allowusers denyusers allowgroups denygroups gatewayports subsystem
maxauthtries maxsessions banner clientaliveinterval clientalivecountmax authorizedkeysfile acceptenv setenv
permittunnel permittty permituserrc match permitopen permitlisten forcecommand chrootdirectory revokedkeys
trustedusercakeys authorizedprincipalsfile include ipqos authorizedkeyscommand authorizedkeyscommanduser
authorizedprincipalscommand authorizedprincipalscommanduser authenticationmethods streamlocalbindmask
streamlocalbindunlink allowstreamlocalforwarding disableforwarding exposeauthinfo rdomain
casignaturealgorithms requiredrsasize channeltimeout unusedconnectiontimeout refuseconnection
""".split()  # noqa: SIM905
#: Obsolete keywords sshd still accepts (logged as deprecated/unsupported/ignored); value: allowed in Match.
_OBSOLETE = {
    "pamauthenticationviakbdint": False,
    "serverkeybits": False,
    "keyregenerationinterval": False,
    "rhostsauthentication": False,
    "rhostsrsaauthentication": True,
    "rsaauthentication": True,
    "kerberostgtpassing": False,
    "afstokenpassing": False,
    "checkmail": False,
    "uselogin": False,
    "protocol": False,
    "verifyreversemapping": False,
    "reversemappingcheck": False,
    "authorizedkeysfile2": True,
    "useprivilegeseparation": False,
}
ALIASES = {
    "hostdsakey": "hostkey",
    "dsaauthentication": "pubkeyauthentication",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "keepalive": "tcpkeepalive",
}
#: Aliases that are global-only although their target may be used in Match.
_GLOBAL_ALIASES = frozenset({"dsaauthentication", "hostdsakey", "keepalive"})
MATCH_ALLOWED: dict[str, bool] = {
    **{k: False for k in _GLOBAL_ONLY},
    **{k: True for k in _MATCH_OK},
    **_OBSOLETE,
}
#: Keywords whose every value is kept, in order (sshd appends them to a list).
ACCUMULATE = frozenset(
    {"allowusers", "denyusers", "allowgroups", "denygroups", "acceptenv", "hostkey", "hostcertificate",
     "port", "listenaddress"}
)  # fmt: skip
#: yes/no keywords and the other values sshd accepts for them (case-insensitive, like sshd).
CHOICES: dict[str, frozenset[str]] = {
    "permitrootlogin": frozenset(
        {"yes", "no", "prohibit-password", "without-password", "forced-commands-only"}
    ),
    **{
        k: frozenset({"yes", "no"})
        for k in (
            "passwordauthentication",
            "kbdinteractiveauthentication",
            "pubkeyauthentication",
            "usepam",
            "permitemptypasswords",
            "hostbasedauthentication",
            "gssapiauthentication",
            "kerberosauthentication",
            "x11forwarding",
            "disableforwarding",
            "refuseconnection",
        )
    },
}
#: How sshd -T prints an equivalent value (without-password is the old name of prohibit-password).
VALUE_SYNONYMS = {"permitrootlogin": {"without-password": "prohibit-password"}}
MATCH_ATTRIBUTES = frozenset(
    {"all", "invalid-user", "user", "group", "host", "address", "localaddress", "localport", "rdomain",
     "version"}
)  # fmt: skip
_MATCH_NO_ARGUMENT = frozenset({"all", "invalid-user"})

#: OpenSSH's compiled-in defaults for the keywords hvguard evaluates (servconf.c
#: fill_default_server_options), used when a config file does not set them.
DEFAULTS: dict[str, list[str]] = {
    "permitrootlogin": ["prohibit-password"],
    "passwordauthentication": ["yes"],
    "kbdinteractiveauthentication": ["yes"],
    "pubkeyauthentication": ["yes"],
    "usepam": ["no"],
    "authenticationmethods": ["any"],
    "gssapiauthentication": ["no"],
    "kerberosauthentication": ["no"],
    "hostbasedauthentication": ["no"],
    "permitemptypasswords": ["no"],
    "port": ["22"],
    "maxauthtries": ["6"],
    "x11forwarding": ["no"],
}

_KEYWORD_LINE = re.compile(r"^([^\s=\"']+)(?:\s*=\s*|\s+)(.*)$")


class SshdSyntaxError(ValueError):
    """A line sshd would refuse."""


def split_args(text: str) -> list[str]:
    """Split sshd arguments like OpenSSH's ``argv_split`` (terminate on a ``#`` argument)."""
    args: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] == "#":
            break
        arg: list[str] = []
        quote = ""
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                arg.append(text[i + 1])
                i += 2
                continue
            if not quote and ch in " \t":
                break
            if not quote and ch in "'\"":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                arg.append(ch)
            i += 1
        if quote:
            raise SshdSyntaxError("invalid quotes")
        args.append("".join(arg))
    return args


def canonical(keyword: str) -> str | None:
    """The canonical lower-case keyword, or None when sshd does not know it."""
    low = keyword.lower()
    low = ALIASES.get(low, low)
    return low if low in MATCH_ALLOWED else None


def normalise_value(keyword: str, value: str) -> str:
    """A value as sshd -T would print it, for comparisons (case-folded choices, synonyms)."""
    if keyword in CHOICES:
        value = value.lower()
    return VALUE_SYNONYMS.get(keyword, {}).get(value, value)


@dataclass
class _Block:
    """A Match block being read."""

    criteria: list[list[str]]
    text: str
    file: str
    line: int
    applies_globally: bool
    settings: dict[str, SshdSetting] = field(default_factory=dict)


@dataclass
class _State:
    files: HostFiles
    effective: dict[str, SshdSetting] = field(default_factory=dict)
    subsystems: set[str] = field(default_factory=set)
    blocks: list[_Block] = field(default_factory=list)
    read: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _record(target: dict[str, SshdSetting], keyword: str, args: list[str], file: str, line: int) -> None:
    """Apply one directive to a settings map with sshd's rules (first wins / accumulate)."""
    if keyword in ACCUMULATE:
        old = target.get(keyword)
        if old is None:
            target[keyword] = SshdSetting(keyword=keyword, values=list(args), file=file, line=line)
        else:
            target[keyword] = SshdSetting(
                keyword=keyword, values=[*old.values, *args], file=old.file, line=old.line
            )
        return
    if keyword not in target:
        value = " ".join(normalise_value(keyword, a) for a in args)
        target[keyword] = SshdSetting(keyword=keyword, values=[value], file=file, line=line)


def _parse_match(args: list[str]) -> list[list[str]]:
    """Match criteria as (attribute, patterns) pairs; raises :class:`SshdSyntaxError` when sshd would."""
    criteria: list[list[str]] = []
    i = 0
    while i < len(args):
        raw = args[i]
        i += 1
        attr, eq, inline = raw.partition("=")
        attr_low = attr.lower()
        if attr_low not in MATCH_ATTRIBUTES:
            raise SshdSyntaxError(f"Unsupported Match attribute {raw}")
        if attr_low in _MATCH_NO_ARGUMENT:
            if attr_low == "all" and (criteria or i < len(args)):
                raise SshdSyntaxError("'all' cannot be combined with other Match attributes")
            criteria.append([attr_low])
            continue
        if eq:
            value = inline
        elif i < len(args):
            value = args[i]
            i += 1
        else:
            value = ""
        if not value:
            raise SshdSyntaxError(f"Missing Match criteria for {attr}")
        criteria.append([attr_low, value])
    if not criteria:
        raise SshdSyntaxError("One or more attributes required for Match")
    return criteria


def _read_file(
    st: _State, path: str, depth: int, active: bool, never: bool, block: _Block | None
) -> tuple[bool, _Block | None]:
    """Read one config file. ``active``: directives apply to the effective (connection-less) config;
    ``never``: an Include from an inactive Match, where nothing applies. Returns the state at EOF."""
    try:
        text = st.files.read_text(path)
    except ReadError as exc:
        st.errors.append(f"{exc.path}: {exc.message}")
        return active, block
    if text is None:
        if depth == 0:
            return active, block  # no sshd_config at all: reported by the caller
        st.errors.append(f"{path}: included file vanished while reading")
        return active, block
    st.read.append(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip(" \t\r\f\v")
        if not line or line.startswith("#"):
            continue
        m = _KEYWORD_LINE.match(line)
        where = f"{path} line {number}"
        if m is None or not m.group(2).strip():
            st.errors.append(f'{where}: no argument after keyword "{line.split()[0]}"')
            continue
        written, rest = m.group(1), m.group(2)
        keyword = canonical(written)
        if keyword is None:
            st.errors.append(f"{where}: Bad configuration option: {written}")
            continue
        try:
            args = split_args(rest)
        except SshdSyntaxError as exc:
            st.errors.append(f"{where}: {exc}")
            continue
        if not args:
            st.errors.append(f'{where}: no argument after keyword "{written}"')
            continue
        in_match = block is not None
        allowed = MATCH_ALLOWED[keyword] and written.lower() not in _GLOBAL_ALIASES
        if in_match and not allowed:
            st.errors.append(f"{where}: Directive '{written}' is not allowed within a Match block")
            continue
        if keyword in _OBSOLETE:
            continue
        if keyword == "match":
            try:
                criteria = _parse_match(args)
            except SshdSyntaxError as exc:
                st.errors.append(f"{where}: Bad Match condition ({exc})")
                continue
            is_all = criteria == [["all"]]
            block = _Block(
                criteria=criteria,
                text=" ".join(args),
                file=path,
                line=number,
                applies_globally=is_all and not never,
            )
            st.blocks.append(block)
            active = is_all and not never
            continue
        if keyword == "include":
            if depth + 1 > MAX_INCLUDE_DEPTH:
                st.errors.append(f"{where}: Include nested too deep (more than {MAX_INCLUDE_DEPTH} files)")
                continue
            for pattern in args:
                full = pattern if pattern.startswith("/") else f"{SSHD_DIR}/{pattern}"
                for included in st.files.glob(full):
                    if not st.files.is_file(included):
                        st.errors.append(f"{where}: Include {included} is not a regular file")
                        continue
                    # The included file starts in the includer's state and cannot change it.
                    _read_file(st, included, depth + 1, active, never or not active, block)
            continue
        if keyword in CHOICES and any(a.lower() not in CHOICES[keyword] for a in args[:1]):
            st.errors.append(f'{where}: unsupported option "{args[0]}".')
            continue
        if keyword == "authenticationmethods" and "any" in args and len(args) > 1:
            st.errors.append(f'{where}: "any" must appear alone in {written}')
            continue
        if block is not None:
            _record(block.settings, keyword, args, path, number)
        if active and not never:
            if keyword == "subsystem":
                if args[0] in st.subsystems:
                    # OpenSSH up to 9.4 (Debian 12, RHEL 9) refuses this; later releases ignore it.
                    st.errors.append(f"{where}: Subsystem '{args[0]}' already defined.")
                    continue
                st.subsystems.add(args[0])
                old = st.effective.get("subsystem")
                value = " ".join(args)
                st.effective["subsystem"] = SshdSetting(
                    keyword="subsystem",
                    values=[*(old.values if old else []), value],
                    file=old.file if old else path,
                    line=old.line if old else number,
                )
                continue
            _record(st.effective, keyword, args, path, number)
    return active, block


def parse_sshd_config(files: HostFiles, config: str = SSHD_CONFIG) -> SshdFacts:
    """Read ``config`` and its Includes under ``files``' root; never raises."""
    st = _State(files=files)
    present = files.lexists(config)  # a dangling link is a broken sshd_config, not none
    if present:
        _read_file(st, config, 0, True, False, None)
    effective = dict(st.effective)
    for keyword, value in DEFAULTS.items():
        effective.setdefault(keyword, SshdSetting(keyword=keyword, values=list(value)))
    return SshdFacts(
        config_file=config,
        config_present=present,
        source="config files",
        effective=dict(sorted(effective.items())),
        matches=[
            SshdMatch(
                criteria=b.criteria,
                text=b.text,
                file=b.file,
                line=b.line,
                applies_globally=b.applies_globally,
                settings=dict(sorted(b.settings.items())),
            )
            for b in st.blocks
        ],
        files=st.read,
        errors=st.errors,
    )


def parse_sshd_t(stdout: str) -> dict[str, list[str]]:
    """``sshd -T`` output: keyword → values (one per output line, in order)."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        keyword, _, value = line.strip().partition(" ")
        if keyword:
            out.setdefault(keyword.lower(), []).append(value.strip())
    return out


def merge_effective(parsed: SshdFacts, dump: dict[str, list[str]]) -> dict[str, SshdSetting]:
    """sshd -T values with the file:line where the parsed configuration set each keyword."""
    merged: dict[str, SshdSetting] = {}
    for keyword, values in dump.items():
        origin = parsed.effective.get(keyword)
        merged[keyword] = SshdSetting(
            keyword=keyword,
            values=[normalise_value(keyword, v) for v in values],
            file=origin.file if origin else None,
            line=origin.line if origin else None,
        )
    return dict(sorted(merged.items()))


def _service_state(files: HostFiles) -> tuple[bool | None, list[str]]:
    """Whether sshd starts at boot: systemd wants-links, sysv rc links, Debian's disable flag."""
    evidence = [p for p in SSHD_DISABLE_MARKERS if files.exists(p)]
    if evidence:
        return False, [f"{p} exists (Debian's init scripts then do not start sshd)" for p in evidence]
    found = [p for p in SSHD_ENABLE_MARKERS if files.exists(p)]
    for rc in SYSV_RUNLEVEL_DIRS:
        for name in files.listdir(rc) or []:
            if name.startswith("S") and name[3:] in ("ssh", "sshd"):
                found.append(f"{rc}/{name}")
    if found:
        return True, found
    if files.is_dir("/etc/systemd/system") or files.is_dir("/etc/rc2.d"):
        return False, ["no systemd wants-link or sysv start link for ssh/sshd"]
    return None, []


def _sshd_t_usable(result: CommandResult | None) -> tuple[str | None, str | None]:
    """(stdout, None) when ``sshd -T`` gave a configuration dump, else (None, why not)."""
    if result is None:
        return None, "sshd -T cannot run for this source (offline root): values read from the files"
    if result.error is not None:
        return None, f"sshd -T did not run ({result.error}): values read from the files"
    if result.returncode != 0 or not result.stdout.strip():
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        return None, f"sshd -T failed (exit {result.returncode}: {tail[0][:200]}); values read from the files"
    return result.stdout, None


def collect_sshd(source: HostSource) -> SshdFacts:
    """sshd facts for one host: ``sshd -T`` when it answers, else the parsed files."""
    files = HostFiles(source.fs)
    parsed = parse_sshd_config(files)
    result = source.run("sshd-effective-config")
    stdout, note = _sshd_t_usable(result)
    installed: bool | None
    if result is not None and result.error is not None and "not installed" in result.error:
        installed = False
    elif stdout is not None or any(files.exists(b) for b in SSHD_BINARIES) or parsed.config_present:
        installed = True
    elif result is None:
        installed = False  # an offline root with neither the binary nor a configuration
    else:
        installed = None
    enabled, evidence = _service_state(files)
    effective = parsed.effective
    source_name = "config files"
    if stdout is not None:
        effective = merge_effective(parsed, parse_sshd_t(stdout))
        source_name = "sshd -T"
    errors = list(parsed.errors)
    if installed and not parsed.config_present and stdout is None:
        errors.append(f"{parsed.config_file}: does not exist (sshd does not start without it)")
    return SshdFacts(
        installed=installed,
        config_file=parsed.config_file,
        config_present=parsed.config_present,
        source=source_name,
        effective=effective,
        matches=parsed.matches,
        files=parsed.files,
        errors=errors,
        effective_note=note,
        service_enabled=enabled,
        service_evidence=evidence,
    )


def listen_addresses(facts: SshdFacts) -> list[str]:
    """ListenAddress values without their port (``[::]:22`` → ``::``); empty means the wildcard."""
    setting = facts.effective.get("listenaddress")
    if setting is None:
        return []
    out: list[str] = []
    for value in setting.values:
        addr = value.split()[0]
        if addr.startswith("["):
            addr = addr[1 : addr.find("]")] if "]" in addr else addr[1:]
        elif addr.count(":") == 1:
            addr = addr.split(":", 1)[0]
        out.append(addr)
    return out
