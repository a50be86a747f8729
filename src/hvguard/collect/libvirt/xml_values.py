"""Values inside libvirt XML: integers, sizes with units, yes/no, address numbers, read as libvirt does.

Helpers of the domain XML parser (:mod:`hvguard.collect.libvirt.domain_xml`); a value libvirt itself would
reject raises :class:`FieldError`, which the parser turns into ``VmFacts.error``.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element


class FieldError(ValueError):
    """A field holds a value libvirt itself would reject (internal: becomes ``VmFacts.error``)."""


# libvirt's virScaleInteger: a one-letter unit or "<letter>iB" is a power of 1024, "<letter>B" a power
# of 1000, and the comparison is case-insensitive.
_UNIT_SCALES: dict[str, tuple[int, int]] = {
    letter: (1024**power, 1000**power) for power, letter in enumerate("kmgtpe", start=1)
}
_BYTE_UNITS = frozenset({"b", "byte", "bytes"})


def one_line(text: str) -> str:
    """The text with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def int_value(text: str | None, what: str) -> int:
    """Strict integer (decimal, optional sign) as libvirt writes it."""
    value = (text or "").strip()
    digits = value[1:] if value[:1] in "+-" else value
    if not digits or not digits.isascii() or not digits.isdigit():
        raise FieldError(f"bad integer {value!r} in {what}")
    return int(value)


_UINT_MAX = 2**32 - 1


def vcpu_count(text: str | None, what: str, *, minimum: int) -> int:
    """A vCPU count as libvirt reads it: an unsigned int (``virStrToLong_ui`` / ``virXMLPropUInt``: an
    optional ``+``, decimal digits, at most 2**32 - 1, nothing after them) of at least ``minimum``.

    libvirt refuses a negative ``current`` outright; a negative ``<vcpu>`` text wraps around in
    ``strtoul`` to about four billion vCPUs, which no driver can define (libvirt 9 aborts allocating
    them), and ``<vcpu>0</vcpu>`` is refused. Either way no VM runs with such a definition, so it is
    an error of the VM, never a count to judge."""
    value = (text or "").lstrip()
    digits = value[1:] if value[:1] == "+" else value
    if not digits or not digits.isascii() or not digits.isdigit() or int(digits) > _UINT_MAX:
        raise FieldError(
            f"invalid vcpu count {value!r} in {what}: libvirt refuses it (not an unsigned integer)"
        )
    count = int(digits)
    if count < minimum:
        raise FieldError(f"invalid vcpu count {value!r} in {what}: libvirt refuses it (at least {minimum})")
    return count


def opt_int(text: str | None, what: str) -> int | None:
    """Like int_value, None when the attribute is absent."""
    return None if text is None else int_value(text, what)


def child_int(el: Element, tag: str, what: str) -> int | None:
    """The strict integer in child element ``tag``, None when it is absent."""
    child = el.find(tag)
    return None if child is None else int_value(child.text, f"{what}/{tag}")


def unit_scale(unit: str | None, what: str) -> int:
    """Bytes per unit; the default unit (no attribute) is KiB."""
    if unit is None:
        return 1024
    u = unit.strip().lower()
    if u in _BYTE_UNITS:
        return 1
    scales = _UNIT_SCALES.get(u[:1])
    if scales is not None:
        rest = u[1:]
        if rest in ("", "ib"):
            return scales[0]
        if rest == "b":
            return scales[1]
    raise FieldError(f"unknown unit {unit!r} in {what}")


def kib(el: Element, what: str) -> int:
    """A sized element (``<memory unit='G'>4</memory>``) in KiB, rounded up as libvirt does."""
    value = int_value(el.text, what)
    if value < 0:
        raise FieldError(f"negative size {value} in {what}")
    scale = unit_scale(el.get("unit"), what)
    if scale == 1024:
        return value
    return -(-value * scale // 1024)


def opt_kib(el: Element | None, what: str) -> int | None:
    """Like kib, None when the element is absent."""
    return None if el is None else kib(el, what)


def yes_no(value: str | None) -> bool | None:
    """libvirt's yes/no attribute as a bool; None when absent or anything else."""
    if value == "yes":
        return True
    if value == "no":
        return False
    return None


def hexnum(value: str | None) -> int | None:
    """An address number read like libvirt's strtoul(base 0): "0x06" hex, "010" octal, "6" decimal.

    Lenient (None when absent or unparsable): it only feeds a display string.
    """
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.startswith("0x"):
            return int(text[2:], 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text[1:], 8)
        return int(text, 10)
    except ValueError:
        return None
