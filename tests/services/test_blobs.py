"""The content-addressed blob directory: named by hash, checked on read, deleted once, written atomically."""

from pathlib import Path

import pytest

from services.common.blobs import BlobMissing, blob_path, delete_blob, read_blob, sha256_hex, write_blob


def test_a_blob_is_named_by_its_hash_and_reads_back(tmp_path: Path) -> None:
    data = b"\x00\x01 some audio bytes"

    digest = write_blob(data, tmp_path)

    assert digest == sha256_hex(data)
    assert read_blob(digest, tmp_path) == data
    assert [path.name for path in tmp_path.iterdir()] == [digest]  # no temporary file left behind


def test_a_blob_that_changed_on_disk_is_refused(tmp_path: Path) -> None:
    digest = write_blob(b"original", tmp_path)
    blob_path(digest, tmp_path).write_bytes(b"tampered")

    with pytest.raises(ValueError, match="does not hash"):
        read_blob(digest, tmp_path)


def test_deleting_twice_is_harmless_and_a_deleted_blob_is_missing(tmp_path: Path) -> None:
    digest = write_blob(b"track", tmp_path)

    assert delete_blob(digest, tmp_path) is True
    assert delete_blob(digest, tmp_path) is False
    with pytest.raises(BlobMissing):
        read_blob(digest, tmp_path)


def test_only_sha256_names_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        blob_path("../../etc/passwd", tmp_path)
