"""Checks for SS-009 section 11.3: VM management (KVM/libvirt).

The 11.3 preamble calls these "advisory measures where appropriate" while every row says "must"; the
checks report them as worded and leave advisory tailoring (fail → warn) to the engine and profile.

Host CPU and memory come from ``virNodeGetInfo`` (``hypervisor.node``) when there is a libvirt
connection, else from ``/proc`` (``host.cpu``, ``host.memory``); evidence names the ``source``.

One module per measure or closely related pair:

- ``overcommit``: 11.3.1 Combined VM memory to host RAM ratio
- ``memory``: 11.3.2 Guaranteed RAM, limit and priority per VM
- ``vcpus``: 11.3.3 vCPUs per VM strictly fewer than host cores
- ``cpu_scheduling``: 11.3.4 CPU lower limit, upper limit and priority per VM
- ``monitoring``:
  11.3.5 Introspection-based guest monitoring and autonomous signature updates;
  11.3.6 Monitoring solutions compliant with SS-025
- ``change_notify``: 11.3.7 VM configuration changes logged and administrators notified
- ``images``:
  11.3.8 Only SS-025-compliant images in the image library;
  11.3.9 Digital signature on every VM image
- ``resource_limits``: 11.3.10 Network, disk I/O and CPU limits per VM against denial of service
- ``common``: what several of these modules share
"""
