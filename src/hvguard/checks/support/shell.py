"""Values interpolated into the shell commands of a fix (``virsh schedinfo NAME …``).

VM names, disk targets and MAC addresses come from the hosts hvguard audits and may be hostile
(``web; touch /tmp/x #``). Every such value goes through :func:`shell_word`, so a fix pasted into a shell
runs the command it shows on the VM it names, and nothing else.
"""

from __future__ import annotations

import re
import shlex

# Characters a single-quoted word cannot show on one line or safely (C0/C1 controls, DEL, bidi
# controls and line/paragraph separators): such a value is written in ANSI-C quoting instead.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _ansi_c(value: str) -> str:
    out = []
    for ch in value:
        if ch in "\\'":
            out.append("\\" + ch)
        elif _UNPRINTABLE.match(ch):
            # Byte escapes of the UTF-8 encoding: exact in any locale (bash's \\u depends on it).
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def shell_word(value: str) -> str:
    """``value`` as one shell word: unchanged when it needs no quoting (``web-01``), else single-quoted
    (``'web; touch /tmp/x #'``); a value with control or bidi characters in bash's ANSI-C quoting
    (``$'a\\nb'``), so the fix stays one visible line and still names the VM exactly."""
    if _UNPRINTABLE.search(value):
        return _ansi_c(value)
    return shlex.quote(value)
