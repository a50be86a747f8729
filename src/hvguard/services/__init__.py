"""Long-running parts of hvguard: the VM config-change watcher, the signed image library, the audit log."""
