"""libvirt: the connection collector, the domain/capabilities XML parser, stored definitions and the
parser for libvirt's configuration-file syntax."""
