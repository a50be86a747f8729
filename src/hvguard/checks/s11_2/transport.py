"""Checks for SS-009 11.2.10.

11.2.10 Secure protocol (TLS) to servers that store VM images

Checks: ``vm_image_transport``, ``storage_transport``, ``libvirt_remote_transport``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check, vm_subject
from hvguard.checks.s11_2.common import (
    disk_name,
    storage_or_none,
)
from hvguard.checks.support.libvirt_conf import (
    MODULAR_NOTE,
    Conf,
    Setting,
    fix_line,
    load_conf,
    restart_note,
)
from hvguard.checks.support.ops import (
    LOCAL_POOL_TYPES,
    REMOTE_FS,
    mount_for,
    mount_transport,
    ops_group,
    pool_transport,
    require_well_formed,
)
from hvguard.checks.support.shell import shell_word
from hvguard.checks.support.subjects import vms_or_not_applicable
from hvguard.facts import (
    Disk,
    StorageFacts,
    VmFacts,
)
from hvguard.findings import Finding

#: Network disk protocols and what they mean for transport security (libvirt ``<source protocol=…>``).
SECURE_PROTOCOLS = {"https": "HTTPS (TLS)", "ftps": "FTPS (TLS)", "ssh": "SSH"}


CLEARTEXT_PROTOCOLS = {
    "http": "HTTP is cleartext",
    "ftp": "FTP is cleartext",
    "tftp": "TFTP is cleartext",
    "iscsi": "iSCSI has no transport encryption (CHAP only authenticates)",
    "nfs": "QEMU's NFS client (libnfs) uses AUTH_SYS without encryption",
    "sheepdog": "Sheepdog has no transport encryption",
}


EVIDENCE_PROTOCOLS = {
    "rbd": "Ceph: show msgr2 secure mode (ms_client_mode = secure, ms_mon_client_mode = secure in ceph.conf)",
    "gluster": "Gluster: show TLS on the volume (client.ssl on, server.ssl on)",
    "vxhs": "VxHS: show TLS (vxhs_tls = 1); QEMU dropped VxHS in 5.2",
}


def _local_disk_transport(d: Disk, storage: StorageFacts | None) -> tuple[bool | None, str] | None:
    """For a disk given by path or pool volume: whether its storage reaches a server securely (None when
    the storage is local or unknown)."""
    if storage is None:
        return None
    if d.source_pool:
        pool = next((p for p in storage.pools if p.name == d.source_pool), None)
        if pool is None:
            return None
        ok, why = pool_transport(pool, storage.mounts)
        return (ok, f"pool {pool.name} ({pool.type}): {why}") if pool.type not in LOCAL_POOL_TYPES else None
    if d.source_path and storage.mounts is not None:
        m = mount_for(d.source_path, storage.mounts)
        if m is not None and m.fstype in REMOTE_FS:
            ok, why = mount_transport(m.fstype, m.options)
            return ok, f"{d.source_path} is on {m.fstype} mount {m.mountpoint} ({m.source}): {why}"
    return None


def _nbd_default(ctx: CheckContext) -> Setting | None:
    """qemu.conf ``nbd_tls`` (the default for NBD disks without ``tls=``), or None (no host); raises
    :class:`CannotEvaluate` when qemu.conf is unusable."""
    host = ctx.host
    if host is None:
        return None
    return load_conf(ctx, host, "qemu_conf").get("nbd_tls")


@check(
    "11.2.10",
    id="kvm.vm-image-transport",
    reads=(
        "hypervisor.vms[].disks[].source_protocol",
        "hypervisor.vms[].disks[].source_tls",
        "host.qemu_conf.nbd_tls",
    ),
)
def vm_image_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM reaches the servers holding its images over a secure protocol (per VM).

    Pass: only local file/block disks, or network disks over https/ftps/ssh, or NBD with TLS (``tls='yes'``
    on the source, else qemu.conf ``nbd_tls = 1``). Fail: http, ftp, tftp, iSCSI, NFS (libnfs), sheepdog,
    NBD without TLS; a local path or pool volume whose storage is a remote mount or pool without
    encryption (NFS without sec=krb5p/xprtsec=tls, SMB without seal, iSCSI). Manual: rbd, gluster (TLS is
    configured outside libvirt), pools whose definition is not on the host. Covers cdrom sources too: an
    ISO fetched over http is an image in transit.
    """
    storage = storage_or_none(ctx)
    nbd_unreadable: str | None = None
    try:
        nbd = _nbd_default(ctx)
    except CannotEvaluate as signal:
        # Only the VMs with NBD disks that name no tls= need qemu.conf: they report it, the others not.
        nbd, nbd_unreadable = None, ctx.error_message(signal.what, *signal.areas)
    nbd_tls: bool | None = None
    if nbd is not None:
        nbd_tls = nbd.as_int() != 0

    def judge(vm: VmFacts) -> Iterator[Finding]:
        subject = vm_subject(vm)
        bad: list[str] = []
        manual: list[str] = []
        unknown: list[str] = []
        per_disk: dict[str, Any] = {}
        for d in vm.disks:
            proto = d.source_protocol
            name = disk_name(d)
            if proto is None and d.type != "network":
                local = _local_disk_transport(d, storage)
                if local is not None:
                    ok, why = local
                    per_disk[name] = {"storage": why}
                    if ok is False:
                        bad.append(f"{name}: {why}")
                    elif ok is None:
                        manual.append(f"{name}: {why}")
                elif d.type == "volume" or d.source_pool:
                    manual.append(
                        f"{name}: pool {d.source_pool} volume {d.source_volume} — show the pool's "
                        "type and transport (virsh pool-dumpxml)"
                    )
                    per_disk[name] = {"pool": d.source_pool, "volume": d.source_volume}
                continue
            hosts = ",".join(d.source_hosts) or "?"
            per_disk[name] = {
                "protocol": proto,
                "hosts": d.source_hosts,
                "name": d.source_name,
                "tls": d.source_tls,
            }
            if proto is None:
                manual.append(f"{name}: network disk without a protocol")
            elif proto in SECURE_PROTOCOLS:
                continue
            elif proto == "nbd":
                tls = d.source_tls if d.source_tls is not None else nbd_tls
                if d.source_tls is None and isinstance(nbd, Setting):
                    per_disk[name]["tls_from"] = {"nbd_tls": nbd.evidence()}
                if tls is True:
                    continue
                if tls is False:
                    bad.append(f"{name}: nbd://{hosts} without TLS")
                else:
                    unknown.append(name)
            elif proto in CLEARTEXT_PROTOCOLS:
                bad.append(f"{name}: {proto}://{hosts} — {CLEARTEXT_PROTOCOLS[proto]}")
            elif proto in EVIDENCE_PROTOCOLS:
                manual.append(f"{name}: {proto}://{hosts} — {EVIDENCE_PROTOCOLS[proto]}")
            else:
                manual.append(f"{name}: {proto}://{hosts} — show the transport is encrypted")
        evidence = {"network_disks": per_disk}
        if bad:
            yield ctx.failed(
                subject,
                "VM images are fetched over insecure protocols: " + "; ".join(bad) + ".",
                evidence,
                f"virsh edit {shell_word(vm.name)}: serve images over HTTPS (<source protocol='https' …>"
                "<ssl verify='yes'/>) or NBD with TLS (<source protocol='nbd' … tls='yes'> and nbd_tls = 1 "
                "with nbd_tls_x509_cert_dir in /etc/libvirt/qemu.conf); iSCSI/NFS only inside an encrypted "
                "tunnel (IPsec/WireGuard), recorded as an exception.",
            )
        elif unknown:
            what = (
                "whether NBD disks " + ", ".join(unknown) + " use TLS (no tls= attribute; qemu.conf nbd_tls"
            )
            if nbd_unreadable is not None:
                yield ctx.error(subject, f"{what} unreadable: {nbd_unreadable})")
            else:
                yield ctx.error(subject, what + ")", "host")
        elif manual:
            yield ctx.manual(
                subject,
                "Transport security of these image sources is configured outside libvirt: "
                + "; ".join(manual)
                + ".",
                evidence,
            )
        else:
            msg = (
                "Every network image source uses a secure protocol (https/ftps/ssh or NBD with TLS)."
                if per_disk
                else "No image server is used: every disk is a local file or block device"
                + (" on local storage." if storage is not None else " (mounts not collected).")
            )
            yield ctx.passed(subject, msg, evidence)

    yield from vms_or_not_applicable(ctx, judge, count_evidence=True)


@check(
    "11.2.10",
    id="kvm.storage-transport",
    reads=("host.operations.storage.pools", "host.operations.storage.mounts"),
)
def storage_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Storage pools and network mounts that hold images reach their servers over encrypted transports.

    Per pool (libvirt storage pool definitions): local types pass; netfs NFS needs ``sec=krb5p`` or
    ``xprtsec=tls|mtls`` (on the live mount, else in the pool's mount options), netfs CIFS needs ``seal``;
    iSCSI and sheepdog fail (no transport encryption); rbd and gluster need evidence of their own TLS.
    Network mounts (nfs, cifs, glusterfs, ceph) holding a pool directory or /var/lib/libvirt/images are
    judged the same way.
    """
    storage: StorageFacts = ops_group(ctx, "storage", "storage pools and network mounts")
    require_well_formed("storage pool definitions", storage.issues)
    results: list[tuple[bool | None, str]] = []
    pool_paths: set[str] = set()
    for pool in storage.pools:
        ok, why = pool_transport(pool, storage.mounts)
        results.append((ok, f"pool {pool.name} ({pool.type}, {pool.path}): {why}"))
        if pool.target_path:
            pool_paths.add(pool.target_path)
    image_dirs = {s.path for s in storage.image_dirs} | pool_paths
    for m in storage.mounts or []:
        if m.fstype not in REMOTE_FS:
            continue
        holds = [p for p in image_dirs if mount_for(p, [m]) is not None]
        if not holds or any(
            p.target_path and mount_for(p.target_path, [m]) for p in storage.pools if p.type == "netfs"
        ):
            continue
        ok, why = mount_transport(m.fstype, m.options)
        results.append(
            (ok, f"{m.fstype} mount {m.source} on {m.mountpoint} (holds {', '.join(holds)}): {why}")
        )
    evidence = {"storage": [w for _, w in results][:50]}
    if not results:
        yield ctx.not_applicable(
            HOST,
            "no storage pool is defined and no network mount holds images",
            {"mounts_known": storage.mounts is not None},
        )
        return
    fails = [w for ok, w in results if ok is False]
    unknown = [w for ok, w in results if ok is None]
    if fails:
        yield ctx.failed(
            HOST,
            "Image storage is reached over unencrypted transports: " + "; ".join(fails[:6]) + ".",
            evidence,
            "NFS: mount with sec=krb5p (Kerberos privacy) or xprtsec=mtls (RPC-with-TLS, kernel 6.5+); for a "
            "libvirt netfs pool add <fs:mount_opts><fs:option name='sec=krb5p'/></fs:mount_opts> "
            "(xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'). SMB: mount option seal (SMB3 "
            "encryption). iSCSI: only inside an encrypted tunnel (IPsec), recorded as an exception.",
        )
    elif unknown:
        yield ctx.manual(
            HOST,
            "Transport security of this image storage is configured outside the host's view: "
            + "; ".join(unknown[:6])
            + ".",
            evidence,
        )
    else:
        yield ctx.passed(
            HOST, "Every storage pool and image mount is local or encrypted in transit.", evidence
        )


@check(
    "11.2.10",
    id="kvm.libvirt-remote-transport",
    reads=("host.libvirtd_conf", "host.qemu_conf"),
)
def libvirt_remote_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Remote access to this host (which stores VM images) goes over TLS or authenticated, encrypted channels.

    Fail: ``listen_tcp = 1`` with ``auth_tcp = "none"`` (cleartext, unauthenticated);
    ``tls_no_verify_certificate = 1``; ``default_tls_x509_verify``, ``migrate_tls_x509_verify`` or
    ``backup_tls_x509_verify`` = 0 (migration/backup TLS servers — which stream disk images — accept any
    client). Manual: ``listen_tcp = 1`` with SASL (the mechanism list in /etc/sasl2/libvirt.conf decides:
    GSSAPI encrypts, DIGEST-MD5 is obsolete). Sources: libvirtd.conf.in, qemu.conf.in.
    """
    host = ctx.host
    if host is None:
        yield ctx.error(HOST, "libvirt remote-access transport settings (libvirtd.conf, qemu.conf)", "host")
        return
    confs: list[Conf] = []
    unusable: list[Finding] = []
    for which in ("libvirtd_conf", "qemu_conf"):
        try:
            confs.append(load_conf(ctx, host, which))
        except CannotEvaluate as signal:  # both files' problems are reported, not only the first
            unusable.append(ctx.error_for(signal))
    if unusable:
        yield from unusable
        return
    lconf, qconf = confs
    listen_tcp = lconf.get("listen_tcp")
    auth_tcp = lconf.get("auth_tcp")
    listen_tls = lconf.get("listen_tls")
    no_verify = lconf.get("tls_no_verify_certificate")
    verify = {
        k: qconf.get(k)
        for k in ("default_tls_x509_verify", "migrate_tls_x509_verify", "backup_tls_x509_verify")
    }
    nbd_tls = qconf.get("nbd_tls")
    migrate_force = qconf.get("migrate_tls_force")
    evidence: dict[str, Any] = {
        s.key: s.evidence()
        for s in (listen_tcp, auth_tcp, listen_tls, no_verify, nbd_tls, migrate_force, *verify.values())
    }
    evidence["note"] = MODULAR_NOTE
    fails: list[str] = []
    fixes: list[str] = []
    tcp_on = listen_tcp.as_int() != 0
    if tcp_on and auth_tcp.as_str() == "none":
        fails.append('listen_tcp = 1 with auth_tcp = "none": cleartext, unauthenticated remote access')
        fixes += [fix_line(listen_tcp, 0), fix_line(listen_tls, 1)]
    if no_verify.as_int() != 0:
        fails.append("tls_no_verify_certificate = 1: TLS clients are not authenticated")
        fixes.append(fix_line(no_verify, 0))
    for s in verify.values():
        if s.explicit and s.as_int() == 0:
            fails.append(f"{s.key} = 0: QEMU's TLS servers accept clients without a certificate")
            fixes.append(fix_line(s, 1))
    if fails:
        yield ctx.failed(
            HOST,
            "Remote access to this image-holding host is not secure: " + "; ".join(fails) + ".",
            evidence,
            "\n".join([*fixes, restart_note()]),
        )
        return
    force_note = (
        ""
        if migrate_force.as_int()
        else " Migrations are encrypted only when requested (virsh migrate --tls); migrate_tls_force = 1 "
        "in /etc/libvirt/qemu.conf makes TLS mandatory."
    )
    if tcp_on:
        yield ctx.manual(
            HOST,
            f'listen_tcp = 1 with auth_tcp = "{auth_tcp.as_str()}": the SASL mechanism decides whether the '
            "channel is encrypted. Evidence needed: /etc/sasl2/libvirt.conf mech_list: gssapi (Kerberos; "
            "DIGEST-MD5 is obsolete, RFC 6331) and tcp_min_ssf ≥ 112 — or disable TCP (listen_tcp = 0) "
            "in favour of TLS." + force_note,
            evidence,
        )
        return
    yield ctx.passed(
        HOST,
        "libvirt's remote access is TLS with verified client certificates (or SSH-tunnelled); no cleartext "
        "TCP listener is configured." + force_note,
        evidence,
    )
