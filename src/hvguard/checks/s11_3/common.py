"""What several 11.3 measure modules share."""

from __future__ import annotations

# libvirt's default CFS period when <period> is not given (the kernel's cfs_period_us default).
DEFAULT_CPU_PERIOD_US = 100_000
