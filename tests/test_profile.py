"""Profile loading: documented defaults, overrides listed as deviations, bad files rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvguard.profile import ProfileError, default_profile, load_profile


def test_defaults_are_documented_values() -> None:
    p = default_profile()
    assert p.thresholds.memory_overcommit_pass_max == 1.0
    assert p.thresholds.memory_overcommit_warn_max == 1.5
    assert not p.tailored and p.advisory == frozenset()


def test_override_is_a_listed_deviation(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("name: loose\nthresholds:\n  memory_overcommit_warn_max: 2\n")
    p = load_profile(f)
    assert p.thresholds.memory_overcommit_warn_max == 2.0
    assert p.deviations == ("threshold memory_overcommit_warn_max: 1.5 → 2.0 (loosened; 11.3.1)",)
    assert p.to_json()["tailored"] is True


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("thresholds:\n  nope: 1\n", "unknown threshold"),
        ("bogus: 1\n", "unknown key"),
        ("thresholds:\n  memory_overcommit_pass_max: 'x'\n", "must be float"),
        ("thresholds:\n  memory_overcommit_pass_max: 2\n", "memory_overcommit_pass_max <="),
        ("advisory: ['11.9.9']\n", "unknown measure"),
        ("- a\n", "mapping"),
        ("thresholds: [1\n", "invalid YAML"),
    ],
)
def test_bad_profiles_are_rejected_with_a_reason(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ProfileError, match=needle):
        load_profile(f)


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read: no such file"):
        load_profile(tmp_path / "absent.yaml")
