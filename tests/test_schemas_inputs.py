"""The schemas of the YAML inputs (exceptions, attestations, profile, baseline, watch configuration):
every example file validates, and a table of hostile and mistaken inputs is accepted or refused by the
schema exactly as hvguard's own validator accepts or refuses it."""

from __future__ import annotations

import copy
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from hvguard.baseline.schema import BaselineError, parse_baseline
from hvguard.profile import ProfileError, load_profile
from hvguard.schemas import BASE_URL, shipped_text
from hvguard.services.watch import config as watch_config
from hvguard.services.watch.config import CliOverrides, ConfigError, load_config
from hvguard.workflow.attestations import check_attestations
from hvguard.workflow.exceptions import check_exceptions
from hvguard.workflow.register_yaml import NoTimestampLoader
from hvguard.workflow.registerfile import RegisterError
from hvguard.yamlsafe import compose_yaml, load_yaml

DATA = Path(__file__).parent / "data"
README = Path(__file__).parent.parent / "README.md"
NODE = f"test://{DATA / 'testdriver' / 'node.xml'}"
TODAY = date(2026, 6, 1)
SCHEMA_LINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")


def schema_accepts(name: str, text: str) -> bool:
    """Whether the shipped schema ``name`` accepts the YAML ``text``, read as hvguard reads that file
    (registers without implicit timestamps: their dates reach the validator as text)."""
    if name in ("exceptions", "attestations"):
        _, data = compose_yaml(text, "case", loader=NoTimestampLoader)
    else:
        data = load_yaml(text, "case")
    schema = Draft202012Validator(
        json.loads(shipped_text(name)), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return schema.is_valid(data)


def _register_ok(check: Callable[..., Any]) -> Callable[[Path], bool]:
    def ok(path: Path) -> bool:
        try:
            found, _ = check(path, today=TODAY, as_of=TODAY)
        except RegisterError:
            return False
        return found is not None

    return ok


def _profile_ok(path: Path) -> bool:
    try:
        load_profile(path)
    except ProfileError:
        return False
    return True


def _baseline_ok(path: Path) -> bool:
    try:
        parse_baseline(path.read_text(encoding="utf-8"), str(path))
    except BaselineError:
        return False
    return True


def _watch_ok(path: Path) -> bool:
    try:
        load_config(CliOverrides(config_path=path))
    except ConfigError:
        return False
    return True


#: Schema name → whether hvguard's own validator accepts the file at a path.
HVGUARD_ACCEPTS: dict[str, Callable[[Path], bool]] = {
    "exceptions": _register_ok(check_exceptions),
    "attestations": _register_ok(check_attestations),
    "profile": _profile_ok,
    "baseline": _baseline_ok,
    "watch-config": _watch_ok,
}


def both(name: str, doc: Any, tmp_path: Path) -> tuple[bool, bool]:
    """(hvguard accepts, the schema accepts) for ``doc`` written as YAML (or ``doc`` itself when text)."""
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return HVGUARD_ACCEPTS[name](path), schema_accepts(name, text)


# ---------------------------------------------------------------------------------------------------
# Example files validate
# ---------------------------------------------------------------------------------------------------
def _readme_blocks() -> list[tuple[str, str]]:
    """Each ```yaml block of the README with the schema its ``yaml-language-server`` line names."""
    out = []
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        found = SCHEMA_LINE.search(block)
        assert found, f"README yaml example without a $schema line:\n{block}"
        url = found.group(1)
        assert url.startswith(BASE_URL) and url.endswith("-1.json"), url
        out.append((url.removeprefix(BASE_URL).removesuffix("-1.json"), block))
    return out


def _watch_example() -> str:
    """The example configuration in the watch config module's documentation."""
    doc = watch_config.__doc__ or ""
    body = doc.split("::", 1)[1].split("\n\nSecrets", 1)[0]
    return "\n".join(line.removeprefix("    ") for line in body.splitlines())


def test_the_readme_has_yaml_examples_with_their_schema_and_they_validate(tmp_path: Path) -> None:
    blocks = _readme_blocks()
    assert {"exceptions", "attestations", "profile"} <= {name for name, _ in blocks}
    for name, block in blocks:
        assert schema_accepts(name, block), block
        if name in ("exceptions", "attestations", "profile"):
            assert both(name, block, tmp_path) == (True, True), block


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("exceptions", DATA / "workflow" / "exceptions.yaml"),
        ("attestations", DATA / "workflow" / "attestations.yaml"),
    ],
)
def test_the_test_registers_validate(name: str, path: Path) -> None:
    assert schema_accepts(name, path.read_text(encoding="utf-8"))
    # judged today, as the CLI tests use them (one entry is approved after the tables' fixed date)
    check = check_exceptions if name == "exceptions" else check_attestations
    found, problems = check(path)
    assert found is not None, [str(p) for p in problems]


def test_the_packaged_default_profile_validates() -> None:
    text = resources.files("hvguard").joinpath("profiles/default.yaml").read_text(encoding="utf-8")
    assert schema_accepts("profile", text)


def test_the_documented_watch_example_matches_the_schema() -> None:
    text = _watch_example()
    assert "notify:" in text and "from: hvguard@example.org" in text
    assert schema_accepts("watch-config", text)


def test_a_captured_baseline_validates(tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "hvguard", "baseline", "capture", NODE,
         "--root", str(DATA / "roots" / "kvm-good"), "--output", str(gold)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    text = gold.read_text(encoding="utf-8")
    assert schema_accepts("baseline", text) and HVGUARD_ACCEPTS["baseline"](gold)


# ---------------------------------------------------------------------------------------------------
# The schema refuses exactly what hvguard refuses
# ---------------------------------------------------------------------------------------------------
EXCEPTION = {
    "id": "EX-1",
    "measure": "11.3.3",
    "scope": {"target": "*", "subject": "vm:db1"},
    "justification": "Database VM needs every core until the hardware refresh.",
    "risk_owner": "Head of Platform",
    "approved_by": "CISO",
    "approved_on": "2026-01-10",
    "expires_on": "2026-12-31",
    "risk_rating": "medium",
}
ATTESTATION = {
    "id": "AT-1",
    "measure": "11.4.9",
    "scope": {"subject": "host"},
    "statement": "The host firewall admits only SSH and libvirt TLS.",
    "attested_by": "R. Patel",
    "attested_on": "2026-05-20",
    "valid_until": "2026-11-20",
    "evidence": [{"path": "evidence/fw.txt", "sha256": "ab" * 32}, {"url": "https://wiki.example/fw"}],
}
_MISSING = object()


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is _MISSING:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def ex(**changes: Any) -> dict[str, Any]:
    """An exceptions file of one entry: the valid one with ``changes``."""
    return {"exceptions": [_with(EXCEPTION, **changes)]}


def at(**changes: Any) -> dict[str, Any]:
    """An attestations file of one entry: the valid one with ``changes``."""
    return {"attestations": [_with(ATTESTATION, **changes)]}


def ev(*items: Any) -> dict[str, Any]:
    """An attestations file of one entry with these evidence items."""
    return at(evidence=list(items))


def email(**changes: Any) -> dict[str, Any]:
    """A watch configuration with one e-mail channel."""
    return {"notify": {"email": [{**EMAIL, **changes}]}}


def syslog(**changes: Any) -> dict[str, Any]:
    """A watch configuration with one local syslog channel."""
    return {"notify": {"syslog": [{"target": "local", **changes}]}}


SHA = "cd" * 32
#: (label, schema, document, hvguard accepts it) — "document" is the whole file.
CASES: list[tuple[str, str, Any, bool]] = [
    # exceptions
    ("exception valid", "exceptions", {"exceptions": [EXCEPTION]}, True),
    ("empty register", "exceptions", {"exceptions": None}, True),
    ("optional text null", "exceptions", ex(title=None, reference=None), True),
    ("rating any case, blanks", "exceptions", ex(risk_rating=" HIGH "), True),
    ("measure with blanks", "exceptions", ex(measure=" 11.3.3 "), True),
    ("vm glob subject", "exceptions", ex(scope={"subject": "vm:web-*"}), True),
    ("check-only scope", "exceptions", ex(scope={"check": "kvm.*"}), True),
    ("unknown key", "exceptions", ex(owner="Bob"), False),
    ("foreign expiry key", "exceptions", ex(expires="2026-12-31"), False),
    ("unknown top-level key", "exceptions", {"exceptions": [EXCEPTION], "version": 1}, False),
    ("no list key", "exceptions", {"exception": [EXCEPTION]}, False),
    ("list is text", "exceptions", {"exceptions": "EX-1"}, False),
    ("entry is text", "exceptions", {"exceptions": ["EX-1"]}, False),
    ("wrong rating", "exceptions", ex(risk_rating="severe"), False),
    ("rating a number", "exceptions", ex(risk_rating=3), False),
    ("missing rating", "exceptions", ex(risk_rating=_MISSING), False),
    ("missing expiry", "exceptions", ex(expires_on=_MISSING), False),
    ("null expiry", "exceptions", ex(expires_on=None), False),
    ("impossible date", "exceptions", ex(expires_on="2026-02-30"), False),
    ("non-ISO date", "exceptions", ex(expires_on="31/12/2026"), False),
    ("timestamp", "exceptions", ex(expires_on="2026-12-31T10:00"), False),
    ("unknown measure", "exceptions", ex(measure="11.9.9"), False),
    ("measure a number", "exceptions", ex(measure=11.3), False),
    ("id a number", "exceptions", ex(id=12), False),
    ("blank justification", "exceptions", ex(justification="  "), False),
    ("text a list", "exceptions", ex(compensating_controls=["a"]), False),
    ("missing scope", "exceptions", ex(scope=_MISSING), False),
    ("empty scope", "exceptions", ex(scope={}), False),
    ("scope is text", "exceptions", ex(scope="host"), False),
    ("bare VM subject", "exceptions", ex(scope={"subject": "web1"}), False),
    ("unknown scope key", "exceptions", ex(scope={"subject": "host", "vm": 1}), False),
    ("empty scope glob", "exceptions", ex(scope={"check": ""}), False),
    # attestations
    ("attestation valid", "attestations", {"attestations": [ATTESTATION]}, True),
    ("no evidence", "attestations", at(evidence=None), True),
    ("empty evidence", "attestations", ev(), True),
    ("url with null path", "attestations", ev({"path": None, "url": "https://x.example"}), True),
    ("digest any case", "attestations", ev({"path": "f", "sha256": SHA.upper()}), True),
    ("link with a digest", "attestations", ev({"url": "https://x.example", "sha256": SHA}), True),
    ("status key", "attestations", at(status="pass"), False),
    ("expires_on spelling", "attestations", at(expires_on="2026-11-20"), False),
    ("missing statement", "attestations", at(statement=_MISSING), False),
    ("path and url", "attestations", ev({"path": "f", "sha256": SHA, "url": "https://x"}), False),
    ("neither path nor url", "attestations", ev({"sha256": SHA}), False),
    ("file without digest", "attestations", ev({"path": "f"}), False),
    ("short digest", "attestations", ev({"path": "f", "sha256": "abc"}), False),
    ("url without scheme", "attestations", ev({"url": "wiki.example/fw"}), False),
    ("unknown evidence key", "attestations", ev({"url": "https://x", "note": "n"}), False),
    ("evidence is text", "attestations", at(evidence="fw.txt"), False),
    ("evidence item is text", "attestations", ev("fw.txt"), False),
    ("blank description", "attestations", ev({"url": "https://x", "description": ""}), False),
    # profile
    ("empty profile", "profile", {}, True),
    ("loosened threshold", "profile", {"thresholds": {"patch_max_age_days": 30}}, True),
    ("int for a float", "profile", {"thresholds": {"memory_overcommit_warn_max": 2}}, True),
    ("port range", "profile", {"thresholds": {"firewall_allowed_ports": ["22/tcp", "8000-8080/tcp"]}}, True),
    ("null blocks", "profile", {"thresholds": None, "advisory": None, "modality": None}, True),
    (
        "tailoring",
        "profile",
        {"advisory": ["11.3.1"], "modality": {"11.4.1": "must", "11.3.2": "should"}},
        True,
    ),
    ("any name", "profile", {"name": 5, "description": ["x"]}, True),
    ("negative days", "profile", {"thresholds": {"patch_max_age_days": -1}}, False),
    ("negative accounts", "profile", {"thresholds": {"max_host_accounts": -1}}, False),
    ("days as text", "profile", {"thresholds": {"patch_max_age_days": "30"}}, False),
    ("days a bool", "profile", {"thresholds": {"patch_max_age_days": True}}, False),
    ("ratio a bool", "profile", {"thresholds": {"memory_overcommit_pass_max": True}}, False),
    ("zero ratio", "profile", {"thresholds": {"memory_overcommit_pass_max": 0}}, False),
    ("wrong scope", "profile", {"thresholds": {"memory_overcommit_scope": "all"}}, False),
    ("bad port", "profile", {"thresholds": {"firewall_allowed_ports": ["22/tcp", "80/http"]}}, False),
    ("port 0", "profile", {"thresholds": {"firewall_allowed_ports": ["0/tcp"]}}, False),
    ("empty account", "profile", {"thresholds": {"approved_host_accounts": ["root", ""]}}, False),
    ("accounts as text", "profile", {"thresholds": {"approved_host_accounts": "root"}}, False),
    ("unknown threshold", "profile", {"thresholds": {"max_vms": 3}}, False),
    ("thresholds a list", "profile", {"thresholds": []}, False),
    ("unknown advisory measure", "profile", {"advisory": ["11.9.9"]}, False),
    ("advisory as text", "profile", {"advisory": "11.3.1"}, False),
    ("advisory a mapping", "profile", {"advisory": {}}, False),
    ("unknown modality", "profile", {"modality": {"11.3.1": "may"}}, False),
    ("modality of unknown measure", "profile", {"modality": {"11.9.9": "should"}}, False),
    ("modality a list", "profile", {"modality": ["11.3.1"]}, False),
    ("unknown top-level key", "profile", {"measures": []}, False),
    ("profile a list", "profile", [], False),
    ("modality key a number", "profile", "modality:\n  11.3: should\n", False),
]

BASELINE = {
    "schema": "hvguard.baseline/1",
    "host": {"qemu_conf": {"vnc_tls": 1, "user": "qemu"}, "facts": {"kernel.lockdown": "integrity"}},
    "vm_classes": [
        {
            "name": "web",
            "match": {"name": "web*"},
            "settings": {
                "vcpu": {"maximum": 4, "current": 2},
                "cputune": {"quota": -1, "shares": None},
                "disks": {"*": {"iotune": {"total_iops_sec": 500}}},
                "devices": {"graphics": [{"type": "vnc", "listen": ["127.0.0.1"]}]},
            },
        }
    ],
}


def _baseline(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASELINE)
    *parents, last = path.split("/")
    here: Any = doc
    for step in parents:
        here = here[int(step)] if step.isdigit() else here[step]
    if value is _MISSING:
        del here[last]
    else:
        here[last] = value
    return doc


CLASS = "vm_classes/0/settings"
WATCH = syslog(facility="local3")
EMAIL = {"host": "smtp.example.org", "from": "hvguard@example.org", "to": ["ops@example.org"]}
CASES += [
    ("baseline valid", "baseline", BASELINE, True),
    ("null unsets", "baseline", _baseline(f"{CLASS}/cputune", {"period": None}), True),
    ("unknown settings key", "baseline", _baseline(f"{CLASS}/vcpus", {"maximum": 2}), False),
    ("unknown class key", "baseline", _baseline("vm_classes/0/priority", 1), False),
    ("no schema", "baseline", _baseline("schema", _MISSING), False),
    ("other schema", "baseline", _baseline("schema", "hvguard.baseline/2"), False),
    ("count as text", "baseline", _baseline(f"{CLASS}/vcpu/maximum", "4"), False),
    ("count a bool", "baseline", _baseline(f"{CLASS}/vcpu/maximum", True), False),
    ("unknown host fact", "baseline", _baseline("host/facts", {"kernel.lockdwn": "none"}), False),
    ("unknown iotune limit", "baseline", _baseline(f"{CLASS}/disks/*/iotune", {"iops": 5}), False),
    ("zero iotune limit", "baseline", _baseline(f"{CLASS}/disks/*/iotune", {"total_iops_sec": 0}), False),
    ("bad config key", "baseline", _baseline("host/qemu_conf", {"1vnc": 1}), False),
    ("config value a mapping", "baseline", _baseline("host/qemu_conf", {"vnc_tls": {"a": 1}}), False),
    ("graphics without type", "baseline", _baseline(f"{CLASS}/devices/graphics", [{"listen": []}]), False),
    ("tag value a number", "baseline", _baseline("vm_classes/0/match", {"metadata": {"tier": 1}}), False),
    ("class without match", "baseline", _baseline("vm_classes/0/match", _MISSING), False),
    ("watch valid", "watch-config", WATCH, True),
    ("watch with e-mail", "watch-config", email(), True),
    ("implicit TLS", "watch-config", email(tls="implicit", port=465), True),
    ("unknown top-level key", "watch-config", {**WATCH, "url": "https://x"}, False),
    ("unknown channel", "watch-config", {"notify": {"slack": [{}]}}, False),
    ("syslog key typo", "watch-config", syslog(facilty="user"), False),
    ("unknown facility", "watch-config", syslog(facility="local9"), False),
    ("unknown TLS mode", "watch-config", email(tls="ssl"), False),
    ("port as text", "watch-config", email(port="587"), False),
    ("e-mail without to", "watch-config", {"notify": {"email": [{"host": "h", "from": "a@b"}]}}, False),
    ("uris as text", "watch-config", {**WATCH, "uris": "qemu:///system"}, False),
    ("queue as text", "watch-config", {**WATCH, "queue_max": "many"}, False),
    ("webhook without url", "watch-config", {"notify": {"webhook": [{"secret_env": "X"}]}}, False),
]


@pytest.mark.parametrize(("label", "name", "doc", "accepted"), CASES, ids=[f"{c[1]}: {c[0]}" for c in CASES])
def test_the_schema_refuses_exactly_what_hvguard_refuses(
    label: str, name: str, doc: Any, accepted: bool, tmp_path: Path
) -> None:
    assert both(name, doc, tmp_path) == (accepted, accepted)


#: Rules that need the evaluation date, the merged profile, other entries or the file system: hvguard
#: refuses these, the schemas cannot (each schema's description says so).
BEYOND_A_SCHEMA: list[tuple[str, str, Any, str]] = [
    ("approved in the future", "exceptions", ex(approved_on="2026-07-01"),
     "dates in the future"),
    ("expiry before approval", "exceptions",
     ex(approved_on="2026-05-01", expires_on="2026-04-01"),
     "start date after the end date"),
    ("duplicate ids", "attestations", {"attestations": [ATTESTATION, ATTESTATION]}, "duplicate ids"),
    ("pass above the default warn", "profile", {"thresholds": {"memory_overcommit_pass_max": 1.6}},
     "memory_overcommit_pass_max <= memory_overcommit_warn_max"),
    ("advisory and must", "profile", {"advisory": ["11.3.1"], "modality": {"11.3.1": "must"}},
     "no measure both in advisory and set to modality must"),
    ("current above maximum", "baseline", _baseline(f"{CLASS}/vcpu/current", 8), "vCPU and memory maxima"),
    ("zero timeout", "watch-config", syslog(timeout_s=0),
     "value ranges"),
    ("no channel", "watch-config", {"uris": ["qemu:///system"]}, "at least one channel"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "name", "doc", "said"), BEYOND_A_SCHEMA, ids=[f"{c[1]}: {c[0]}" for c in BEYOND_A_SCHEMA]
)
def test_rules_beyond_a_schema_are_named_in_its_description(
    label: str, name: str, doc: Any, said: str, tmp_path: Path
) -> None:
    assert both(name, doc, tmp_path) == (False, True)
    assert said in json.loads(shipped_text(name))["description"]


# ---------------------------------------------------------------------------------------------------
# The same, on randomly broken files (seeded: a failure names its case and replays)
# ---------------------------------------------------------------------------------------------------
#: Values to try per kind of register field: valid ones, and the mistakes people and tools make.
REGISTER_VALUES: dict[str, list[Any]] = {
    "id": ["EX-9", "AT-9", "", "  ", 12, None, ["EX-9"]],
    "measure": ["11.3.3", " 11.4.9 ", "11.9.9", 11.3, None, "", {"id": "11.3.3"}],
    "scope": [
        {"subject": "host"},
        {"subject": "vm:db-*", "target": "hv*", "check": "kvm.*"},
        {},
        {"subject": "db"},
        {"check": ""},
        {"subject": "host", "vm": 1},
        {"target": 5},
        "host",
        None,
    ],
    "text": ["Some text", "", "   ", None, 5, ["a"], True],
    # start dates never after the tables' "today" and end dates never before it: a date compared with
    # another or with today is beyond a schema (see BEYOND_A_SCHEMA)
    "start": ["2026-01-10", "2026-06-01", "2026-02-30", "10/01/2026", None, 20260110, "2026-01-10T00:00"],
    "end": ["2026-12-31", "2026-06-01", "2026-13-01", None, "", "tomorrow", ["2026-12-31"]],
    "choice": ["low", "Critical", " high ", "severe", None, 1, ""],
    "evidence": [
        None,
        [],
        "fw.txt",
        [{"path": "f", "sha256": SHA}],
        [{"url": "https://x.example"}, {"path": "g", "sha256": f" {SHA} "}],
        [{"path": "f"}],
        [{"url": "x.example"}],
        [{"path": "f", "url": "https://x", "sha256": SHA}],
        [{"path": None, "url": "https://x"}],
        [{"url": "https://x", "extra": 1}],
        ["f"],
        [{"path": "", "sha256": SHA}],
        [{"url": "https://x", "sha256": "zz"}],
    ],
}


def _random_entry(rng: Any, base: dict[str, Any], specs: Any) -> dict[str, Any]:
    entry = copy.deepcopy(base)
    dates = 0
    for spec in specs:
        kind = spec.kind
        if kind == "date":
            kind, dates = ("start" if dates == 0 else "end"), dates + 1
        roll = rng.random()
        if roll < 0.04:
            entry.pop(spec.name, None)
        elif roll < 0.14:
            entry[spec.name] = copy.deepcopy(rng.choice(REGISTER_VALUES[kind]))
    if rng.random() < 0.1:
        entry[rng.choice(["owner", "expires", "status", "notes"])] = "x"
    return entry


@pytest.mark.parametrize("name", ["exceptions", "attestations"])
def test_randomly_broken_registers_are_judged_alike(name: str, tmp_path: Path) -> None:
    from hvguard.workflow import attestations, exceptions

    module, base = (exceptions, EXCEPTION) if name == "exceptions" else (attestations, ATTESTATION)
    rng = random.Random(11)  # noqa: S311 (reproducible test cases, not secrets)
    verdicts = []
    for n in range(200):
        doc = {name: [_random_entry(rng, base, module.ENTRY_FIELDS)]}
        ours, schema = both(name, doc, tmp_path)
        assert ours == schema, (n, doc)
        verdicts.append(ours)
    assert 20 < sum(verdicts) < 180  # both outcomes well represented: the comparison means something


PROFILE_VALUES: dict[str, list[Any]] = {
    "memory_overcommit_pass_max": [0.5, 1, 1.5, 0, -1, True, "1.5", [1]],
    "memory_overcommit_warn_max": [1.5, 2, 3.5, 0, False, "2", None],
    "memory_overcommit_scope": ["defined", "running", "all", 1, ""],
    "vcpu_extra_reserved_cores": [0, 2, -1, True, "2", 2.5],
    "patch_max_age_days": [0, 30, -3, None, "30", 7.5],
    "max_host_accounts": [0, 9, -1, False, "9"],
    "vsphere_min_builds": [[], ["esxi 8.0 24674464"], "esxi 8.0 24674464", [8], None],
    "vsphere_min_builds_as_of": ["2026-01-20", "", 20260120, None, ["2026-01-20"]],
    "vsphere_release_list_max_age_days": [0, 120, -1, "120", 1.5, True],
    "approved_host_accounts": [[], ["root"], ["root", ""], "root", [1], None],
    "firewall_allowed_ports": [["22/tcp"], ["22/tcp", "1-100/udp"], ["80/http"], ["0/tcp"], "22/tcp", [22]],
    "advisory": [None, [], ["11.3.1"], ["11.3.4", "11.4.2"], ["11.9.9"], "11.3.1", {}, [11.3]],
    "modality": [
        None,
        {},
        {"11.4.1": "must"},
        {"11.3.2": "should"},
        {"11.3.5": "may"},
        {"11.9.9": "must"},
        [],
    ],
    "name": ["prod", 5, None],
}


def test_randomly_broken_profiles_are_judged_alike(tmp_path: Path) -> None:
    from hvguard.profile import THRESHOLD_TYPES

    rng = random.Random(11)  # noqa: S311 (reproducible test cases, not secrets)
    verdicts = []
    for n in range(200):
        doc: dict[str, Any] = {}
        thresholds = {k: rng.choice(PROFILE_VALUES[k]) for k in THRESHOLD_TYPES if rng.random() < 0.25}
        if thresholds or rng.random() < 0.2:
            doc["thresholds"] = thresholds
        for key in ("advisory", "modality", "name"):
            if rng.random() < 0.3:
                doc[key] = rng.choice(PROFILE_VALUES[key])
        if rng.random() < 0.05:
            doc["tailoring"] = []
        ours, schema = both("profile", copy.deepcopy(doc), tmp_path)
        assert ours == schema, (n, doc)
        verdicts.append(ours)
    assert 20 < sum(verdicts) < 180
