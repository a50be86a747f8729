"""Advanced settings through ``OptionManager.QueryOptions``.

One ``QueryOptions("")`` per host gives every setting. A key hvguard judges that is not among them is
one the host does not know (the stock simulator knows almost none): it is recorded as ``InvalidName`` —
what ``QueryOptions(key)`` answers for it — in ``AdvancedOptions.unreadable``, so a check of that key
reports ``error``, never pass or N/A. When the whole query fails, the host's options are None.
"""

from __future__ import annotations

from typing import Any

from hvguard.collect.vsphere.api import ApiCall
from hvguard.collect.vsphere.connection import fault_text
from hvguard.facts import AdvancedOptions, OptionValue, Problem

#: The advanced settings SS-009's ESXi checks judge (ESXi 8 STIG). Keep in step with the checks.
JUDGED_HOST_OPTIONS = (
    "Syslog.global.logHost",
    "Syslog.global.certificate.checkSSLCerts",
    "Syslog.global.certificate.strictX509Compliance",
    "Syslog.global.auditRecord.storageEnable",
    "Syslog.global.auditRecord.remoteEnable",
    "UserVars.ESXiShellTimeOut",
    "UserVars.ESXiShellInteractiveTimeOut",
    "UserVars.DcuiTimeOut",
    "DCUI.Access",
    "Config.HostAgent.plugins.solo.enableMob",
    "Config.HostAgent.plugins.hostsvc.esxAdminsGroup",
    "Security.AccountLockFailures",
    "Security.AccountUnlockTime",
    "Security.PasswordQualityControl",
    "VMkernel.Boot.execInstalledOnly",
    "Net.BlockGuestBPDU",
)
#: vCenter settings judged (event and task retention, 11.3.7).
JUDGED_VCENTER_OPTIONS = ("event.maxAge", "task.maxAge")
OPTION_CALLS = (
    ApiCall(
        "QueryOptions", "OptionManager (configManager.advancedOption), name ''", why="every advanced setting"
    ),
)


#: Setting names that may hold a secret: their values are never recorded (bundles travel).
_SECRET_WORDS = ("password", "passwd", "secret", "community", "token", "privatekey")


def _redacted(key: str, value: OptionValue | None) -> OptionValue | None:
    lowered = key.lower().replace(".", "").replace("_", "")
    if value is not None and any(word in lowered for word in _SECRET_WORDS):
        return "<redacted>"
    return value


def _value(value: Any) -> OptionValue | None:
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return int(value)
    return None if value is None else str(value)


def read_options(
    manager: Any,
    area: str,
    source: str,
    name: str,
    problems: list[Problem],
    judged: tuple[str, ...] = JUDGED_HOST_OPTIONS,
) -> AdvancedOptions | None:
    """Every setting of ``manager``; None (and a problem) when the full query fails outright."""
    from pyVmomi import vim, vmodl

    values: dict[str, OptionValue] = {}
    unreadable: dict[str, str] = {}
    try:
        settings = manager.QueryOptions("")
    except vim.fault.InvalidName:
        settings = []  # no setting at all: each judged key is recorded as unknown below
    except (vmodl.MethodFault, OSError) as exc:
        problems.append(Problem(area=area, source=source, message=f"{name} QueryOptions: {fault_text(exc)}"))
        return None
    present: set[str] = set()
    for option in settings or ():
        present.add(str(option.key))
        value = _redacted(str(option.key), _value(option.value))
        if value is not None:
            values[str(option.key)] = value
    for key in judged:
        if key in present and key not in values:
            unreadable[key] = f"{key}: the host lists it without a value"
        elif key not in present:
            # QueryOptions("") lists every setting the host has: a judged key missing from it is one the
            # host does not know, which QueryOptions(key) would answer with InvalidName. Said once per
            # key instead of asked once per key (17 round trips per host on a 100-host vCenter).
            unreadable[key] = f"InvalidName: {key} (not among the host's {len(values)} advanced settings)"
    return AdvancedOptions(values=values, unreadable=unreadable)
