"""``hvguard watch``: tell administrators within a second when anyone changes a VM (SS-009 11.3.7).

The parts, one job each:

- :mod:`.config` — the YAML configuration and command-line overrides, secrets resolved (never logged);
- :mod:`.canonical` — canonical domain XML (C14N 2.0, volatile parts stripped, secrets keyed-hashed);
- :mod:`.changes` — value-level and XML diffs between two definitions of one VM;
- :mod:`.state` — the SQLite state file: last known definition per VM and the outbox of notifications;
- :mod:`.reevaluate` — re-running the SS-009 checks for the changed VM;
- :mod:`.delivery` — one delivery thread per notification channel, retry with backoff, at least once;
- :mod:`.notify_webhook`, :mod:`.notify_syslog`, :mod:`.notify_email` — the channels;
- :mod:`.watcher` — libvirt events, reconnect with backoff, resynchronisation, clean shutdown.
"""
