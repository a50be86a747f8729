"""Read libvirt's stored domain definitions (``etc/libvirt/qemu/*.xml``) from a root directory.

This is how an offline root — or a host whose daemon is down — still gets per-VM verdicts: libvirt keeps
every persistent domain's XML there. Nothing is running, so every VM is reported inactive.
"""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec

from hvguard.collect.hostfs import HostFS, as_fs
from hvguard.collect.interface import Fetch
from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.facts import HypervisorFacts, Problem, VmFacts

QEMU_DEFINITIONS = "etc/libvirt/qemu"
MAX_DEFINITION_BYTES = 16 * 1024 * 1024

#: What the hypervisor collector reads on a host whose daemon gives no definitions (its declaration).
STORED_DEFINITIONS = Fetch("F", "/etc/libvirt/qemu/*.xml", "stored domain definitions, when virsh gives none")


def collect_domain_files(root: Path | HostFS, *, problems: list[Problem]) -> HypervisorFacts | None:
    """Parse every ``*.xml`` under ``etc/libvirt/qemu`` of a host; None when that directory is absent."""
    fs = as_fs(root)
    folder = fs.shown(QEMU_DEFINITIONS)
    try:
        if not stat.S_ISDIR(fs.stat(QEMU_DEFINITIONS).st_mode):
            return None
        names = sorted(n for n in fs.listdir(QEMU_DEFINITIONS) if n.endswith(".xml"))
    except PermissionError as exc:
        # Not "no definitions": they are there but this user may not list them.
        fs.note_unreadable(QEMU_DEFINITIONS)
        problems.append(
            Problem(
                area="hypervisor", source=folder, message=f"cannot list: {(exc.strerror or str(exc)).lower()}"
            )
        )
        return None
    except OSError:
        return None
    vms: list[VmFacts] = []
    for file_name in names:
        name = file_name.removesuffix(".xml")
        rel = f"{QEMU_DEFINITIONS}/{file_name}"
        shown = fs.shown(rel)
        try:
            data = fs.read(rel, MAX_DEFINITION_BYTES + 1)
            if len(data) > MAX_DEFINITION_BYTES:
                raise ValueError(f"larger than {MAX_DEFINITION_BYTES} bytes")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, PermissionError):
                fs.note_unreadable(rel)
            reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            message = f"cannot read {shown}: {reason}"
            problems.append(Problem(area=f"vm:{name}", source=shown, message=message))
            vms.append(VmFacts(name=name, error=message))
            continue
        vm = parse_domain_xml(text, name_hint=name)
        if vm.error is not None:
            problems.append(Problem(area=f"vm:{vm.name}", source=shown, message=vm.error))
        # Stored definitions are the persistent ones; no daemon means nothing is running.
        vms.append(msgspec.structs.replace(vm, persistent=True, active=False))
    return HypervisorFacts(uri=f"file://{folder}", driver="QEMU", hypervisor_type="QEMU", vms=vms)


def stored_definitions_instead(
    fs: HostFS, *, uri: str, reason: str, problems: list[Problem], say_why: bool = True
) -> tuple[HypervisorFacts | None, str | None]:
    """The host's stored definitions when libvirt at ``uri`` gave no answer (``reason``): the facts and
    the collector that read them, or (None, None) with a problem saying no hypervisor was found.

    ``say_why`` adds a problem naming why the definitions were used — they say nothing about what
    runs (an offline root has no daemon to expect, so it says nothing)."""
    hv = collect_domain_files(fs, problems=problems)
    if hv is not None:
        if say_why:
            problems.append(
                Problem(
                    area="hypervisor.connection",
                    source=uri,
                    message=f"did not answer ({reason}); VMs read from the stored definitions instead",
                )
            )
        return hv, f"libvirt-files:{fs.shown(QEMU_DEFINITIONS)}"
    problems.append(
        Problem(
            area="hypervisor",
            source=uri,
            message=f"no libvirt hypervisor found ({reason}; no domain definitions under etc/libvirt/qemu)",
        )
    )
    return None, None
