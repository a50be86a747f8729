"""Checks: pure functions from facts to findings, one module per SS-009 section (11.1 … 11.4)."""
