"""What several measures' checks share: libvirt settings with their defaults, subject helpers, the
QEMU confinement judgement, the access-control and operations analyses, and the platform decision."""
