"""Checks for SS-009 11.3.7.

11.3.7 VM configuration changes logged and administrators notified

Checks: ``config_change_notify``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.findings import Finding


@check("11.3.7", id="kvm.config-change-notify", reads=("host.libvirtd_conf",))
def config_change_notify(ctx: CheckContext) -> Iterator[Finding]:
    """``manual``: that VM configuration changes are logged *and* administrators are notified needs the
    monitoring chain end to end, which one host's facts cannot show. ``hvguard watch`` (libvirt events plus
    a hash of every VM definition, with webhook, syslog or e-mail notification) is one such chain; the
    finding names it and asks for the evidence of whichever chain is in use. The libvirt audit settings
    are given as supporting evidence."""
    evidence: dict[str, object] = {}
    host = ctx.host
    if host is not None:
        for key in ("audit_level", "audit_logging"):
            value = host.libvirtd_conf.values.get(key)
            evidence[key] = value.value if value is not None else None
        evidence["libvirtd_conf"] = host.libvirtd_conf.path
    yield ctx.manual(
        HOST,
        "Provide the VM configuration-change monitoring in use and an example notification: libvirt audit "
        "records (VIRT_RESOURCE/VIRT_CONTROL; libvirtd.conf audit_level >= 1 with auditd running), an auditd "
        "watch such as '-w /etc/libvirt/qemu/ -p wa -k vm_config', where these logs are compiled, and a "
        "notification delivered to administrators for a recent VM change. 'hvguard watch' provides both: run "
        "it as a service (packaging/hvguard-watch.service, e.g. 'hvguard watch --config "
        "/etc/hvguard/watch.yaml') and attest with its change log and a notification it sent.",
        evidence,
    )
