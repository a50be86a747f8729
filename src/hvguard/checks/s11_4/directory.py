"""Checks for SS-009 11.4.1.

11.4.1 Host accounts integrated with the enterprise directory

Checks: ``directory_integration``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_4.common import (
    parse_errors,
)
from hvguard.checks.support import access as ae
from hvguard.checks.support.subjects import host_access
from hvguard.findings import Finding

#: sssd id providers that take accounts from an enterprise directory, and auth providers that use Kerberos.
DIRECTORY_PROVIDERS = frozenset({"ad", "ipa", "ldap"})


KERBEROS_PROVIDERS = frozenset({"ad", "ipa", "krb5"})


@check(
    "11.4.1",
    id="host.directory-integration",
    reads=("host.access.directory", "host.access.accounts"),
)
def directory_integration(ctx: CheckContext) -> Iterator[Finding]:
    """Host accounts come from the enterprise directory ("if possible … must").

    Pass: an enabled sssd domain with ``id_provider`` ad/ipa/ldap and nsswitch ``passwd`` querying
    ``sss`` (Kerberos when ``auth_provider`` — by default the id provider — is ad/ipa/krb5; an ldap-only
    domain passes with a note). Fail: no directory integration at all; sssd configured but nsswitch not
    using it (or the reverse); sssd.conf readable by others (sssd refuses to start). Manual: winbind or
    nslcd instead of sssd. "If possible": where integration is impossible, record an exception. Remaining
    local login accounts are listed (break-glass only).
    """
    host = ctx.host
    access = host_access(ctx)
    if access is None or access.directory is None:
        if access is not None and ctx.problems("host.access.directory"):
            yield ctx.error(HOST, "directory integration (sssd, krb5, nsswitch)", "host.access.directory")
            return
        yield ctx.manual(
            HOST,
            "Evidence needed: the host's directory join (`realm list` showing a kerberos-member realm, "
            "/etc/sssd/sssd.conf id_provider = ad|ipa|ldap, nsswitch passwd: sss, /etc/krb5.keytab), admin "
            "logins granted to directory groups (simple_allow_groups / AllowGroups), and the local accounts "
            "that remain (break-glass only) — or the risk-register exception explaining why integration is "
            "not possible.",
            {
                "hostname": host.hostname if host else None,
                "os": f"{host.os_id} {host.os_version}" if host else None,
            },
        )
        return
    d = access.directory
    yield from parse_errors(ctx, d.errors, "a directory-integration file")
    domains = [x for x in d.sssd_domains if x.enabled]
    directory = [x for x in domains if (x.id_provider or "").lower() in DIRECTORY_PROVIDERS]
    passwd = d.nsswitch.get("passwd")
    sources = passwd.sources if passwd is not None else []
    local = [
        u.name
        for u in (access.accounts.users if access.accounts else [])
        if u.login_shell and u.uid != 0 and u.uid >= 1000
    ]
    evidence: dict[str, Any] = {
        "sssd_domains": [
            {
                "name": x.name,
                "where": ae.loc(x.file, x.line),
                "enabled": x.enabled,
                "id_provider": x.id_provider,
                "auth_provider": x.auth_provider,
                "access_provider": x.access_provider,
                "realm": x.realm,
                "simple_allow_groups": x.simple_allow_groups,
            }
            for x in d.sssd_domains
        ],
        "nsswitch_passwd": {"sources": sources, "where": ae.loc(passwd.file, passwd.line)}
        if passwd
        else None,
        "krb5_default_realm": d.krb5_default_realm,
        "krb5_keytab": {"present": d.keytab_present, "size": d.keytab_size},
        "sssd_conf_mode": d.sssd_mode,
        "local_login_accounts": local,
    }
    fails: list[str] = []
    fixes: list[str] = []
    if d.sssd_mode is not None and int(d.sssd_mode, 8) & 0o077:
        fails.append(f"{d.sssd_file} has mode {d.sssd_mode}: sssd refuses a configuration others can read")
        fixes.append(f"chmod 0600 {d.sssd_file}; chown root:root {d.sssd_file}")
    if directory and "sss" not in sources:
        fails.append(
            "sssd has a directory domain ("
            + ", ".join(f"{x.name} at {ae.loc(x.file, x.line)}" for x in directory)
            + ") but nsswitch passwd does not query sss: directory accounts cannot log in"
        )
        fixes.append(
            "/etc/nsswitch.conf: passwd: files sss / group: files sss (Debian: pam-auth-update --enable sss; "
            "RHEL: authselect select sssd)"
        )
    elif "sss" in sources and not directory:
        fails.append(
            "nsswitch passwd queries sss but sssd has no enabled ad/ipa/ldap domain: no directory accounts"
        )
        fixes.append("realm join --user=ADMIN AD.EXAMPLE.COM (writes the sssd domain and the keytab)")
    if fails:
        yield ctx.failed(
            HOST, "Directory integration is broken: " + "; ".join(fails) + ".", evidence, "\n".join(fixes)
        )
        return
    remaining = ""
    if local:
        remaining = f" Local login accounts besides root remain: {', '.join(local[:10])} — break-glass."
    if directory:
        kerberos = [
            x for x in directory if (x.auth_provider or x.id_provider or "").lower() in KERBEROS_PROVIDERS
        ]
        names = ", ".join(f"{x.name} ({x.id_provider})" for x in directory)
        access_note = "; ".join(
            f"{x.name}: access_provider {x.access_provider or 'default'}"
            + (f", simple_allow_groups {', '.join(x.simple_allow_groups)}" if x.simple_allow_groups else "")
            for x in directory
        )
        auth = (
            "authentication by Kerberos"
            + (f" (realm {d.krb5_default_realm})" if d.krb5_default_realm else "")
            + ("; host keytab present" if d.keytab_present else "")
            if kerberos
            else "authentication by LDAP bind (no Kerberos auth_provider: prefer ad/ipa/krb5)"
        )
        yield ctx.passed(
            HOST,
            f"Accounts come from the enterprise directory through sssd ({names}; nsswitch passwd: "
            f"{' '.join(sources)}), {auth}; {access_note}.{remaining}",
            evidence,
        )
        return
    other = [s for s in sources if s in ("winbind", "ldap")]
    if other:
        yield ctx.manual(
            HOST,
            f"nsswitch passwd uses {', '.join(other)} (not sssd). Evidence needed: the join (`wbinfo -t` for "
            "winbind, /etc/nslcd.conf for nslcd with TLS), Kerberos authentication in PAM, and admin logins "
            "restricted to directory groups." + remaining,
            evidence,
        )
        return
    yield ctx.failed(
        HOST,
        "Host accounts are not integrated with an enterprise directory: no sssd directory domain and "
        f"nsswitch passwd uses only {' '.join(sources) or 'files'}. Joiners/leavers and password policy "
        "are handled on this host alone." + remaining,
        evidence,
        "realm join --user=ADMIN AD.EXAMPLE.COM   (realmd: sssd domain with id_provider = ad, keytab, "
        "nsswitch/PAM)\nthen in /etc/sssd/sssd.conf [domain/AD.EXAMPLE.COM]: access_provider = simple, "
        "simple_allow_groups = hv-admins\nIf integration is not possible, record an exception with its "
        "reason.",
    )
