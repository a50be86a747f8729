"""One domain's XML as the guard judges it, and the facts it is judged in: the host snapshot with that
domain starting among its VMs, or no host at all (``guard check --no-host``)."""

from __future__ import annotations

import msgspec

from hvguard import __version__
from hvguard.collect.libvirt.domain_xml import parse_domain_xml
from hvguard.collect.libvirt.resources import controls_offered_by_libvirt, resources_from_libvirt
from hvguard.facts import CollectionInfo, HypervisorFacts, Platform, Problem, TargetFacts, VmFacts
from hvguard.guard.lookup import utc_now

#: The largest domain XML accepted (libvirt's own RPC limit for a document is 32 MiB).
MAX_XML_BYTES = 32 * 1024 * 1024
#: The URI of the no-host stand-in connection (``guard check --no-host``).
NO_HOST_URI = "qemu:///system"


class DomainXmlError(ValueError):
    """The domain XML cannot be judged (malformed, hostile, not a ``<domain>``); one-line message."""


def parse_domain(xml: bytes | str, source: str) -> VmFacts:
    """The domain in ``xml`` (from ``source``: a file name or ``stdin``); :class:`DomainXmlError` when
    it cannot be judged. DTDs and entities are refused by the parser, so nothing is expanded or fetched."""
    if len(xml) > MAX_XML_BYTES:
        raise DomainXmlError(f"{source}: domain XML larger than {MAX_XML_BYTES} bytes")
    if isinstance(xml, bytes):
        try:
            xml = xml.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DomainXmlError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    vm = parse_domain_xml(xml)
    if vm.error is not None:
        raise DomainXmlError(f"{source}: {vm.error}")
    if vm.name == "?":
        raise DomainXmlError(f"{source}: the domain has no <name>")
    return vm


def _stand_in_hypervisor(target_id: str) -> tuple[HypervisorFacts, Problem]:
    hv = HypervisorFacts(
        uri=NO_HOST_URI, driver="QEMU", controls_offered=controls_offered_by_libvirt("QEMU", NO_HOST_URI)
    )
    why = Problem(
        area="hypervisor.node",
        source=target_id,
        message="no hypervisor facts in the host facts (node, capabilities): host-dependent measures "
        "cannot be judged",
    )
    return hv, why


def no_host_facts() -> TargetFacts:
    """Facts without any host: ``guard check --no-host``. Measures that need the host (its cores, its
    hardware assist, its RAM) report ``error``."""
    hv, why = _stand_in_hypervisor("--no-host")
    return TargetFacts(
        id="no-host",
        platform=Platform.KVM_LIBVIRT,
        collection=CollectionInfo(collected_at=utc_now(), tool_version=__version__, collectors=[]),
        host=None,
        hypervisor=hv,
        problems=[
            Problem(area="host", source="--no-host", message="host facts not used (--no-host)"),
            why,
            Problem(area="hypervisor.capabilities", source="--no-host", message="host facts not used"),
        ],
    )


def with_vm(snapshot: TargetFacts, vm: VmFacts) -> TargetFacts:
    """The snapshot with ``vm`` (marked running, neutral resource facts derived) among its VMs, in place
    of any VM of the same name or uuid."""
    starting = msgspec.structs.replace(vm, active=True, resources=resources_from_libvirt(vm))
    hv, problems = snapshot.hypervisor, list(snapshot.problems)
    if hv is None:
        hv, why = _stand_in_hypervisor(snapshot.id)
        problems.append(why)
    others = [v for v in hv.vms if v.name != vm.name and (vm.uuid is None or v.uuid != vm.uuid)]
    vms = sorted([*others, starting], key=lambda v: v.name)
    return msgspec.structs.replace(
        snapshot, hypervisor=msgspec.structs.replace(hv, vms=vms), problems=problems
    )
