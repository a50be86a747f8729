"""``hvguard library serve``: the image library's HTTPS API on hvguard's one HTTPS layer (mutual TLS).

Endpoints (JSON unless noted; errors are ``{"error": "...", "rules": [...]}``):

* ``GET  /v1/status``                 the library's state for ``scan --library`` (every role)
* ``GET  /v1/public-key``             the manifest signing key (PEM)
* ``GET  /v1/images``                 images the caller's grants let them see
* ``PUT  /v1/images?name=N&version=V`` check an image in (publisher, admin): streamed; one pass hashes
  and encrypts it while a plaintext copy goes to a private spool for the gate; refused images are
  never stored
* ``POST /v1/images/ID/approve``      approve and sign (approver, admin; never the publisher)
* ``GET  /v1/images/ID/manifest``     the signed manifest (approved images only)
* ``GET  /v1/images/ID/data``         the image, decrypted and authenticated chunk by chunk
* ``GET  /v1/images/ID/glance``       Glance signature properties (RSA-PSS / ECDSA keys only)
* ``DELETE /v1/images/ID``            (admin + TOTP)
* ``POST /v1/regate``                 re-run the gate on every image, quarantine failures (admin + TOTP)

Status codes: 401 certificate not mapped to a user, 403 role / grant / TOTP / own approval, 404, 409
state conflict (exists, not approved), 422 gate refusal, 400 bad input, 413 too large, 507 the gate's
spool cannot take the upload now (``--spool-max``, shared by concurrent check-ins). Where a client
acts on the cause, the error also has a ``reason``: ``totp-invalid`` (missing or wrong code),
``totp-reused`` (a code already accepted for this user: RFC 6238 §5.2), ``spool-full``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from hvguard.services.library import crypto, ingest, manifest, pki, tls_reader
from hvguard.services.library.db import images
from hvguard.services.library.gate import GateProfile, run_gate
from hvguard.services.library.regate import regate_one
from hvguard.services.library.spool import SpoolBudget, default_cap
from hvguard.services.library.store import (
    Store,
    StoreError,
    check_image_name,
    check_version,
    group_of,
    image_rows,
    list_keyslots,
    new_image_id,
    now,
)
from hvguard.services.web.server import TOTP_HEADER, peer_of, tls_version, totp_step

ACTIONS = {
    "reader": {"status", "list", "pull"},
    "publisher": {"status", "list", "pull", "push"},
    "approver": {"status", "list", "pull", "approve"},
    "admin": {"status", "list", "pull", "push", "approve", "delete", "regate"},
}
#: Administrative calls: a TOTP code is needed on top of the certificate (SS-009 11.4.3).
ADMIN_ACTIONS = {"delete", "regate"}
TOTP_REUSED_MESSAGE = "TOTP code already used; wait for the next code"


@dataclass
class Caller:
    """The user behind a request."""

    name: str
    role: str
    totp_sealed: str


class Refused(Exception):
    """A request refused with an HTTP status and a reason."""

    def __init__(
        self, status: int, message: str, rules: list[dict[str, str]] | None = None, *, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.rules = rules or []
        #: a machine-readable reason where a client acts on it (``totp-invalid``, ``totp-reused`` …)
        self.reason = reason


class LibraryApp:
    """The handlers, over one opened store and gate profile."""

    def __init__(
        self, store: Store, profile: GateProfile, spool: Path, max_upload: int, spool_max: int | None = None
    ) -> None:
        self.store = store
        self.profile = profile
        self.spool = spool
        self.max_upload = max_upload
        #: read uploads off the TLS connection in a worker thread (:mod:`.tls_reader`)
        self.detach_uploads = os.environ.get("HVGUARD_LIBRARY_DETACHED_UPLOADS", "1") != "0"
        #: bytes the check-ins in progress hold in the spool, against ``--spool-max``
        self.budget = SpoolBudget(spool_max if spool_max is not None else default_cap(spool))

    # --- plumbing ---------------------------------------------------------------------------------
    def caller(self, request: Any, action: str) -> Caller:
        """The request's user, allowed to do ``action`` (TOTP checked for administrative actions)."""
        peer = peer_of(request)
        row = self.store.user_by_cert(peer.fingerprint, peer.subject, peer.issuer)
        if row is None:
            self.store.audit(
                peer.common_name or "?", action, "-", "refused", "certificate not mapped to a user"
            )
            raise Refused(401, f"certificate {peer.common_name!r} is not a user of this library")
        caller = Caller(row["name"], row["role"], row["totp_sealed"])
        if action not in ACTIONS[caller.role]:
            self.store.audit(caller.name, action, "-", "refused", f"role {caller.role}")
            raise Refused(403, f"user {caller.name} ({caller.role}) may not {action}")
        if action in ADMIN_ACTIONS:
            self._second_factor(request, caller, action)
        return caller

    def _second_factor(self, request: Any, caller: Caller, action: str) -> None:
        """Refuse an administrative call without a valid TOTP code, or with one already accepted for this
        user in the same or a later 30-second step (RFC 6238 §5.2: a code is good once). A replay gets
        the status of a wrong code, with ``"reason": "totp-reused"`` so a client holding the secret
        knows that waiting for the next step helps."""
        step = totp_step(
            self.store.totp_secret(caller.name, caller.totp_sealed), request.headers.get(TOTP_HEADER)
        )
        if step is None:
            self.store.audit(caller.name, action, "-", "refused", "missing or wrong TOTP code")
            raise Refused(
                403,
                f"{action} is an administrative call: a valid TOTP code is required (--totp-file)",
                reason="totp-invalid",
            )
        if not self.store.accept_totp_step(caller.name, step):
            self.store.audit(caller.name, action, "-", "refused", f"TOTP code reused (step {step})")
            raise Refused(403, TOTP_REUSED_MESSAGE, reason="totp-reused")

    def image(self, image_id: str) -> dict[str, Any]:
        """An image row by id (404 if none)."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(images).where(images.c.id == image_id)).mappings().first()
        if row is None:
            raise Refused(404, f"no image {image_id}")
        return dict(row)

    def granted(self, caller: Caller, row: dict[str, Any], action: str) -> None:
        """Refuse unless the caller's grants cover the image."""
        if not self.store.may_access(caller.name, caller.role, row["name"]):
            self.store.audit(caller.name, action, row["id"], "refused", "no grant for the image's group")
            raise Refused(403, f"user {caller.name} has no grant for {row['name']}")

    # --- handlers ---------------------------------------------------------------------------------
    async def status(self, request: Any) -> Any:
        """The library's state (roles, key slots, TLS, signing key, gate) for compliance scans."""
        from aiohttp import web

        self.caller(request, "status")
        users = self.store.list_users()
        pub = self.store.public_key_pem()
        key = pki.load_public_key(pub)
        rows = image_rows(self.store)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        body = {
            "store_id": self.store.id,
            "guest_inspection": self.store.guest_inspection,
            "tls": {
                "version": tls_version(request),
                "minimum": "TLSv1.2",
                "client_certificates": "required",
                "plaintext_listener": False,
            },
            "totp_for_admin_calls": True,
            "users": [{"name": u["name"], "role": u["role"], "grants": u["grants"]} for u in users],
            "keyslots": [
                {k: s.get(k) for k in ("name", "kdf", "memory_kib", "time_cost")}
                for s in list_keyslots(self.store.path)
            ],
            "encryption": {
                "cipher": "AES-256-GCM",
                "chunk_bytes": crypto.CHUNK,
                "kdf": "argon2id",
                "min_passphrase": crypto.MIN_PASSPHRASE,
                "min_zxcvbn_score": crypto.MIN_ZXCVBN_SCORE,
            },
            "signing": {
                "algorithm": pki.algorithm_of(key),
                "key_bits": getattr(key, "key_size", 256),
                "key_id": pki.key_id(pub),
            },
            "gate": {"profile_sha256": self.profile.sha256, "formats": self.profile.rules["formats"]},
            "spool": {"max_bytes": self.budget.cap, "in_use_bytes": self.budget.in_use},
            "images": {
                "total": len(rows),
                "by_status": counts,
                "approved_unsigned": sum(1 for r in rows if r["status"] == "approved" and not r["signature"]),
                "failing_gate": [
                    {"id": r["id"], "name": r["name"], "version": r["version"]}
                    for r in rows
                    if r["status"] == "quarantined"
                ],
                "gated_under_other_profile": sum(
                    1 for r in rows if json.loads(r["gate"]).get("profile_sha256") != self.profile.sha256
                ),
            },
        }
        return web.json_response(body)

    async def public_key(self, request: Any) -> Any:
        """The signing public key (PEM)."""
        from aiohttp import web

        self.caller(request, "status")
        return web.Response(body=self.store.public_key_pem(), content_type="application/x-pem-file")

    async def list_images(self, request: Any) -> Any:
        """The images the caller may see."""
        from aiohttp import web

        caller = self.caller(request, "list")
        out = [
            {
                k: r[k]
                for k in (
                    "id",
                    "name",
                    "version",
                    "status",
                    "sha256",
                    "size",
                    "format",
                    "publisher",
                    "approver",
                    "pushed_at",
                    "approved_at",
                )
            }
            for r in image_rows(self.store)
            if self.store.may_access(caller.name, caller.role, r["name"])
        ]
        return web.json_response(out)

    async def push(self, request: Any) -> Any:
        """Check an image in: stream, hash + encrypt in one pass, gate, store or refuse."""
        from aiohttp import web

        caller = self.caller(request, "push")
        try:
            name = check_image_name(request.query.get("name", ""))
            version = check_version(request.query.get("version", ""))
        except StoreError as exc:
            self.store.audit(caller.name, "push", request.query.get("name", "")[:200], "refused", str(exc))
            raise Refused(400, str(exc)) from None
        subject = f"{name}@{version}"
        if not self.store.may_access(caller.name, caller.role, name):
            self.store.audit(caller.name, "push", subject, "refused", "no grant for the group")
            raise Refused(403, f"user {caller.name} has no grant for group {group_of(name) or '(top level)'}")
        with self.store.engine.connect() as conn:
            if conn.execute(
                select(images.c.id).where(images.c.name == name, images.c.version == version)
            ).first():
                raise Refused(409, f"{name} version {version} is already in the library")
        length = request.content_length
        if length is None:
            raise Refused(411, "Content-Length is required")
        if length > self.max_upload:
            raise Refused(413, f"image of {length} bytes is larger than the limit of {self.max_upload}")
        self._reserve_spool(caller, subject, length)
        spool = Path(tempfile.mkdtemp(prefix="hvguard-push-", dir=self.spool))
        part = self.store.path / "tmp" / f"{new_image_id()}.part"
        try:
            digest, size = await self._receive(request, spool / "image", part, length)
            # The blob becomes durable while the gate reads the spool copy; it is renamed into the store
            # only after both finished and the gate passed.
            loop = asyncio.get_running_loop()
            gate, _ = await asyncio.gather(
                loop.run_in_executor(
                    None, run_gate, spool / "image", self.profile, self.store.guest_inspection, spool
                ),
                loop.run_in_executor(None, ingest.fsync_file, part),
            )
            if not gate.passed:
                rules = [r.to_json() for r in gate.failed]
                detail = "; ".join(f"{r['rule']}: {r['message']}" for r in rules)
                self.store.audit(caller.name, "push", subject, "refused", f"gate: {detail}")
                raise Refused(422, f"compliance gate: {detail}", rules)
            blob = self.store.blob_name(digest)
            dest = self.store.blob_path(blob)
            if dest.exists():
                part.unlink()  # the same image under another name or version: stored once
            else:
                dest.parent.mkdir(mode=0o700, exist_ok=True)
                os.replace(part, dest)
                _fsync_dir(dest.parent)
            image_id = new_image_id()
            with self.store.engine.begin() as conn:
                conn.execute(
                    insert(images).values(
                        id=image_id,
                        name=name,
                        version=version,
                        grp=group_of(name),
                        sha256=digest,
                        size=size,
                        format=gate.format,
                        blob=blob,
                        publisher=caller.name,
                        pushed_at=now(),
                        status="pending",
                        gate=json.dumps(gate.to_json()),
                    )
                )
            self.store.audit(caller.name, "push", subject, "ok", f"id={image_id} sha256={digest}")
            return web.json_response(
                {"id": image_id, "sha256": digest, "size": size, "status": "pending", "gate": gate.to_json()},
                status=201,
            )
        finally:
            shutil.rmtree(spool, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            self.budget.release(length)

    async def _receive(self, request: Any, plain: Path, part: Path, length: int) -> tuple[str, int]:
        """The upload into ``part`` (encrypted) and ``plain`` (spool copy): SHA-256 and size. Read off the
        TLS connection in a worker thread when it can be detached from the event loop (much faster; the
        connection then closes after the answer), else through aiohttp's stream."""
        detached = tls_reader.detach(request) if self.detach_uploads else None
        try:
            if detached is None:
                return await ingest.receive(request.content, self.store.data_key, plain, part, length)
            reader, head = detached
            return await asyncio.get_running_loop().run_in_executor(
                None,
                ingest.receive_blocking,
                reader.read_into,
                head,
                self.store.data_key,
                plain,
                part,
                length,
            )
        except (ingest.UploadError, tls_reader.BodyError) as exc:
            raise Refused(400, str(exc)) from None
        finally:
            if detached is not None:
                detached[0].reattach()

    def _reserve_spool(self, caller: Caller, subject: str, length: int) -> None:
        """Reserve the upload's size in the spool, or refuse it (507) before a byte is received."""
        if self.budget.reserve(length):
            return
        if length > self.budget.cap:
            why = f"image of {length} bytes is larger than the gate's spool (--spool-max {self.budget.cap})"
        else:
            why = (
                f"the gate's spool is full: {self.budget.in_use} of {self.budget.cap} bytes (--spool-max) "
                f"are taken by other check-ins and this one needs {length}; try again when they finished"
            )
        self.store.audit(caller.name, "push", subject, "refused", why)
        raise Refused(507, why, reason="spool-full")

    async def approve(self, request: Any) -> Any:
        """Approve a pending image and sign its manifest; the publisher cannot approve their own image."""
        from aiohttp import web

        caller = self.caller(request, "approve")
        row = self.image(request.match_info["id"])
        self.granted(caller, row, "approve")
        if row["publisher"] == caller.name:
            self.store.audit(caller.name, "approve", row["id"], "refused", "own image")
            raise Refused(
                403,
                f"{caller.name} published {row['name']} {row['version']}: another approver must approve it",
            )
        if row["status"] != "pending":
            raise Refused(409, f"image {row['id']} is {row['status']}, not pending approval")
        approved_at = now()
        body = manifest.manifest_body(
            self.store.id, row, approver=caller.name, approved_at=approved_at, gate=json.loads(row["gate"])
        )
        envelope = manifest.sign_manifest(self.store.signing_key(), body)
        with self.store.engine.begin() as conn:
            conn.execute(
                update(images)
                .where(images.c.id == row["id"])
                .values(
                    status="approved",
                    approver=caller.name,
                    approved_at=approved_at,
                    manifest=json.dumps(envelope),
                    signature=envelope["signature"]["value"],
                )
            )
        self.store.audit(caller.name, "approve", row["id"], "ok", f"{row['name']}@{row['version']}")
        return web.json_response(envelope)

    def _approved(self, caller: Caller, image_id: str, action: str) -> dict[str, Any]:
        row = self.image(image_id)
        self.granted(caller, row, action)
        if row["status"] != "approved" or not row["manifest"]:
            self.store.audit(caller.name, action, row["id"], "refused", f"status {row['status']}")
            raise Refused(
                409, f"image {row['id']} is {row['status']}: it has no approval signature to check out"
            )
        return row

    async def get_manifest(self, request: Any) -> Any:
        """The signed manifest of an approved image."""
        from aiohttp import web

        caller = self.caller(request, "pull")
        row = self._approved(caller, request.match_info["id"], "pull")
        return web.json_response(json.loads(row["manifest"]))

    async def data(self, request: Any) -> Any:
        """Stream an approved image, each chunk authenticated before it is sent."""
        from aiohttp import web

        caller = self.caller(request, "pull")
        row = self._approved(caller, request.match_info["id"], "pull")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = row["size"]
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        try:
            with self.store.open_blob(row["blob"]) as chunks:
                # Decrypt the next chunk in a worker thread while this one is sent (one ahead, bounded).
                ahead = loop.run_in_executor(None, next, chunks, None)
                while (chunk := await ahead) is not None:
                    ahead = loop.run_in_executor(None, next, chunks, None)
                    await response.write(chunk)
        except (crypto.CryptoError, OSError) as exc:
            self.store.audit(caller.name, "pull", row["id"], "error", str(exc))
            # Headers are gone: cutting the connection is the only way to tell the client.
            raise ConnectionAbortedError(str(exc)) from None
        self.store.audit(caller.name, "pull", row["id"], "ok", f"{row['name']}@{row['version']}")
        await response.write_eof()
        return response

    async def glance(self, request: Any) -> Any:
        """Glance-compatible signature properties of an approved image (``img_signature`` over the image
        data with ``hash_method``; the certificate UUID is the caller's, from their key manager)."""
        import base64

        from aiohttp import web

        caller = self.caller(request, "pull")
        row = self._approved(caller, request.match_info["id"], "glance")
        method = request.query.get("hash_method", "SHA-256")
        cert_uuid = request.query.get("certificate_uuid", "")
        try:
            key = self.store.signing_key()
            key_type = pki.glance_key_type(key)
            hasher = pki.glance_hasher(method)
        except pki.PkiError as exc:
            raise Refused(409, str(exc)) from None
        if not cert_uuid:
            raise Refused(
                400, "certificate_uuid is required (the signing certificate's id in the key manager)"
            )
        try:
            with self.store.open_blob(row["blob"]) as chunks:
                for chunk in chunks:
                    hasher.update(chunk)
        except (crypto.CryptoError, OSError) as exc:
            raise Refused(409, f"stored image does not authenticate: {exc}") from None
        signature = pki.glance_sign_digest(key, method, hasher.finalize())
        self.store.audit(caller.name, "glance-export", row["id"], "ok", method)
        return web.json_response(
            {
                "img_signature": base64.b64encode(signature).decode("ascii"),
                "img_signature_hash_method": method,
                "img_signature_key_type": key_type,
                "img_signature_certificate_uuid": cert_uuid,
            }
        )

    async def delete(self, request: Any) -> Any:
        """Delete an image (its blob too, when no other image shares it)."""
        from aiohttp import web

        caller = self.caller(request, "delete")
        row = self.image(request.match_info["id"])
        with self.store.engine.begin() as conn:
            conn.execute(delete(images).where(images.c.id == row["id"]))
            shared = conn.execute(select(images.c.id).where(images.c.blob == row["blob"])).first()
        if not shared:
            with contextlib.suppress(FileNotFoundError):
                self.store.blob_path(row["blob"]).unlink()
        self.store.audit(caller.name, "delete", row["id"], "ok", f"{row['name']}@{row['version']}")
        return web.json_response({"deleted": row["id"]})

    async def regate(self, request: Any) -> Any:
        """Re-run the gate on every stored image under the current profile: failures are quarantined,
        images that pass again return to their status, approved images whose manifest names another
        gate profile are re-signed (:mod:`hvguard.services.library.regate`)."""
        from aiohttp import web

        caller = self.caller(request, "regate")
        loop = asyncio.get_running_loop()
        out = []
        for row in image_rows(self.store):
            done = await loop.run_in_executor(
                None, regate_one, self.store, self.profile, self.spool, row, caller.name
            )
            out.append({"id": row["id"], "name": row["name"], "version": row["version"], **done.to_json()})
        return web.json_response(out)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_app(lib: LibraryApp) -> Any:
    """The aiohttp application; a :class:`Refused` becomes its status and a JSON error."""
    from aiohttp import web

    @web.middleware
    async def errors(request: Any, handler: Any) -> Any:
        try:
            response = await handler(request)
        except Refused as exc:
            body: dict[str, Any] = {"error": str(exc), "rules": exc.rules}
            if exc.reason:
                body["reason"] = exc.reason
            response = web.json_response(body, status=exc.status)
        except StoreError as exc:
            response = web.json_response({"error": str(exc), "rules": []}, status=500)
        if tls_reader.must_close(request):
            response.force_close()  # the HTTP parser did not see the body: no further request on it
        return response

    app = web.Application(middlewares=[errors], client_max_size=1024 * 1024)
    app.add_routes(
        [
            web.get("/v1/status", lib.status),
            web.get("/v1/public-key", lib.public_key),
            web.get("/v1/images", lib.list_images),
            web.put("/v1/images", lib.push),
            web.post("/v1/images/{id}/approve", lib.approve),
            web.get("/v1/images/{id}/manifest", lib.get_manifest),
            web.get("/v1/images/{id}/data", lib.data),
            web.get("/v1/images/{id}/glance", lib.glance),
            web.delete("/v1/images/{id}", lib.delete),
            web.post("/v1/regate", lib.regate),
        ]
    )
    return app
