"""Canonical domain XML: the form hvguard stores, hashes and diffs.

libvirt writes the same definition the same way, but attribute order, namespace prefixes and
indentation are not promises. The canonical form is C14N 2.0 (``xml.etree.ElementTree.canonicalize``:
attributes sorted, namespaces normalised) of the document re-indented with two spaces, one element per
line, so a unified diff names the lines that changed.

What is left out or rewritten, and why:

- the ``id`` attribute of ``<domain>``: the run number of an active domain, new at every start. It is
  kept beside the document (``live_id``) to tell a restart from a change, never diffed;
- whitespace-only text (indentation): formatting, not configuration;
- every ``passwd`` attribute (VNC/SPICE/RDP console passwords, readable only on a read-write
  connection) becomes ``hmac-sha256:<16 hex>``, keyed with the state file's random key: a changed or
  removed password is still detected, and the password itself never reaches the state file, a diff or
  a notification.

Everything else — including ``<currentMemory>`` and device addresses — is configuration and is kept.
Input is untrusted: parsing goes through defusedxml with DTDs forbidden.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
from xml.etree import ElementTree as ET

import defusedxml
from defusedxml.ElementTree import ParseError, fromstring

__all__ = ["CanonicalError", "canonical_domain_xml", "sha256_text", "unified_xml_diff"]

#: Lines of a unified XML diff beyond which it is cut (the value-level changes stay complete).
MAX_DIFF_LINES = 400


class CanonicalError(ValueError):
    """The XML libvirt returned could not be parsed; the message is one line."""


def _strip_blank_text(el: ET.Element) -> None:
    if el.text is not None and not el.text.strip():
        el.text = None
    for child in el:
        _strip_blank_text(child)
        if child.tail is not None and not child.tail.strip():
            child.tail = None


def _redact_passwords(el: ET.Element, key: bytes) -> None:
    for node in el.iter():
        value = node.get("passwd")
        if value is not None:
            digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
            node.set("passwd", f"hmac-sha256:{digest}")


def canonical_domain_xml(xml: str, *, secret_key: bytes) -> tuple[str, int | None]:
    """The canonical text of a domain XML document and the domain's run id (None when inactive).

    Raises :class:`CanonicalError` for malformed or refused XML, or a root other than ``<domain>``.
    """
    try:
        root = fromstring(xml, forbid_dtd=True)
    except ParseError as exc:
        raise CanonicalError(" ".join(f"invalid XML: {exc}".split())) from exc
    except defusedxml.DefusedXmlException as exc:
        raise CanonicalError(f"refused XML ({type(exc).__name__})") from exc
    if root.tag != "domain":
        raise CanonicalError(f"root element is <{root.tag}>, not <domain>")
    run_id: int | None = None
    raw_id = root.attrib.pop("id", None)
    if raw_id is not None and raw_id.strip().lstrip("-").isdigit() and int(raw_id) >= 0:
        run_id = int(raw_id)
    _strip_blank_text(root)
    _redact_passwords(root, secret_key)
    ET.indent(root, space="  ")
    text = ET.canonicalize(ET.tostring(root, encoding="unicode"))
    return text + "\n", run_id


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a canonical document."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unified_xml_diff(old: str | None, new: str | None, *, label: str) -> str:
    """A unified diff of two canonical documents (None = absent), cut at :data:`MAX_DIFF_LINES`."""
    lines = list(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            (new or "").splitlines(keepends=True),
            fromfile=f"a/{label}" if old is not None else "/dev/null",
            tofile=f"b/{label}" if new is not None else "/dev/null",
            n=2,
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        cut = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], f"… {cut} more diff lines cut\n"]
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
