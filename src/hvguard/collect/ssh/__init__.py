"""The SSH transport: one read-only remote script per host, its framed answer, and the local copy the
Linux host collectors then read."""
