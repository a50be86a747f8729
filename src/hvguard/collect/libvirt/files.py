"""Read libvirt's stored domain definitions (``etc/libvirt/qemu/*.xml``) from a root directory.

This is how an offline root — or a host whose daemon is down — still gets per-VM verdicts: libvirt keeps
every persistent domain's XML there. Nothing is running, so every VM is reported inactive.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.facts import HypervisorFacts, Problem, VmFacts

QEMU_DEFINITIONS = "etc/libvirt/qemu"
MAX_DEFINITION_BYTES = 16 * 1024 * 1024


def collect_domain_files(root: Path, *, problems: list[Problem]) -> HypervisorFacts | None:
    """Parse every ``*.xml`` under ``root/etc/libvirt/qemu``; None when that directory is absent."""
    folder = root / QEMU_DEFINITIONS
    if not folder.is_dir():
        return None
    vms: list[VmFacts] = []
    for path in sorted(folder.glob("*.xml")):
        name = path.stem
        try:
            if path.stat().st_size > MAX_DEFINITION_BYTES:
                raise ValueError(f"larger than {MAX_DEFINITION_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            message = f"cannot read {path}: {exc}"
            problems.append(Problem(area=f"vm:{name}", source=str(path), message=message))
            vms.append(VmFacts(name=name, error=message))
            continue
        vm = parse_domain_xml(text, name_hint=name)
        if vm.error is not None:
            problems.append(Problem(area=f"vm:{vm.name}", source=str(path), message=vm.error))
        # Stored definitions are the persistent ones; no daemon means nothing is running.
        vms.append(msgspec.structs.replace(vm, persistent=True, active=False))
    return HypervisorFacts(uri=f"file://{folder}", driver="QEMU", hypervisor_type="QEMU", vms=vms)
