"""PropertyCollector reads: narrow property sets over a ContainerView, paged, every gap a Problem.

One :func:`retrieve` call is one ``RetrievePropertiesEx`` (and as many ``ContinueRetrievePropertiesEx``
as the server pages into) over a ContainerView of one managed-object type below a root. The server
reports a property it could not read in ``missingSet`` (with the fault, e.g. ``NoPermission``): each
becomes a :class:`~hvguard.facts.Problem`, never a silently absent value. A fault of the whole call does
too, and the read returns what it had.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvguard.collect.vsphere.connection import Connection, fault_text
from hvguard.collect.vsphere.plain import moref, plain
from hvguard.facts import Problem

#: Objects per page we ask for. A real vCenter pages (vcsim 0.24 ignores it and answers in one page).
PAGE_SIZE = 500


@dataclass
class Read:
    """What one read returned: per object (managed-object id), its properties as plain data by path,
    its type (``HostSystem``), the live references (for follow-up calls such as ``QueryOptions``), and
    how many pages it took."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per object, the pyVmomi values of the ``keep_raw`` paths (live references to call methods on)."""
    pages: int = 0


def retrieve(
    conn: Connection,
    type_name: str,
    paths: Sequence[str],
    problems: list[Problem],
    *,
    area: str,
    root: Any = None,
    page_size: int = PAGE_SIZE,
    object_area: Callable[[str, str], str] | None = None,
    keep_raw: Sequence[str] = (),
    objects: Sequence[Any] | None = None,
) -> Read:
    """Read ``paths`` of every ``type_name`` object (``VirtualMachine``, ``HostSystem`` …) below ``root``
    (default: the root folder). A fault of the read is a problem under ``area``; a property the server
    could not read for one object (``missingSet``) is one under ``object_area(moid, path)`` (default
    ``area``). ``objects`` (live references) reads just those objects, without a ContainerView: the
    watcher's narrow re-read of the VMs an event named."""
    from pyVmomi import vim, vmodl

    pc = conn.content.propertyCollector
    kind = getattr(vim, type_name)
    read = Read()
    source = conn.target.text
    view: Any = None
    object_set: list[Any]
    if objects is not None:
        object_set = [vmodl.query.PropertyCollector.ObjectSpec(obj=o, skip=False) for o in objects]
    else:
        try:
            view = conn.content.viewManager.CreateContainerView(root or conn.content.rootFolder, [kind], True)
        except vmodl.MethodFault as exc:
            problems.append(
                Problem(
                    area=area, source=source, message=f"CreateContainerView({type_name}): {fault_text(exc)}"
                )
            )
            return read
        object_set = [
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    vmodl.query.PropertyCollector.TraversalSpec(
                        name="view", path="view", skip=False, type=vim.view.ContainerView
                    )
                ],
            )
        ]
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=object_set,
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=list(paths), all=False)],
    )
    try:
        result = pc.RetrievePropertiesEx(
            [spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_size)
        )
        while result is not None:
            read.pages += 1
            for content in result.objects or ():
                key = moref(content.obj)
                read.refs[key] = content.obj
                read.types[key] = str(content.obj._wsdlName)
                props = read.objects.setdefault(key, {})
                for prop in content.propSet or ():
                    props[prop.name] = plain(prop.val)
                    if prop.name in keep_raw:
                        read.raw.setdefault(key, {})[prop.name] = prop.val
                for missing in content.missingSet or ():
                    problems.append(
                        Problem(
                            area=object_area(key, missing.path) if object_area else area,
                            source=source,
                            message=f"{key} {missing.path}: {fault_text(missing.fault)}",
                        )
                    )
            token = result.token
            result = pc.ContinueRetrievePropertiesEx(token) if token else None
    except vmodl.MethodFault as exc:
        problems.append(
            Problem(area=area, source=source, message=f"RetrievePropertiesEx({type_name}): {fault_text(exc)}")
        )
    except (OSError, http.client.HTTPException) as exc:
        problems.append(
            Problem(
                area=area,
                source=source,
                message=f"RetrievePropertiesEx({type_name}): connection lost: {fault_text(exc)}",
            )
        )
    finally:
        if view is not None:
            with contextlib.suppress(vmodl.MethodFault):  # the view dies with the session anyway
                view.DestroyView()
    return read
