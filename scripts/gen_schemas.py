#!/usr/bin/env python3
"""Regenerate the JSON Schemas shipped in src/hvguard/schemas/ from the models (after a model change).

Same as ``python -m hvguard.schemas``; ``--check`` only says which shipped files are out of date.
Run from the repository root: ``PYTHONPATH=src python scripts/gen_schemas.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from hvguard.schemas.generate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
