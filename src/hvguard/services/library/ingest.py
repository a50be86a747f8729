"""Check-in data path: one pass over the upload computes SHA-256, encrypts into the blob and writes the
plaintext spool copy the gate reads.

The three jobs of a batch run in parallel worker threads (hashlib and file writes release the GIL)
while the event loop receives and TLS-decrypts the next batch; the next batch is handed out only when
all three finished with the previous one, so at most two batches are in memory whatever the image size.
The blob's written ranges are handed to the kernel for write-back as the upload goes
(``posix_fadvise(DONTNEED)`` starts it and drops the cached ciphertext nobody reads again), so the
``fsync`` at the end, which :func:`fsync_file` runs while the gate runs, has little left to wait for.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from hvguard.services.library import crypto

#: Bytes handed to the workers at a time (the request is read in whatever pieces arrive).
BATCH = 8 * 1024 * 1024


class UploadError(Exception):
    """The upload's length does not match its ``Content-Length``; the message is one line."""


class _Blob:
    """The encrypted blob being written, with early write-back of what is already written."""

    def __init__(self, data_key: bytes, out: IO[bytes]) -> None:
        self.out = out
        self.writer = crypto.BlobWriter(data_key, out)
        self.flushed = 0

    def write(self, batch: bytes | memoryview) -> None:
        self.writer.write(batch)
        self.out.flush()
        end = self.out.tell()
        if hasattr(os, "posix_fadvise") and end > self.flushed:
            os.posix_fadvise(self.out.fileno(), self.flushed, end - self.flushed, os.POSIX_FADV_DONTNEED)
            self.flushed = end


async def receive(content: Any, data_key: bytes, plain: Path, part: Path, length: int) -> tuple[str, int]:
    """Stream ``content`` (an aiohttp ``StreamReader``) into ``part`` (encrypted, not yet fsynced) and
    ``plain`` (the spool copy); SHA-256 (hex) and size. :class:`UploadError` on a length mismatch."""
    h = hashlib.sha256()
    size = 0
    loop = asyncio.get_running_loop()
    pfd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    bfd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(pfd, "wb") as pf, os.fdopen(bfd, "wb") as bf:
        blob = _Blob(data_key, bf)

        def start(batch: bytes) -> list[asyncio.Future[Any]]:
            return [
                loop.run_in_executor(None, h.update, batch),
                loop.run_in_executor(None, blob.write, batch),
                loop.run_in_executor(None, pf.write, batch),
            ]

        async def finish(jobs: list[asyncio.Future[Any]]) -> None:
            # every job ends before the files close, then the first error (disk full …) is raised
            for outcome in await asyncio.gather(*jobs, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome

        pending: list[asyncio.Future[Any]] = []
        batch: list[bytes] = []
        batched = 0
        try:
            async for chunk in content.iter_any():
                size += len(chunk)
                if size > length:
                    raise UploadError("more data than Content-Length")
                batch.append(chunk)
                batched += len(chunk)
                if batched >= BATCH:
                    jobs, pending = pending, []
                    await finish(jobs)
                    pending = start(b"".join(batch))
                    batch, batched = [], 0
        finally:
            jobs, pending = pending, []
            if jobs:
                await asyncio.gather(*jobs, return_exceptions=True)
        if jobs:
            await finish(jobs)  # done already: raises a worker's error
        last = b"".join(batch)
        h.update(last)
        blob.writer.write(last)
        blob.writer.close()
        pf.write(last)
    if size != length:
        raise UploadError(f"upload ended after {size} of {length} bytes")
    return h.hexdigest(), size


def receive_blocking(
    read_into: Callable[[memoryview], int], head: bytes, data_key: bytes, plain: Path, part: Path, length: int
) -> tuple[str, int]:
    """:func:`receive` for a body read by a blocking ``read_into`` (a worker thread's TLS reader, see
    :mod:`.tls_reader`) after the ``head`` bytes already received.

    Two batch buffers take turns: while the hash and the spool write of one run in a small thread pool,
    the body is decrypted straight into the other, so nothing is copied between the TLS layer and the
    jobs and memory stays at two batches whatever the image size. Encryption runs in the calling thread
    (see ``start``)."""
    if len(head) > length:
        raise UploadError("more data than Content-Length")
    h = hashlib.sha256()
    buffers = [bytearray(BATCH), bytearray(BATCH)]
    pfd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    bfd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with (
        os.fdopen(pfd, "wb") as pf,
        os.fdopen(bfd, "wb") as bf,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="hvguard-ingest") as pool,
    ):
        blob = _Blob(data_key, bf)
        pending: list[Future[Any]] = []

        def finish(jobs: list[Future[Any]]) -> None:
            # every job ends before its buffer is reused or the files close; then the first error
            errors = [job.exception() for job in jobs]
            for error in errors:
                if error is not None:
                    raise error

        def start(batch: memoryview) -> list[Future[Any]]:
            # Hashing and file writes release the GIL; AES-GCM does not, so it runs here, in the reading
            # thread: in a pool thread it would take the GIL back after every TLS record this thread
            # decrypts (each read releases it) and the upload would crawl.
            jobs: list[Future[Any]] = [pool.submit(h.update, batch), pool.submit(pf.write, batch)]
            blob.write(batch)
            return jobs

        try:
            pending = start(memoryview(head)) if head else []
            size, turn = len(head), 0
            while size < length:
                view = memoryview(buffers[turn])[: min(BATCH, length - size)]
                got = read_into(view)
                size += got
                jobs, pending = pending, []
                finish(jobs)
                pending = start(view[:got])
                turn ^= 1
                if got < len(view):
                    raise UploadError(f"upload ended after {size} of {length} bytes")
        finally:
            jobs, pending = pending, []
            for job in jobs:
                job.exception()  # wait: the buffers and files outlive every job
        finish(jobs)
        blob.writer.close()
    return h.hexdigest(), size


def fsync_file(path: Path) -> None:
    """Make a written file durable (its data; the directory entry is the caller's)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
