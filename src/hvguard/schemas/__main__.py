"""``python -m hvguard.schemas``: regenerate the shipped JSON Schemas (``--check``: only compare)."""

from __future__ import annotations

import sys

from hvguard.schemas.generate import main

sys.exit(main())
