"""Gold configuration (11.4.7) on vSphere targets, against VMware's vSphere API simulator: capture → no
drift → a change made through the API itself (UpdateOptions, ReconfigVM_Task) → exactly that drift, in
``baseline check``, ``scan --baseline``, the dry-run plan and the PowerCLI script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hvguard.collect.vsphere.target import PASSWORD_ENV
from vsphere_env import Simulator, api, find, hvguard, wait

VM_NAME = "DC0_C0_RP0_VM0"
HOST_NAME = "DC0_C0_H0"


def _run(sim: Simulator, *args: str) -> Any:
    return hvguard(*args, "--tls-ca", str(sim.ca.ca_pem), env={PASSWORD_ENV: sim.password})


def _set_options(host: Any, values: dict[str, Any]) -> None:
    from pyVmomi import VmomiSupport, vim

    host.configManager.advancedOption.UpdateOptions(
        changedValue=[
            vim.option.OptionValue(key=k, value=VmomiSupport.long(v) if type(v) is int else v)
            for k, v in values.items()
        ]
    )


def _drift(sim: Simulator, gold: Path) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    result = _run(sim, "baseline", "check", sim.target, "--baseline", str(gold), "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    return result.returncode, doc["drift"], doc


def test_capture_check_drift_through_the_api_and_powercli(vcsim_fresh: Any, tmp_path: Path) -> None:
    from pyVmomi import vim

    sim = vcsim_fresh("-model", "vpx", "-api", "7.0.1.0")
    si = api(sim)
    host = find(si, "HostSystem", HOST_NAME)
    _set_options(host, {"UserVars.ESXiShellTimeOut": 600, "DCUI.Access": "root"})
    gold = tmp_path / "gold.yaml"
    captured = _run(sim, "baseline", "capture", sim.target, "--output", str(gold))
    assert captured.returncode == 0, captured.stderr
    doc = yaml.safe_load(gold.read_text())
    # Hosts with none of the judged options set would give classes that govern nothing: left out, said.
    assert [c["name"] for c in doc["vsphere_hosts"]] == [HOST_NAME]
    assert "host:DC0_C0_H1 left out (none of the advanced options" in captured.stderr
    host_cls = doc["vsphere_hosts"][0]
    assert host_cls["advanced_options"] == {"DCUI.Access": "root", "UserVars.ESXiShellTimeOut": 600}
    vm_cls = next(c for c in doc["vm_classes"] if c["name"] == VM_NAME)
    res = vm_cls["settings"]["resources"]
    assert res["vcpus"] >= 1 and res["memory_bytes"] > 0 and res["disks"] and res["nics"]

    code, items, report = _drift(sim, gold)
    assert (code, items) == (0, []), items
    assert report["summary"]["host_checked"] and VM_NAME in report["governed"]

    # The changes, through the API itself.
    _set_options(host, {"UserVars.ESXiShellTimeOut": 0})
    vm = find(si, "VirtualMachine", VM_NAME)
    cpu = vm.config.cpuAllocation
    disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    disk.storageIOAllocation = vim.StorageResourceManager.IOAllocationInfo(
        limit=500, shares=vim.SharesInfo(level="normal", shares=1000)
    )
    wait(
        vm.ReconfigVM_Task(
            vim.vm.ConfigSpec(
                numCPUs=res["vcpus"] + 1,
                # the simulator replaces the whole allocation: keep its other values
                cpuAllocation=vim.ResourceAllocationInfo(
                    limit=1000, reservation=cpu.reservation, shares=cpu.shares
                ),
                deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)],
            )
        )
    )
    code, items, _ = _drift(sim, gold)
    got = {(i["subject"], i["path"], json.dumps(i["expected"]), json.dumps(i["actual"])) for i in items}
    label = disk.deviceInfo.label
    assert code == 1
    assert got == {
        (f"host:{HOST_NAME}", "advanced_options.UserVars.ESXiShellTimeOut", "600", "0"),
        (f"vm:{VM_NAME}", "resources.vcpus", str(res["vcpus"]), str(res["vcpus"] + 1)),
        (f"vm:{VM_NAME}", "resources.cpu_limit_mhz", "null", "1000"),
        (f"vm:{VM_NAME}", f"resources.disks[{label}].total_iops_sec", "null", "500"),
    }

    # scan --baseline feeds 11.4.7 with the same drift.
    scanned = _run(sim, "scan", sim.target, "--baseline", str(gold), "--format", "json")
    findings = [f for f in json.loads(scanned.stdout)["results"] if f["measure"] == "11.4.7"]
    by_subject = {f["subject"]: f for f in findings if f["check"] == "host.gold-configuration-drift"}
    assert by_subject[f"vm:{VM_NAME}"]["status"] == "warn", findings
    assert by_subject[f"host:{HOST_NAME}"]["evidence"]["drift_count"] == 1
    assert "--emit-powercli" in by_subject[f"host:{HOST_NAME}"]["remediation"]

    # The dry run says nothing changes; the script names the drifted values.
    script = tmp_path / "fix.ps1"
    plan = _run(sim, "remediate", sim.target, "--baseline", str(gold), "--emit-powercli", str(script))
    assert plan.returncode == 1, plan.stderr
    assert "not available yet" in plan.stdout
    text = script.read_text()
    assert (
        f"Get-VMHost -Name '{HOST_NAME}' | Get-AdvancedSetting -Name 'UserVars.ESXiShellTimeOut' | "
        "Set-AdvancedSetting -Value 600 -Confirm:$false"
    ) in text
    assert f"$vm = Get-VM -Name '{VM_NAME}'" in text
    assert f"Set-VM -VM $vm -NumCpu {res['vcpus']} -Confirm:$false" in text
    assert "Set-VMResourceConfiguration -CpuLimitMhz $null" in text
    assert f"-Disk (Get-HardDisk -VM $vm -Name '{label}') -DiskLimitIOPerSecond -1" in text
    refused = _run(sim, "remediate", sim.target, "--baseline", str(gold), "--apply")
    assert refused.returncode == 2 and "not available yet" in refused.stderr


def test_hostile_names_are_quoted_in_powercli(vcsim_fresh: Any, tmp_path: Path) -> None:
    from pyVmomi import vim

    sim = vcsim_fresh("-model", "esx", "-api", "7.0.1.0")
    si = api(sim)
    vm = find(si, "VirtualMachine", "ha-host_VM0")
    hostile = "x'; Remove-Item -Recurse C:\\ #"
    wait(vm.Rename_Task(hostile))
    gold = tmp_path / "gold.yaml"
    assert _run(sim, "baseline", "capture", sim.target, "--output", str(gold)).returncode == 0
    wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(memoryAllocation=vim.ResourceAllocationInfo(limit=64))))
    script = tmp_path / "fix.ps1"
    plan = _run(sim, "remediate", sim.target, "--baseline", str(gold), "--emit-powercli", str(script))
    assert plan.returncode == 1, plan.stderr
    text = script.read_text()
    assert "$vm = Get-VM -Name 'x''; Remove-Item -Recurse C:\\ #'" in text
    assert "-MemLimitMB $null" in text
    # The subject of an ESXi target's host is ``host``; nothing drifted there.
    assert not any(line.startswith("Get-VMHost") for line in text.splitlines())


def test_malformed_gold_file_is_one_line_exit_2(vcsim_esx: Simulator, tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text(
        "schema: hvguard.baseline/1\n"
        "vsphere_hosts:\n"
        "  - name: all\n"
        "    match: '*'\n"
        "    advanced_options: {UserVars.ESXiShellTimeOut: [600]}\n"
    )
    result = _run(vcsim_esx, "baseline", "check", vcsim_esx.target, "--baseline", str(gold))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 5" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_libvirt_groups_on_a_vsphere_vm_are_an_error(vcsim_esx: Simulator, tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text(
        "schema: hvguard.baseline/1\n"
        "vm_classes:\n"
        "  - name: all\n"
        "    match: {name: '*'}\n"
        "    settings: {cputune: {shares: 1024}, resources: {cpu_limit_mhz: null}}\n"
    )
    result = _run(
        vcsim_esx, "baseline", "check", vcsim_esx.target, "--baseline", str(gold), "--format", "json"
    )
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["errors"] and all("cputune" in e["message"] for e in doc["errors"])
