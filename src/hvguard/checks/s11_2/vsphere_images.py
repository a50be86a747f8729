"""Checks for SS-009 11.2.8, 11.2.9 and 11.2.10 on vSphere: the VM image library and image storage.

11.2.8 who may check images in and out of content libraries (privilege holders; published libraries
require authentication, VCSA-80-000295); 11.2.9 VM images encrypted (VM Encryption ``keyId``); 11.2.10
image servers reached over a secure protocol (NFS with Kerberos privacy, subscriptions over HTTPS).

Checks: ``vsphere.library-access``, ``vsphere.vm-encryption``, ``vsphere.image-transport``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hvguard.checks.base import CheckContext, check
from hvguard.checks.support.subjects import capped
from hvguard.checks.support.vsphere import each_vm, facts, is_esxi, need, ps, top_subject
from hvguard.checks.support.vsphere_permissions import NO_ACCESS, PermissionIndex
from hvguard.facts import VsphereFacts, VsphereVm
from hvguard.findings import Finding

#: Privileges that put images into, or take them out of, a library or datastore.
IMAGE_PRIVILEGE_PREFIXES = ("ContentLibrary.", "Datastore.FileManagement", "Datastore.AllocateSpace")


def _image_admins(vs: VsphereFacts) -> list[dict[str, str]]:
    if vs.permissions is None or vs.roles is None:
        return []
    index = PermissionIndex(vs.inventory or [], vs.permissions, vs.roles)
    rows = []
    for p in vs.permissions:
        if p.role_id == NO_ACCESS:
            continue
        privs = index.privileges(p.role_id)
        if "*" in privs or any(x.startswith(IMAGE_PRIVILEGE_PREFIXES) for x in privs):
            rows.append(
                {"principal": p.principal, "role": index.role_name(p.role_id), "entity": index.name(p.entity)}
            )
    return rows


@check(
    "11.2.8",
    id="vsphere.library-access",
    reads=("vsphere.content_libraries", "vsphere.permissions", "vsphere.roles"),
)
def library_access(ctx: CheckContext) -> Iterator[Finding]:
    """Each published content library requires authentication (``authentication_method`` BASIC,
    VCSA-80-000295); who may check images in and out (holders of ``ContentLibrary.*`` and datastore file
    privileges) is listed for attestation. An ESXi host has no content library: its image store is its
    datastores, whose file-privilege holders are listed (``manual``)."""
    vs = facts(ctx)
    top = top_subject(ctx)
    admins = capped(_image_admins(vs))
    if is_esxi(ctx):
        yield ctx.manual(
            top,
            "ESXi has no content library: VM images live on datastores. Attest that only image "
            "administrators "
            "hold the datastore file privileges listed.",
            {"image_privilege_holders": admins},
        )
        return
    libraries = need(vs.content_libraries, top, "the content libraries", "vsphere.content_libraries")
    open_libs = [
        lib for lib in libraries if lib.published and (lib.authentication_method or "NONE") != "BASIC"
    ]
    evidence = {
        "libraries": [
            {
                "name": lib.name,
                "type": lib.type,
                "published": lib.published,
                "authentication": lib.authentication_method,
            }
            for lib in libraries
        ],
        "image_privilege_holders": admins,
        "stig": ["VCSA-80-000295"],
    }
    for lib in open_libs:
        yield ctx.failed(
            top,
            f"content library {lib.name!r} is published without authentication: anyone reaching vCenter can "
            "check images out",
            evidence,
            "In the vSphere Client: Content Libraries > LIBRARY > Edit Settings > Enable authentication, or "
            "with the vAPI: PATCH /api/content/local-library/{id} "
            '{"publish_info": {"authentication_method": "BASIC", "user_name": "vcsp", "password": "…"}}',
        )
    yield ctx.manual(
        top,
        f"{len(libraries)} content librar(ies); attest that only image administrators hold the check-in/out "
        "privileges listed (ContentLibrary.*, Datastore.FileManagement).",
        evidence,
    )


@check("11.2.9", id="vsphere.vm-encryption", reads=("vsphere.vms[].resources.encryption_key",))
def vm_encryption(ctx: CheckContext) -> Iterator[Finding]:
    """Each VM's files are encrypted by VM Encryption (``config.keyId`` set) — the measure asks for it
    where no access control protects the image files; vCenter permissions do, so an unencrypted VM is
    ``manual`` (attest that datastore access is controlled), with the command that encrypts it."""

    def judge(vm: VsphereVm, subject: str) -> Iterator[Finding]:
        key = vm.resources.encryption_key
        evidence = {"key_id": key, "encrypted_disks": [d.name for d in vm.resources.disks if d.encryption]}
        if key:
            yield ctx.passed(subject, "VM files encrypted with VM Encryption", evidence)
        else:
            yield ctx.manual(
                subject,
                "the VM is not encrypted: attest that access to its datastore files is controlled (vCenter "
                "permissions, datastore ACL), or encrypt it: "
                f"Get-VM -Name {ps(vm.name)} | Enable-VMEncryption -KMSCluster (Get-KmsCluster | "
                "Select-Object -First 1)",
                evidence,
            )

    yield from each_vm(ctx, judge)


@check("11.2.10", id="vsphere.image-transport", reads=("vsphere.datastores", "vsphere.content_libraries"))
def image_transport(ctx: CheckContext) -> Iterator[Finding]:
    """Image storage is reached over a protected protocol: an NFS datastore uses NFS 4.1 with Kerberos
    privacy (``SEC_KRB5P``; NFS 3 and AUTH_SYS send images in clear); a subscribed content library
    subscribes over ``https://``. Block datastores (VMFS over FC/iSCSI, vSAN) are ``manual``: the fabric's
    protection is not visible through the API."""
    vs = facts(ctx)
    top = top_subject(ctx)
    datastores = need(vs.datastores, top, "the datastores", "vsphere.datastores")
    libraries = vs.content_libraries or []
    if not is_esxi(ctx) and vs.content_libraries is None:
        yield ctx.error(top, "the content libraries' subscriptions", "vsphere.content_libraries")
    block: list[str] = []
    for ds in datastores:
        subject = top
        evidence = {
            "datastore": ds.name,
            "type": ds.type,
            "remote_hosts": ds.remote_hosts,
            "security_type": ds.security_type,
            "url": ds.url,
        }
        kind = (ds.type or "").upper()
        if kind.startswith("NFS"):
            if kind == "NFS41" and ds.security_type == "SEC_KRB5P":
                yield ctx.passed(
                    subject, f"datastore {ds.name!r}: NFS 4.1 with Kerberos privacy (krb5p)", evidence
                )
            else:
                yield ctx.failed(
                    subject,
                    f"datastore {ds.name!r}: {ds.type} with security {ds.security_type or 'AUTH_SYS'}: "
                    "images cross the "
                    "network unencrypted",
                    evidence,
                    "Remount as NFS 4.1 with Kerberos: New-Datastore -Nfs -FileSystemVersion '4.1' -Name "
                    "NAME "
                    "-NfsHost SERVER -Path EXPORT -AuthenticationMethod 'Kerberos' -VMHost (Get-VMHost), "
                    "move the "
                    f"VMs (Move-VM -Datastore), then Remove-Datastore -Datastore {ps(ds.name)}",
                )
        else:
            block.append(f"{ds.name} ({ds.type})")
    for lib in libraries:
        if lib.subscription_url is None:
            continue
        subject = top
        evidence = {
            "library": lib.name,
            "subscription_url": lib.subscription_url,
            "ssl_thumbprint": lib.ssl_thumbprint,
        }
        if lib.subscription_url.lower().startswith("https://"):
            yield ctx.passed(subject, f"library {lib.name!r} subscribed over HTTPS", evidence)
        else:
            yield ctx.failed(
                subject,
                f"library {lib.name!r} subscribes over {lib.subscription_url.split(':')[0]}, not HTTPS",
                evidence,
                "Edit the subscribed library's subscription URL to the publisher's https:// URL "
                "(vSphere Client: Content Libraries > LIBRARY > Edit Settings).",
            )
    if block or not datastores:
        yield ctx.manual(
            top,
            "Attest that block storage holding VM images is reached over a protected fabric (FC zoning, "
            "iSCSI with IPsec/isolated VLAN, vSAN data-in-transit encryption).",
            {"block_datastores": block},
        )
