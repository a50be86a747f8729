"""Paging of PropertyCollector reads, with a stand-in PropertyCollector: the simulator ignores
``RetrieveOptions.maxObjects`` and always answers in one page, while a real vCenter pages large reads and
expects ``ContinueRetrievePropertiesEx`` until no token is left. The stand-in answers in pages of two and
names no real server behaviour beyond the documented token protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from hvguard.collect.vsphere.connection import Connection
from hvguard.collect.vsphere.props import retrieve
from hvguard.collect.vsphere.target import VsphereTarget


@dataclass
class StandInPropertyCollector:
    """Answers ``RetrievePropertiesEx`` with the first page and a token, then page after page."""

    pages: list[list[Any]]
    asked: list[str] = field(default_factory=list)

    def _page(self, index: int) -> Any:
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return SimpleNamespace(objects=self.pages[index], token=token)

    def RetrievePropertiesEx(self, specs: Any, options: Any) -> Any:
        self.asked.append(f"RetrievePropertiesEx maxObjects={options.maxObjects}")
        return self._page(0)

    def ContinueRetrievePropertiesEx(self, token: str) -> Any:
        self.asked.append(f"ContinueRetrievePropertiesEx {token}")
        return self._page(int(token))


def _vm(moid: str, name: str) -> Any:
    from pyVmomi import vim, vmodl

    ref = vim.VirtualMachine(moid)
    return vmodl.query.PropertyCollector.ObjectContent(
        obj=ref, propSet=[vmodl.DynamicProperty(name="name", val=name)], missingSet=[]
    )


def _conn(pc: StandInPropertyCollector) -> Connection:
    """A connection whose only server part is the stand-in PropertyCollector."""
    from pyVmomi import vim

    class StandInView(vim.view.ContainerView):  # type: ignore[misc]
        """A ContainerView reference that needs no server to be destroyed."""

        def DestroyView(self) -> None:
            return None

    view = StandInView("session[stand-in]view-1")
    content = SimpleNamespace(
        propertyCollector=pc,
        rootFolder=object(),
        viewManager=SimpleNamespace(CreateContainerView=lambda root, kinds, recursive: view),
    )
    return Connection(
        target=VsphereTarget(text="vsphere://u@h", user="u", host="h"),
        si=None,
        content=content,
        context=None,  # type: ignore[arg-type]
        password="x",
    )


def test_stand_in_pages_are_followed_to_the_last_token() -> None:
    pc = StandInPropertyCollector(
        pages=[[_vm("vm-1", "a"), _vm("vm-2", "b")], [_vm("vm-3", "c")], [_vm("vm-4", "d")]]
    )
    conn = _conn(pc)
    problems: list[Any] = []
    read = retrieve(conn, "VirtualMachine", ["name"], problems, area="vsphere.vms", page_size=2)
    assert read.pages == 3
    assert {k: v["name"] for k, v in read.objects.items()} == {
        "vm-1": "a",
        "vm-2": "b",
        "vm-3": "c",
        "vm-4": "d",
    }
    assert pc.asked == [
        "RetrievePropertiesEx maxObjects=2",
        "ContinueRetrievePropertiesEx 1",
        "ContinueRetrievePropertiesEx 2",
    ]
    assert problems == []


def test_stand_in_missing_property_is_a_problem_on_that_object() -> None:
    from pyVmomi import vim, vmodl

    denied = vmodl.query.PropertyCollector.ObjectContent(
        obj=vim.VirtualMachine("vm-9"),
        propSet=[vmodl.DynamicProperty(name="name", val="secret-vm")],
        missingSet=[
            vmodl.query.PropertyCollector.MissingProperty(
                path="config.extraConfig",
                fault=vim.fault.NoPermission(privilegeId="VirtualMachine.Config.AdvancedConfig"),
            )
        ],
    )
    problems: list[Any] = []
    read = retrieve(
        _conn(StandInPropertyCollector(pages=[[denied]])),
        "VirtualMachine",
        ["name", "config.extraConfig"],
        problems,
        area="vsphere.vms",
        object_area=lambda moid, path: f"vsphere.vm:{moid}.extra_config",
    )
    assert read.objects == {"vm-9": {"name": "secret-vm"}}
    (problem,) = problems
    assert problem.area == "vsphere.vm:vm-9.extra_config"
    assert "config.extraConfig" in problem.message and "NoPermission" in problem.message
