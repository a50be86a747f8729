"""Image storage: libvirt storage pools, the mount table with each device's dm-crypt status, and the
permissions of image directories and image files.

Pools: /etc/libvirt/storage/*.xml (persistent definitions) and /run/libvirt/storage/*.xml (the state
copy libvirtd keeps for active pools) — libvirt's storage pool XML (formatstorage): ``<pool type=…>``,
``<source><host name=… port=…/><dir path=…/><device path=…/><name>…</name><format type=…/>
<protocol ver=…/><auth type=… username=…/></source>``, ``<target><path>…</path></target>`` and the
fs namespace's ``<fs:mount_opts><fs:option name=…/></fs:mount_opts>``.
Mounts: proc(5) ``/proc/self/mountinfo`` (``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE
SOURCE SUPEROPTS``), else ``/proc/mounts``, else ``/etc/fstab`` (offline roots). Encryption: sysfs
``/sys/dev/block/MAJ:MIN`` → the block device; a device-mapper device has ``dm/uuid`` (``CRYPT-LUKS2-…``
for dm-crypt, as cryptsetup names them) and ``slaves/`` (the devices beneath it, e.g. LVM on LUKS).
Offline, ``/etc/crypttab`` names the dm-crypt mappings (``/dev/mapper/NAME``).
"""

from __future__ import annotations

import posixpath

import msgspec
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from hvguard.collect.linux.ops_files import OpsReader
from hvguard.facts import ConfigIssue, FileStat, MountPoint, StorageFacts, StoragePool

AREA = "host.operations.storage"
POOL_DIRS = ("etc/libvirt/storage", "run/libvirt/storage")
DEFAULT_IMAGE_DIR = "/var/lib/libvirt/images"
FS_NS = "{http://libvirt.org/schemas/storagepool/fs/1.0}"
#: Pool types whose target path is a directory holding image files.
FILE_POOL_TYPES = frozenset({"dir", "fs", "netfs", "gluster", "vstorage"})
MAX_IMAGES = 500
_MAX_DM_DEPTH = 8


def _unescape(field: str) -> str:
    """mountinfo/fstab octal escapes (``\\040`` = space)."""
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_pool_xml(text: str, path: str) -> StoragePool:
    """One storage pool definition (raises ValueError with the reason when malformed)."""
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise ValueError(f"malformed pool XML: {exc}") from exc
    pool = root if root.tag == "pool" else root.find("pool")
    if pool is None:
        raise ValueError(f"not a storage pool definition (root element <{root.tag}>)")
    name = (pool.findtext("name") or "").strip()
    typ = pool.get("type")
    if not name or not typ:
        raise ValueError("a pool needs a type attribute and a <name>")
    src = pool.find("source")
    hosts: list[str] = []
    devices: list[str] = []
    source_dir = source_name = fmt = proto = auth = None
    if src is not None:
        for h in src.findall("host"):
            if h.get("name"):
                hosts.append(h.get("name", "") + (f":{h.get('port')}" if h.get("port") else ""))
        devices = [d.get("path", "") for d in src.findall("device") if d.get("path")]
        d = src.find("dir")
        source_dir = d.get("path") if d is not None else None
        source_name = (src.findtext("name") or "").strip() or None
        f = src.find("format")
        fmt = f.get("type") if f is not None else None
        p = src.find("protocol")
        proto = p.get("ver") if p is not None else None
        a = src.find("auth")
        auth = a.get("type") if a is not None else None
    opts = [o.get("name", "") for o in pool.findall(f"{FS_NS}mount_opts/{FS_NS}option") if o.get("name")]
    return StoragePool(
        name=name,
        type=typ,
        path=path,
        target_path=(pool.findtext("target/path") or "").strip() or None,
        source_hosts=hosts,
        source_dir=source_dir,
        source_devices=devices,
        source_name=source_name,
        source_format=fmt,
        protocol_version=proto,
        auth_type=auth,
        mount_options=opts,
    )


def _pools(r: OpsReader, issues: list[ConfigIssue]) -> list[StoragePool]:
    found: dict[str, StoragePool] = {}
    active: set[str] = set()
    for d in POOL_DIRS:
        for rel in r.glob(f"{d}/*.xml", AREA):
            text = r.text(rel, AREA)
            if text is None:
                continue
            try:
                pool = parse_pool_xml(text, r.shown(rel))
            except ValueError as exc:
                issues.append(ConfigIssue(path=r.shown(rel), message=str(exc)))
                continue
            if d.startswith("run/"):
                active.add(pool.name)
            found.setdefault(pool.name, pool)
    live_known = r.live and r.is_dir("run/libvirt/storage")
    return [
        msgspec.structs.replace(p, active=(p.name in active) if live_known else None)
        for p in sorted(found.values(), key=lambda p: p.name)
    ]


class _CryptWalker:
    """Follows a block device down its device-mapper slaves looking for a dm-crypt mapping."""

    def __init__(self, r: OpsReader) -> None:
        self.r = r

    def by_devnum(self, devnum: str) -> str | None:
        link = self.r.readlink(f"sys/dev/block/{devnum}")
        return posixpath.basename(link) if link else None

    def by_source(self, source: str) -> str | None:
        if not source.startswith("/dev/"):
            return None
        link = self.r.readlink(source)
        name = posixpath.basename(link) if link else posixpath.basename(source)
        return name if self.r.exists(f"sys/class/block/{name}") else None

    def walk(self, name: str, chain: list[str], depth: int = 0) -> bool:
        uuid = (self.r.text(f"sys/class/block/{name}/dm/uuid", AREA) or "").strip()
        chain.append(f"{name} ({uuid})" if uuid else name)
        if uuid.startswith("CRYPT-"):
            return True
        if depth >= _MAX_DM_DEPTH:
            return False
        found = False
        for slave in self.r.listdir(f"sys/class/block/{name}/slaves"):
            found = self.walk(slave, chain, depth + 1) or found
        return found


def _mounts(r: OpsReader, issues: list[ConfigIssue]) -> list[MountPoint] | None:
    walker = _CryptWalker(r)
    have_sys = r.is_dir("sys/class/block")
    text = r.text("proc/self/mountinfo", AREA)
    rows: list[tuple[str, str, str, list[str], str | None]] = []
    origin = "mountinfo"
    if text is not None:
        for n, line in enumerate(text.splitlines(), 1):
            left, sep, right = line.partition(" - ")
            lf, rf = left.split(), right.split()
            if not sep or len(lf) < 6 or len(rf) < 2:
                issues.append(ConfigIssue(path="/proc/self/mountinfo", line=n, message="malformed line"))
                continue
            opts = lf[5].split(",") + (rf[2].split(",") if len(rf) > 2 else [])
            rows.append((_unescape(lf[4]), rf[0], _unescape(rf[1]), opts, lf[2]))
    else:
        for rel, orig in (("proc/mounts", "proc/mounts"), ("etc/fstab", "fstab")):
            text = r.text(rel, AREA)
            if text is None:
                continue
            origin = orig
            for line in text.splitlines():
                f = line.split("#", 1)[0].split()
                if len(f) >= 3:
                    rows.append(
                        (_unescape(f[1]), f[2], _unescape(f[0]), f[3].split(",") if len(f) > 3 else [], None)
                    )
            break
        else:
            return None
    crypt_names: set[str] = set()
    crypttab = r.text("etc/crypttab", AREA)
    for line in (crypttab or "").splitlines():
        f = line.split("#", 1)[0].split()
        if f:
            crypt_names.add(f[0])
    out: list[MountPoint] = []
    for mountpoint, fstype, source, opts, devnum in rows:
        encrypted: bool | None = None
        chain: list[str] = []
        if have_sys:
            name = None
            if devnum and not devnum.startswith("0:"):
                name = walker.by_devnum(devnum)
            if name is None:
                name = walker.by_source(source)
            if name is not None:
                encrypted = walker.walk(name, chain)
            elif not source.startswith("/dev/"):
                encrypted = False  # not a block device (tmpfs, nfs, overlay …): no dm-crypt here
        else:
            mapped = source.removeprefix("/dev/mapper/")
            if mapped != source and mapped in crypt_names:
                encrypted = True
                chain = [f"{source} (crypttab)"]
            elif not crypt_names:
                encrypted = False
        out.append(
            MountPoint(
                mountpoint=mountpoint,
                fstype=fstype,
                source=source,
                options=opts,
                device=devnum,
                encrypted=encrypted,
                crypt_chain=chain,
                origin=origin,
            )
        )
    return out


def collect_storage(r: OpsReader) -> StorageFacts:
    """Read storage pools, the mount table (with dm-crypt status) and image directory permissions."""
    issues: list[ConfigIssue] = []
    pools = _pools(r, issues)
    dirs = [DEFAULT_IMAGE_DIR] + [p.target_path for p in pools if p.type in FILE_POOL_TYPES and p.target_path]
    image_dirs: list[FileStat] = []
    images: list[FileStat] = []
    truncated = False
    for d in dict.fromkeys(x.rstrip("/") or "/" for x in dirs):
        st = r.stat(d, AREA)
        if not st.exists and d == DEFAULT_IMAGE_DIR:
            continue
        if not st.exists and r.source.copied:
            # A copied host (SSH) brings only the manifest's paths: absent here says nothing.
            r.problem(AREA, d, "pool directory not in the fetched copy: its owner and mode are unknown")
            continue
        image_dirs.append(st)
        if not st.is_dir:
            continue
        for name in r.listdir(d.lstrip("/"), AREA):
            if len(images) >= MAX_IMAGES:
                truncated = True
                break
            images.append(r.stat(f"{d}/{name}", AREA))
    return StorageFacts(
        pools=pools,
        mounts=_mounts(r, issues),
        image_dirs=image_dirs,
        images=images,
        images_truncated=truncated,
        issues=issues,
    )
