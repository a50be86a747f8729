"""Checks for SS-009 section 11.1: hypervisor platform architectural choices (KVM/libvirt).

11.1.1 Type 1 by default, 11.1.2 hardware-assisted virtualisation (instruction set and MMU), 11.1.3
measured launch (TPM 2.0) with attestation and chain of trust. "Consideration" and verifier enrolment
are records no fact can show; those parts are reported as ``manual`` with the evidence an auditor needs.

One module per measure or closely related pair:

- ``type1``: 11.1.1 Type 1 hypervisor by default
- ``hw_virt``: 11.1.2 Hardware-assisted virtualisation (instruction set and MMU)
- ``measured_boot``: 11.1.3 Measured launch (TPM 2.0) with attestation and chain of trust
- ``common``: what several of these modules share
"""
