"""Checks for SS-009 11.4.3.

11.4.3 Multi-factor authentication for all administrative functions

Checks: ``admin_mfa``, ``sshd_mfa``, ``sudo_mfa``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.s11_4.common import (
    libvirtd_conf,
    parse_errors,
)
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    Setting,
    fix_line,
    restart_note,
)
from hvguard.checks.support.subjects import host_access
from hvguard.findings import Finding


def _tls_active(listen_tls: Setting) -> bool:
    """Whether the TLS listener counts: explicitly on, or the default (on whenever libvirtd runs --listen)."""
    return listen_tls.as_int() != 0


@check("11.4.3", id="host.admin-mfa", reads=("host.libvirtd_conf",))
def admin_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Every administrative path requires two factors.

    Fail: a libvirt admin path with no authentication at all — ``listen_tcp = 1`` with ``auth_tcp =
    "none"``, or a TLS listener with ``tls_no_verify_certificate = 1`` and ``auth_tls = "none"``. Otherwise
    manual: sshd AuthenticationMethods and PAM (later collectors) decide the rest.
    """
    evidence_needed = (
        "Evidence needed: every administrative path enforces two factors — sshd -T authenticationmethods "
        "publickey,keyboard-interactive with pam_u2f/pam_oath in /etc/pam.d/sshd, sudo's PAM stack likewise, "
        "libvirt TLS client certificates on hardware tokens plus SASL/GSSAPI, web UIs behind an MFA IdP, and "
        "out-of-band consoles (iDRAC/iLO) with MFA."
    )
    try:
        lconf = libvirtd_conf(ctx)
    except CannotEvaluate as signal:  # the attestation part stands whatever libvirtd.conf says
        yield ctx.error_for(signal)
        yield ctx.manual(HOST, evidence_needed, {"libvirtd.conf": "not evaluated (see the error finding)"})
        return
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    auth_tls = lconf.get("auth_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    evidence = {s.key: s.evidence() for s in (listen_tcp, auth_tcp, listen_tls, auth_tls, no_verify)}
    fails: list[str] = []
    fixes: list[str] = []
    if listen_tcp.as_int() != 0 and auth_tcp.as_str() == "none":
        fails.append('libvirt TCP (listen_tcp = 1, auth_tcp = "none") admits administrators with no factor')
        fixes.append(fix_line(listen_tcp, 0))
    if _tls_active(listen_tls) and no_verify.as_int() != 0 and auth_tls.as_str() == "none":
        fails.append(
            'libvirt TLS with tls_no_verify_certificate = 1 and auth_tls = "none" admits administrators '
            "with no factor" + ("" if listen_tls.explicit else " whenever libvirtd listens (--listen)")
        )
        fixes.append(fix_line(no_verify, 0))
    if fails:
        yield ctx.failed(
            HOST,
            "An administrative path needs no authentication at all: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if host_access(ctx) is None:
        yield ctx.manual(HOST, evidence_needed, evidence)
        return
    # SSH and sudo are decided by host.sshd-mfa and host.sudo-mfa; what remains is libvirt's own listeners.
    if listen_tls.explicit and not _tls_active(listen_tls) and listen_tcp.as_int() == 0:
        yield ctx.passed(
            HOST,
            "libvirt has no remote listener of its own (listen_tcp = 0, listen_tls = 0): remote VM "
            "management goes through SSH (qemu+ssh), decided by host.sshd-mfa. Out-of-band consoles (BMC: "
            "iDRAC/iLO) are outside the host: attest their MFA separately.",
            evidence,
        )
        return
    yield ctx.manual(
        HOST,
        "libvirt's own remote listener "
        + ("is on" if listen_tls.explicit or listen_tcp.as_int() else "may run (listen_tls defaults to 1)")
        + ": a TLS client certificate or a SASL login is one factor. Evidence needed: client certificates on "
        'hardware tokens with a PIN plus auth_tls = "sasl" (GSSAPI), or listen_tcp = 0 and listen_tls = 0 '
        "so management goes through SSH; and MFA on out-of-band consoles (BMC).",
        evidence,
    )


@check("11.4.3", id="host.sshd-mfa", reads=("host.access.sshd", "host.access.pam.sshd"))
def sshd_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Every SSH login needs two factors.

    Pass: every AuthenticationMethods list (global and in every Match block) needs two distinct methods
    (``publickey,keyboard-interactive``, ``publickey,password`` …), or a single keyboard-interactive /
    password method whose PAM stack (UsePAM yes) enforces a second factor (pam_u2f, pam_google_authenticator,
    pam_oath, pam_yubico, pam_duo, smartcard) without ``nullok`` and without an earlier rule that can
    succeed first. Fail: ``AuthenticationMethods any`` with a single-factor method enabled (public key
    alone, password alone), or a single-factor list. Not applicable when sshd is not installed.
    """
    access = host_access(ctx)
    if access is None:
        return
    sshd = access.sshd
    if sshd is None:
        if ctx.problems("host.access.sshd"):
            yield ctx.error(HOST, "sshd's configuration", "host.access.sshd")
        return
    if sshd.installed is False:
        yield ctx.not_applicable(HOST, "sshd is not installed: there is no SSH administrative path")
        return
    yield from parse_errors(ctx, sshd.errors, "an sshd configuration line; sshd refuses to start with it")
    stack = access.pam.get("sshd")
    if stack is not None:
        yield from parse_errors(ctx, stack.errors, "a PAM rule of sshd (PAM may skip or refuse it)")
    result = ae.ssh_mfa(sshd, stack)
    if result.gaps:
        yield ctx.failed(
            HOST,
            "SSH logins do not all need two factors: " + "; ".join(result.gaps) + ".",
            result.evidence,
            "\n".join(
                [
                    ae.sshd_fix(
                        sshd, "authenticationmethods", "AuthenticationMethods publickey,keyboard-interactive"
                    ),
                    ae.sshd_fix(sshd, "kbdinteractiveauthentication", "KbdInteractiveAuthentication yes"),
                    ae.sshd_fix(sshd, "usepam", "UsePAM yes"),
                    "/etc/pam.d/sshd: auth required pam_u2f.so cue   (or pam_google_authenticator.so, "
                    "without nullok); remove AuthenticationMethods overrides in Match blocks that weaken it",
                    "Check: sshd -t && sshd -T | grep -i authenticationmethods; then systemctl reload ssh",
                ]
            ),
        )
        return
    yield ctx.passed(
        HOST,
        "Every SSH login needs two factors (AuthenticationMethods "
        + result.evidence["authenticationmethods"]["value"]
        + (
            f"; PAM second factor: {', '.join(result.evidence['pam_sshd_second_factors'])}"
            if isinstance(result.evidence["pam_sshd_second_factors"], list)
            else ""
        )
        + ").",
        result.evidence,
    )


@check(
    "11.4.3",
    id="host.sudo-mfa",
    reads=("host.access.sudo", "host.access.pam.sudo"),
)
def sudo_mfa(ctx: CheckContext) -> Iterator[Finding]:
    """Privilege elevation through sudo needs two factors.

    Pass: sudo's PAM stack enforces a second factor (as for SSH) and no rule skips authentication
    (``NOPASSWD``) or turns it off (``Defaults !authenticate``). Fail otherwise, naming the file and line.
    Not applicable when sudo grants nothing beyond root.
    """
    access = host_access(ctx)
    if access is None:
        return
    sudo = access.sudo
    if sudo is None:
        if ctx.problems("host.access.sudo"):
            yield ctx.error(HOST, "the sudo configuration", "host.access.sudo")
        return
    grants = [r for r in sudo.rules if r.principals != ["root"]]
    unread = ae.sudo_unreadable_error(ctx, "whether sudo requires two factors")
    if unread is not None:
        yield unread  # unknown grants: never "not an administrative path", never a pass
        if not grants:
            return
    elif not sudo.present or not grants:
        yield ctx.not_applicable(HOST, "sudo grants nothing beyond root: it is not an administrative path")
        return
    stack = access.pam.get("sudo")
    if stack is not None:
        yield from parse_errors(ctx, stack.errors, "a PAM rule of sudo (PAM may skip or refuse it)")
    mandatory, notes = ae.pam_second_factor(stack)
    gaps: list[str] = []
    fixes: list[str] = []
    for rule in grants:
        if rule.nopasswd:
            gaps.append(
                f"{ae.loc(rule.file, rule.line)}: NOPASSWD for {rule.written} — no authentication at all"
            )
            fixes.append(f"visudo -f {rule.file}: line {rule.line} — remove NOPASSWD:")
    for default in sudo.defaults:
        if "!authenticate" in default.text.replace(" ", ""):
            gaps.append(f"{ae.loc(default.file, default.line)}: {default.text} turns authentication off")
            fixes.append(f"visudo -f {default.file}: line {default.line} — remove !authenticate")
    if not mandatory:
        gaps.append(
            f"sudo's PAM stack ({stack.file if stack else '/etc/pam.d/sudo'}) has no enforced second factor"
            + (f" ({'; '.join(notes)})" if notes else "")
        )
        fixes.append("/etc/pam.d/sudo: auth required pam_u2f.so cue   (before @include common-auth)")
    evidence = {
        "pam_sudo_second_factors": notes or "none",
        "grants": [
            {"where": ae.loc(r.file, r.line), "users": r.principals, "nopasswd": r.nopasswd} for r in grants
        ][:30],
    }
    if gaps:
        yield ctx.failed(
            HOST,
            "sudo does not require two factors: " + "; ".join(gaps[:10]) + ".",
            evidence,
            "\n".join(fixes),
        )
        return
    if unread is not None:
        return
    yield ctx.passed(HOST, "sudo requires two factors: " + "; ".join(notes) + ".", evidence)
