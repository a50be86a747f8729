"""What the guard hook imports when the exceptions register and the attestations file are pinned (the
production case): unpickling and applying them must not load the YAML reader, difflib or dataclasses
(and with it inspect) — every VM start pays for each module the hook imports (bench/guard_decide.py
times it). The hook runs in a fresh interpreter, as libvirt runs it, so nothing this test process has
imported hides an import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guard_env import REPO, decisions, hook_modules, make_state_dir, snapshot_bundle

ATTESTATIONS = REPO / "tests" / "data" / "workflow" / "attestations.yaml"
EXCEPTIONS = """\
exceptions:
  - id: EX-IMPORTS-1
    measure: "11.3.10"
    scope: {subject: "vm:kvm-off"}
    justification: Throttled by the host's machine.slice until sized.
    risk_owner: Head of Platform
    approved_by: CISO
    approved_on: 2026-01-01
    expires_on: 2099-12-31
    risk_rating: low
"""
#: Modules the compiled path must not import (the pinned-file path needs the first two).
BANNED = ("yaml", "hvguard.yamlsafe", "hvguard.workflow.register_yaml", "difflib", "dataclasses", "inspect")


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("imports")
    register = tmp / "exceptions.yaml"
    register.write_text(EXCEPTIONS, encoding="utf-8")
    return make_state_dir(
        tmp / "guard", snapshot_bundle(tmp / "snap"), exceptions=register, attestations=ATTESTATIONS
    )


def _last_decision(state: Path) -> dict[str, Any]:
    return decisions(state)[-1]


def test_applying_pinned_registers_from_the_compiled_policy_imports_no_yaml_difflib_or_dataclasses(
    state: Path, tmp_path: Path
) -> None:
    code, err, loaded = hook_modules(state, "kvm-off", tmp_path / "modules.json")
    rec = _last_decision(state)
    # Decided with the register: kvm-off's 11.3.10 violation is covered by the pinned exception.
    assert (code, rec["outcome"], rec["reason"]) == (0, "allowed", "covered-by-exception"), err
    assert [c["exception"] for c in rec["covered"]] == ["EX-IMPORTS-1"]
    policy = rec["policy"]
    assert policy["exceptions_sha256"] and policy["attestations_sha256"]
    assert "hvguard.workflow.exceptions" in loaded and "hvguard.workflow.attestations" in loaded
    assert [m for m in BANNED if m in loaded] == []


def test_without_the_compiled_policy_the_same_decision_parses_the_yaml(state: Path, tmp_path: Path) -> None:
    """The control: the pinned-file path reads the registers with the YAML reader, so the assertion
    above tells the compiled path from it."""
    fallback = make_state_dir(
        tmp_path / "guard",
        state / "host-facts.json",
        exceptions=state / "policy" / "exceptions.yaml",
        attestations=ATTESTATIONS,
        compile_it=False,
    )
    code, err, loaded = hook_modules(fallback, "kvm-off", tmp_path / "modules.json")
    rec = _last_decision(fallback)
    assert (code, rec["outcome"], rec["reason"]) == (0, "allowed", "covered-by-exception"), err
    assert "yaml" in loaded and "hvguard.workflow.register_yaml" in loaded
