"""Helpers for tests that drive the real libvirtd (``qemu:///system``) started by ``scripts/test.sh``.

Import from test modules (``tests/`` is on ``sys.path`` under pytest's default import mode)::

    from libvirt_env import TestDomains, domain_xml, requires_libvirtd

    pytestmark = requires_libvirtd

    def test_something() -> None:
        with TestDomains() as td:
            dom = td.define(domain_xml(td.name("vm1"), dom_type="kvm", cputune={"shares": 512}))
            td.start(dom)
            ...
        # every domain, secret and image file td created is gone here

Rules that keep a machine-wide ``qemu:///system`` safe to share:

* every domain is named ``hvg-test-<pid>-…`` (``td.name(...)``); ``TestDomains`` refuses others and
  removes exactly what it created (destroy + undefine with NVRAM and TPM state);
* disk images live in a fresh ``/var/lib/libvirt/images/hvg-test-<pid>-XXXX/`` directory that QEMU
  (``libvirt-qemu``) can read, removed on exit;
* ``scripts/test.sh`` removes leftovers of crashed runs (objects whose ``<pid>`` no longer runs).

Facts of this sandbox (see shared/design/real-components.md): ``<bandwidth>`` is accepted on a
``type='user'`` NIC but not enforced and fails on tap/bridge NICs; ``<memtune><hard_limit>`` fails at
start; AppArmor/SELinux seclabels are unavailable. Design tests around those.
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import defusedxml.ElementTree as DET
import libvirt
import pytest

TEST_PREFIX = "hvg-test-"
IMAGE_ROOT = Path("/var/lib/libvirt/images")
LUKS_CREATE_ATTEMPTS = 20
DEFAULT_LUKS_SECRET = "hvg-test-luks-passphrase"

# --------------------------------------------------------------------------------------------------
# The mark
# --------------------------------------------------------------------------------------------------
_NO_DAEMON = (
    "needs the real libvirtd (qemu:///system): run the tests with scripts/test.sh, which starts it "
    "and sets HVGUARD_LIBVIRTD=1"
)


def _requires_libvirtd() -> pytest.MarkDecorator:
    if os.environ.get("HVGUARD_LIBVIRTD"):
        return pytest.mark.skipif(False, reason=_NO_DAEMON)
    if os.environ.get("CI") == "true":
        # A string condition is evaluated at each test's set-up; pytest.fail() there makes every marked
        # test fail with this message instead of being skipped: a missing daemon in CI must not pass.
        msg = f"CI=true but HVGUARD_LIBVIRTD is not set: {_NO_DAEMON}"
        return pytest.mark.skipif(f"__import__('pytest').fail({msg!r}, pytrace=False)", reason=_NO_DAEMON)
    return pytest.mark.skipif(True, reason=_NO_DAEMON)


#: Skip the test when HVGUARD_LIBVIRTD is unset -- except under CI=true, where the test fails.
#: Use as ``@requires_libvirtd`` or ``pytestmark = requires_libvirtd``.
requires_libvirtd: pytest.MarkDecorator = _requires_libvirtd()


def run_prefix() -> str:
    """The per-run name prefix, ``hvg-test-<pid>-``."""
    return f"{TEST_PREFIX}{os.getpid()}-"


# --------------------------------------------------------------------------------------------------
# Images and secrets (plain functions; TestDomains' methods of the same name also clean up)
# --------------------------------------------------------------------------------------------------
def _run(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {detail}")


def make_qcow2(path: str | os.PathLike[str], size: str = "16M") -> Path:
    """Create a plain qcow2 image."""
    _run(["qemu-img", "create", "-q", "-f", "qcow2", os.fspath(path), size])
    return Path(path)


def make_luks_qcow2(
    path: str | os.PathLike[str], size: str = "16M", secret: str = DEFAULT_LUKS_SECRET
) -> Path:
    """Create a LUKS-encrypted qcow2 image whose passphrase is ``secret``.

    QEMU times 32768 PBKDF2 rounds with the thread's CPU clock before it picks the iteration count;
    on this fast, tick-accounted CPU that sometimes reads 0 ms and qemu-img fails with "Unable to get
    accurate CPU usage" (6 runs in 40 measured). That error alone is retried."""
    data = secret.replace(",", ",,")  # QEMU option syntax: a literal comma is doubled
    argv = [
        "qemu-img", "create", "-q", "-f", "qcow2",
        "--object", f"secret,id=s0,data={data}",
        "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10",
        os.fspath(path), size,
    ]  # fmt: skip
    for attempt in range(LUKS_CREATE_ATTEMPTS):
        try:
            _run(argv)
            break
        except RuntimeError as e:
            if "Unable to get accurate CPU usage" not in str(e) or attempt == LUKS_CREATE_ATTEMPTS - 1:
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return Path(path)


def define_secret(conn: Any, usage: str, value: str) -> str:
    """Define a persistent, private libvirt secret (usage type 'volume', id ``usage``); return its UUID.

    The caller removes it (``conn.secretLookupByUUIDString(uuid).undefine()``), or use
    ``TestDomains.define_secret`` which does."""
    xml = (
        "<secret ephemeral='no' private='yes'><description>hvguard test secret</description>"
        f"<usage type='volume'><volume>{html.escape(usage)}</volume></usage></secret>"
    )
    sec = conn.secretDefineXML(xml)
    try:
        sec.setValue(value.encode())
    except BaseException:
        sec.undefine()
        raise
    return str(sec.UUIDString())


# --------------------------------------------------------------------------------------------------
# XML builders
# --------------------------------------------------------------------------------------------------
def _q(value: object) -> str:
    """Quote an attribute value."""
    return '"' + html.escape(str(value), quote=True) + '"'


def _elements(values: Mapping[str, object]) -> str:
    return "".join(f"<{k}>{html.escape(str(v))}</{k}>" for k, v in values.items())


def disk_xml(
    path: str | os.PathLike[str],
    *,
    target: str = "vda",
    bus: str = "virtio",
    fmt: str = "qcow2",
    iotune: Mapping[str, int] | None = None,
    luks_secret_uuid: str | None = None,
    readonly: bool = False,
) -> str:
    """A file-backed ``<disk>``; ``iotune`` e.g. ``{"total_bytes_sec": 10485760, "total_iops_sec": 500}``;
    ``luks_secret_uuid`` adds ``<encryption format='luks'>`` for a LUKS qcow2."""
    parts = [
        "<disk type='file' device='disk'>",
        f"<driver name='qemu' type={_q(fmt)}/>",
        f"<source file={_q(os.fspath(path))}/>",
        f"<target dev={_q(target)} bus={_q(bus)}/>",
    ]
    if luks_secret_uuid:
        parts.append(
            f"<encryption format='luks'><secret type='passphrase' uuid={_q(luks_secret_uuid)}/></encryption>"
        )
    if iotune:
        parts.append(f"<iotune>{_elements(iotune)}</iotune>")
    if readonly:
        parts.append("<readonly/>")
    parts.append("</disk>")
    return "".join(parts)


def luks_disk_xml(path: str | os.PathLike[str], secret_uuid: str, *, target: str = "vdb") -> str:
    return disk_xml(path, target=target, luks_secret_uuid=secret_uuid)


def user_interface_xml(
    *,
    model: str = "virtio",
    mac: str | None = None,
    bandwidth: Mapping[str, Mapping[str, int]] | None = None,
) -> str:
    """A ``type='user'`` (SLIRP) NIC. ``bandwidth`` e.g. ``{"inbound": {"average": 1000}, "outbound":
    {"average": 500, "peak": 1000, "burst": 64}}`` -- accepted here but not enforced on user NICs."""
    parts = ["<interface type='user'>"]
    if mac:
        parts.append(f"<mac address={_q(mac)}/>")
    parts.append(f"<model type={_q(model)}/>")
    if bandwidth:
        inner = "".join(
            f"<{direction} " + " ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "/>"
            for direction, attrs in bandwidth.items()
        )
        parts.append(f"<bandwidth>{inner}</bandwidth>")
    parts.append("</interface>")
    return "".join(parts)


def tpm_xml(model: str = "tpm-crb", version: str = "2.0") -> str:
    """An emulated vTPM (libvirt runs swtpm for it)."""
    return f"<tpm model={_q(model)}><backend type='emulator' version={_q(version)}/></tpm>"


def domain_xml(
    name: str,
    *,
    dom_type: str = "kvm",
    vcpus: int = 1,
    memory_kib: int = 131072,
    machine: str | None = None,
    firmware: str = "bios",
    cputune: Mapping[str, int] | None = None,
    blkio_weight: int | None = None,
    memtune: Mapping[str, int] | None = None,
    disks: Iterable[str] = (),
    interfaces: Iterable[str] = (),
    tpm: bool | str = False,
    extra_devices: str = "",
    extra: str = "",
) -> str:
    """A minimal domain that boots to SeaBIOS ("No bootable device") -- enough for lifecycle tests.

    dom_type: 'kvm' or 'qemu' (TCG). machine: 'pc' (default) or 'q35' (default for UEFI).
    firmware: 'bios', 'efi' or 'efi-secure' (OVMF Secure Boot with enrolled keys; q35 + SMM). Here
    KVM (kvm_pvm) has no SMM ("System Management Mode not supported by this hypervisor"): start an
    'efi-secure' domain with ``dom_type='qemu'`` (TCG).
    cputune: e.g. ``{"shares": 512, "period": 100000, "quota": 50000}``. memtune (KiB): e.g.
    ``{"soft_limit": 65536}`` (``hard_limit`` fails at start in this sandbox). disks/interfaces:
    strings from ``disk_xml``/``user_interface_xml``. tpm: True or a ``tpm_xml(...)`` string.
    extra: raw XML put inside ``<domain>`` (e.g. ``<seclabel .../>``)."""
    if dom_type not in ("kvm", "qemu"):
        raise ValueError(f"dom_type must be 'kvm' or 'qemu', not {dom_type!r}")
    if firmware not in ("bios", "efi", "efi-secure"):
        raise ValueError(f"firmware must be 'bios', 'efi' or 'efi-secure', not {firmware!r}")
    machine = machine or ("q35" if firmware != "bios" else "pc")
    if firmware == "bios":
        os_xml = f"<os><type arch='x86_64' machine={_q(machine)}>hvm</type><boot dev='hd'/></os>"
        features = "<features><acpi/><apic/></features>"
    else:
        secure = "yes" if firmware == "efi-secure" else "no"
        feats = f"<feature enabled={_q(secure)} name='secure-boot'/>"
        if firmware == "efi-secure":
            feats += "<feature enabled='yes' name='enrolled-keys'/>"
        os_xml = (
            f"<os firmware='efi'><type arch='x86_64' machine={_q(machine)}>hvm</type>"
            f"<firmware>{feats}</firmware><boot dev='hd'/></os>"
        )
        smm = "<smm state='on'/>" if firmware == "efi-secure" else ""
        features = f"<features><acpi/><apic/>{smm}</features>"
    parts = [
        f"<domain type={_q(dom_type)}>",
        f"<name>{html.escape(name)}</name>",
        f"<memory unit='KiB'>{int(memory_kib)}</memory>",
        f"<vcpu placement='static'>{int(vcpus)}</vcpu>",
    ]
    if cputune:
        parts.append(f"<cputune>{_elements(cputune)}</cputune>")
    if blkio_weight is not None:
        parts.append(f"<blkiotune><weight>{int(blkio_weight)}</weight></blkiotune>")
    if memtune:
        limits = "".join(f"<{k} unit='KiB'>{int(v)}</{k}>" for k, v in memtune.items())
        parts.append(f"<memtune>{limits}</memtune>")
    parts += [
        os_xml,
        features,
        "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>",
        "<devices>",
        *disks,
        *interfaces,
    ]
    if tpm:
        parts.append(tpm if isinstance(tpm, str) else tpm_xml())
    parts += [extra_devices, "<memballoon model='none'/>", "</devices>", extra, "</domain>"]
    return "".join(parts)


def xml_name(xml: str) -> str:
    name = DET.fromstring(xml).findtext("name")
    if not name:
        raise ValueError("domain XML has no <name>")
    return name


# --------------------------------------------------------------------------------------------------
# TestDomains
# --------------------------------------------------------------------------------------------------
class TestDomains:
    """Context manager owning the test domains, secrets and images it creates on ``conn_uri``.

    On exit it destroys and undefines (with NVRAM + TPM state) exactly the domains it defined,
    undefines its secrets, removes its image directory and closes the connection. A pytest fixture is
    three lines::

        @pytest.fixture
        def td() -> Iterator[TestDomains]:
            with TestDomains() as t:
                yield t
    """

    __test__ = False  # not a test class, despite the name

    def __init__(
        self,
        conn_uri: str = "qemu:///system",
        prefix: str | None = None,
        image_root: str | os.PathLike[str] = IMAGE_ROOT,
    ) -> None:
        self.prefix = prefix if prefix is not None else run_prefix()
        if not self.prefix.startswith(TEST_PREFIX):
            raise ValueError(f"test domain prefix must start with {TEST_PREFIX!r}: {self.prefix!r}")
        self.conn_uri = conn_uri
        self.image_root = Path(image_root)
        self._conn: Any = None
        self._domains: list[str] = []
        self._secrets: list[str] = []
        self._image_dir: Path | None = None

    # -- context -------------------------------------------------------------------------------------
    def __enter__(self) -> TestDomains:
        self._conn = libvirt.open(self.conn_uri)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        errors = self.cleanup()
        if errors and exc_type is None:
            raise RuntimeError("TestDomains clean-up failed: " + "; ".join(errors))

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RuntimeError("TestDomains is not open: use it as a context manager")
        return self._conn

    @property
    def created(self) -> list[str]:
        """Names of the domains defined so far (and not yet removed)."""
        return list(self._domains)

    def name(self, suffix: str) -> str:
        return self.prefix + suffix

    # -- domains -------------------------------------------------------------------------------------
    def define(self, xml: str) -> Any:
        """Define a persistent domain from XML; its name must start with this run's prefix."""
        name = xml_name(xml)
        if not name.startswith(self.prefix):
            raise ValueError(f"test domain name {name!r} must start with {self.prefix!r} (use td.name())")
        dom = self.conn.defineXML(xml)
        self._domains.append(name)
        return dom

    def start(self, dom: Any) -> Any:
        """Start a defined domain (name or virDomain); return the virDomain."""
        if isinstance(dom, str):
            dom = self.conn.lookupByName(dom)
        dom.create()
        return dom

    def define_and_start(self, xml: str) -> Any:
        return self.start(self.define(xml))

    def remove(self, name: str) -> None:
        """Destroy and undefine one of our domains now."""
        if name not in self._domains:
            raise ValueError(f"{name!r} was not created by this TestDomains")
        _remove_domain(self.conn, name)
        self._domains.remove(name)

    # -- files and secrets ---------------------------------------------------------------------------
    @property
    def image_dir(self) -> Path:
        """A fresh directory QEMU can read (created on first use, removed on exit)."""
        if self._image_dir is None:
            d = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.image_root))
            d.chmod(0o755)  # libvirt-qemu must traverse it; libvirt chowns the images themselves
            self._image_dir = d
        return self._image_dir

    def path(self, filename: str) -> Path:
        if "/" in filename or filename in ("", ".", ".."):
            raise ValueError(f"plain file name expected, not {filename!r}")
        return self.image_dir / filename

    def make_qcow2(self, filename: str, size: str = "16M") -> Path:
        return make_qcow2(self.path(filename), size)

    def make_luks_qcow2(self, filename: str, size: str = "16M", secret: str = DEFAULT_LUKS_SECRET) -> Path:
        return make_luks_qcow2(self.path(filename), size, secret)

    def define_secret(self, usage: str | os.PathLike[str], value: str) -> str:
        uuid = define_secret(self.conn, os.fspath(usage), value)
        self._secrets.append(uuid)
        return uuid

    def reconnect(self) -> Any:
        """Open a fresh connection (after a test restarted libvirtd, the old one is dead); return it."""
        with contextlib.suppress(libvirt.libvirtError):
            if self._conn is not None:
                self._conn.close()
        self._conn = libvirt.open(self.conn_uri)
        return self._conn

    # -- clean-up ------------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Remove everything this instance created; return the errors met (and keep going)."""
        errors: list[str] = []
        if self._conn is not None:
            for name in reversed(self._domains):
                try:
                    _remove_domain(self._conn, name)
                except libvirt.libvirtError as e:
                    errors.append(f"domain {name}: {e}")
            self._domains.clear()
            for uuid in reversed(self._secrets):
                try:
                    self._conn.secretLookupByUUIDString(uuid).undefine()
                except libvirt.libvirtError as e:
                    if e.get_error_code() != libvirt.VIR_ERR_NO_SECRET:
                        errors.append(f"secret {uuid}: {e}")
            self._secrets.clear()
        if self._image_dir is not None:
            try:
                shutil.rmtree(self._image_dir)
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"image dir {self._image_dir}: {e}")
            self._image_dir = None
        if self._conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._conn.close()
            self._conn = None
        return errors


def _undefine_flag_sets() -> list[int]:
    nvram = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_NVRAM", 0)
    tpm = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_TPM", 0)
    sets = [nvram | tpm, nvram, 0]
    return list(dict.fromkeys(sets))  # drop duplicates, keep order


def _remove_domain(conn: Any, name: str) -> None:
    """Destroy (if running) and undefine ``name``, deleting its NVRAM and vTPM state where the driver
    accepts those flags. A domain that is already gone is fine."""
    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return
        raise
    persistent = bool(dom.isPersistent())
    if dom.isActive():
        try:
            dom.destroy()
        except libvirt.libvirtError as e:
            if e.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:  # stopped meanwhile
                raise
    if not persistent:
        return
    last: libvirt.libvirtError | None = None
    for flags in _undefine_flag_sets():
        try:
            if flags:
                dom.undefineFlags(flags)
            else:
                dom.undefine()
            return
        except libvirt.libvirtError as e:
            last = e
    assert last is not None
    raise last
