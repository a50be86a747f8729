"""What the package says about itself: licence, project URLs, classifiers, typing marker.

Read from the installed distribution's metadata (scripts/setup.sh installs this tree), so a pyproject
change that drops one of them fails here, not in a user's `pip show`.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest

# CI installs this very tree (scripts/setup.sh test), so there a missing field is a failure, not a skip.
IN_CI = os.environ.get("CI") == "true"

ROOT = Path(__file__).resolve().parent.parent


def test_licence_file_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_distribution_metadata_names_licence_urls_and_classifiers() -> None:
    try:
        meta = metadata.metadata("hvguard")
    except metadata.PackageNotFoundError:
        pytest.skip("hvguard is not installed (run scripts/setup.sh test)")
    if "License-File" not in meta and not IN_CI:
        pytest.skip("installed metadata predates the licence files (reinstall: scripts/setup.sh test)")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert "Homepage" in urls
    classifiers = meta.get_all("Classifier") or []
    assert "Topic :: Security" in classifiers and "Typing :: Typed" in classifiers


def test_package_carries_the_typing_marker() -> None:
    assert (ROOT / "src" / "hvguard" / "py.typed").is_file()
