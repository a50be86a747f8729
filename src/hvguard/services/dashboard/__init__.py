"""The estate dashboard (``hvguard serve``): pages, JSON API and ``/metrics`` over the history store."""
