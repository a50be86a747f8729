"""Checks for SS-009 11.2.1.

11.2.1 Boot option to disallow non-certified drivers; confined device emulation

Checks: ``driver_signing``, ``driver_bypass``, ``qemu_confinement``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check
from hvguard.checks.support.libvirt_conf import (
    load_conf,
    restart_note,
)
from hvguard.checks.support.qemu import (
    judge_qemu_conf,
    mac_state,
    qemu_user_state,
)
from hvguard.findings import Finding

#: /proc/sys/kernel/tainted bit 13 ('E'): an unsigned module was loaded.
TAINT_UNSIGNED_MODULE = 1 << 13


ENFORCING_LOCKDOWN = frozenset({"integrity", "confidentiality"})


def lockdown_mode(raw: str | None) -> str | None:
    """The active lockdown mode from ``/sys/kernel/security/lockdown`` (``none [integrity] …`` or a word)."""
    if raw is None:
        return None
    m = re.search(r"\[(\w+)\]", raw)
    return (m.group(1) if m else raw.strip()).lower()


@check("11.2.1", id="kvm.driver-signing", reads=("host.secure_boot", "host.kernel"))
def driver_signing(ctx: CheckContext) -> Iterator[Finding]:
    """Only signed ("certified") kernel drivers can load, from a verified boot (the "must" boot option).

    Pass: UEFI Secure Boot enabled, module signatures enforced (``sig_enforce=Y`` or kernel lockdown
    ``integrity``/``confidentiality``, which implies it), and no unsigned module loaded (taint bit 13, value
    8192, clear). Sources: efivars SecureBoot, /sys/module/module/parameters/sig_enforce,
    /sys/kernel/security/lockdown, /proc/sys/kernel/tainted (kernel docs "Tainted kernels": bit 13 'E').
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "driver signing (Secure Boot, module signature enforcement)", "host")
        return
    sb, kernel = host.secure_boot, host.kernel
    mode = lockdown_mode(kernel.lockdown)
    # The collector reports "none" when the lockdown LSM is absent, so None means "could not be read".
    enforced: bool | None
    if kernel.sig_enforce is True or mode in ENFORCING_LOCKDOWN:
        enforced = True
    elif kernel.sig_enforce is False and mode is not None:
        enforced = False
    else:
        enforced = None
    taint = kernel.tainted
    unsigned_loaded = None if taint is None else bool(taint & TAINT_UNSIGNED_MODULE)
    evidence: dict[str, Any] = {
        "secure_boot.uefi": sb.uefi,
        "secure_boot.enabled": sb.enabled,
        "secure_boot.source": sb.source,
        "kernel.sig_enforce": kernel.sig_enforce,
        "kernel.lockdown": kernel.lockdown,
        "kernel.tainted": taint,
        "unsigned_module_taint_bit13": unsigned_loaded,
    }
    problems: list[str] = []
    fixes: list[str] = []
    if sb.enabled is False:
        if sb.uefi is False:
            problems.append("the host boots in legacy BIOS mode, so Secure Boot cannot verify the boot chain")
            fixes.append(
                "Switch the firmware to UEFI boot and enable Secure Boot (reinstall the bootloader "
                "as EFI: grub-install --target=x86_64-efi, shim-signed on Debian)."
            )
        else:
            problems.append("UEFI Secure Boot is disabled")
            fixes.append(
                "Enable Secure Boot in the firmware setup (the distribution's signed shim/GRUB "
                "boot it); check with: mokutil --sb-state"
            )
    if enforced is False:
        problems.append("unsigned kernel modules are allowed to load (sig_enforce=N, no lockdown)")
        fixes.append(
            "Add module.sig_enforce=1 (or lockdown=integrity) to GRUB_CMDLINE_LINUX in "
            "/etc/default/grub, run update-grub (Debian) or grub2-mkconfig -o /boot/grub2/grub.cfg "
            "(RHEL) and reboot; check: cat /sys/module/module/parameters/sig_enforce"
        )
    if unsigned_loaded:
        problems.append("an unsigned module is loaded now (kernel taint bit 13 'E')")
        fixes.append(
            "Find it with: grep -l E /sys/module/*/taint; unload it (modprobe -r MODULE) and "
            "blacklist it, or sign it with a key enrolled in the MOK list (mokutil --import)."
        )
    unknown = [
        name
        for name, v in (
            ("Secure Boot state", sb.enabled),
            ("module signature enforcement", enforced),
            ("kernel taint flags", unsigned_loaded),
        )
        if v is None
    ]
    if problems:
        yield ctx.failed(
            HOST,
            "Non-certified drivers are not disallowed: "
            + "; ".join(problems)
            + "."
            + (f" Not determinable: {', '.join(unknown)}." if unknown else ""),
            evidence,
            "\n".join(fixes),
        )
        return
    if unknown:
        yield ctx.error(HOST, ", ".join(unknown), "host.secure_boot", "host.kernel")
        return
    how = f"lockdown={mode}" if mode in ENFORCING_LOCKDOWN else "module.sig_enforce=Y"
    yield ctx.passed(
        HOST,
        f"Secure Boot is on and only signed kernel modules can load ({how}); no unsigned "
        "module is loaded (taint bit 13 clear).",
        evidence,
    )


@check("11.2.1", id="kvm.driver-bypass", reads=("host.kernel.module_blacklist", "host.kernel.cmdline"))
def driver_bypass(ctx: CheckContext) -> Iterator[Finding]:
    """Administrators can bypass a faulty driver (the second "must" of 11.2.1).

    Pass: always on a Linux KVM host — the kernel command line ``module_blacklist=`` (set at the boot menu)
    and ``/etc/modprobe.d`` ``blacklist``/``install MODULE /bin/false`` keep a driver from loading. The
    evidence lists what is blacklisted now; the runbook that shows administrators how to do it is the
    record an auditor asks for.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the driver bypass mechanism (kernel command line, modprobe.d)", "host")
        return
    kernel = host.kernel
    yield ctx.passed(
        HOST,
        "Faulty drivers can be bypassed: module_blacklist=MODULE on the kernel command line (edit the entry "
        "at the boot menu) or 'blacklist MODULE' / 'install MODULE /bin/false' in /etc/modprobe.d. Keep the "
        "runbook for doing this (and proof it was exercised) with the audit records.",
        {
            "kernel.module_blacklist": kernel.module_blacklist,
            "kernel.cmdline": kernel.cmdline,
            "mechanism": ["kernel cmdline module_blacklist=", "/etc/modprobe.d blacklist / install"],
        },
    )


@check(
    "11.2.1",
    id="kvm.qemu-confinement",
    reads=("host.qemu_conf", "host.qemu_processes", "hypervisor.capabilities.secmodels"),
)
def qemu_confinement(ctx: CheckContext) -> Iterator[Finding]:
    """QEMU (the device-emulation process) is confined — the "should" part of 11.2.1, so unmet is ``warn``.

    KVM cannot run each VM's QEMU inside its own unprivileged VM; libvirt's process confinement is the
    closest control. Pass: QEMU not root, a MAC security driver (SELinux/AppArmor) active and not "none",
    ``security_default_confined`` and ``security_require_confined`` on, ``seccomp_sandbox`` on,
    ``namespaces`` includes "mount". Sources: qemu.conf (defaults from qemu.conf.in), running QEMU
    processes, libvirt capabilities ``<secmodel>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "QEMU confinement (qemu.conf, QEMU processes)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    user = qemu_user_state(host, qconf)
    mac = mac_state(ctx, qconf)
    default_confined = qconf.get("security_default_confined")
    require_confined = qconf.get("security_require_confined")
    seccomp = qconf.get("seccomp_sandbox")
    namespaces = qconf.get("namespaces")
    evidence: dict[str, Any] = {
        "qemu_user_basis": user.basis,
        **user.evidence,
        **mac.evidence,
        "security_default_confined": default_confined.evidence(),
        "security_require_confined": require_confined.evidence(),
        "seccomp_sandbox": seccomp.evidence(),
        "namespaces": namespaces.evidence(),
    }
    unmet: list[str] = []
    fixes: list[str] = []
    if user.root:
        unmet.append(f"QEMU runs as root ({user.basis})")
        fixes.append(
            f'{qconf.get("user").where()}: user = "libvirt-qemu" (Debian) or "qemu" (RHEL); '
            f"{qconf.get('group').where()}: group = the same"
        )
    conf_unmet, conf_fixes = judge_qemu_conf(
        "11.2.1",
        qconf,
        ("mac", "security_default_confined", "security_require_confined", "seccomp_sandbox", "namespaces"),
        mac,
    )
    unmet += conf_unmet
    fixes += conf_fixes
    if unmet:
        yield ctx.warned(
            HOST,
            "QEMU confinement (advisory part of 11.2.1) is only partly met: " + "; ".join(unmet) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if mac.active is None:
        yield ctx.error(
            HOST, "whether a MAC security driver confines QEMU (libvirt capabilities)", "hypervisor"
        )
        return
    if user.root is None:
        yield ctx.manual(
            HOST,
            "QEMU confinement is configured (sVirt " + "/".join(mac.active) + ", seccomp, mount namespace, "
            "confinement required), but the account QEMU runs as is unknown: qemu.conf has no 'user' key and "
            "no QEMU process runs, so the build-time default applies. Evidence needed: `virsh capabilities` "
            "DAC <baselabel> (must not be +0:+0) or `ps -o user= -C qemu-system-x86_64` with a VM running.",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "QEMU is confined as far as KVM allows (process-level, not a separate VM): non-root, sVirt "
        + "/".join(mac.active)
        + ", confinement required, seccomp sandbox and a private mount namespace.",
        evidence,
    )
