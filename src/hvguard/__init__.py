"""hvguard: audit hypervisor hosts and their VMs against the Hypervisor Security Standard SS-009."""

__version__ = "0.1.0"
