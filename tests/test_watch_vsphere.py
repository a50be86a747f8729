"""``hvguard watch vsphere://…`` against VMware's vSphere API simulator (tests/vcsim): a change made with
``ReconfigVM_Task`` reaches a local HTTPS webhook receiver with the changed values and the re-run checks;
a burst of reconfigurations larger than the event collector's page loses no VM's change; a lost session
(terminated by the server) is noticed, the watcher logs in again, resynchronises and keeps following
changes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hvguard.collect.vsphere.target import PASSWORD_ENV
from test_watch_support import HttpsReceiver, Post, WatchProcess, make_pki, verify_signature
from vsphere_env import Simulator, api, find, hvguard, wait

SECRET = b"vsphere-watch-hmac-key"
DELIVERY_TIMEOUT = 20.0


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[HttpsReceiver]:
    pki = make_pki(tmp_path)
    r = HttpsReceiver(pki.server_context()).start()
    r.ca_file = pki.ca_file  # type: ignore[attr-defined]
    yield r
    r.stop()


class VsphereWatcher:
    """``hvguard watch SIMULATOR`` processes for one test; any left running are killed after it."""

    def __init__(self, tmp: Path, receiver: HttpsReceiver) -> None:
        self.tmp = tmp
        self.receiver = receiver
        self.secret_file = tmp / "webhook.key"
        self.secret_file.write_bytes(SECRET)
        self.secret_file.chmod(0o600)
        self.procs: list[WatchProcess] = []

    def start(self, sim: Simulator) -> WatchProcess:
        args = [
            sim.target,
            "--tls-ca", str(sim.ca.ca_pem),
            "--webhook", self.receiver.url,
            "--webhook-ca", str(self.receiver.ca_file),  # type: ignore[attr-defined]
            "--webhook-secret-file", str(self.secret_file),
            "--state", str(self.tmp / "state" / "watch.sqlite"),
            "--reconnect-max", "2",
            "--retry-max", "1",
        ]  # fmt: skip
        proc = WatchProcess(args, self.tmp / f"watch-{len(self.procs)}.log", env={PASSWORD_ENV: sim.password})
        self.procs.append(proc)
        proc.wait_log(r"baseline of \d+ VM", timeout=60)
        proc.wait_log(r"ready: watching", timeout=10)
        return proc

    def close(self) -> None:
        for p in self.procs:
            p.kill()


@pytest.fixture
def watcher(tmp_path: Path, receiver: HttpsReceiver) -> Iterator[VsphereWatcher]:
    w = VsphereWatcher(tmp_path, receiver)
    yield w
    w.close()


def _vms(si: Any) -> list[Any]:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(view.view, key=lambda v: v.name)
    finally:
        view.DestroyView()


def _set_cpu_limit(vm: Any, limit: int) -> Any:
    from pyVmomi import vim

    spec = vim.vm.ConfigSpec(cpuAllocation=vim.ResourceAllocationInfo(limit=limit))
    return vm.ReconfigVM_Task(spec)


def _is_limit(change: dict[str, Any], limit: int) -> bool:
    """The value-level change a CPU limit of ``limit`` MHz gives (``resources.cpu_limit``)."""
    new = change["new"]
    return change["path"].startswith("resources.cpu_limit") and (
        new == limit or (isinstance(new, dict) and new.get("mhz") == limit)
    )


def _limit_to(vm_name: str, limit: int) -> Callable[[Post], bool]:
    def pred(post: Post) -> bool:
        data = post.json()
        if data["vm"] != vm_name or data["event"] != "config-changed":
            return False
        return any(_is_limit(c, limit) for c in data["changes"])

    return pred


def test_reconfig_reaches_the_webhook_with_the_changed_values_and_findings(
    vcsim_fresh: Callable[..., Simulator], watcher: VsphereWatcher, receiver: HttpsReceiver
) -> None:
    sim = vcsim_fresh("-model", "esx", "-api", "7.0.1.0")
    proc = watcher.start(sim)
    si = api(sim)
    vm = _vms(si)[0]
    wait(_set_cpu_limit(vm, 1234))

    post = receiver.wait_for(_limit_to(vm.name, 1234), DELIVERY_TIMEOUT)
    data = post.json()
    assert verify_signature(SECRET, post)
    assert data["schema"] == "hvguard.watch/1"
    assert data["uri"] == sim.target
    assert data["trigger"] == "VmReconfiguredEvent"
    assert data["missed"] is False
    (changed,) = [c for c in data["changes"] if _is_limit(c, 1234)]
    assert changed["kind"] in ("changed", "added") and changed["old"] in (None, {"mhz": None}), changed
    assert "1234" in data["xml_diff"]
    # The checks ran again on the new settings: the VM's own findings are in the payload.
    assert any(f["subject"] == f"vm:{vm.name}" for f in data["findings"]), data["findings"]
    assert "config-changed" in proc.log()
    # And the next change, in the same session: the value moves from the last one told.
    wait(_set_cpu_limit(vm, 1235))
    nxt = receiver.wait_for(_limit_to(vm.name, 1235), DELIVERY_TIMEOUT).json()
    assert next(c for c in nxt["changes"] if _is_limit(c, 1235))["old"] in (1234, {"mhz": 1234})


def test_a_burst_larger_than_the_event_page_loses_no_vm(
    vcsim_fresh: Callable[..., Simulator], watcher: VsphereWatcher, receiver: HttpsReceiver
) -> None:
    # 25 VMs, each reconfigured once in one burst: the collector's page holds 10 events.
    sim = vcsim_fresh("-model", "esx", "-vm", "25", "-api", "7.0.1.0")
    proc = watcher.start(sim)
    si = api(sim)
    vms = _vms(si)
    assert len(vms) >= 25
    # The watcher is paused during the burst so its next page surely holds only new events (the
    # simulator answers every 250 ms: a burst made while it runs may straddle pages).
    proc.proc.send_signal(signal.SIGSTOP)
    try:
        tasks = [_set_cpu_limit(vm, 2000 + i) for i, vm in enumerate(vms[:25])]
        for task in tasks:
            wait(task)
    finally:
        proc.proc.send_signal(signal.SIGCONT)
    for i, vm in enumerate(vms[:25]):
        post = receiver.wait_for(_limit_to(vm.name, 2000 + i), DELIVERY_TIMEOUT)
        # Found while following events, not while away.
        assert post.json()["missed"] is False
    assert "more events than the page of 10" in proc.log()
    assert "Traceback" not in proc.log()


def test_a_lost_session_is_noticed_resynchronised_and_watching_goes_on(
    vcsim_fresh: Callable[..., Simulator], watcher: VsphereWatcher, receiver: HttpsReceiver
) -> None:
    sim = vcsim_fresh("-model", "esx", "-api", "7.0.1.0")
    proc = watcher.start(sim)
    si = api(sim)
    manager = si.RetrieveContent().sessionManager
    mine = manager.currentSession.key
    others = [s.key for s in manager.sessionList or () if s.key != mine]
    assert others, "the watcher's session is listed by the server"
    manager.TerminateSession(others)
    vm = find(si, "VirtualMachine", _vms(si)[0].name)
    wait(_set_cpu_limit(vm, 777))

    proc.wait_log(r"session lost \(.*NotAuthenticated", timeout=DELIVERY_TIMEOUT)
    proc.wait_log(r"logged in again and resynchronised", timeout=DELIVERY_TIMEOUT)
    # The change made while the session was gone is told (by the resynchronisation or the new collector).
    receiver.wait_for(_limit_to(vm.name, 777), DELIVERY_TIMEOUT)
    # And the new session's collector follows later changes.
    wait(_set_cpu_limit(vm, 778))
    post = receiver.wait_for(_limit_to(vm.name, 778), DELIVERY_TIMEOUT)
    assert post.json()["missed"] is False
    assert post.json()["trigger"] == "VmReconfiguredEvent"
    # A read made with the dead session never passes for a VM whose settings vanished.
    for p in receiver.posts:
        data = p.json()
        assert data["vm"] == vm.name and data["event"] == "config-changed", data
        assert all(c["path"].startswith("resources.cpu_") for c in data["changes"]), data["changes"]


def test_a_vsphere_target_without_a_password_is_one_line_and_exit_2(tmp_path: Path) -> None:
    key = tmp_path / "webhook.key"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    result = hvguard(
        "watch",
        "vsphere://root@127.0.0.2:1",
        "--webhook", "https://127.0.0.1:9/hook",
        "--webhook-secret-file", str(key),
        "--state", str(tmp_path / "watch.sqlite"),
        env={PASSWORD_ENV: ""},
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no password" in result.stderr and PASSWORD_ENV in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "watch.sqlite").exists()


def test_a_cloned_vm_is_defined_and_a_destroyed_one_undefined(
    vcsim_fresh: Callable[..., Simulator], watcher: VsphereWatcher, receiver: HttpsReceiver
) -> None:
    from pyVmomi import vim

    sim = vcsim_fresh("-model", "esx", "-api", "7.0.1.0")
    watcher.start(sim)
    si = api(sim)
    source, doomed = _vms(si)[:2]
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec())
    wait(source.CloneVM_Task(folder=source.parent, name="hvg-clone", spec=spec))
    defined = receiver.wait_for(
        lambda p: p.json()["vm"] == "hvg-clone" and p.json()["event"] == "defined", DELIVERY_TIMEOUT
    ).json()
    assert "VmClonedEvent" in defined["trigger"].split(",") and defined["missed"] is False
    assert any(c["path"] == "name" and c["new"] == "hvg-clone" for c in defined["changes"])
    assert any(f["subject"] == "vm:hvg-clone" for f in defined["findings"]), defined["findings"]

    name = doomed.name
    wait(doomed.PowerOffVM_Task())  # not a configuration change: no notification
    wait(doomed.Destroy_Task())
    gone = receiver.wait_for(
        lambda p: p.json()["vm"] == name and p.json()["event"] == "undefined", DELIVERY_TIMEOUT
    ).json()
    assert gone["trigger"] == "VmRemovedEvent" and gone["missed"] is False
    assert any(c["path"] == "name" and c["old"] == name for c in gone["changes"])
