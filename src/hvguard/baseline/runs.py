"""The undo record of a remediation run: a private directory per run holding the plan, the manifest and
every touched domain's persistent XML before (and after) the run.

Layout: ``DATA_DIR/remediation/RUN_ID/{manifest.json, plan.json, before/UUID.xml, after/UUID.xml}``.
``DATA_DIR`` is ``--data-dir``, else ``$HVGUARD_DATA_DIR``, else platformdirs' user data dir for
"hvguard". The XML is fetched with ``VIR_DOMAIN_XML_SECURE`` so that undo restores it exactly —
including console passwords — which is why directories are 0700 and files 0600, and why these files are
never copied into a report.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs

MANIFEST_SCHEMA = "hvguard.remediation/1"
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_UUID = re.compile(r"[0-9a-fA-F-]{32,36}")


class RunError(ValueError):
    """A run that does not exist or whose record is unusable; one line."""


def data_dir(option: Path | None = None) -> Path:
    """Where hvguard keeps its data: the option, else ``$HVGUARD_DATA_DIR``, else the platform default."""
    if option is not None:
        return option
    env = os.environ.get("HVGUARD_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("hvguard"))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _private_write(path: Path, text: str) -> None:
    """Write ``text`` to a new or replaced file readable by the owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Run:
    """One run directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def run_id(self) -> str:
        """The run's id (its directory name)."""
        return self.path.name

    def write_json(self, name: str, data: Any) -> None:
        """Write ``name`` (``manifest.json``, ``plan.json``)."""
        _private_write(self.path / name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def read_json(self, name: str) -> Any:
        """Read ``name``; a missing or malformed file is a :class:`RunError`."""
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RunError(f"run {self.run_id}: {name} is missing") from exc
        except (OSError, ValueError) as exc:
            raise RunError(f"run {self.run_id}: {name} is unreadable: {exc}") from exc

    def _xml_path(self, kind: str, uuid: str) -> Path:
        if kind not in ("before", "after") or not _UUID.fullmatch(uuid):
            raise RunError(f"run {self.run_id}: bad record name {kind}/{uuid}")
        return self.path / kind / f"{uuid}.xml"

    def save_xml(self, kind: str, uuid: str, xml: str) -> str:
        """Store a domain's XML as ``kind/UUID.xml``; returns the relative name."""
        path = self._xml_path(kind, uuid)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        _private_write(path, xml)
        return f"{kind}/{uuid}.xml"

    def load_xml(self, kind: str, uuid: str) -> str | None:
        """A stored XML, or None when it was never written."""
        try:
            return self._xml_path(kind, uuid).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RunError(f"run {self.run_id}: cannot read {kind}/{uuid}.xml: {exc.strerror}") from exc


class RunStore:
    """The remediation runs under one data directory."""

    def __init__(self, base: Path) -> None:
        self.root = base / "remediation"

    def new_run(self) -> Run:
        """Create a fresh, private run directory."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for _ in range(5):
            run_id = f"{_now().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
            path = self.root / run_id
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return Run(path)
        raise RunError(f"cannot create a run directory under {self.root}")

    def open_run(self, run_id: str) -> Run:
        """An existing run; ids are checked so a crafted id cannot point outside the store."""
        if not _RUN_ID.fullmatch(run_id):
            raise RunError(f"{run_id!r} is not a remediation run id (like 20260101T120000Z-1a2b3c)")
        path = self.root / run_id
        if not (path / "manifest.json").is_file():
            raise RunError(f"no remediation run {run_id} under {self.root}")
        return Run(path)

    def now(self) -> str:
        """The current UTC time as written in manifests."""
        return _now().isoformat().replace("+00:00", "Z")
