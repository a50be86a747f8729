"""vsphere:// against VMware's own vSphere API simulator (govmomi's simulator, tests/vcsim): TLS and login
failures, what the collector reads from the ESX and VPX models, state changed through the API itself
(ReconfigVM_Task, UpdateOptions, SetEntityPermissions, AddAuthorizationRole, ReconfigureDVPortgroup_Task,
a vAPI content library) reaching the facts, faults becoming problems, and bundles that replay.

What the stock simulator lacks (HostImageConfigManager, HostAccessManager, AlarmManager.GetAlarm …) is
asserted as the problem it must give, never as a pass.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any

from hvguard.collect.vsphere.collector import collect_vsphere_target
from hvguard.collect.vsphere.target import PASSWORD_ENV, VsphereOptions
from hvguard.facts import TargetFacts, host_area
from vsphere_env import PASSWORD, Simulator, api, find, hvguard, wait


def _collect(sim: Simulator) -> TargetFacts:
    os.environ[PASSWORD_ENV] = sim.password  # the collector's own source; never the command line
    try:
        return collect_vsphere_target(sim.target, VsphereOptions(tls_ca=sim.ca.ca_pem))
    finally:
        del os.environ[PASSWORD_ENV]


def _env(sim: Simulator) -> dict[str, str]:
    return {PASSWORD_ENV: sim.password}


# ------------------------------------------------------------------------------------------------------
# Reaching the target: one line and exit 2 for every way it can fail; --tls-insecure is loud and recorded


def test_untrusted_certificate_wrong_password_and_closed_port_are_one_line_exit_2(
    vcsim_vpx: Simulator, tmp_path: Path
) -> None:
    sim = vcsim_vpx
    untrusted = hvguard("scan", sim.target, env=_env(sim))
    wrong = hvguard("scan", sim.target, "--tls-ca", str(sim.ca.ca_pem), env={PASSWORD_ENV: "not-it"})
    closed = hvguard("scan", "vsphere://root@127.0.0.2:1", "--tls-ca", str(sim.ca.ca_pem), env=_env(sim))
    for result, words in (
        (untrusted, "TLS certificate of 127.0.0.2"),
        (wrong, "login refused for administrator@vsphere.local"),
        (closed, "cannot connect to 127.0.0.2:1"),
    ):
        assert result.returncode == 2, result.stderr
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""
        assert PASSWORD not in result.stderr


def test_tls_insecure_is_reported_loudly_and_recorded_in_the_report(
    vcsim_vpx: Simulator, tmp_path: Path
) -> None:
    sim = vcsim_vpx
    out = tmp_path / "r.json"
    result = hvguard(
        "scan", sim.target, "--tls-insecure", "--format", "json", "--output", str(out), env=_env(sim)
    )
    assert result.returncode in (0, 1), result.stderr
    assert "--tls-insecure" in result.stderr and "NOT verified" in result.stderr
    report = json.loads(out.read_text())
    assert report["targets"][0]["collection"]["tls_verified"] is False
    assert report["targets"][0]["hostname"] == "127.0.0.2"
    assert report["targets"][0]["hypervisor"]["type"] == "VMware vCenter Server"
    verified = tmp_path / "v.json"
    hvguard(
        "scan",
        sim.target,
        "--tls-ca",
        str(sim.ca.ca_pem),
        "--format",
        "json",
        "--output",
        str(verified),
        env=_env(sim),
    )
    assert json.loads(verified.read_text())["targets"][0]["collection"]["tls_verified"] is True
    assert PASSWORD not in out.read_text() + result.stderr


# ------------------------------------------------------------------------------------------------------
# What is read from the stock models


def test_esx_model_facts_and_missing_managers_become_problems(vcsim_esx: Simulator) -> None:
    facts = _collect(vcsim_esx)
    assert facts.unreachable is None
    assert facts.platform == "vmware-esxi"
    vs = facts.vsphere
    assert vs is not None and vs.product is not None and vs.product.api_type == "HostAgent"
    assert vs.tls_verified is True
    (host,) = vs.hosts
    assert host.product is not None and host.product.name == "VMware ESXi"
    assert host.cpu is not None and host.cpu.cores == 2 and host.memory_bytes
    assert host.services is not None and {s.key for s in host.services} >= {"TSM", "TSM-SSH"}
    assert host.firewall is not None and any(r.key == "sshServer" for r in host.firewall.rulesets)
    assert host.network is not None and host.network.vswitches[0].name == "vSwitch0"
    # A judged option the host does not have is the server's InvalidName, never a value.
    assert host.options is not None
    assert host.options.unreadable["Syslog.global.logHost"].startswith("InvalidName")
    assert "Syslog.global.logHost" not in host.options.values
    # The stock simulator has no HostImageConfigManager: the acceptance level is a problem, not a value.
    assert host.acceptance_level is None
    areas = {p.area: p.message for p in facts.problems}
    assert "ManagedObjectNotFound" in areas[host_area(host.moref, "acceptance_level")]
    assert host.accounts == ["admin", "root"]  # a direct ESXi connection lists its local accounts
    assert host.lockdown is not None and host.lockdown.mode == "lockdownDisabled"
    assert host.lockdown.exception_users is None  # HostAccessManager missing: a problem, not an empty list
    assert "ManagedObjectNotFound" in areas[host_area(host.moref, "lockdown")]
    assert len(vs.vms) == 2
    for vm in vs.vms:
        assert vm.resources.vcpus == 1 and vm.devices is not None and vm.extra_config is not None
        assert vm.host == host.moref


def test_vpx_model_facts(vcsim_vpx: Simulator) -> None:
    facts = _collect(vcsim_vpx)
    assert facts.platform == "vmware-vcenter"
    vs = facts.vsphere
    assert vs is not None
    assert sorted(h.name for h in vs.hosts) == ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2", "DC0_H0"]
    assert {h.cluster for h in vs.hosts} == {"DC0_C0", None}
    assert {h.datacenter for h in vs.hosts} == {"DC0"}
    assert len(vs.vms) == 4 and all(vm.folder == "" and vm.datacenter == "DC0" for vm in vs.vms)
    assert vs.roles is not None and any(r.id == -1 for r in vs.roles)
    assert vs.permissions is not None and any(
        p.role_id == -1 and p.entity_type == "Folder" for p in vs.permissions
    )
    assert vs.inventory is not None
    kinds = {e.type for e in vs.inventory}
    assert {"Datacenter", "ClusterComputeResource", "HostSystem", "VirtualMachine", "ResourcePool"} <= kinds
    vm_entity = next(e for e in vs.inventory if e.type == "VirtualMachine")
    assert len(vm_entity.parents) == 2  # its folder and its resource pool
    assert vs.vcenter_options is not None and vs.vcenter_options.values["event.maxAge"] == 30
    assert vs.distributed_switches and vs.distributed_switches[0].name == "DVS0"
    assert vs.content_libraries == []
    assert vs.datastores and vs.datastores[0].name == "LocalDS_0"
    # AlarmManager.GetAlarm is not in the stock simulator: a problem, and no alarm list.
    assert vs.alarms is None
    assert any(p.area == "vsphere.alarms" and "MethodNotFound" in p.message for p in facts.problems)


# ------------------------------------------------------------------------------------------------------
# State changed through the API reaches the facts


def _reconfigure(vm: Any) -> None:
    from pyVmomi import vim

    spec = vim.vm.ConfigSpec(
        numCPUs=4,
        memoryMB=2048,
        cpuAllocation=vim.ResourceAllocationInfo(
            reservation=500, limit=2000, shares=vim.SharesInfo(level="high", shares=2000)
        ),
        memoryAllocation=vim.ResourceAllocationInfo(
            reservation=1024, limit=2048, shares=vim.SharesInfo(level="low", shares=500)
        ),
        flags=vim.vm.FlagInfo(virtualExecUsage="hvOff"),
        extraConfig=[vim.option.OptionValue(key="isolation.device.connectable.disable", value="TRUE")],
    )
    wait(vm.ReconfigVM_Task(spec))


def test_reconfigured_vm_options_permissions_and_shaping_reach_the_facts(vcsim_fresh: Any) -> None:
    from pyVmomi import VmomiSupport, vim

    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    content = si.RetrieveContent()
    vm = find(si, "VirtualMachine", "DC0_C0_RP0_VM0")
    _reconfigure(vm)
    host = find(si, "HostSystem", "DC0_C0_H0")
    host.configManager.advancedOption.UpdateOptions(
        changedValue=[
            vim.option.OptionValue(key="Syslog.global.logHost", value="ssl://logs.example.org:1514"),
            vim.option.OptionValue(key="UserVars.ESXiShellTimeOut", value=VmomiSupport.long(600)),
        ]
    )
    auth = content.authorizationManager
    role = auth.AddAuthorizationRole(name="hvg-audit", privIds=["System.View", "Host.Config.AdvancedConfig"])
    auth.SetEntityPermissions(
        entity=vm,
        permission=[
            vim.AuthorizationManager.Permission(
                entity=vm, principal="VSPHERE.LOCAL\\ops", group=True, roleId=-5, propagate=False
            )
        ],
    )
    auth.SetEntityPermissions(
        entity=host,
        permission=[
            vim.AuthorizationManager.Permission(
                entity=host, principal="auditor", group=False, roleId=role, propagate=True
            )
        ],
    )
    pg = find(si, "DistributedVirtualPortgroup", "DC0_DVPG0")
    shaping = vim.dvs.DistributedVirtualPort.TrafficShapingPolicy(
        enabled=vim.BoolPolicy(value=True),
        averageBandwidth=vim.LongPolicy(value=100_000_000),
        peakBandwidth=vim.LongPolicy(value=200_000_000),
        burstSize=vim.LongPolicy(value=1_000_000),
    )
    wait(
        pg.ReconfigureDVPortgroup_Task(
            vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
                configVersion=pg.config.configVersion,
                defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
                    outShapingPolicy=shaping
                ),
            )
        )
    )

    facts = _collect(sim)
    vs = facts.vsphere
    assert vs is not None
    got = next(v for v in vs.vms if v.name == "DC0_C0_RP0_VM0")
    r = got.resources
    assert (r.vcpus, r.memory_bytes) == (4, 2048 * 1024 * 1024)
    assert r.cpu_reservation_mhz == 500 and r.cpu_limit is not None and r.cpu_limit.mhz == 2000
    assert r.cpu_shares is not None and r.cpu_shares.level == "high"
    assert r.memory_reservation_bytes == 1024 * 1024 * 1024 and r.memory_limit_bytes == 2048 * 1024 * 1024
    assert r.hardware_virtualisation == "off"
    assert got.flags is not None and got.flags.virtual_exec_usage == "hvOff"
    assert got.extra_config == {"isolation.device.connectable.disable": "TRUE"}
    untouched = next(v for v in vs.vms if v.name == "DC0_C0_RP0_VM1")
    assert untouched.resources.vcpus == 1 and untouched.extra_config == {}

    h = next(x for x in vs.hosts if x.name == "DC0_C0_H0")
    assert h.options is not None
    assert h.options.values["Syslog.global.logHost"] == "ssl://logs.example.org:1514"
    assert h.options.values["UserVars.ESXiShellTimeOut"] == 600
    assert "Syslog.global.logHost" not in h.options.unreadable

    assert vs.permissions is not None and vs.roles is not None
    deny = next(p for p in vs.permissions if p.entity == got.moref)
    assert (deny.principal, deny.group, deny.role_id, deny.entity_type) == (
        "VSPHERE.LOCAL\\ops",
        True,
        -5,
        "VirtualMachine",
    )
    grant = next(p for p in vs.permissions if p.principal == "auditor")
    assert grant.entity == h.moref and grant.propagate
    assert "Host.Config.AdvancedConfig" in next(x for x in vs.roles if x.id == grant.role_id).privileges

    assert vs.distributed_switches is not None
    dvpg = next(g for s in vs.distributed_switches for g in s.portgroups if g.name == "DC0_DVPG0")
    assert dvpg.out_shaping is not None and dvpg.out_shaping.enabled is True
    assert dvpg.out_shaping.average_bps == 100_000_000


def _rest(sim: Simulator, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["vmware-api-session-id"] = token
    else:
        login = base64.b64encode(f"{sim.user}:{sim.password}".encode()).decode()
        headers["Authorization"] = f"Basic {login}"
    req = urllib.request.Request(
        f"https://{sim.host}:{sim.port}{path}",
        method=method,
        headers=headers,
        data=json.dumps(body).encode() if body is not None else None,
    )
    ctx = ssl.create_default_context(cafile=str(sim.ca.ca_pem))
    with urllib.request.urlopen(req, context=ctx, timeout=30) as answer:  # noqa: S310 - https to the simulator
        data = answer.read()
    return json.loads(data)["value"] if data else None


def test_content_library_created_through_vapi_is_collected(vcsim_fresh: Any) -> None:
    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    ds = find(si, "Datastore", "LocalDS_0")
    token = _rest(sim, "POST", "/rest/com/vmware/cis/session")
    spec = {
        "create_spec": {
            "name": "gold-images",
            "type": "LOCAL",
            "storage_backings": [{"type": "DATASTORE", "datastore_id": ds._moId}],
            "publish_info": {"published": True, "authentication_method": "NONE"},
        }
    }
    lib_id = _rest(sim, "POST", "/rest/com/vmware/content/local-library", spec, token)
    facts = _collect(sim)
    assert facts.vsphere is not None and facts.vsphere.content_libraries is not None
    (lib,) = facts.vsphere.content_libraries
    assert (lib.id, lib.name, lib.type, lib.published, lib.authentication_method) == (
        lib_id,
        "gold-images",
        "LOCAL",
        True,
        "NONE",
    )
    assert lib.items == []


# ------------------------------------------------------------------------------------------------------
# Bundles


def test_collect_writes_a_bundle_that_evaluate_replays_identically(
    vcsim_vpx: Simulator, tmp_path: Path
) -> None:
    sim = vcsim_vpx
    ca = str(sim.ca.ca_pem)
    bundle = tmp_path / "b.json"
    collected = hvguard("collect", sim.target, "--tls-ca", ca, "--output", str(bundle), env=_env(sim))
    assert collected.returncode == 0, collected.stderr
    assert "4 VM(s)" in collected.stderr
    assert PASSWORD not in bundle.read_text()
    replay = tmp_path / "replay.json"
    evaluated = hvguard("evaluate", str(bundle), "--format", "json", "--output", str(replay))
    assert evaluated.returncode in (0, 1), evaluated.stderr
    live = tmp_path / "live.json"
    hvguard("scan", sim.target, "--tls-ca", ca, "--format", "json", "--output", str(live), env=_env(sim))
    a, b = json.loads(replay.read_text()), json.loads(live.read_text())
    assert a["results"] == b["results"]
    assert a["summary"] == b["summary"]
    assert a["targets"][0]["platform"] == "vmware-vcenter" and a["targets"][0]["vm_count"] == 4


def test_password_file_must_be_owner_only_on_the_command_line(vcsim_vpx: Simulator, tmp_path: Path) -> None:
    sim = vcsim_vpx
    pw = tmp_path / "pw"
    pw.write_text(sim.password + "\n")
    pw.chmod(0o640)
    loose = hvguard(
        "scan", sim.target, "--tls-ca", str(sim.ca.ca_pem), "--password-file", str(pw), env={PASSWORD_ENV: ""}
    )
    assert loose.returncode == 2 and "chmod 600" in loose.stderr
    pw.chmod(0o600)
    ok = hvguard(
        "scan",
        sim.target,
        "--tls-ca",
        str(sim.ca.ca_pem),
        "--password-file",
        str(pw),
        "--format",
        "json",
        env={PASSWORD_ENV: ""},
    )
    assert ok.returncode in (0, 1), ok.stderr
    assert json.loads(ok.stdout)["targets"][0]["platform"] == "vmware-vcenter"


# ------------------------------------------------------------------------------------------------------
# Faults after login, several targets, the credentials file


def test_a_session_lost_after_login_makes_every_read_a_problem_and_no_pass(vcsim_fresh: Any) -> None:
    from hvguard.collect.vsphere.collector import COLLECTOR
    from hvguard.collect.vsphere.connection import connect
    from hvguard.collect.vsphere.target import parse_vsphere_target
    from hvguard.engine import evaluate
    from hvguard.facts import CollectionInfo
    from hvguard.profile import load_profile

    sim = vcsim_fresh("-model", "esx", "-api", "7.0.1.0")
    conn = connect(parse_vsphere_target(sim.target), VsphereOptions(tls_ca=sim.ca.ca_pem), sim.password)
    conn.content.sessionManager.Logout()  # the server forgets the session: every call is NotAuthenticated
    problems: list[Any] = []
    vs = COLLECTOR.collect(conn, problems)
    assert vs.hosts == [] and vs.vms == [] and vs.permissions is None and vs.roles is None
    api_reads = [p for p in problems if p.area != "vsphere.alarms"]  # ESXi has no AlarmManager at all
    assert api_reads and all("NotAuthenticated" in p.message for p in api_reads), problems
    facts = TargetFacts(
        id=sim.target,
        platform="vmware-esxi",
        collection=CollectionInfo(collected_at="2026-01-01T00:00:00Z", tool_version="t"),
        vsphere=vs,
        problems=problems,
    )
    ev = evaluate([facts], load_profile(None))
    assert ev.by_measure["11.2.2"] == "error" and ev.by_measure["11.4.10"] == "error"
    assert not any(f.status == "pass" and f.measure in {"11.2.2", "11.2.5", "11.4.10"} for f in ev.findings)


def test_one_unreachable_target_among_several_stays_in_the_report(
    vcsim_vpx: Simulator, tmp_path: Path
) -> None:
    sim = vcsim_vpx
    out = tmp_path / "r.json"
    result = hvguard(
        "scan",
        sim.target,
        "vsphere://root@127.0.0.2:1",
        "--tls-ca",
        str(sim.ca.ca_pem),
        "--format",
        "json",
        "--output",
        str(out),
        env=_env(sim),
    )
    assert result.returncode == 1, result.stderr
    targets = {t["id"]: t for t in json.loads(out.read_text())["targets"]}
    assert targets[sim.target]["unreachable"] is None
    assert "cannot connect" in targets["vsphere://root@127.0.0.2:1"]["unreachable"]


def test_credentials_file_maps_targets_to_password_files(vcsim_vpx: Simulator, tmp_path: Path) -> None:
    sim = vcsim_vpx
    (tmp_path / "vc.pw").write_text(sim.password)
    (tmp_path / "vc.pw").chmod(0o600)
    creds = tmp_path / "creds.yaml"
    creds.write_text(f"{sim.target}: vc.pw\n")
    creds.chmod(0o600)
    ok = hvguard(
        "scan",
        sim.target,
        "--tls-ca",
        str(sim.ca.ca_pem),
        "--credentials",
        str(creds),
        "--format",
        "json",
        env={PASSWORD_ENV: ""},
    )
    assert ok.returncode in (0, 1), ok.stderr
    assert json.loads(ok.stdout)["targets"][0]["unreachable"] is None
    creds.chmod(0o644)
    loose = hvguard(
        "scan",
        sim.target,
        "--tls-ca",
        str(sim.ca.ca_pem),
        "--credentials",
        str(creds),
        env={PASSWORD_ENV: ""},
    )
    assert loose.returncode == 2 and "readable by group or others" in loose.stderr


def test_every_report_format_renders_a_vcenter_scan(vcsim_vpx: Simulator) -> None:
    from hvguard.engine import evaluate
    from hvguard.profile import load_profile
    from hvguard.report import FORMATS, renderer

    ev = evaluate([_collect(vcsim_vpx)], load_profile(None))
    for fmt in sorted(set(FORMATS) - {"table"}):  # table is rich renderables for the terminal
        out = renderer(fmt)(ev)
        text = out.decode() if isinstance(out, bytes) else out
        assert f"127.0.0.2:{vcsim_vpx.port}" in text, fmt  # the vCenter target is named in every format
        if fmt != "markdown":  # markdown is a per-measure summary
            assert "DC0_C0_RP0_VM0" in text, fmt  # its VMs' findings too
