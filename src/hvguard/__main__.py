"""Allow ``python -m hvguard``."""

from hvguard.cli import main

main()
