"""Run the parsers over virt-manager's libvirt XML corpus (``<repo>/../shared/corpus/virt-manager``).

Rules for the ``cli/`` and ``xmlparse/`` files (every ``*.xml``, fed whole to ``parse_domain_xml``):

- well-formed with a ``<domain>`` root → must parse without error;
- well-formed with another root (``<network>``, ``<pool>``, ``<domainsnapshot>``, a lone ``<disk>``…)
  → must come back as an error VmFacts whose message names that root: the collector only ever asks
  for domain XML, so anything else is a clear error, never a half-filled VM;
- not well-formed (virt-install output holding two ``<domain>`` documents back to back, unified diffs,
  command output, cloud-init text) → an error with a non-empty one-line message. Each ``<domain>``
  document embedded in such a file (a line starting ``<domain`` through a line ``</domain>``, both at
  column 0: diff lines start with ``+``/``-``/space and are deliberately not matched) is cut out and
  must parse without error.

``capabilities/``: ``<capabilities>`` files must parse; ``<domainCapabilities>`` files must raise
``CapabilitiesError`` naming the root (they are a different document, read by another API).
"""

from __future__ import annotations

from pathlib import Path

from defusedxml.ElementTree import ParseError, fromstring

from hvguard.collect.libvirt.domain_xml import CapabilitiesError, parse_capabilities_xml, parse_domain_xml
from hvguard.facts import VmFacts
from shared_paths import shared


def corpus() -> Path:
    """The corpus folder: skipped on a plain clone, a failure when absent under CI=true."""
    return shared("corpus", "virt-manager")


def root_tag(text: str) -> str | None:
    """The root element's tag, or None when the text is not one well-formed XML document."""
    try:
        return str(fromstring(text).tag)
    except (ParseError, ValueError):
        return None


def embedded_domains(text: str) -> list[str]:
    """``<domain>`` documents that start and end at column 0 inside a larger, non-XML file."""
    docs: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None:
            if line.startswith(("<domain ", "<domain>")):
                current = [line]
        else:
            current.append(line)
            if line.startswith("</domain>"):
                docs.append("\n".join(current))
                current = None
    return docs


def domain_input_files(base: Path) -> list[Path]:
    files = sorted([*(base / "cli").rglob("*.xml"), *(base / "xmlparse").rglob("*.xml")])
    assert files, f"no *.xml under {base}/cli or {base}/xmlparse"
    return files


def test_corpus_domain_files() -> None:
    base = corpus()
    files_ok: list[str] = []
    other_roots: dict[str, str] = {}
    malformed: list[str] = []
    embedded_ok = 0
    failures: list[str] = []

    for path in domain_input_files(base):
        rel = str(path.relative_to(base))
        text = path.read_text(encoding="utf-8")
        try:
            vm = parse_domain_xml(text, name_hint=None)
        except Exception as exc:  # the contract under test: nothing escapes
            failures.append(f"{rel}: exception escaped: {exc!r}")
            continue
        tag = root_tag(text)
        if tag == "domain":
            if vm.error is not None:
                failures.append(f"{rel}: valid domain XML gave error {vm.error!r}")
            else:
                files_ok.append(rel)
        elif tag is not None:
            other_roots[rel] = tag
            if not vm.error or f"<{tag}>" not in vm.error:
                failures.append(f"{rel}: <{tag}> root should be an error naming it, got {vm.error!r}")
        else:
            malformed.append(rel)
            if not vm.error or not vm.error.strip() or "\n" in vm.error:
                failures.append(f"{rel}: malformed XML should give a one-line error, got {vm.error!r}")
            for doc in embedded_domains(text):
                part = parse_domain_xml(doc)
                if part.error is not None:
                    failures.append(f"{rel}: embedded <domain> gave error {part.error!r}")
                else:
                    embedded_ok += 1

    print(
        f"\ncorpus domain files: {len(files_ok)} parsed ok, {len(other_roots)} other roots (error), "
        f"{len(malformed)} not XML (error); {embedded_ok} embedded <domain> documents parsed ok; "
        f"{len(files_ok) + embedded_ok} domain documents in all"
    )
    assert not failures, "\n".join(failures)
    # Floors, not exact figures, so a corpus refresh does not break the test for no reason.
    assert len(files_ok) >= 115
    assert embedded_ok >= 120
    assert len(files_ok) + embedded_ok >= 200
    assert len(malformed) >= 150
    assert {"network", "pool", "domainsnapshot"} <= set(other_roots.values())


def test_corpus_domains_look_plausible() -> None:
    """Spot-check that real-world XML fills the model, not just that it does not crash."""
    base = corpus()
    vms: list[VmFacts] = []
    for path in domain_input_files(base):
        text = path.read_text(encoding="utf-8")
        docs = [text] if root_tag(text) == "domain" else embedded_domains(text)
        vms.extend(parse_domain_xml(doc) for doc in docs)
    good = [vm for vm in vms if vm.error is None]
    # Two xmlparse fixtures (replace-child-*) are fragments with no <name>; everything else has one.
    assert sum(1 for vm in good if vm.name == "?") <= 2
    assert sum(1 for vm in good if vm.disks) > 150
    assert sum(1 for vm in good if vm.interfaces) > 100
    assert sum(1 for vm in good if vm.devices.graphics) > 100
    assert any(vm.os.secure_boot for vm in good)
    assert any(vm.tpms for vm in good)
    assert any(vm.hostdevs for vm in good)
    assert any(vm.cputune.vcpupins for vm in good)
    assert any(d.iotune for vm in good for d in vm.disks)
    # The corpus has no disk <encryption> and no interface <bandwidth> in a domain: test_domain_xml and
    # test_libvirt_testdriver cover those.
    assert {vm.domain_type for vm in good} >= {"kvm", "qemu", "xen", "test"}


def test_corpus_capabilities() -> None:
    base = corpus()
    files = sorted((base / "capabilities").rglob("*"))
    files = [f for f in files if f.is_file()]
    assert files, f"no files under {base}/capabilities"
    ok: list[str] = []
    refused: list[str] = []
    failures: list[str] = []
    for path in files:
        rel = str(path.relative_to(base))
        text = path.read_text(encoding="utf-8")
        tag = root_tag(text)
        try:
            caps = parse_capabilities_xml(text)
        except CapabilitiesError as exc:
            refused.append(rel)
            if tag == "capabilities":
                failures.append(f"{rel}: valid capabilities gave {exc}")
            elif not str(exc).strip() or "\n" in str(exc):
                failures.append(f"{rel}: error message should be one non-empty line: {exc!r}")
            elif tag is not None and f"<{tag}>" not in str(exc):
                failures.append(f"{rel}: error should name the <{tag}> root: {exc}")
        except Exception as exc:
            failures.append(f"{rel}: unexpected {exc!r}")
        else:
            ok.append(rel)
            if tag != "capabilities":
                failures.append(f"{rel}: <{tag}> accepted as capabilities")
            elif caps.host_arch is None:
                failures.append(f"{rel}: no host arch")
    print(f"\ncorpus capabilities: {len(ok)} parsed ok, {len(refused)} refused (domainCapabilities)")
    assert not failures, "\n".join(failures)
    assert len(ok) >= 14
    assert len(refused) >= 12
