"""SS-009 11.4 checks (administration of the host and hypervisor software) on hand-made facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest

from factories import conf, good_host, good_vm, run, target
from hvguard.checks.base import CheckContext
from hvguard.checks.registry import registered_checks
from hvguard.checks.s11_4 import (
    audit_logs,
    credentials,
    directory,
    gold_config,
    management_segment,
    mfa,
    remote_access,
    uplinks,
)
from hvguard.checks.s11_4 import endpoints as s11_4_endpoints
from hvguard.checks.s11_4 import logging as s11_4_logging
from hvguard.checks.s11_4 import patching as s11_4_patching
from hvguard.engine import evaluate
from hvguard.facts import ConfFile, Interface, KernelFacts, TargetFacts
from hvguard.findings import Finding, Status
from hvguard.profile import default_profile

LIBVIRTD = "/etc/libvirt/libvirtd.conf"
replace = msgspec.structs.replace
Check = Callable[[CheckContext], Iterable[Finding]]


def with_libvirtd(**values: Any) -> TargetFacts:
    return target(host=good_host(libvirtd_conf=conf(LIBVIRTD, **values)))


def no_host() -> TargetFacts:
    return replace(target(), host=None)


def malformed() -> TargetFacts:
    bad = ConfFile(path=LIBVIRTD, present=True, error=f"{LIBVIRTD} line 3: expecting a separator")
    return target(host=good_host(libvirtd_conf=bad))


def one(fn: Check, tgt: TargetFacts, measure: str) -> Finding:
    found = run(fn, tgt, measure)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------------------------------------
# Manual measures: specific evidence statements


@pytest.mark.parametrize(
    ("fn", "measure", "keyword"),
    [
        (directory.directory_integration, "11.4.1", "realm list"),
        (s11_4_endpoints.admin_endpoints, "11.4.2", "approved administrative endpoints"),
        (mfa.admin_mfa, "11.4.3", "authenticationmethods"),
        (credentials.admin_credential_separation, "11.4.5", "guest"),
        (remote_access.sshd_remote_access, "11.4.6", "permitrootlogin no"),
        (gold_config.gold_configuration, "11.4.7", "baseline"),
    ],
)
def test_manual_findings_state_measure_specific_evidence(fn: Check, measure: str, keyword: str) -> None:
    f = one(fn, target(), measure)
    assert f.status is Status.MANUAL and f.method == "attestation"
    assert keyword in f.message and f.message.startswith(("Evidence needed", "libvirt"))
    assert f.evidence


def test_manual_evidence_includes_what_hvguard_knows() -> None:
    tgt = target(
        [good_vm(interfaces=[Interface(type="bridge", source="br-vm")])],
        host=good_host(
            kernel=KernelFacts(release="6.1.0-18-amd64"), libvirtd_conf=conf(LIBVIRTD, listen_addr="10.0.5.4")
        ),
    )
    state, _auto, scan = run(s11_4_patching.patching, tgt, "11.4.8")
    assert state.evidence["kernel.release"] == scan.evidence["kernel.release"] == "6.1.0-18-amd64"
    assert state.evidence["window_days"] == 14  # the profile's patch window
    assert scan.status is Status.MANUAL and "vulnerability scan" in scan.message
    seg, diagram = run(management_segment.management_segment, tgt, "11.4.12")
    assert seg.evidence["listen_addr"] == {"value": "10.0.5.4", "source": f"{LIBVIRTD}:1"}
    assert diagram.status is Status.MANUAL and diagram.evidence["vm_networks"] == ["bridge:br-vm"]
    uplink = one(uplinks.vm_uplink_redundancy, tgt, "11.4.13")
    assert uplink.status is Status.PASS and "bridge br-vm" in uplink.evidence["ok"][0]


# --------------------------------------------------------------------------------------------------------
# 11.4.3 MFA


def test_unauthenticated_libvirt_tcp_fails_mfa() -> None:
    f = one(mfa.admin_mfa, with_libvirtd(listen_tcp=1, auth_tcp="none"), "11.4.3")
    assert f.status is Status.FAIL and "no factor" in f.message
    assert f"{LIBVIRTD} line 1: listen_tcp = 0" in (f.remediation or "")


def test_unverified_tls_fails_mfa_unless_tls_is_off() -> None:
    f = one(mfa.admin_mfa, with_libvirtd(tls_no_verify_certificate=1), "11.4.3")
    assert f.status is Status.FAIL and "whenever libvirtd listens" in f.message
    off = with_libvirtd(tls_no_verify_certificate=1, listen_tls=0)
    assert one(mfa.admin_mfa, off, "11.4.3").status is Status.MANUAL


# --------------------------------------------------------------------------------------------------------
# 11.4.4 audit logs


def test_libvirt_audit_disabled_fails() -> None:
    f = one(audit_logs.audit_log_protection, with_libvirtd(audit_level=0), "11.4.4")
    assert f.status is Status.FAIL and f"{LIBVIRTD} line 1: audit_level = 2" in (f.remediation or "")


@pytest.mark.parametrize(
    ("fn", "measure"),
    [
        (mfa.admin_mfa, "11.4.3"),
        (audit_logs.audit_log_protection, "11.4.4"),
        (s11_4_logging.libvirt_log_format, "11.4.10"),
    ],
)
def test_missing_or_malformed_libvirtd_conf_is_error_plus_manual(fn: Check, measure: str) -> None:
    for tgt, words in ((no_host(), "host facts were not collected"), (malformed(), f"{LIBVIRTD} line 3")):
        found = run(fn, tgt, measure)
        if fn is mfa.admin_mfa:
            assert [f.status for f in found] == [Status.ERROR, Status.MANUAL]
            assert "Evidence needed" in found[1].message
        else:  # the host's own facts decide the rest; an unusable libvirtd.conf is an error, not a guess
            assert [f.status for f in found] == [Status.ERROR]
        assert words in found[0].message


# --------------------------------------------------------------------------------------------------------
# 11.4.6 libvirt remote access


def test_remote_listeners_disabled_pass() -> None:
    f = one(remote_access.libvirt_remote_access, with_libvirtd(listen_tcp=0, listen_tls=0), "11.4.6")
    assert f.status is Status.PASS and "disabled" in f.message


def test_tls_restricted_to_listed_certificates_passes() -> None:
    tgt = with_libvirtd(listen_tls=1, tls_allowed_dn_list=["C=GB,O=DWP,OU=hv-admins,CN=alice"])
    f = one(remote_access.libvirt_remote_access, tgt, "11.4.6")
    assert f.status is Status.PASS and "root excluded" in f.message


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"listen_tls": 1}, "tls_allowed_dn_list is unset"),
        ({"listen_tls": 1, "tls_allowed_dn_list": ["*"]}, "contains '*'"),
        ({"listen_tls": 1, "tls_allowed_dn_list": ["O=DWP,CN=root"]}, "CN=root"),
        (
            {"listen_tls": 1, "tls_allowed_dn_list": ["CN=a"], "tls_no_verify_certificate": 1},
            "need no certificate",
        ),
        ({"listen_tls": 0, "listen_tcp": 1, "auth_tcp": "none"}, 'auth_tcp = "none"'),
        ({"listen_tls": 0, "listen_tcp": 1}, "sasl_allowed_username_list is unset"),
        (
            {"listen_tls": 0, "listen_tcp": 1, "sasl_allowed_username_list": ["root@EXAMPLE.COM"]},
            "admits root",
        ),
        ({"listen_tls": 1, "auth_tls": "sasl", "sasl_allowed_username_list": ["*"]}, "contains '*'"),
    ],
)
def test_remote_access_without_allow_list_or_with_root_fails(values: dict[str, Any], words: str) -> None:
    f = one(remote_access.libvirt_remote_access, with_libvirtd(**values), "11.4.6")
    assert f.status is Status.FAIL and words in f.message
    assert "listen_tcp = 0, listen_tls = 0" in (f.remediation or "")


def test_default_tls_listener_depends_on_uncollected_daemon_flags() -> None:
    f = one(remote_access.libvirt_remote_access, target(), "11.4.6")
    assert f.status is Status.MANUAL and "--listen" in f.message and "16514" in f.message
    assert f.evidence["listen_tls"] == {"value": 1, "source": f"default ({LIBVIRTD} absent)"}


def test_remote_access_errors() -> None:
    assert one(remote_access.libvirt_remote_access, no_host(), "11.4.6").status is Status.ERROR
    f = one(remote_access.libvirt_remote_access, malformed(), "11.4.6")
    assert f.status is Status.ERROR and f"{LIBVIRTD} line 3" in f.message
    f = one(remote_access.libvirt_remote_access, with_libvirtd(listen_tcp="on"), "11.4.6")
    assert f.status is Status.ERROR and f"{LIBVIRTD}:1: listen_tcp" in f.message


# --------------------------------------------------------------------------------------------------------
# 11.4.10 log format


def test_file_only_libvirt_log_fails_standard_format() -> None:
    f = one(
        s11_4_logging.libvirt_log_format,
        with_libvirtd(log_outputs="1:file:/var/log/libvirt/libvirtd.log"),
        "11.4.10",
    )
    assert f.status is Status.FAIL and f.evidence["log_output_types"] == ["file"]
    assert f'{LIBVIRTD} line 1: log_outputs = "3:syslog:libvirtd"' in (f.remediation or "")


@pytest.mark.parametrize("outputs", ["3:syslog:libvirtd", "1:file:/var/log/x.log 3:journald"])
def test_syslog_output_is_the_standard_format(outputs: str) -> None:
    f = one(s11_4_logging.libvirt_log_format, with_libvirtd(log_outputs=outputs), "11.4.10")
    assert f.status is Status.PASS and "standard syslog format" in f.message


# --------------------------------------------------------------------------------------------------------
# Contracts and the engine


def test_every_11_4_finding_has_evidence_and_every_fail_a_remediation() -> None:
    mine = [c for c in registered_checks() if c.measure.startswith("11.4.")]
    assert {c.measure for c in mine} == {f"11.4.{i}" for i in range(1, 14)}
    scenarios = [
        target(),
        no_host(),
        malformed(),
        with_libvirtd(listen_tcp=1, auth_tcp="none", audit_level=0, log_outputs="2:stderr"),
    ]
    for tgt in scenarios:
        for chk in mine:
            for f in chk.fn(CheckContext(tgt, default_profile(), chk.measure, chk.id)):
                assert f.message and f.evidence, (chk.id, f)
                if f.status is Status.FAIL:
                    assert f.remediation, (chk.id, f)
    assert all(c.doc for c in mine)


MEASURES = [f"11.4.{i}" for i in range(1, 14)]


def test_engine_roll_up_for_11_4() -> None:
    ev = evaluate([target()], default_profile())
    decided = {"11.4.4", "11.4.9", "11.4.11", "11.4.13"}  # the baseline host's operations facts pass these
    assert {m for m in MEASURES if ev.by_measure[m] is Status.PASS} == decided
    assert all(ev.by_measure[m] is Status.MANUAL for m in MEASURES if m not in decided)
    bad = with_libvirtd(
        listen_tcp=1,
        auth_tcp="none",
        listen_tls=0,
        audit_level=0,
        log_outputs="1:file:/var/log/libvirt/libvirtd.log",
    )
    ev = evaluate([bad], default_profile())
    failing = {m for m in MEASURES if ev.by_measure[m] is Status.FAIL}
    assert failing == {"11.4.3", "11.4.4", "11.4.6", "11.4.10"}
    assert ev.by_measure["11.2.10"] is Status.FAIL  # the same TCP listener exposes the image host
    ev = evaluate([no_host()], default_profile())
    assert {m for m in MEASURES if ev.by_measure[m] is Status.ERROR} == {
        "11.4.3",
        "11.4.4",
        "11.4.6",
        "11.4.8",
        "11.4.9",
        "11.4.10",
        "11.4.11",
        "11.4.12",
        "11.4.13",
    }
