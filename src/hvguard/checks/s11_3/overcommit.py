"""Checks for SS-009 11.3.1.

11.3.1 Combined VM memory to host RAM ratio

Checks: ``memory_overcommit``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from hvguard.checks.base import HOST, CannotEvaluate, CheckContext, check
from hvguard.checks.support.shell import shell_word
from hvguard.checks.support.subjects import host_area
from hvguard.findings import Finding

# How many VMs an evidence list names before it only counts the rest (keeps reports small).
EVIDENCE_LIST_CAP = 20


def host_ram_kib(ctx: CheckContext) -> tuple[int, str] | None:
    """Host RAM in KiB and its source: ``virNodeGetInfo().memory``, else /proc/meminfo MemTotal."""
    hv = ctx.hypervisor
    if hv is not None and hv.node is not None and hv.node.memory_kib > 0:
        return hv.node.memory_kib, "hypervisor.node"
    host = ctx.host
    if host is not None and host.memory.total_kib:
        return host.memory.total_kib, "host.memory"
    return None


@check(
    "11.3.1",
    id="kvm.memory-overcommit",
    reads=(
        "hypervisor.vms[].memory_kib",
        "hypervisor.vms[].max_memory_kib",
        "hypervisor.vms[].active",
        "hypervisor.node.memory_kib",
        "host.memory.total_kib",
    ),
)
def memory_overcommit(ctx: CheckContext) -> Iterator[Finding]:
    """Σ configured VM memory ÷ host RAM ≤ ``memory_overcommit_pass_max`` passes, ≤ ``…_warn_max`` warns,
    above fails (profile thresholds; SS-009 v2 removed its own ratio). A VM counts with its ``<memory>``
    (the maximum allocation), or its hot-plug ``<maxMemory>`` when that is larger, since the guest can
    grow to it. Scope ``defined`` counts every VM (any may be started), ``running`` only active ones.
    VMs whose size is unknown make the ratio a lower bound: a lower bound above the fail line still
    fails, anything else is ``error`` (a pass cannot be shown)."""
    th = ctx.profile.thresholds
    scope = th.memory_overcommit_scope
    hv = ctx.hypervisor
    if hv is not None and not hv.vms:
        yield ctx.not_applicable(HOST, f"no VMs defined on {hv.uri}")
        return
    counted: list[tuple[int, str]] = []
    hotplug: list[str] = []
    unknown: list[str] = []
    if hv is None:
        raise CannotEvaluate(HOST, "per-VM settings", "hypervisor")
    for vm in hv.vms:
        if vm.error is not None:
            yield ctx.vm_error(vm)
            unknown.append(vm.name)
            continue
        if scope == "running" and not vm.active:
            if vm.active is None:
                unknown.append(vm.name)
            continue
        kib = vm.memory_kib
        if kib is None:
            unknown.append(vm.name)
            continue
        if vm.max_memory_kib is not None and vm.max_memory_kib > kib:
            kib = vm.max_memory_kib
            hotplug.append(vm.name)
        counted.append((kib, vm.name))
    ram = host_ram_kib(ctx)
    if ram is None:
        yield ctx.error(HOST, "host RAM", "hypervisor.node", host_area(ctx, "memory"))
        return
    ram_kib, ram_source = ram
    total = sum(k for k, _ in counted)
    ratio = total / ram_kib
    top = heapq.nlargest(EVIDENCE_LIST_CAP, counted)
    evidence: dict[str, object] = {
        "scope": scope,
        "vms_counted": len(counted),
        "largest_vms": [{"name": n, "kib": k} for k, n in top],
        "vms_not_listed": len(counted) - len(top),
        "total_kib": total,
        "host_ram_kib": ram_kib,
        "ram_source": ram_source,
        "ratio": round(ratio, 4),
        "pass_max": th.memory_overcommit_pass_max,
        "warn_max": th.memory_overcommit_warn_max,
    }
    if hotplug:
        evidence["hotplug_max_used"] = hotplug[:EVIDENCE_LIST_CAP]
    if unknown:
        evidence["unknown_vms"] = unknown[:EVIDENCE_LIST_CAP]
        evidence["unknown_count"] = len(unknown)
    what = f"Σ configured memory of {len(counted)} {scope} VM(s) = {total} KiB on {ram_kib} KiB host RAM"
    hot = f" (hot-plug maxMemory used for {len(hotplug)} VM(s))" if hotplug else ""
    if ratio > th.memory_overcommit_warn_max:
        lower = f"; at least, {len(unknown)} VM(s) not counted" if unknown else ""
        yield ctx.failed(
            HOST,
            f"memory ratio {ratio:.4g} > {th.memory_overcommit_warn_max:g}: {what}{hot}{lower}",
            evidence,
            _overcommit_fix(total, ram_kib, th.memory_overcommit_pass_max, top, bool(hotplug)),
        )
        return
    if unknown:
        areas = tuple(f"vm:{n}" for n in unknown[:3])
        yield ctx.error(
            HOST,
            f"the memory ratio: {len(unknown)} VM(s) of unknown size or state ({', '.join(unknown[:3])}"
            f"{' …' if len(unknown) > 3 else ''}); the others alone give {ratio:.4g}",
            *areas,
            evidence={"problems": [p.area for p in ctx.problems(*areas)], **evidence},
        )
        return
    if ratio > th.memory_overcommit_pass_max:
        yield ctx.warned(
            HOST,
            f"memory overcommitted: ratio {ratio:.4g} > {th.memory_overcommit_pass_max:g} (warn up to "
            f"{th.memory_overcommit_warn_max:g}): {what}{hot}",
            evidence,
            _overcommit_fix(total, ram_kib, th.memory_overcommit_pass_max, top, bool(hotplug)),
        )
        return
    yield ctx.passed(
        HOST, f"memory ratio {ratio:.4g} ≤ {th.memory_overcommit_pass_max:g}: {what}{hot}", evidence
    )


def _overcommit_fix(
    total: int, ram_kib: int, target: float, top: list[tuple[int, str]], hotplug: bool
) -> str:
    excess = total - int(target * ram_kib)
    lines = [
        f"Reduce the configured VM memory by at least {excess} KiB (to ratio {target:g}), migrate VMs to "
        "another host, or add RAM. Lower a VM's maximum with:"
    ]
    if top:
        kib, name = top[0]
        new = kib - excess
        if new >= 262144:  # keep a usable guest (256 MiB); otherwise one VM cannot absorb the excess
            lines.append(f"  virsh setmaxmem {shell_word(name)} {new} --config")
        else:
            lines.append(f"  virsh setmaxmem {shell_word(name)} <KiB> --config    # per VM, largest first")
    if hotplug:
        lines.append("For VMs with hot-plug memory also lower <maxMemory> (virsh edit NAME).")
    return "\n".join(lines)
