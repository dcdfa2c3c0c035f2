"""Content-addressed blobs: audio too large to travel inside a job waits here, named by its sha256.

The gateway writes a track once (``write_blob``) and publishes a job that refers to it by hash; the kws worker
reads it (``read_blob``, which checks the bytes still hash to their name); the store deletes it once the
track's result is stored (``delete_blob``), so no user audio outlives its job. All three processes run on one
machine and share ``EARSHOT_BLOB_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from services.common.settings import CACHE_DIR, EarshotSettings


class BlobSettings(EarshotSettings):
    blob_dir: Path = CACHE_DIR / "blobs"


class BlobMissing(FileNotFoundError):
    """The job refers to a blob that is not (or no longer) in the blob directory."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_path(sha256: str, blob_dir: Path | None = None) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return (blob_dir or BlobSettings().blob_dir) / sha256


def write_blob(data: bytes, blob_dir: Path | None = None) -> str:
    """Store ``data`` under its sha256 and return the hash; atomic, so a reader never sees half a file."""
    digest = sha256_hex(data)
    target = blob_path(digest, blob_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        return digest
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{digest}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest


def read_blob(sha256: str, blob_dir: Path | None = None) -> bytes:
    """The bytes stored under ``sha256``; raises ``BlobMissing`` if absent, ``ValueError`` if they changed."""
    path = blob_path(sha256, blob_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise BlobMissing(f"blob {sha256} is not in {path.parent}") from error
    if sha256_hex(data) != sha256:
        raise ValueError(f"blob {sha256} does not hash to its name")
    return data


def delete_blob(sha256: str, blob_dir: Path | None = None) -> bool:
    """Remove the blob; True if it was there. Deleting twice is harmless (results can be redelivered)."""
    try:
        blob_path(sha256, blob_dir).unlink()
    except FileNotFoundError:
        return False
    return True
