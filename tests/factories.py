"""Builders for hand-made facts in unit tests: a compliant baseline that each test bends one way."""

from __future__ import annotations

from typing import Any

import msgspec

from hvguard.collect.libvirt.resources import controls_offered_by_libvirt
from hvguard.facts import (
    AuditFacts,
    AuditRule,
    Bandwidth,
    CollectionInfo,
    ConfFile,
    ConfValue,
    CpuFacts,
    CpuTune,
    Disk,
    FileStat,
    FirewallChain,
    FirewallFacts,
    FirewallRule,
    FirewallSet,
    HostFacts,
    HypervisorFacts,
    Interface,
    JournaldFacts,
    KernelFacts,
    KvmFacts,
    LibvirtNetwork,
    ListeningSocket,
    LogForward,
    LoggingFacts,
    MemoryFacts,
    MountPoint,
    NetInterface,
    NetworkFacts,
    NodeInfo,
    OperationsFacts,
    PatchFacts,
    Problem,
    SecureBootFacts,
    SettingAt,
    StorageFacts,
    StoragePool,
    TargetFacts,
    TpmFacts,
    VcpuFacts,
    VmFacts,
)
from hvguard.findings import Finding
from hvguard.profile import Profile, default_profile


def conf(path: str, **values: Any) -> ConfFile:
    """A parsed libvirt-style config file holding ``values`` (line numbers 1, 2, …)."""
    return ConfFile(
        path=path,
        present=True,
        values={k: ConfValue(value=v, line=i + 1) for i, (k, v) in enumerate(values.items())},
    )


def good_vm(name: str = "web1", **changes: Any) -> VmFacts:
    """A VM that meets every per-VM measure on an 8-core host; ``changes`` replace fields."""
    vm = VmFacts(
        name=name,
        uuid="00000000-0000-0000-0000-000000000001",
        domain_type="kvm",
        active=True,
        persistent=True,
        vcpu=VcpuFacts(maximum=2),
        memory_kib=2 * 1024 * 1024,
        cputune=CpuTune(shares=1024, period=100000, quota=50000),
        disks=[
            Disk(
                device="disk",
                type="file",
                target="vda",
                source_path=f"/var/lib/libvirt/images/{name}.qcow2",
                iotune={"total_bytes_sec": 50_000_000, "total_iops_sec": 500},
            )
        ],
        interfaces=[
            Interface(
                type="network",
                source="default",
                inbound=Bandwidth(average=10000, peak=20000, burst=1024),
                outbound=Bandwidth(average=10000, peak=20000, burst=1024),
            )
        ],
    )
    return msgspec.structs.replace(vm, **changes)


def good_operations(**changes: Any) -> OperationsFacts:
    """Operations facts of a well-run host (audit immutable and forwarded, TLS syslog, sealed journal,
    nftables input policy drop admitting 22/16514 from a management set, no pending security update,
    VM bridge on a two-NIC bond, management on its own NIC); ``changes`` replace groups. The image store
    is a plain (unencrypted) root file system, so 11.2.9 still depends on each disk's ``<encryption>``."""
    root_stat = {"uid": 0, "gid": 0, "owner": "root", "group": "root", "has_acl": False}
    audit = AuditFacts(
        installed=True,
        rules_source="/etc/audit/rules.d/*.rules (augenrules)",
        rule_files=["/etc/audit/rules.d/50-hv.rules", "/etc/audit/rules.d/99-finalize.rules"],
        watches=[
            AuditRule(
                path="/etc/audit/rules.d/50-hv.rules",
                line=1,
                text="-w /var/lib/libvirt/images -p wa -k image_lib",
                watch="/var/lib/libvirt/images",
                perms="wa",
                key="image_lib",
            )
        ],
        enable_flag=2,
        enable_flag_at="/etc/audit/rules.d/99-finalize.rules:1",
        log_dir=FileStat(path="/var/log/audit", is_dir=True, mode=0o700, **root_stat),
        log_files=[FileStat(path="/var/log/audit/audit.log", mode=0o600, **root_stat)],
        remote_plugin_active=True,
        remote_plugin_at="/etc/audit/plugins.d/au-remote.conf:1",
        remote_server=SettingAt(value="logs.example.com", path="/etc/audit/audisp-remote.conf", line=1),
        remote_transport=SettingAt(value="KRB5", path="/etc/audit/audisp-remote.conf", line=3),
    )
    logging = LoggingFacts(
        audit=audit,
        rsyslog_files=["/etc/rsyslog.conf", "/etc/rsyslog.d/90-remote.conf"],
        journald=JournaldFacts(
            files=["/etc/systemd/journald.conf"],
            storage=SettingAt(value="persistent", path="/etc/systemd/journald.conf", line=2),
            seal=SettingAt(value="yes", path="/etc/systemd/journald.conf", line=3),
            persistent_dir=True,
            fss_keys=["/var/log/journal/0123/fss"],
        ),
        forwards=[
            LogForward(
                daemon="rsyslog",
                path="/etc/rsyslog.d/90-remote.conf",
                line=2,
                text='action(type="omfwd" target="logs.example.com" …)',
                target="logs.example.com",
                port=6514,
                protocol="tcp",
                tls=True,
                driver="gtls",
                auth_mode="x509/name",
                permitted_peers=["logs.example.com"],
                ca_file="/etc/rsyslog.d/ca.pem",
            ),
            LogForward(
                daemon="audisp-remote",
                path="/etc/audit/audisp-remote.conf",
                line=1,
                target="logs.example.com",
                port=60,
                protocol="krb5",
                tls=True,
                auth_mode="kerberos",
            ),
        ],
        log_files=[FileStat(path="/var/log/syslog", mode=0o640, uid=0, gid=4, owner="root", group="adm")],
    )
    firewall = FirewallFacts(
        sources=["nft -j list ruleset"],
        live=True,
        chains=[
            FirewallChain(
                backend="nftables",
                family="inet",
                table="filter",
                name="input",
                hook="input",
                policy="drop",
                where="nft chain inet filter input",
                rules=[
                    FirewallRule(
                        where="nft handle 3", ct_states=["established", "related"], verdict="accept"
                    ),
                    FirewallRule(where="nft handle 4", iifs=["lo"], verdict="accept"),
                    FirewallRule(
                        where="nft handle 5",
                        protocols=["tcp"],
                        dports=["22", "16514"],
                        saddrs=["@mgmt"],
                        verdict="accept",
                    ),
                ],
            )
        ],
        sets=[FirewallSet(family="inet", table="filter", name="mgmt", elements=["192.0.2.0/24"])],
        listening=[ListeningSocket(proto="tcp", address="0.0.0.0", port=22, process="sshd", pid=100)],
    )
    patches = PatchFacts(
        manager="apt",
        source="apt-get -s --ignore-hold dist-upgrade",
        pending=[],
        lists_updated=1767139200.0,  # 2025-12-31: one day before the factory's collection time
        lists_updated_source="/var/lib/apt/periodic/update-success-stamp",
        reboot_required=False,
        auto_updates=True,
        auto_updates_at="/etc/apt/apt.conf.d/20auto-upgrades:2",
        auto_updates_detail='APT::Periodic::Unattended-Upgrade "1"',
    )
    network = NetworkFacts(
        interfaces=[
            NetInterface(name="lo", kind="loopback", addresses=["127.0.0.1/8"]),
            NetInterface(name="eno1", kind="physical", physical=True, master="bond0"),
            NetInterface(name="eno2", kind="physical", physical=True, master="bond0"),
            NetInterface(
                name="bond0",
                kind="bond",
                bond_slaves=["eno1", "eno2"],
                bond_mode="active-backup",
                master="br-vm",
            ),
            NetInterface(name="br-vm", kind="bridge", bridge_ports=["bond0", "vnet0"]),
            NetInterface(name="vnet0", kind="tap", master="br-vm"),
            NetInterface(name="eno3", kind="physical", physical=True, addresses=["192.0.2.10/24"]),
        ],
        addresses_known=True,
        default_route_interfaces=["eno3"],
        libvirt_networks=[
            LibvirtNetwork(
                name="default",
                path="/etc/libvirt/qemu/networks/default.xml",
                bridge="br-vm",
                forward_mode="bridge",
            )
        ],
    )
    storage = StorageFacts(
        pools=[
            StoragePool(
                name="default",
                type="dir",
                path="/etc/libvirt/storage/default.xml",
                target_path="/var/lib/libvirt/images",
            )
        ],
        mounts=[
            MountPoint(
                mountpoint="/",
                fstype="ext4",
                source="/dev/sda2",
                device="8:2",
                encrypted=False,
                crypt_chain=["sda2"],
            )
        ],
        image_dirs=[FileStat(path="/var/lib/libvirt/images", is_dir=True, mode=0o711, **root_stat)],
        images=[
            FileStat(
                path="/var/lib/libvirt/images/web1.qcow2",
                mode=0o600,
                uid=64055,
                gid=64055,
                owner="libvirt-qemu",
                group="libvirt-qemu",
                has_acl=False,
            )
        ],
    )
    ops = OperationsFacts(
        logging=logging, firewall=firewall, patches=patches, network=network, storage=storage
    )
    return msgspec.structs.replace(ops, **changes)


def good_host(**changes: Any) -> HostFacts:
    """Host facts of an 8-core, 64 GiB Intel KVM host with TPM 2.0 and Secure Boot; ``changes`` replace
    fields."""
    host = HostFacts(
        hostname="hv1",
        default_target="multi-user.target",
        kvm=KvmFacts(modules=["kvm", "kvm_intel"], dev_kvm_present=True, dev_kvm_mode="0660", ept=True),
        tpm=TpmFacts(present=True, version_major=2, event_log_present=True),
        secure_boot=SecureBootFacts(uefi=True, enabled=True, setup_mode=False),
        kernel=KernelFacts(release="6.1.0", lockdown="integrity", sig_enforce=True, tainted=0),
        cpu=CpuFacts(
            vendor="GenuineIntel",
            flags=["vmx", "ept", "vpid"],
            sockets=1,
            physical_cores=8,
            logical_cpus=16,
            source="/proc/cpuinfo",
        ),
        memory=MemoryFacts(total_kib=64 * 1024 * 1024, source="/proc/meminfo"),
        operations=good_operations(),
    )
    return msgspec.structs.replace(host, **changes)


def target(
    vms: list[VmFacts] | None = None,
    *,
    host: HostFacts | None = None,
    node: NodeInfo | None = None,
    problems: list[Problem] | None = None,
    with_hypervisor: bool = True,
    tid: str = "qemu:///system",
) -> TargetFacts:
    """A target with a libvirt connection (8 cores, 64 GiB unless ``node`` says otherwise)."""
    hv = None
    if with_hypervisor:
        hv = HypervisorFacts(
            uri=tid,
            driver="QEMU",
            controls_offered=controls_offered_by_libvirt("QEMU", tid),
            hypervisor_type="QEMU",
            node=node
            or NodeInfo(model="x86_64", memory_kib=64 * 1024 * 1024, cpus=16, sockets=1, cores=8, threads=2),
            vms=vms if vms is not None else [good_vm()],
        )
    return TargetFacts(
        id=tid,
        platform="kvm-libvirt",
        collection=CollectionInfo(collected_at="2026-01-01T00:00:00Z", tool_version="test"),
        host=host if host is not None else good_host(),
        hypervisor=hv,
        problems=problems or [],
    )


def run(check_fn: Any, tgt: TargetFacts, measure: str, profile: Profile | None = None) -> list[Finding]:
    """Run one check function directly and return its findings."""
    from hvguard.checks.base import CheckContext

    return list(check_fn(CheckContext(tgt, profile or default_profile(), measure, "test")))
