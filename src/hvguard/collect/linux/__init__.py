"""Linux host collectors: the host itself (host), access control (access, access_*) and operations
(operations, ops_*). They read files under a source root and manifest commands only."""
