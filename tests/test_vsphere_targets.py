"""vsphere:// targets: parsing, the password sources (never the command line, owner-only files) and the
usage errors that stop a run before anything is contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hvguard.collect.targets import TargetError, validate_target
from hvguard.collect.vsphere.target import (
    PASSWORD_ENV,
    VsphereOptions,
    VsphereTargetError,
    parse_vsphere_target,
    password_for,
)
from vsphere_env import hvguard


def test_user_part_is_percent_decoded_and_port_defaults_to_443() -> None:
    t = parse_vsphere_target("vsphere://administrator%40vsphere.local@vc.example.org")
    assert (t.user, t.host, t.port) == ("administrator@vsphere.local", "vc.example.org", 443)
    assert parse_vsphere_target("vsphere://root@[::1]:8443").port == 8443


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("vsphere://root:hunter2@esx1", "password in the target is refused"),
        ("vsphere://esx1", "name the user"),
        ("vsphere://root@esx1/sdk", "nothing after"),
        ("vsphere://root@esx1:99999", "not a valid vsphere:// target"),
    ],
)
def test_unusable_targets_are_usage_errors(target: str, words: str) -> None:
    with pytest.raises(TargetError, match=words) as caught:
        validate_target(target)
    assert "hunter2" not in str(caught.value)


def _secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_password_sources_in_order(tmp_path: Path) -> None:
    target = parse_vsphere_target("vsphere://root@esx1")
    other = parse_vsphere_target("vsphere://root@esx2")
    pw_file = _secret(tmp_path / "pw", "from-file\n")
    (tmp_path / "esx1.pw").write_text("from-credentials")
    (tmp_path / "esx1.pw").chmod(0o600)
    creds = _secret(tmp_path / "creds.yaml", "vsphere://root@esx1: esx1.pw\n")
    env = {PASSWORD_ENV: "from-env"}
    both = VsphereOptions(password_file=pw_file, credentials=creds)
    assert password_for(target, both, env) == "from-credentials"  # relative to the credentials file
    assert password_for(other, both, env) == "from-file"  # not listed: the next source
    assert password_for(other, VsphereOptions(), env) == "from-env"
    with pytest.raises(VsphereTargetError, match="no password"):
        password_for(other, VsphereOptions(), {})


@pytest.mark.parametrize("which", ["password_file", "credentials"])
def test_secret_files_readable_by_others_are_refused(tmp_path: Path, which: str) -> None:
    loose = _secret(tmp_path / "loose", "vsphere://root@esx1: /nonexistent\n", 0o644)
    with pytest.raises(VsphereTargetError, match=r"readable by group or others .*0644"):
        password_for(parse_vsphere_target("vsphere://root@esx1"), VsphereOptions(**{which: loose}), {})


def test_a_fifo_or_an_empty_file_is_not_a_password(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    target = parse_vsphere_target("vsphere://root@esx1")
    with pytest.raises(VsphereTargetError, match=r"FIFO|fifo|not a regular file"):
        password_for(target, VsphereOptions(password_file=fifo), {})
    with pytest.raises(VsphereTargetError, match="empty"):
        password_for(target, VsphereOptions(password_file=_secret(tmp_path / "e", "\n")), {})


def test_cli_without_a_password_is_one_line_and_exit_2() -> None:
    result = hvguard("scan", "vsphere://root@192.0.2.1", "--format", "json", env={PASSWORD_ENV: ""})
    assert result.returncode == 2
    assert "no password" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # A user's mistake, said as one: not "internal error: VsphereTargetError …".
    assert result.stderr.startswith("hvguard: error: vsphere://root@192.0.2.1: no password"), result.stderr
    assert result.stdout == ""


def test_cli_tls_ca_and_tls_insecure_together_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    result = hvguard("scan", "vsphere://root@192.0.2.1", "--tls-ca", str(ca), "--tls-insecure")
    assert result.returncode == 2
    assert "contradict" in result.stderr


def test_dry_run_lists_every_call_and_property_path_and_contacts_nothing() -> None:
    # 192.0.2.1 (TEST-NET-1) answers nothing: a dry run that tried to connect would hang or fail.
    result = hvguard("collect", "--dry-run", "vsphere://administrator%40vsphere.local@192.0.2.1", timeout=60)
    assert result.returncode == 0, result.stderr
    for expected in (
        "user administrator@vsphere.local at 192.0.2.1:443",
        "RetrievePropertiesEx on VirtualMachine",
        "config.hardware.device",
        "config.extraConfig",
        "config.lockdownMode",
        "QueryOptions",
        "RetrieveAllPermissions",
        "/rest/com/vmware/content/library",
    ):
        assert expected in result.stdout
