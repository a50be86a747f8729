"""Checks for SS-009 section 11.2: device emulation and access control (KVM/libvirt).

Automated from the facts collected today: driver signing and QEMU confinement (11.2.1), libvirt's access
driver with its polkit rules and ACL probes (11.2.2, 11.2.3), accounts with direct access against the
profile's approved list (11.2.4), libvirt socket access, polkit roles and sudo grants (11.2.5),
unprivileged device emulation (11.2.6), per-VM confinement (11.2.7), disk-image encryption (11.2.9) and
image transport (11.2.10). Access-control evaluations shared with 11.4 live in
:mod:`hvguard.checks.support.access`. What facts cannot show is reported ``manual`` with the evidence an
auditor needs.

One module per measure or closely related pair:

- ``drivers``: 11.2.1 Boot option to disallow non-certified drivers; confined device emulation
- ``api_access``:
  11.2.2 Granular access control per permission and per VM or VM group;
  11.2.3 Deny specific VMs within a permitted VM group
- ``accounts``: 11.2.4 Minimal number of accounts with direct host access
- ``least_privilege``: 11.2.5 Least privilege and need to know for hypervisor access
- ``unprivileged``: 11.2.6 Device drivers run in user mode or with lower privilege
- ``device_acl``: 11.2.7 Per-VM ACL restricting each VM process to its own devices
- ``image_library``: 11.2.8 Strong access control on image library check-in and check-out
- ``encryption``: 11.2.9 VM image files on encrypted devices
- ``transport``: 11.2.10 Secure protocol (TLS) to servers that store VM images
- ``common``: what several of these modules share
"""
