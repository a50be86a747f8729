"""Scan history: every scan's result kept in a database, listed by ``hvguard history`` and compared by
``hvguard diff``.

``record`` is the light hook the scan path imports (SQLAlchemy is imported only when a scan is stored);
``schema`` declares the tables, ``store`` reads and writes them, ``compare`` diffs two stored scans
(pure, no I/O) and ``render`` prints lists and diffs.
"""
