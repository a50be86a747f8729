"""The SSH transport: one read-only remote script per host, its framed answer, and the in-memory file
system (answer_fs) the Linux host collectors then read."""
