"""The compiled policy's host-finding replay (:func:`hvguard.guard.policy.host_replays`): the hook runs
only the checks that can see the starting VM and replays the findings the others gave at compile time.

These tests prove the shortcut changes nothing: for every domain of the test-driver corpus, the
evaluation with the compiled policy equals, finding for finding, the full engine's evaluation with the
pinned files (the slow path, every check run) — with the default profile, with a profile that loosens
thresholds (the engine then also runs checks with the default-threshold baseline) and with an exception.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from guard_env import make_state_dir, node_domain_xml, snapshot_bundle
from hvguard.checks.base import Check
from hvguard.guard.decide import decide, evaluate_vm, parse_domain, with_vm
from hvguard.guard.policy import (
    _Replay,
    host_replays,
    load_compiled,
    load_pinned,
    read_state,
    verify,
)
from hvguard.guard.record import PolicyPins

CORPUS = ("kvm-hardened", "qemu-loose", "kvm-off", "qemu-transient")
LOOSENED = "name: loose\nthresholds:\n  memory_overcommit_pass_max: 1.3\n  patch_max_age_days: 30\n"
EXCEPTIONS = """\
exceptions:
  - id: EX-REPLAY-1
    measure: "11.4.8"
    scope: {subject: "host"}
    justification: Patch window agreed with the vendor.
    risk_owner: Head of Platform
    approved_by: CISO
    approved_on: 2026-01-01
    expires_on: 2099-12-31
    risk_rating: low
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_bundle(tmp_path_factory.mktemp("snapshot"))


def _state(tmp_path: Path, snapshot: Path, variant: str) -> Path:
    profile = exceptions = None
    if variant == "loosened":
        profile = tmp_path / "profile.yaml"
        profile.write_text(LOOSENED, encoding="utf-8")
    elif variant == "exception":
        exceptions = tmp_path / "exceptions.yaml"
        exceptions.write_text(EXCEPTIONS, encoding="utf-8")
    return make_state_dir(tmp_path / "g", snapshot, profile=profile, exceptions=exceptions)


@pytest.mark.parametrize("variant", ["default", "loosened", "exception"])
def test_compiled_evaluation_equals_the_full_engine_for_every_corpus_domain(
    tmp_path: Path, snapshot: Path, variant: str
) -> None:
    state_dir = _state(tmp_path, snapshot, variant)
    state = read_state(state_dir)
    pins = verify(state)
    compiled = load_compiled(state_dir, pins)
    assert compiled is not None
    fast_policy, fast_snapshot = compiled
    full_policy, full_snapshot = load_pinned(state)
    replayed = [c.id for c in fast_policy.checks if isinstance(c.fn, _Replay)]
    assert replayed, "the compiled policy replays the host-only checks"
    pin = PolicyPins(profile_sha256=pins["profile"], profile=full_policy.profile.name)
    for name in CORPUS:
        vm = parse_domain(node_domain_xml(name), name)
        fast = evaluate_vm(with_vm(fast_snapshot, vm), fast_policy)
        full = evaluate_vm(with_vm(full_snapshot, vm), full_policy)
        assert msgspec.to_builtins(list(fast.findings)) == msgspec.to_builtins(list(full.findings)), name
        assert fast.verdicts == full.verdicts, name
        kw = {"mode": "enforce", "operation": "prepare", "pins": pin, "source": "stdin"}
        a = msgspec.structs.replace(decide(fast_snapshot, vm, fast_policy, **kw), at="")  # type: ignore[arg-type]
        b = msgspec.structs.replace(decide(full_snapshot, vm, full_policy, **kw), at="")  # type: ignore[arg-type]
        assert a == b, name
    if variant == "loosened":
        # The loosened 11.4.8 check is replayed under both profiles the engine runs it with.
        (patching,) = [c for c in fast_policy.checks if c.id == "host.patching"]
        assert isinstance(patching.fn, _Replay) and len(patching.fn.runs) == 2


def test_only_checks_blind_to_the_vms_are_replayed(tmp_path: Path, snapshot: Path) -> None:
    """A check that declares it reads the VMs stays live; so does one that reads them without saying so
    (its findings differ between the two compile-time probe domains)."""
    state = read_state(_state(tmp_path, snapshot, "default"))
    policy, facts = load_pinned(state)

    def sneaky(ctx: object) -> list[object]:
        from hvguard.findings import Finding, Status

        vms = ctx.hypervisor.vms  # type: ignore[attr-defined]
        return [
            Finding(
                measure="11.3.3", status=Status.PASS, subject="host", message=",".join(v.name for v in vms)
            )
        ]

    def blind(ctx: object) -> list[object]:
        from hvguard.findings import Finding, Status

        return [Finding(measure="11.3.3", status=Status.PASS, subject="host", message="host only")]

    extra = (
        Check(
            id="t.sneaky",
            measure="11.3.3",
            reads=("host.cpu",),
            fn=sneaky,
            doc="",
            platforms=("kvm-libvirt",),
        ),
        Check(
            id="t.blind", measure="11.3.3", reads=("host.cpu",), fn=blind, doc="", platforms=("kvm-libvirt",)
        ),
    )
    replays = host_replays(msgspec.structs.replace(policy, checks=(*policy.checks, *extra)), facts)
    assert "t.blind" in replays and "t.sneaky" not in replays
    assert not [c.id for c in policy.checks if c.id in replays and any("vms" in r for r in c.reads)]
    assert {"kvm.vcpu-below-cores", "kvm.memory-overcommit", "kvm.vm-domain-type"}.isdisjoint(replays)
