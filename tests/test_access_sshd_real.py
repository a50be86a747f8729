"""hvguard's sshd_config reader agrees with the real ``sshd -T`` on the same files.

Runs the OpenSSH server that ``scripts/setup.sh test`` installs (``sshd -T -f CONFIG -h HOSTKEY``, as root)
on configurations written here, and compares its effective values with hvguard's reading of the same
files (parsed with root ``/`` so Include paths are the real ones). sshd refuses the malformed ones; hvguard
must report an error on the same line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvguard.checks.support.access import listen_addresses
from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.access_sshd import normalise_value, parse_sshd_config, parse_sshd_t
from hvguard.facts import SshdFacts

PRIVSEP = Path("/run/sshd")
COMPARED = (
    "permitrootlogin",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "pubkeyauthentication",
    "usepam",
    "authenticationmethods",
    "allowusers",
    "allowgroups",
    "denyusers",
    "denygroups",
    "x11forwarding",
    "maxauthtries",
    "permitemptypasswords",
    "port",
    "acceptenv",
    "subsystem",
    "gssapiauthentication",
    "hostbasedauthentication",
)


def _sshd() -> str:
    exe = shutil.which(
        "sshd", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH", "")])
    )
    if exe is None:
        pytest.fail("sshd is not installed (scripts/setup.sh test installs openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("sshd -T reads host keys and needs root (CI runs as root)")
    return exe


@pytest.fixture(scope="module")
def sshd_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sshd binary and a host key; creates sshd's privilege-separation directory if missing (removed
    again at the end when this test made it)."""
    exe = _sshd()
    keydir = tmp_path_factory.mktemp("hostkey")
    key = keydir / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    made = not PRIVSEP.exists()
    if made:
        PRIVSEP.mkdir(mode=0o755)
    try:
        yield exe, key
    finally:
        if made and PRIVSEP.is_dir() and not any(PRIVSEP.iterdir()):
            PRIVSEP.rmdir()


def sshd_t(env: tuple[str, Path], config: Path, *spec: str) -> subprocess.CompletedProcess[str]:
    exe, key = env
    argv = [exe, "-T", "-f", str(config), "-h", str(key)]
    if spec:
        argv += ["-C", ",".join(spec)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def write(tmp_path: Path, main: str, includes: dict[str, str] | None = None) -> Path:
    for name, text in (includes or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = tmp_path / "sshd_config"
    config.write_text(main.replace("@DIR@", str(tmp_path)))
    return config


def ours(config: Path) -> SshdFacts:
    return parse_sshd_config(HostFiles(Path("/")), str(config))


def assert_agree(parsed: SshdFacts, dump: dict[str, list[str]]) -> None:
    compared = 0
    for keyword in COMPARED:
        setting = parsed.effective.get(keyword)
        if setting is None or setting.file is None:
            continue  # not written in the files: sshd's default, nothing of ours to compare
        theirs = [normalise_value(keyword, v) for v in dump.get(keyword, [])]
        assert setting.values == theirs, (keyword, setting.values, theirs)
        compared += 1
    assert compared >= 3, "the configuration should set several compared keywords"


CASES = {
    "debian-with-dropins": (
        "Include @DIR@/sshd_config.d/*.conf\nPermitRootLogin yes\nKbdInteractiveAuthentication no\n"
        "UsePAM yes\nX11Forwarding yes\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        {
            "sshd_config.d/20-allow.conf": "AllowGroups hv-admins wheel\nAllowUsers carol\n",
            "sshd_config.d/10-harden.conf": (
                "PermitRootLogin no\npasswordauthentication NO\nAllowUsers alice\n"
            ),
        },
    ),
    "accumulate-and-aliases": (
        "AllowUsers alice bob@10.0.0.0/8\nAllowUsers carol\nDenyUsers mallory\nPort 22\nPort 2222\n"
        "ChallengeResponseAuthentication yes\nPermitRootLogin without-password\nMaxAuthTries 3\n"
        "AuthenticationMethods publickey,keyboard-interactive publickey,password\n"
        "Subsystem sftp internal-sftp\nDenyGroups guests\n",
        {},
    ),
    "match-all-and-conditional": (
        "PubkeyAuthentication yes\nMatch User backup\n  PermitRootLogin yes\n  X11Forwarding yes\n"
        "Match all\n  PasswordAuthentication no\n  PermitRootLogin no\n"
        "Match Address 10.0.0.0/8\n  AuthenticationMethods publickey\n",
        {},
    ),
    "keyword-equals-quotes": (
        'PermitRootLogin=no\nAllowUsers = "alice" bob\nAcceptEnv "LC_*" LANG\nPasswordAuthentication\tno\n',
        {},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_effective_values_match_sshd_t(sshd_env: tuple[str, Path], tmp_path: Path, case: str) -> None:
    main, includes = CASES[case]
    config = write(tmp_path, main, includes)
    done = sshd_t(sshd_env, config)
    assert done.returncode == 0, done.stderr
    parsed = ours(config)
    assert parsed.errors == []
    assert_agree(parsed, parse_sshd_t(done.stdout))


def test_listen_addresses_match_sshd_t(sshd_env: tuple[str, Path], tmp_path: Path) -> None:
    config = write(tmp_path, "Port 2200\nListenAddress 127.0.0.1\nListenAddress [::1]:2201\n")
    done = sshd_t(sshd_env, config)
    assert done.returncode == 0, done.stderr
    theirs = parse_sshd_t(done.stdout)["listenaddress"]
    assert sorted(set(listen_addresses(ours(config)))) == sorted(
        {v.rsplit(":", 1)[0].strip("[]") for v in theirs}
    )


def test_match_block_settings_are_what_sshd_applies_for_that_connection(
    sshd_env: tuple[str, Path], tmp_path: Path
) -> None:
    config = write(
        tmp_path,
        "PermitRootLogin no\nX11Forwarding no\n"
        "Match User backup\n  PermitRootLogin yes\n  X11Forwarding yes\n",
    )
    parsed = ours(config)
    block = parsed.matches[0]
    assert block.criteria == [["user", "backup"]]
    done = sshd_t(sshd_env, config, "user=backup", "host=h", "addr=192.0.2.1")
    assert done.returncode == 0, done.stderr
    theirs = parse_sshd_t(done.stdout)
    for keyword, setting in block.settings.items():
        assert theirs[keyword] == setting.values
    other = parse_sshd_t(sshd_t(sshd_env, config, "user=alice", "host=h", "addr=192.0.2.1").stdout)
    assert other["permitrootlogin"] == parsed.effective["permitrootlogin"].values == ["no"]


@pytest.mark.parametrize(
    "text",
    [
        "PermitRootLogin no\nPermitRootLogn no\n",
        "X11Forwarding no\nPermitRootLogin maybe\n",
        'AllowUsers alice\nAllowUsers "bob\n',
        "PermitRootLogin no\nMatch Usr alice\n",
        "Match User bob\n  X11Forwarding no\n  Port 2222\n",
        "AuthenticationMethods any publickey\n",
        "Subsystem sftp internal-sftp\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
    ],
)
def test_sshd_refuses_what_we_report_on_the_same_line(
    sshd_env: tuple[str, Path], tmp_path: Path, text: str
) -> None:
    config = write(tmp_path, text)
    done = sshd_t(sshd_env, config)
    assert done.returncode != 0
    lines = {int(n) for n in re.findall(r"line (\d+)", done.stderr)}
    parsed = ours(config)
    assert parsed.errors, "hvguard accepted a file sshd refuses"
    ours_lines = {int(m.group(1)) for e in parsed.errors if (m := re.search(r" line (\d+): ", e))}
    assert ours_lines == lines, (parsed.errors, done.stderr)
