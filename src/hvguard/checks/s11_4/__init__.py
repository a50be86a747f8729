"""Checks for SS-009 section 11.4: administration of the hypervisor host and software (KVM/libvirt).

From today's facts hvguard decides libvirt's half of remote console access (11.4.6), flags settings that
prove a measure unmet (unauthenticated libvirt admin access for 11.4.3, libvirt daemon logs kept out of
syslog for 11.4.10), and from the host's operations facts (:mod:`hvguard.facts.operations`) decides audit
log protection (11.4.4), patch state (11.4.8), the host firewall (11.4.9), log transport, permissions
and sealing (11.4.10), remote logging (11.4.11), management-interface isolation (11.4.12) and uplink
redundancy (11.4.13). From the access-control facts (:mod:`hvguard.facts.access`) it decides directory
integration (11.4.1), administration from defined networks (11.4.2, with the firewall facts), SSH and
sudo MFA (11.4.3) and sshd's root and allow-list settings (11.4.6). What facts cannot show is reported
``manual`` with the evidence an auditor needs.
libvirtd.conf defaults are listed in :mod:`hvguard.checks.support.libvirt_conf` (source: libvirt
``src/remote/libvirtd.conf.in``).

One module per measure or closely related pair:

- ``directory``: 11.4.1 Host accounts integrated with the enterprise directory
- ``endpoints``: 11.4.2 Administration only from defined endpoint networks and devices
- ``mfa``: 11.4.3 Multi-factor authentication for all administrative functions
- ``audit_logs``: 11.4.4 Administrators cannot modify, delete or disable audit logs
- ``credentials``: 11.4.5 Hypervisor credentials separate from applications and data
- ``remote_access``:
  11.4.6 Remote console access can be denied, deny root, and be restricted to listed accounts
- ``gold_config``: 11.4.7 Gold configuration: define, apply automatically, check compliance
- ``patching``: 11.4.8 Patched with recent tested code; regular vulnerability testing
- ``firewall``: 11.4.9 Host firewall allows only needed ports and protocols
- ``logging``:
  11.4.10 Standard log format, secure read-only restricted access, change detection;
  11.4.11 Logs stored on an external server
- ``management_segment``: 11.4.12 Management interface in a dedicated segment behind a firewall
- ``uplinks``: 11.4.13 Multiple physical network paths from VMs to the enterprise network
- ``common``: what several of these modules share
"""
