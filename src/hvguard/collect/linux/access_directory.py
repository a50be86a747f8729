"""Directory integration: sssd, realmd, Kerberos and nsswitch.

- ``/etc/sssd/sssd.conf`` (and ``/etc/sssd/conf.d/*.conf``, read after it, later values win) is an INI
  file read with :mod:`configparser` (no interpolation, ``#``/``;`` comments, duplicate sections or keys
  are errors, as sssd's ini parser reports them). ``[sssd] domains`` lists the enabled domains; each
  ``[domain/NAME]`` names its ``id_provider``/``auth_provider``/``access_provider``.
- ``/etc/realmd.conf`` is recorded by its sections (realmd keeps no join state in files; a join shows in
  sssd.conf and the keytab).
- ``/etc/krb5.conf`` ``[libdefaults] default_realm``.
- ``/etc/krb5.keytab``: existence and size from a stat (or the manifest's ``stat`` command on a remote
  host) — never its content, which is key material.
- ``/etc/nsswitch.conf``: the ``passwd``, ``group`` and ``shadow`` sources.
"""

from __future__ import annotations

import configparser
import re
import stat

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.source import HostSource, PrefetchedSource
from hvguard.collect.reader import ReadError
from hvguard.facts import DirectoryFacts, NssEntry, SssdDomain

SSSD_CONF = "/etc/sssd/sssd.conf"
SSSD_CONF_D = "/etc/sssd/conf.d/*.conf"
REALMD_CONF = "/etc/realmd.conf"
KRB5_CONF = "/etc/krb5.conf"
KRB5_KEYTAB = "/etc/krb5.keytab"
NSSWITCH = "/etc/nsswitch.conf"
NSS_DATABASES = ("passwd", "group", "shadow")
_DOMAIN_KEYS = (
    "id_provider",
    "auth_provider",
    "access_provider",
    "simple_allow_groups",
    "simple_allow_users",
    "ad_domain",
    "ipa_domain",
    "krb5_realm",
    "enabled",
)
_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]")


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """(section, key) → line, for evidence (configparser keeps no line numbers)."""
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith(("#", ";")):
            continue
        m = _SECTION.match(raw)
        if m:
            section = m.group(1).strip()
            lines.setdefault((section, ""), number)
            continue
        k = _KEY.match(raw)
        if k and section:
            lines[(section, k.group(1).lower())] = number
    return lines


def _ini(path: str, text: str) -> configparser.ConfigParser:
    """Parse INI text like sssd: raises configparser.Error (with a line) for malformed files."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=True, comment_prefixes=("#", ";"), inline_comment_prefixes=None
    )
    parser.read_string(text, source=path)
    return parser


def _ini_error(path: str, exc: configparser.Error) -> str:
    line = getattr(exc, "lineno", None)
    reason = str(exc).splitlines()[0]
    return f"{path} line {line}: {reason}" if line else f"{path}: {reason}"


def _sssd(files: HostFiles, errors: list[str]) -> tuple[bool, str | None, list[str], list[SssdDomain]]:
    present = files.lexists(SSSD_CONF)
    st = files.stat_or_none(SSSD_CONF)
    mode = f"{stat.S_IMODE(st.st_mode):04o}" if st is not None else None
    sources = [SSSD_CONF, *files.glob(SSSD_CONF_D)] if present else files.glob(SSSD_CONF_D)
    merged: dict[str, dict[str, tuple[str, str, int]]] = {}
    section_at: dict[str, tuple[str, int]] = {}
    for path in sources:
        try:
            text = files.read_text(path)
        except ReadError as exc:
            errors.append(f"{exc.path}: {exc.message}")
            continue
        if text is None:
            continue
        try:
            parser = _ini(path, text)
        except configparser.Error as exc:
            errors.append(_ini_error(path, exc))
            continue
        lines = _key_lines(text)
        for section in parser.sections():
            section_at.setdefault(section, (path, lines.get((section, ""), 1)))
            for key, value in parser.items(section):
                merged.setdefault(section, {})[key] = (value, path, lines.get((section, key), 0))
    services = _list(merged.get("sssd", {}).get("services", ("", "", 0))[0])
    enabled = set(_list(merged.get("sssd", {}).get("domains", ("", "", 0))[0]))
    domains: list[SssdDomain] = []
    for section, keys in merged.items():
        if not section.startswith("domain/"):
            continue
        name = section.split("/", 1)[1]
        path, line = section_at[section]

        def get(key: str, keys: dict[str, tuple[str, str, int]] = keys) -> str | None:
            item = keys.get(key)
            return item[0].strip() if item else None

        flag = (get("enabled") or "").lower()
        domains.append(
            SssdDomain(
                name=name,
                file=path,
                line=line,
                enabled=name in enabled or flag in ("true", "yes", "1"),
                id_provider=get("id_provider"),
                auth_provider=get("auth_provider"),
                access_provider=get("access_provider"),
                realm=get("krb5_realm") or get("ad_domain") or get("ipa_domain"),
                simple_allow_groups=_list(get("simple_allow_groups")),
                simple_allow_users=_list(get("simple_allow_users")),
                lines={k: keys[k][2] for k in _DOMAIN_KEYS if k in keys},
            )
        )
    return present or bool(sources), mode, services, domains


def _realmd(files: HostFiles, errors: list[str]) -> tuple[bool, list[str]]:
    try:
        text = files.read_text(REALMD_CONF)
    except ReadError as exc:
        errors.append(f"{exc.path}: {exc.message}")
        return True, []
    if text is None:
        return False, []
    try:
        return True, _ini(REALMD_CONF, text).sections()
    except configparser.Error as exc:
        errors.append(_ini_error(REALMD_CONF, exc))
        return True, []


def _krb5(files: HostFiles, errors: list[str]) -> tuple[str | None, int | None]:
    """``[libdefaults] default_realm`` (krb5.conf is INI-like with ``{}`` blocks; a line scan suffices)."""
    try:
        text = files.read_text(KRB5_CONF)
    except ReadError as exc:
        errors.append(f"{exc.path}: {exc.message}")
        return None, None
    if text is None:
        return None, None
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = _SECTION.match(line)
        if m:
            section = m.group(1).strip()
            continue
        key, eq, value = line.partition("=")
        if section == "libdefaults" and eq and key.strip() == "default_realm":
            return value.strip() or None, number
    return None, None


def _keytab(source: HostSource, files: HostFiles) -> tuple[bool | None, int | None]:
    """(present, size) of the keytab. An SSH-fetched copy never holds it (key material is not fetched), so
    there the manifest's ``stat`` command answers; elsewhere the root's own file does."""
    st = files.stat_or_none(KRB5_KEYTAB)
    if st is not None:
        return True, st.st_size
    if not isinstance(source, PrefetchedSource):
        return False, None
    result = source.run("krb5-keytab-stat")
    if result is None or result.error is not None:
        return None, None
    if result.returncode == 0 and result.stdout.strip().isdigit():
        return True, int(result.stdout.strip())
    if "No such file" in result.stderr:
        return False, None
    return None, None


def _nsswitch(files: HostFiles, errors: list[str]) -> dict[str, NssEntry]:
    try:
        text = files.read_text(NSSWITCH)
    except ReadError as exc:
        errors.append(f"{exc.path}: {exc.message}")
        return {}
    out: dict[str, NssEntry] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        database, colon, rest = line.partition(":")
        database = database.strip()
        if not colon:
            errors.append(f"{NSSWITCH} line {number}: no ':' after the database name")
            continue
        if database in NSS_DATABASES and database not in out:
            sources = [w for w in re.sub(r"\[[^\]]*\]", " ", rest).split()]
            out[database] = NssEntry(database=database, sources=sources, file=NSSWITCH, line=number)
    return out


def collect_directory(source: HostSource, files: HostFiles) -> DirectoryFacts:
    """Directory-integration facts; never raises."""
    errors: list[str] = []
    present, mode, services, domains = _sssd(files, errors)
    realmd, sections = _realmd(files, errors)
    realm, realm_line = _krb5(files, errors)
    keytab, size = _keytab(source, files)
    return DirectoryFacts(
        sssd_present=present,
        sssd_mode=mode,
        sssd_services=services,
        sssd_domains=domains,
        realmd_present=realmd,
        realmd_sections=sections,
        krb5_default_realm=realm,
        krb5_line=realm_line,
        keytab_present=keytab,
        keytab_size=size,
        nsswitch=_nsswitch(files, errors),
        errors=errors,
    )
