"""Collect hypervisor and per-VM facts over a libvirt connection.

The number of RPCs is kept flat so a host with a thousand domains costs little more than fetching
their XML: two domain listings (all, then persistent only) and one ``XMLDesc`` per domain. Whether a
domain is running comes from its XML (``<domain id=...>``), never from per-domain ``isActive`` calls.
"""

from __future__ import annotations

import errno
from typing import Any

import msgspec

from hvguard.collect.interface import CollectError
from hvguard.collect.libvirt.domain_xml import CapabilitiesError, parse_capabilities_xml, parse_domain_xml
from hvguard.collect.libvirt.native import load_libvirt
from hvguard.facts import HypervisorFacts, NodeInfo, Problem, VmFacts

__all__ = ["TargetUnreachable", "collect_libvirt"]

# A read-only retry cannot help when the server is not there at all, and over ssh/tcp it would
# double the wait for the same timeout.
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.EPIPE,
    }
)


class TargetUnreachable(CollectError):
    """The libvirt URI could not be opened at all; ``message`` is one line."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(f"{uri}: {message}")
        self.uri = uri
        self.message = message


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _version(number: int) -> str:
    """libvirt packs versions as major * 1_000_000 + minor * 1_000 + release."""
    return f"{number // 1_000_000}.{number // 1_000 % 1_000}.{number % 1_000}"


def _driver(uri: str) -> str | None:
    """The driver part of a URI scheme: ``qemu+ssh://h/system`` → ``qemu``."""
    scheme, sep, _ = uri.partition(":")
    if not sep or not scheme:
        return None
    return scheme.split("+", 1)[0] or None


def _is_network_failure(libvirt: Any, exc: Any) -> bool:
    try:
        return bool(
            exc.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR and exc.get_int1() in _NETWORK_ERRNOS
        )
    except Exception:
        return False


def _open(libvirt: Any, uri: str) -> tuple[Any, str | None]:
    """Open ``uri`` read-write if allowed, else read-only.

    Returns the connection and, for a read-only fallback, why read-write was refused (else None).
    """
    # Read-write first: only then does VIR_DOMAIN_XML_SECURE show whether a console password is set.
    try:
        return libvirt.open(uri), None
    except libvirt.libvirtError as exc:
        if _is_network_failure(libvirt, exc):
            raise TargetUnreachable(uri, _one_line(exc)) from exc
        rw_error = _one_line(exc)
    try:
        return libvirt.openReadOnly(uri), rw_error
    except libvirt.libvirtError as exc:
        ro_error = _one_line(exc)
        message = rw_error if ro_error == rw_error else f"{rw_error}; read-only: {ro_error}"
        raise TargetUnreachable(uri, message) from exc


def collect_libvirt(uri: str, *, problems: list[Problem]) -> HypervisorFacts | None:
    """Collect hypervisor facts and every domain (active and inactive) from ``uri``.

    Returns None (with a Problem appended) when libvirt-python is not installed. Raises
    :class:`TargetUnreachable` when the connection cannot be opened. Any other failure is recorded in
    ``problems`` and leaves the matching fact None (or, for one domain, ``VmFacts.error`` set).
    """
    try:
        # Optional C extension: imported only when a URI is actually scanned, with its stderr output off.
        libvirt = load_libvirt()
    except ImportError:
        problems.append(
            Problem(area="hypervisor", source="import libvirt", message="libvirt-python is not installed")
        )
        return None

    conn, rw_refused = _open(libvirt, uri)
    if rw_refused is not None:
        # Without VIR_DOMAIN_XML_SECURE libvirt drops every passwd attribute from the XML.
        problems.append(
            Problem(
                area="hypervisor",
                source="virConnectOpenReadOnly",
                message=f"read-write access refused ({rw_refused}); on a read-only connection console "
                "passwords are hidden, so Graphics.password_set is False for every VM",
            )
        )
    try:
        return _collect(libvirt, conn, uri, rw_refused is None, problems)
    finally:
        try:
            conn.close()
        except libvirt.libvirtError as exc:
            problems.append(Problem(area="hypervisor", source="virConnectClose", message=_one_line(exc)))


def _call(libvirt: Any, problems: list[Problem], area: str, source: str, fn: Any, *args: Any) -> Any:
    """Run one connection-level API call; a libvirt error becomes a Problem and None."""
    try:
        return fn(*args)
    except libvirt.libvirtError as exc:
        problems.append(Problem(area=area, source=source, message=_one_line(exc)))
        return None


def _collect(libvirt: Any, conn: Any, uri: str, read_write: bool, problems: list[Problem]) -> HypervisorFacts:
    canonical = _call(libvirt, problems, "hypervisor", "virConnectGetURI", conn.getURI) or uri
    hv_type = _call(libvirt, problems, "hypervisor", "virConnectGetType", conn.getType)
    hv_version = _call(libvirt, problems, "hypervisor", "virConnectGetVersion", conn.getVersion)
    lib_version = _call(libvirt, problems, "hypervisor", "virConnectGetLibVersion", conn.getLibVersion)
    hostname = _call(libvirt, problems, "hypervisor", "virConnectGetHostname", conn.getHostname)

    node: NodeInfo | None = None
    info = _call(libvirt, problems, "hypervisor.node", "virNodeGetInfo", conn.getInfo)
    if info is not None:
        model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = info
        node = NodeInfo(
            model=str(model),
            memory_kib=int(memory_mib) * 1024,
            cpus=int(cpus),
            mhz=int(mhz),
            numa_nodes=int(nodes),
            sockets=int(sockets),
            cores=int(cores),
            threads=int(threads),
        )

    capabilities = None
    caps_xml = _call(
        libvirt, problems, "hypervisor.capabilities", "virConnectGetCapabilities", conn.getCapabilities
    )
    if caps_xml is not None:
        try:
            capabilities = parse_capabilities_xml(caps_xml)
        except CapabilitiesError as exc:
            problems.append(
                Problem(area="hypervisor.capabilities", source="virConnectGetCapabilities", message=str(exc))
            )

    return HypervisorFacts(
        uri=uri,
        driver=_driver(uri) or _driver(str(canonical)),
        hypervisor_type=hv_type,
        hypervisor_version=_version(hv_version) if isinstance(hv_version, int) else None,
        libvirt_version=_version(lib_version) if isinstance(lib_version, int) else None,
        hostname=hostname,
        node=node,
        capabilities=capabilities,
        vms=_collect_vms(libvirt, conn, read_write, problems),
    )


def _collect_vms(libvirt: Any, conn: Any, read_write: bool, problems: list[Problem]) -> list[VmFacts]:
    domains = _call(
        libvirt, problems, "hypervisor.domains", "virConnectListAllDomains", conn.listAllDomains, 0
    )
    if domains is None:
        return []
    persistent_uuids: set[str] | None = None
    persistent = _call(
        libvirt,
        problems,
        "hypervisor.domains",
        "virConnectListAllDomains(PERSISTENT)",
        conn.listAllDomains,
        libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT,
    )
    if persistent is not None:
        persistent_uuids = {dom.UUIDString() for dom in persistent}

    flags = libvirt.VIR_DOMAIN_XML_SECURE if read_write else 0
    vms: list[VmFacts] = []
    for dom in domains:
        # name() and UUIDString() read the local handle, no RPC.
        name = dom.name()
        is_persistent = None if persistent_uuids is None else dom.UUIDString() in persistent_uuids
        try:
            xml = dom.XMLDesc(flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # undefined or destroyed (transient) between the listing and now
            message = _one_line(exc)
            problems.append(Problem(area=f"vm:{name}", source="virDomainGetXMLDesc", message=message))
            vms.append(VmFacts(name=name, persistent=is_persistent, error=message))
            continue
        vm = parse_domain_xml(xml, name_hint=name)
        if vm.error is not None:
            problems.append(Problem(area=f"vm:{name}", source="domain XML", message=vm.error))
        vms.append(msgspec.structs.replace(vm, persistent=is_persistent))
    vms.sort(key=lambda vm: vm.name)
    return vms
