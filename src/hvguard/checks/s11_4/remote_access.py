"""Checks for SS-009 11.4.6.

11.4.6 Remote console access can be denied, deny root, and be restricted to listed accounts

Checks: ``libvirt_remote_access``, ``sshd_remote_access``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.s11_4.common import (
    libvirtd_conf,
    parse_errors,
)
from hvguard.checks.support import access as ae
from hvguard.checks.support.libvirt_conf import (
    MODULAR_NOTE,
    Setting,
    fix_line,
    restart_note,
)
from hvguard.checks.support.subjects import host_access
from hvguard.findings import Finding

_ROOT_CN = re.compile(r"(^|,)\s*CN\s*=\s*root\s*(,|$)", re.IGNORECASE)


def _sasl_problems(sasl_list: Setting) -> list[str]:
    if not sasl_list.explicit:
        return ["sasl_allowed_username_list is unset: every SASL account may connect"]
    names = [n.strip() for n in sasl_list.as_list()]
    out: list[str] = []
    if "*" in names:
        out.append("sasl_allowed_username_list contains '*': every account may connect")
    if any(n.split("@")[0] == "root" for n in names):
        out.append("sasl_allowed_username_list admits root")
    return out


def _dn_problems(dn_list: Setting) -> list[str]:
    if not dn_list.explicit:
        return ["tls_allowed_dn_list is unset: any certificate signed by the CA is accepted"]
    dns = [n.strip() for n in dn_list.as_list()]
    out: list[str] = []
    if "*" in dns:
        out.append("tls_allowed_dn_list contains '*': every certificate is accepted")
    if any(_ROOT_CN.search(d) for d in dns):
        out.append("tls_allowed_dn_list admits a CN=root certificate")
    return out


@check(
    "11.4.6",
    id="kvm.libvirt-remote-access",
    reads=("host.libvirtd_conf.listen_*", "host.libvirtd_conf.auth_*", "host.libvirtd_conf.*_allowed_*"),
)
def libvirt_remote_access(ctx: CheckContext) -> Iterator[Finding]:
    """libvirt's remote management listener can be denied, keeps root out and admits only listed admins.

    Pass: no remote listener (``listen_tcp = 0`` and ``listen_tls = 0``), or every enabled listener
    authenticates and restricts to a list — TLS: client certificates verified and ``tls_allowed_dn_list``
    set (no '*', no CN=root); SASL (TCP, or TLS with auth_tls sasl): ``sasl_allowed_username_list`` set (no
    '*', no root). Fail: an enabled listener without authentication or without the allow-list. Manual: the
    default ``listen_tls = 1`` without a DN list — it takes effect only with ``--listen``/socket activation,
    which is not collected. The sshd half is ``host.sshd-remote-access``. Source: libvirtd.conf.in.
    """
    lconf = libvirtd_conf(ctx)
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    auth_tls = lconf.get("auth_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    dn_list = lconf.get("tls_allowed_dn_list")
    sasl_list = lconf.get("sasl_allowed_username_list")
    evidence: dict[str, Any] = {
        s.key: s.evidence()
        for s in (listen_tcp, auth_tcp, listen_tls, auth_tls, no_verify, dn_list, sasl_list)
    }
    evidence["note"] = MODULAR_NOTE
    fails: list[str] = []
    fixes: list[str] = []
    manual: list[str] = []
    tcp_on = listen_tcp.as_int() != 0
    if tcp_on:
        if auth_tcp.as_str() == "none":
            fails.append(
                'TCP listener with auth_tcp = "none": anyone reaching port 16509 gets in, so neither '
                "root nor an account list can be enforced"
            )
            fixes.append(fix_line(listen_tcp, 0))
        else:
            probs = _sasl_problems(sasl_list)
            fails += [f"TCP listener: {p}" for p in probs]
            if probs:
                fixes.append(fix_line(sasl_list, ["admin1@EXAMPLE.COM", "admin2@EXAMPLE.COM"]))
    tls_off = listen_tls.explicit and listen_tls.as_int() == 0
    if not tls_off:
        mode = auth_tls.as_str()
        probs = []
        if no_verify.as_int() != 0 and mode == "none":
            probs.append("tls_no_verify_certificate = 1: clients need no certificate")
            fixes.append(fix_line(no_verify, 0))
        probs += _sasl_problems(sasl_list) if mode == "sasl" else _dn_problems(dn_list)
        if probs and mode != "sasl" and not dn_list.explicit:
            fixes.append(fix_line(dn_list, ["C=GB,O=Example,OU=hv-admins,CN=*"]))
        if probs and listen_tls.explicit:
            fails += [f"TLS listener: {p}" for p in probs]
        elif probs:
            manual.append(
                "listen_tls defaults to 1 and takes effect only when libvirtd runs with --listen (or "
                "libvirtd-tls.socket / virtproxyd-tls.socket is enabled), which is not collected; "
                + "; ".join(probs)
                + ". Evidence needed: `ss -ltn 'sport = :16514'` shows no listener, or set listen_tls = 0 / "
                "tls_allowed_dn_list"
            )
    if fails:
        yield ctx.failed(
            HOST,
            "libvirt remote access is not restricted to listed administrative accounts: "
            + "; ".join(fails)
            + ".",
            evidence,
            "\n".join(
                [
                    *dict.fromkeys(fixes),
                    "To deny remote libvirt access entirely: listen_tcp = 0, listen_tls = 0.",
                    restart_note(),
                ]
            ),
        )
        return
    if manual:
        yield ctx.manual(HOST, "; ".join(manual) + ".", evidence)
        return
    if not tcp_on and tls_off:
        msg = (
            "libvirt's own remote listeners are disabled (listen_tcp = 0, listen_tls = 0): remote management "
            "goes only through SSH (qemu+ssh), governed by sshd."
        )
    else:
        msg = (
            "libvirt's remote listeners authenticate every client and admit only the listed accounts/"
            "certificates (root excluded); setting listen_tcp = 0 and listen_tls = 0 denies them entirely."
        )
    yield ctx.passed(HOST, msg, evidence)


@check("11.4.6", id="host.sshd-remote-access", reads=("host.access.sshd",))
def sshd_remote_access(ctx: CheckContext) -> Iterator[Finding]:
    """SSH (the service console's remote protocol) denies root, admits only listed administrators, and can
    be switched off.

    Pass: effective ``PermitRootLogin no`` with no Match block re-enabling root, and a non-empty
    AllowUsers or AllowGroups without ``*`` and without root. Fail otherwise (file:line of each setting).
    Switching sshd off entirely is always possible (``systemctl disable --now ssh``); whether it starts at
    boot is in the evidence. Not applicable when sshd is not installed (SSH access is denied entirely).
    """
    access = host_access(ctx)
    sshd = access.sshd if access is not None else None
    if sshd is None:
        if access is not None and ctx.problems("host.access.sshd"):
            yield ctx.error(HOST, "sshd's configuration", "host.access.sshd")
            return
        yield ctx.manual(
            HOST,
            "Evidence needed for SSH (the service console's main remote protocol): `sshd -T` showing "
            "permitrootlogin no and allowusers/allowgroups naming only the hypervisor administrators, and "
            "that sshd can be switched off entirely (systemctl disable --now ssh) with console access as "
            "fallback.",
            {"sshd": "not collected (an older bundle or no host facts)"},
        )
        return
    if sshd.installed is False:
        yield ctx.not_applicable(
            HOST, "sshd is not installed: remote SSH access to the host is denied entirely"
        )
        return
    yield from parse_errors(ctx, sshd.errors, "an sshd configuration line; sshd refuses to start with it")
    root = sshd.effective.get("permitrootlogin")
    root_value = ae.sshd_value(sshd, "permitrootlogin", "prohibit-password")
    allow_users = ae.sshd_values(sshd, "allowusers")
    allow_groups = ae.sshd_values(sshd, "allowgroups")
    evidence: dict[str, Any] = {
        "permitrootlogin": {"value": root_value, "source": ae.setting_source(root)},
        "allowusers": {"value": allow_users, "source": ae.setting_source(sshd.effective.get("allowusers"))},
        "allowgroups": {
            "value": allow_groups,
            "source": ae.setting_source(sshd.effective.get("allowgroups")),
        },
        "match_blocks": [f"Match {b.text} ({ae.loc(b.file, b.line)})" for b in sshd.matches],
        "source": sshd.source,
        "service_enabled": sshd.service_enabled,
        "service_evidence": sshd.service_evidence,
    }
    fails: list[str] = []
    fixes: list[str] = []
    if root_value != "no":
        fails.append(f"PermitRootLogin is {root_value} ({ae.setting_source(root)}): root may log in over SSH")
        fixes.append(ae.sshd_fix(sshd, "permitrootlogin", "PermitRootLogin no"))
    for block in sshd.matches:
        setting = block.settings.get("permitrootlogin")
        if setting is not None and setting.values != ["no"]:
            fails.append(
                f"Match {block.text} ({ae.loc(setting.file, setting.line)}) sets PermitRootLogin "
                f"{setting.values[0]}"
            )
            fixes.append(f"{setting.file} line {setting.line}: PermitRootLogin no (or delete the line)")
    if not allow_users and not allow_groups:
        fails.append("neither AllowUsers nor AllowGroups is set: every account with a login may connect")
        fixes.append(ae.sshd_fix(sshd, "allowgroups", "AllowGroups hv-admins"))
    wide = [a for a in [*allow_users, *allow_groups] if a.split("@", 1)[0] in ("*", "root")]
    if wide:
        fails.append(f"the allow-list admits {', '.join(wide)}")
        fixes.append("name only the hypervisor administrators (AllowGroups hv-admins)")
    enabled = {True: "starts at boot", False: "does not start at boot", None: "boot state unknown"}
    deny_note = (
        f" sshd {enabled[sshd.service_enabled]}; it can be switched off entirely with "
        "`systemctl disable --now ssh` (sshd on RHEL), leaving the console."
    )
    if fails:
        yield ctx.failed(
            HOST,
            "SSH access to the service console is not restricted: " + "; ".join(fails) + "." + deny_note,
            evidence,
            "\n".join(
                [
                    *dict.fromkeys(fixes),
                    "Check: sshd -t && sshd -T | grep -Ei 'permitrootlogin|allow'; then systemctl reload ssh",
                ]
            ),
        )
        return
    listed = " ".join(
        [
            *(f"users {' '.join(allow_users)}" for _ in [0] if allow_users),
            *(f"groups {' '.join(allow_groups)}" for _ in [0] if allow_groups),
        ]
    )
    yield ctx.passed(
        HOST,
        f"SSH denies root (PermitRootLogin no, {ae.setting_source(root)}) and admits only the listed "
        f"administrators ({listed})." + deny_note,
        evidence,
    )
