"""``hvguard serve``: the estate dashboard (server-rendered pages), its JSON API and ``/metrics``, read
from the history store, on hvguard's mutual-TLS HTTPS layer."""
