"""The signed, encrypted, access-controlled VM image library (SS-009 11.2.8-11.2.10, 11.3.8, 11.3.9):
store, crypto, gate, server, client and audit modules. Needs the ``hvguard[library]`` extra (and
``hvguard[serve]`` for ``library serve``); every third-party import is lazy."""
