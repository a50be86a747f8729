"""Checks for SS-009 11.2.8.

11.2.8 Strong access control on image library check-in and check-out

Checks: ``image_library_access``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.support.ops import (
    mode_text,
    ops_group,
    require_well_formed,
    stat_evidence,
)
from hvguard.facts import (
    AuditRule,
    FileStat,
    StorageFacts,
)
from hvguard.findings import Finding

#: Groups that stand for "everyone" on common distributions: write access for them is no restriction.
BROAD_GROUPS = frozenset({"users", "staff", "everyone", "domain users", "100"})


def _image_dir_problems(st: FileStat) -> list[str]:
    out: list[str] = []
    if st.mode is None:
        return out
    if st.uid not in (0, None):
        out.append(
            f"{st.path} is owned by {st.owner}: that account can add or remove images and change the mode"
        )
    if st.mode & 0o002:
        out.append(f"{st.path} mode {mode_text(st.mode)}: every account can add or remove images")
    if st.mode & 0o020 and (st.group or "").lower() in BROAD_GROUPS:
        out.append(f"{st.path} is writable by the broad group {st.group}")
    return out


def _also(finding: Finding | None) -> Iterator[Finding]:
    if finding is not None:
        yield finding


def _watched(path: str, watches: list[AuditRule]) -> AuditRule | None:
    for w in watches:
        base = w.watch.rstrip("/") or "/"
        if (path == base or path.startswith(base + "/")) and ("w" in w.perms or "a" in w.perms):
            return w
    return None


@check(
    "11.2.8",
    id="kvm.image-library-access",
    reads=(
        "host.operations.storage.image_dirs",
        "host.operations.storage.images",
        "host.operations.logging.audit.watches",
        "hypervisor.vms[].disks[].source_path",
    ),
)
def image_library_access(ctx: CheckContext) -> Iterator[Finding]:
    """Only image administrators can check images into or out of the image library (pool directories).

    Fail: an image directory (each file-based storage pool's target, and /var/lib/libvirt/images) not
    owned by root, writable by 'other' or by a broad group (users, staff); an image file readable or
    writable by 'other' (anyone could copy it out or alter it). Warn: no auditd watch (``-w DIR -p wa``)
    records check-ins and removals. A second, manual finding covers libvirt's own API path (polkit rules
    on storage-vol operations) and the approval records for check-ins.
    """
    hv = ctx.hypervisor
    dirs: set[str] = set()
    pools: set[str] = set()
    if hv is not None:
        for vm in hv.vms:
            for d in vm.disks:
                if d.source_path and d.source_protocol is None and d.type in (None, "file"):
                    dirs.add(posixpath.dirname(d.source_path))
                if d.source_pool:
                    pools.add(d.source_pool)
    # With ``scan --library`` the check-in/check-out path is the library's (library.access-control).
    api_side = None if ctx.target.image_library is not None else ctx.manual(
        HOST,
        "Evidence needed for libvirt's API path into the image library: polkit rules limiting "
        "org.libvirt.api.storage-vol.create / delete / upload and storage-pool.* (pool_name, vol_name) to "
        "the image administrators, and the approval records of image check-ins/check-outs.",
        {"vm_image_directories": sorted(dirs)[:50], "vm_storage_pools": sorted(pools)[:50]},
    )
    try:
        storage: StorageFacts = ops_group(ctx, "storage", "image directory permissions")
        require_well_formed("storage pool definitions", storage.issues)
    except CannotEvaluate as signal:
        # The manual finding on libvirt's API path stands whatever the directories show.
        yield ctx.error_for(signal)
        yield from _also(api_side)
        return
    host = ctx.host
    ops = host.operations if host else None
    watches = ops.logging.audit.watches if ops and ops.logging else []
    image_dirs = [s for s in storage.image_dirs if s.exists and s.is_dir]
    if not image_dirs:
        yield ctx.not_applicable(
            HOST,
            "no image directory on this host (no file-based storage pool, no /var/lib/libvirt/images)",
            {"pools": [p.name for p in storage.pools]},
        )
        yield from _also(api_side)
        return
    problems: list[str] = []
    for st in image_dirs:
        problems += _image_dir_problems(st)
    open_files = [
        f"{f.path} mode {mode_text(f.mode)}"
        for f in storage.images
        if not f.is_dir and f.mode is not None and f.mode & 0o006
    ]
    if open_files:
        problems.append("image files open to 'other' (copy-out or tampering): " + ", ".join(open_files[:5]))
    unwatched = [s.path for s in image_dirs if _watched(s.path, watches) is None]
    acl = [s.path for s in image_dirs if s.has_acl]
    evidence: dict[str, Any] = {
        "image_dirs": [stat_evidence(s) for s in image_dirs],
        "images_checked": len(storage.images),
        "images_truncated": storage.images_truncated,
        "audit_watches": [f"{w.watch} -p {w.perms} ({w.path}:{w.line})" for w in watches][:20],
        "pools": [f"{p.name} ({p.type}) {p.target_path or ''}".strip() for p in storage.pools][:50],
    }
    if problems:
        d0 = image_dirs[0].path
        yield ctx.failed(
            HOST,
            "The image library is not restricted to image administrators: " + "; ".join(problems[:6]) + ".",
            evidence,
            f"groupadd -f hv-image-admins; chown root:hv-image-admins {d0}; chmod 2770 {d0}; "
            f"chmod o-rwx {d0}/*   (repeat for each pool directory; members of hv-image-admins are the "
            f"only writers besides root)\nAudit check-ins: echo '-w {d0} -p wa -k image_lib' > "
            "/etc/audit/rules.d/50-image-lib.rules && augenrules --load",
        )
    elif unwatched:
        yield ctx.warned(
            HOST,
            "Image directories are restricted, but no audit watch records check-ins and removals in "
            + ", ".join(unwatched[:5])
            + ".",
            evidence,
            "\n".join(
                f"echo '-w {p} -p wa -k image_lib' >> /etc/audit/rules.d/50-image-lib.rules"
                for p in unwatched[:5]
            )
            + "\naugenrules --load",
        )
    elif acl:
        yield ctx.manual(
            HOST,
            "Image directories are root-owned, not world-writable and audited, but carry POSIX ACLs that may "
            f"grant more writers ({', '.join(acl[:5])}). Evidence needed: getfacl output naming only image "
            "administrators.",
            evidence,
        )
    else:
        yield ctx.passed(
            HOST,
            "Only root (and, where group-writable, the owning image-admin group) can add or remove images ("
            + ", ".join(f"{s.path} {s.owner}:{s.group} {mode_text(s.mode)}" for s in image_dirs[:4])
            + "), image files are closed to 'other', and auditd watches every image directory.",
            evidence,
        )
    yield from _also(api_side)
