"""Checks for SS-009 11.2.6.

11.2.6 Device drivers run in user mode or with lower privilege

Checks: ``qemu_unprivileged``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CheckContext, check, vm_subject
from hvguard.checks.support.libvirt_conf import (
    load_conf,
    restart_note,
)
from hvguard.checks.support.qemu import (
    dac_label_is_root,
    judge_qemu_conf,
    qemu_user_state,
)
from hvguard.checks.support.shell import shell_word as sh
from hvguard.findings import Finding


@check(
    "11.2.6",
    id="kvm.qemu-unprivileged",
    reads=("host.qemu_processes", "host.qemu_conf", "hypervisor.vms[].seclabels"),
)
def qemu_unprivileged(ctx: CheckContext) -> Iterator[Finding]:
    """Device emulation (QEMU, user space) runs without root privileges.

    Pass: every running QEMU process has uid ≠ 0 (runtime truth; else qemu.conf ``user``/``group`` not
    root), ``seccomp_sandbox`` ≠ 0, ``clear_emulator_capabilities`` ≠ 0 (libvirt taints such domains
    "high-privileges"), and no VM overrides its DAC label to root. Manual when the QEMU account is the
    unknown build-time default. In-kernel back-ends (vhost-net) are noted for attestation. Sources:
    /proc (QEMU processes), qemu.conf, domain ``<seclabel model='dac'>``.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "the privileges of QEMU processes (qemu.conf, /proc)", "host")
        return
    qconf = load_conf(ctx, host, "qemu_conf")
    user = qemu_user_state(host, qconf)
    seccomp = qconf.get("seccomp_sandbox")
    clear_caps = qconf.get("clear_emulator_capabilities")
    evidence: dict[str, Any] = {
        "qemu_user_basis": user.basis,
        **user.evidence,
        "seccomp_sandbox": seccomp.evidence(),
        "clear_emulator_capabilities": clear_caps.evidence(),
        "kernel_mode_backends": "vhost-net/vhost-scsi run in the kernel when used (not collected)",
    }
    # Per-VM DAC overrides run that VM's QEMU as root even when qemu.conf does not.
    hv = ctx.hypervisor
    root_vms = [
        vm for vm in (hv.vms if hv is not None else []) if any(dac_label_is_root(s) for s in vm.seclabels)
    ]
    for vm in root_vms:
        label = next(s.label for s in vm.seclabels if dac_label_is_root(s))
        yield ctx.failed(
            vm_subject(vm),
            f"This VM's domain XML runs its QEMU as root: <seclabel model='dac' type='static'> "
            f"label {label}.",
            {"seclabel.dac.label": label},
            f"virsh edit {sh(vm.name)}: remove the <seclabel type='static' model='dac'> element (or set a "
            "non-root +UID:+GID label), then restart the VM.",
        )
    fails: list[str] = []
    fixes: list[str] = []
    if user.root:
        fails.append(f"QEMU runs as root ({user.basis})")
        fixes.append(f'{qconf.get("user").where()}: user = "libvirt-qemu" (Debian) or "qemu" (RHEL)')
        fixes.append(f"{qconf.get('group').where()}: group = the same non-root group")
    seccomp_unmet, seccomp_fixes = judge_qemu_conf("11.2.6", qconf, ("seccomp_sandbox",))
    fails += seccomp_unmet
    fixes += seccomp_fixes
    if clear_caps.explicit and clear_caps.as_int() == 0:
        fails.append(
            "clear_emulator_capabilities = 0: QEMU keeps root capabilities (releases without this "
            "option ignore it — delete the line either way)"
        )
        fixes.append(f"{clear_caps.where()}: delete the clear_emulator_capabilities line (default 1)")
    if fails:
        yield ctx.failed(
            HOST,
            "Device emulation runs with elevated privilege: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    if user.root is None:
        yield ctx.manual(
            HOST,
            "QEMU's seccomp sandbox and capability dropping are on, but its account is unknown: qemu.conf "
            "sets no 'user' and no QEMU process runs, so libvirt's build-time default applies (Debian "
            "builds use libvirt-qemu, some builds root). Evidence needed: `virsh capabilities` DAC "
            "<baselabel> (not +0:+0) or `ps -o user=,uid= -C qemu-system-x86_64` with a VM running; and "
            "a justified list of in-kernel back-ends (vhost-net) in use.",
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        f"Device emulation runs in unprivileged user-space QEMU ({user.basis}), with the seccomp sandbox and "
        "capabilities dropped. In-kernel back-ends such as vhost-net remain kernel mode (attest if used)."
        + (f" {len(root_vms)} VM(s) override this to root (see their findings)." if root_vms else ""),
        evidence,
    )
