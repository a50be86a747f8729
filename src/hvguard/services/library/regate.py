"""``regate``: run the gate again on one stored image under the current gate profile and act on the result.

* Fails → ``quarantined`` (no check-out); the status it had is remembered (``library_quarantine``).
* Passes after a quarantine → back to the status it had. An image that was approved gets a **new signed
  manifest** naming the current gate profile, because its old manifest named the gate results that later
  failed.
* Passes while approved, but its manifest names another gate profile → re-signed under the current one.

A replaced manifest is kept, unchanged, in ``library_superseded_manifests``; the new manifest records
who re-signed it and when (``resigned_by``, ``resigned_at``; approver and approval time stay the
original ones). Every outcome is an audit record. Blocking (run it in a worker thread).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from hvguard.services.library import crypto, manifest
from hvguard.services.library.db import images, quarantine, superseded_manifests
from hvguard.services.library.gate import GateProfile, run_gate
from hvguard.services.library.store import Store, now


@dataclass(frozen=True)
class Regated:
    """What regate did to one image."""

    passed: bool
    status: str
    previous_status: str
    resigned: bool

    def to_json(self) -> dict[str, Any]:
        """The per-image part of the ``POST /v1/regate`` answer."""
        return {
            "passed": self.passed,
            "status": self.status,
            "previous_status": self.previous_status,
            "resigned": self.resigned,
        }


def gate_stored(store: Store, profile: GateProfile, spool: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Gate results of a stored image: decrypted into a private spool folder that is always removed. A
    blob that does not authenticate fails, with the reason."""
    work = Path(tempfile.mkdtemp(prefix="hvguard-regate-", dir=spool))
    try:
        plain = work / "image"
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f, store.open_blob(row["blob"]) as chunks:
            for chunk in chunks:
                f.write(chunk)
        return run_gate(plain, profile, store.guest_inspection, work).to_json()
    except (crypto.CryptoError, OSError) as exc:
        return {"passed": False, "error": str(exc), "profile_sha256": profile.sha256}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _manifest_profile(row: dict[str, Any]) -> str | None:
    try:
        return str(json.loads(row["manifest"])["manifest"]["gate"]["profile_sha256"])
    except (TypeError, ValueError, KeyError):
        return None


def regate_one(store: Store, profile: GateProfile, spool: Path, row: dict[str, Any], actor: str) -> Regated:
    """Re-gate one image row and record the outcome (status, manifest, audit)."""
    gate = gate_stored(store, profile, spool, row)
    passed = bool(gate.get("passed"))
    status = row["status"]
    subject = f"{row['name']}@{row['version']}"
    if not passed:
        failed = [r["rule"] for r in gate.get("results", []) if r.get("status") == "fail"] or [
            str(gate.get("error", "gate"))
        ]
        with store.engine.begin() as conn:
            if status != "quarantined":
                conn.execute(delete(quarantine).where(quarantine.c.image_id == row["id"]))
                conn.execute(
                    insert(quarantine).values(image_id=row["id"], previous_status=status, since=now())
                )
            conn.execute(
                update(images)
                .where(images.c.id == row["id"])
                .values(status="quarantined", gate=json.dumps(gate))
            )
        store.audit(actor, "regate", row["id"], "quarantined", f"{subject} was {status}: {', '.join(failed)}")
        return Regated(False, "quarantined", status, False)
    restored = status == "quarantined"
    if restored:
        with store.engine.connect() as conn:
            previous = conn.execute(
                select(quarantine.c.previous_status).where(quarantine.c.image_id == row["id"])
            ).scalar()
        # an approved image needs its manifest to return to approved; anything else awaits approval again
        status = "approved" if previous == "approved" and row["manifest"] else "pending"
    resign = status == "approved" and (restored or _manifest_profile(row) != profile.sha256)
    values: dict[str, Any] = {"status": status, "gate": json.dumps(gate)}
    if resign:
        body = manifest.manifest_body(
            store.id, row, approver=row["approver"], approved_at=row["approved_at"], gate=gate
        )
        body["resigned_at"] = now()
        body["resigned_by"] = actor
        envelope = manifest.sign_manifest(store.signing_key(), body)
        values |= {"manifest": json.dumps(envelope), "signature": envelope["signature"]["value"]}
    reason = "back from quarantine" if restored else f"gate profile {_manifest_profile(row)} replaced"
    with store.engine.begin() as conn:
        if resign:
            conn.execute(
                insert(superseded_manifests).values(
                    image_id=row["id"], manifest=row["manifest"], superseded_at=now(), reason=reason
                )
            )
        conn.execute(update(images).where(images.c.id == row["id"]).values(**values))
        if restored:
            conn.execute(delete(quarantine).where(quarantine.c.image_id == row["id"]))
    if restored:
        store.audit(actor, "regate", row["id"], "restored", f"{subject} passes again: {status}")
    else:
        store.audit(actor, "regate", row["id"], "ok", subject)
    if resign:
        old = hashlib.sha256(str(row["manifest"]).encode()).hexdigest()
        store.audit(
            actor,
            "resign",
            row["id"],
            "ok",
            f"{subject}: {reason}; manifest now names gate profile {profile.sha256}; "
            f"superseded manifest sha256={old} kept",
        )
    return Regated(True, status, row["status"], resign)
