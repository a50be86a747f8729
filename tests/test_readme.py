"""Every ``hvguard`` command the README shows is true: run here on a test estate, or listed with the
reason it cannot run on a test machine.

The README's code blocks are read line by line; each ``hvguard …`` line (its comment stripped) must have
an entry in ``COMMANDS``: either the argument lists that stand for it here (the README's placeholders
filled in: the target becomes the libvirt test driver's estate, FILE a register from tests/data, report
paths a temporary directory) with the exit codes it may give, or the reason it cannot run here. A README
command without an entry, or an entry whose command left the README, fails the test, so the two stay in
step. The sample output is checked against a real run in test_sample_output_matches_the_tool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvguard.cli.app import run

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DATA = ROOT / "tests" / "data"
NODE = f"test://{DATA / 'testdriver' / 'node.xml'}"
#: A libvirt domain XML file (the ops-good root's stored definition) for the guard check lines.
WEB1 = DATA / "roots" / "ops-good" / "etc" / "libvirt" / "qemu" / "web1.xml"


@dataclass(frozen=True)
class Runs:
    """The argument lists that stand for one README line here, and the exit codes each may give."""

    argvs: tuple[tuple[str, ...], ...]
    codes: frozenset[int] = frozenset({0, 1})


@dataclass(frozen=True)
class CannotRun:
    """A README line that needs what a test machine does not have."""

    reason: str


def _runs(*argvs: str, codes: tuple[int, ...] = (0, 1)) -> Runs:
    return Runs(tuple(tuple(a.split()) for a in argvs), frozenset(codes))


_GUARD = (
    "changes the machine-wide /etc/libvirt/hooks and signals libvirtd: covered by test_guard_libvirtd "
    "(real hook directory) and test_guard_install (private hook directory)"
)

#: README line → how it runs here. {node}: the test estate; {tmp}: a fresh directory; {exc}/{att}: the
#: example registers; {key}/{pub}: an Ed25519 key pair; {bundle}: a bundle collected from {node}.
COMMANDS: dict[str, Runs | CannotRun] = {
    "hvguard scan": CannotRun("scans this machine's own host and libvirtd: covered by test_real_libvirtd"),
    "hvguard scan qemu+ssh://admin@hv1/system": CannotRun("needs a remote libvirtd reached over SSH"),
    "hvguard scan ssh://admin@hv1 ssh://admin@hv2:2222 --sudo": CannotRun(
        "names real hosts; SSH scans run against a real sshd in test_ssh_transport"
    ),
    "hvguard scan test:///path/to/node.xml --root ./offline-root": _runs(
        f"scan {{node}} --root {DATA / 'roots' / 'kvm-good'} --no-history"
    ),
    "hvguard scan --format json --output report.json --fail-on warn": _runs(
        "scan {node} --format json --output {tmp}/report.json --fail-on warn --no-history"
    ),
    "hvguard collect qemu:///system --output evidence.json.gz": _runs(
        "collect {node} --output {tmp}/evidence.json.gz"
    ),
    "hvguard collect --dry-run": _runs("collect --dry-run", codes=(0,)),
    "hvguard evaluate evidence.json.gz --profile my-profile.yaml": _runs(
        f"evaluate {{bundle}} --profile {ROOT / 'src' / 'hvguard' / 'profiles' / 'default.yaml'} --no-history"
    ),
    "hvguard evaluate bundles/ --inventory inventory.yml -o html:estate.html -o json:estate.json": _runs(
        "evaluate {estate} --inventory {inventory} -o html:{tmp}/estate.html -o json:{tmp}/estate.json "
        "--force --no-history"
    ),
    "hvguard catalog --format json": _runs("catalog --format json", codes=(0,)),
    "hvguard catalog --coverage [--platform kvm-libvirt] [--format json]": _runs(
        "catalog --coverage", "catalog --coverage --platform kvm-libvirt --format json", codes=(0,)
    ),
    "hvguard collect qemu:///system --output evidence.json.gz --sign collector.pem": _runs(
        "collect {node} --output {tmp}/signed.json.gz --sign {key}"
    ),
    "hvguard evaluate evidence.json.gz --verify collector.pub": _runs(
        "evaluate {bundle} --verify {pub} --no-history"
    ),
    "hvguard scan --format html --output report.html": _runs(
        "scan {node} --format html --output {tmp}/report.html --no-history"
    ),
    "hvguard scan --format sarif --output hvguard.sarif": _runs(
        "scan {node} --format sarif --output {tmp}/hvguard.sarif --no-history"
    ),
    "hvguard scan --format csv --output register.csv": _runs(
        "scan {node} --format csv --output {tmp}/register.csv --no-history"
    ),
    "hvguard scan --format junit --output junit.xml": _runs(
        "scan {node} --format junit --output {tmp}/junit.xml --no-history"
    ),
    "hvguard scan --format hdf --output hvguard.hdf.json": _runs(
        "scan {node} --format hdf --output {tmp}/hvguard.hdf.json --no-history"
    ),
    "hvguard scan --format markdown": _runs("scan {node} --format markdown --no-history"),
    "hvguard scan --format oscal --output ar.json": _runs(
        "scan {node} --format oscal --output {tmp}/ar.json --no-history"
    ),
    (
        "hvguard scan --exceptions risk-register.yaml --attestations attestations.yaml [--as-of 2026-06-01]"
    ): _runs(
        "scan {node} --exceptions {exc} --attestations {att} --no-history",
        "scan {node} --exceptions {exc} --attestations {att} --as-of 2026-06-01 --no-history",
    ),
    "hvguard scan --inventory estate.yml [--inventory more.ini] [--limit 'site_a:!retired'] [TARGET...]": (
        CannotRun("names real hosts; run against loopback sshd hosts in test_inventory_scan")
    ),
    "hvguard evaluate evidence.json.gz --inventory estate.yml": _runs(
        f"evaluate {{bundle}} --inventory {DATA / 'inventory' / 'estate.yml'} --no-history"
    ),
    "hvguard exceptions lint|list|export FILE [--format csv|json] [--as-of DATE]": _runs(
        "exceptions lint {exc}",
        "exceptions list {exc} --as-of 2026-06-01",
        "exceptions export {exc} --format csv",
        "exceptions export {exc} --format json --as-of 2026-06-01",
    ),
    "hvguard attestations lint|list|export FILE": _runs(
        "attestations lint {att}", "attestations list {att}", "attestations export {att}"
    ),
    "hvguard history [--target T] [--limit N] [--format json]": _runs(
        "history", "history --target {node} --limit 5 --format json", codes=(0,)
    ),
    "hvguard diff previous latest [--target T] [--format json]": _runs(
        "diff previous latest --target {node}", "diff previous latest --target {node} --format json"
    ),
    "hvguard history prune --keep-days 90 [--dry-run]": _runs(
        "history prune --keep-days 90 --dry-run", "history prune --keep-days 90", codes=(0,)
    ),
    "hvguard baseline capture qemu:///system --output gold.yaml": _runs(
        "baseline capture {node} --output {tmp}/gold.yaml", codes=(0,)
    ),
    "hvguard baseline check qemu:///system --baseline gold.yaml": _runs(
        "baseline check {node} --baseline {tmp}/gold.yaml", codes=(0,)
    ),
    "hvguard remediate qemu:///system --baseline gold.yaml": _runs(
        "remediate {node} --baseline {tmp}/gold.yaml", codes=(0,)
    ),
    "hvguard remediate qemu:///system --baseline gold.yaml --apply": CannotRun(
        "changes domains of a real libvirtd: covered by test_remediate_libvirtd"
    ),
    "hvguard remediate --undo RUN_ID": CannotRun(
        "needs a run applied to a real libvirtd: test_remediate_libvirtd"
    ),
    "hvguard remediate local --baseline gold.yaml --emit-ansible host.yml": CannotRun(
        "needs a gold file with host settings of this machine: covered by test_baseline_ansible"
    ),
    "hvguard scan --baseline gold.yaml": _runs("scan {node} --baseline {tmp}/gold.yaml --no-history"),
    (
        "hvguard watch qemu:///system --webhook https://hooks.example.org/hv"
        " --webhook-secret-file /etc/hvguard/hook.key"
    ): CannotRun("runs until stopped and posts to a real receiver: covered by test_watch_libvirtd"),
    "hvguard scan --measure 11.3 --measure 11.4.9": _runs(
        "scan {node} --measure 11.3 --measure 11.4.9 --no-history"
    ),
    "hvguard scan --skip-measure 11.1": _runs("scan {node} --skip-measure 11.1 --no-history"),
    "hvguard scan --vm 'web*' --vm db1": _runs("scan {node} --vm web* --vm db1 --no-history"),
    "hvguard scan --vm 'web*' --skip-host": _runs("scan {node} --vm web* --skip-host --no-history"),
    "hvguard scan --status fail,error": _runs("scan {node} --status fail,error --no-history"),
    (
        "hvguard evaluate evidence.json.gz -o html:audit.html -o sarif:hvguard.sarif -o junit:junit.xml"
        " -o json:-"
    ): _runs(
        "evaluate {bundle} -o html:{tmp}/audit.html -o sarif:{tmp}/hvguard.sarif -o junit:{tmp}/junit.xml"
        " -o json:- --no-history --force"
    ),
    "hvguard -q scan -o json:report.json": _runs(
        "-q scan {node} -o json:{tmp}/q-report.json --no-history --force"
    ),
    "hvguard scan -v": _runs("scan {node} -v --no-history"),
    (
        "hvguard scan vsphere://administrator%40vsphere.local@vcenter.example.org --tls-ca corp-ca.pem"
    ): CannotRun("names a real vCenter: the same scan runs against VMware's simulator in test_vsphere_e2e"),
    "hvguard scan vsphere://root@esx1 vsphere://root@esx2 --credentials creds.yaml": CannotRun(
        "names real ESXi hosts: --credentials runs against the simulator in test_vsphere_targets"
    ),
    "hvguard baseline capture vsphere://root@esx1 --output gold.yaml": CannotRun(
        "names a real ESXi host: capture runs against VMware's simulator in test_baseline_vsphere"
    ),
    "hvguard baseline check vsphere://root@esx1 --baseline gold.yaml": CannotRun(
        "names a real ESXi host: check runs against VMware's simulator in test_baseline_vsphere"
    ),
    "hvguard remediate vsphere://root@esx1 --baseline gold.yaml --emit-powercli fix.ps1": CannotRun(
        "names a real ESXi host: --emit-powercli runs against VMware's simulator in test_baseline_vsphere"
    ),
    "hvguard collect --dry-run vsphere://root@esx1": _runs(
        "collect --dry-run vsphere://root@esx1", codes=(0,)
    ),
    "hvguard library init /srv/hvlib --admin alice --passphrase-file pp --cert-out certs": _runs(
        "library init {tmp}/lib1 --admin alice --passphrase-file {pp} --cert-out {tmp}/certs1", codes=(0,)
    ),
    "hvguard library user add /srv/hvlib pete --role publisher --cert-out certs --passphrase-file pp": _runs(
        "library init {tmp}/lib2 --admin alice --passphrase-file {pp} --cert-out {tmp}/certs2",
        "library user add {tmp}/lib2 pete --role publisher --cert-out {tmp}/certs2 --passphrase-file {pp}",
        codes=(0,),
    ),
    "hvguard library grant /srv/hvlib pete --group linux --passphrase-file pp": _runs(
        "library init {tmp}/lib3 --admin alice --passphrase-file {pp} --cert-out {tmp}/certs3",
        "library user add {tmp}/lib3 pete --role publisher --cert-out {tmp}/certs3 --passphrase-file {pp}",
        "library grant {tmp}/lib3 pete --group linux --passphrase-file {pp}",
        codes=(0,),
    ),
    (
        "hvguard library serve /srv/hvlib --listen 0.0.0.0:8443 --tls-cert srv.crt --tls-key srv.key"
        " --passphrase-file pp"
    ): CannotRun("runs until stopped: a real library server on loopback in test_library_service"),
    'hvguard library approve https://lib:8443 "$id" --cert certs/anna.crt --key certs/anna.key --ca ca.pem': (
        CannotRun("needs a running library: test_library_service approves over mTLS")
    ),
    'hvguard library pull https://lib:8443 "$id" --output disk.qcow2 --cert … --key … --ca …': CannotRun(
        "needs a running library: test_library_service pulls and verifies"
    ),
    ("hvguard library verify disk.qcow2 --manifest disk.qcow2.manifest.json --public-key lib.pub"): CannotRun(
        "needs a pulled image and its manifest: test_library_service verifies offline"
    ),
    (
        "hvguard scan --library https://lib:8443 --cert certs/rita.crt --key certs/rita.key --ca ca.pem"
    ): CannotRun("needs a running library: test_library_scan scans one"),
    "hvguard guard check web1.xml": _runs(f"guard check {WEB1}"),
    "hvguard guard check web1.xml db1.xml --host-facts hv1-facts.json.gz --format json": _runs(
        f"guard check {WEB1} {WEB1} --host-facts {{bundle}} --format json"
    ),
    "hvguard guard check new.xml --no-host --exceptions exceptions.yaml": _runs(
        f"guard check {WEB1} --no-host --exceptions {{exc}}", codes=(1, 2)
    ),
    (
        "hvguard serve --db postgresql+psycopg://hvguard@db/hvguard --listen 0.0.0.0:8443 --tls-cert srv.crt"
        " --tls-key srv.key --client-ca clients-ca.pem"
    ): CannotRun("runs until stopped: a real dashboard server on loopback over mTLS in test_dashboard"),
    "hvguard config show": _runs("config show", codes=(0,)),
    "hvguard schema --list": _runs("schema --list", codes=(0,)),
    "hvguard schema exceptions > exceptions.schema.json": _runs("schema exceptions", codes=(0,)),
    "hvguard config show scan": _runs("config show scan", codes=(0,)),
    "hvguard config show --keys": _runs("config show --keys", codes=(0,)),
    "hvguard guard install --mode enforce --exceptions /etc/hvguard/exceptions.yaml --reload-libvirtd": (
        CannotRun(_GUARD)
    ),
    "hvguard guard status": CannotRun(_GUARD),
    'hvguard guard break-glass --domain db-1 --minutes 60 --reason "INC-1234: restore service"': CannotRun(
        _GUARD
    ),
    "hvguard guard refresh": CannotRun(_GUARD),
    "hvguard guard install --update": CannotRun(_GUARD),
    "hvguard guard uninstall": CannotRun(_GUARD),
    "hvguard watch --config /etc/hvguard/watch.yaml": CannotRun(
        "runs until stopped: covered by test_watch_libvirtd and test_watch_config"
    ),
    (
        "hvguard watch vsphere://administrator%40vsphere.local@vcenter.example.org --tls-ca corp-ca.pem"
        " --webhook https://hooks.example.org/hv --webhook-secret-file /etc/hvguard/hook.key"
    ): CannotRun(
        "names a real vCenter and runs until stopped: the same watch runs against VMware's simulator in "
        "test_watch_vsphere"
    ),
}


def readme_commands() -> list[str]:
    """Each ``hvguard …`` line of the README's code blocks, comment stripped, in order."""
    lines: list[str] = []
    in_block = False
    for raw in README.read_text(encoding="utf-8").splitlines():
        if raw.startswith("```"):
            in_block = not in_block
            continue
        if in_block and re.match(r"hvguard [a-z-]", raw):  # a command, not the sample output's title
            lines.append(re.sub(r"\s+#.*$", "", raw).strip())
    return lines


def test_every_readme_command_has_an_entry_and_no_entry_is_stale() -> None:
    shown = readme_commands()
    missing = [c for c in shown if c not in COMMANDS]
    stale = [c for c in COMMANDS if c not in shown]
    assert not missing, f"README commands with no entry in COMMANDS: {missing}"
    assert not stale, f"COMMANDS entries no longer in the README: {stale}"


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The values of the placeholders: a work directory, registers, a key pair and a bundle."""
    tmp = tmp_path_factory.mktemp("readme")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (scripts/setup.sh test installs it)")
    key, pub = tmp / "collector.pem", tmp / "collector.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True, timeout=60)
    bundle = tmp / "bundle.json.gz"
    assert run(["collect", NODE, "--output", str(bundle), "--sign", str(key)]) in (0, 1)
    # `hvguard diff previous latest` compares the two newest stored scans of the target.
    for _ in range(2):
        assert run(
            ["scan", NODE, "--format", "json", "--output", str(tmp / "history-scan.json"), "--force"]
        ) in (0, 1)
    # The example register carries a deliberate sha256 mismatch (AT-004) that lint reports with exit 2;
    # the README line is shown for a register without one.
    att_dir = tmp / "attestations"
    shutil.copytree(DATA / "workflow" / "evidence", att_dir / "evidence")
    text = (DATA / "workflow" / "attestations.yaml").read_text(encoding="utf-8")
    (att_dir / "attestations.yaml").write_text(text.split("  - id: AT-004")[0], encoding="utf-8")
    # An estate as the Ansible role leaves it: one `local` bundle per host, and their inventory.
    estate = tmp / "estate"
    estate.mkdir()
    for name, root in (("hv01", "kvm-good"), ("hv02", "kvm-bad")):
        args = [
            "collect",
            "local",
            "--root",
            str(DATA / "roots" / root),
            "--output",
            str(estate / f"{name}.json"),
        ]
        assert run(args) in (0, 1)
    inventory = tmp / "inventory.yml"
    inventory.write_text("all:\n  children:\n    site_a:\n      hosts:\n        hv01:\n        hv02:\n")
    pp = tmp / "pp"
    pp.write_text("violet quantum harbour drifts 1987 sideways\n", encoding="utf-8")
    pp.chmod(0o600)
    return {
        "pp": str(pp),
        "node": NODE,
        "tmp": str(tmp),
        "exc": str(DATA / "workflow" / "exceptions.yaml"),
        "att": str(att_dir / "attestations.yaml"),
        "key": str(key),
        "pub": str(pub),
        "bundle": str(bundle),
        "estate": str(estate),
        "inventory": str(inventory),
    }


@pytest.mark.parametrize("command", [c for c, how in COMMANDS.items() if isinstance(how, Runs)])
def test_readme_command_runs_on_a_test_estate(
    command: str, places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    how = COMMANDS[command]
    assert isinstance(how, Runs)
    for argv in how.argvs:
        args = [a.format(**places) for a in argv]
        code = run(args)
        err = capsys.readouterr().err
        assert code in how.codes, f"hvguard {' '.join(args)} exited {code}: {err}"
        assert "Traceback" not in err


def _sample_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Sample output\n")
    begin = text.index("```\n", start) + 4
    return text[begin : text.index("```\n", begin)].rstrip("\n")


def test_sample_output_matches_the_tool() -> None:
    """The README's sample is what the tool prints for the test estate today (paths shown as /path/to,
    trailing blanks dropped), so the order of the summary, the labels and the fix lines stay true."""
    node = DATA / "testdriver" / "node.xml"
    env = {**os.environ, "COLUMNS": "250"}
    out = subprocess.run(
        [sys.executable, "-m", "hvguard", "scan", f"test://{node}", "--root", "tests/data/roots/kvm-good",
         "--measure", "11.3.3", "--measure", "11.3.10", "--status", "fail", "--no-history"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    shown = "\n".join(
        line.rstrip() for line in (out.stdout + out.stderr).replace(str(ROOT), "/path/to").splitlines()
    )
    assert shown.strip("\n") == _sample_block()
