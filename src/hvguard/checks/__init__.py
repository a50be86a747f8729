"""Checks: pure functions from facts to findings, one small module per SS-009 measure (or closely related
pair), grouped by section: ``s11_1`` … ``s11_4``.

Where a measure is checked (the map with each check's id, platforms and static remediation is data:
``hvguard/catalog/checks.yaml``; ``hvguard catalog --coverage`` shows it)::

    11.1.1   s11_1.type1
    11.1.2   s11_1.hw_virt
    11.1.3   s11_1.measured_boot
    11.2.1   s11_2.drivers
    11.2.2   s11_2.api_access
    11.2.3   s11_2.api_access
    11.2.4   s11_2.accounts
    11.2.5   s11_2.least_privilege
    11.2.6   s11_2.unprivileged
    11.2.7   s11_2.device_acl
    11.2.8   s11_2.image_library
    11.2.9   s11_2.encryption
    11.2.10  s11_2.transport
    11.3.1   s11_3.overcommit
    11.3.2   s11_3.memory
    11.3.3   s11_3.vcpus
    11.3.4   s11_3.cpu_scheduling
    11.3.5   s11_3.monitoring
    11.3.6   s11_3.monitoring
    11.3.7   s11_3.change_notify
    11.3.8   s11_3.images
    11.3.9   s11_3.images
    11.3.10  s11_3.resource_limits
    11.4.1   s11_4.directory
    11.4.2   s11_4.endpoints
    11.4.3   s11_4.mfa
    11.4.4   s11_4.audit_logs
    11.4.5   s11_4.credentials
    11.4.6   s11_4.remote_access
    11.4.7   s11_4.gold_config
    11.4.8   s11_4.patching
    11.4.9   s11_4.firewall
    11.4.10  s11_4.logging
    11.4.11  s11_4.logging
    11.4.12  s11_4.management_segment
    11.4.13  s11_4.uplinks

Beside them: ``base`` (the check interface, :class:`~hvguard.checks.base.CannotEvaluate`), ``registry``
(every check in run order, from the map) and ``support`` (what several measures share: libvirt settings
with their defaults, the QEMU confinement judgement, subject helpers, the access and operations
analyses, the platform decision).
"""
