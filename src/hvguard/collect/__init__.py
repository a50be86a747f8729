"""Collectors: read a platform and fill the facts model."""
