"""Where the documents' bytes live: outside the database, behind a small interface.

``DocumentStore`` is content-addressed: ``put(data)`` returns the SHA-256 of the content (hex),
which is the key; the same file sent twice is stored once. Nothing a person typed (a file name)
ever reaches a path: keys are checked to be 64 hexadecimal characters before any use.

``FilesystemStore`` (embedded and local modes, or a shared volume in production) keeps each
file at ``{root}/{key[0:2]}/{key[2:4]}/{key}``, written to a temporary file in ``{root}/tmp``
then renamed into place (atomic on one file system), so a reader never sees half a file. The
root is ``DOCUMENTS_DIR`` or ``{PORTAIL_DATA_DIR}/documents``.

An S3-compatible object store fits the same interface (``put``: ``PutObject`` to
``{prefix}{key}`` unless ``HeadObject`` finds it; ``open``: ``GetObject``'s streaming body;
``delete``: ``DeleteObject``; ``exists``: ``HeadObject``; ``entries``: ``ListObjectsV2`` with
``LastModified``). It is not provided here because boto3 is not among the project's
dependencies; a deployment that wants one adds it behind ``store_from_settings``
(``DOCUMENTS_STORE=s3`` with ``S3_ENDPOINT_URL``, ``S3_BUCKET``, credentials) without
changing any caller.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from services.common.config import ConfigError, Settings

_KEY = re.compile(r"^[0-9a-f]{64}$")


class DocumentNotFound(LookupError):
    pass


class DocumentStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data``; returns its key (SHA-256, hex). Storing existing content is a no-op."""

    def open(self, key: str) -> BinaryIO:
        """A binary file object to read (the caller closes it); DocumentNotFound if absent."""

    def delete(self, key: str) -> None:
        """Remove the content; nothing happens when it is absent."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def entries(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with the time it was written (for the orphan sweep)."""

    def check(self) -> None:
        """Raise unless the store can be written to (readiness)."""


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise DocumentNotFound(key)
    return key


class FilesystemStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        target = self.path(key)
        if target.exists():
            # Freshened: the orphan sweep leaves young files alone, and this content is about
            # to be referred to again.
            os.utime(target)
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError as exc:
            raise DocumentNotFound(key) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except DocumentNotFound:
            return False

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError as exc:
            raise DocumentNotFound(key) from exc

    def check(self) -> None:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        if not os.access(self.root / "tmp", os.W_OK):
            raise OSError(f"le dossier des documents n'est pas accessible en écriture : "
                          f"{self.root}")

    def clean_temporary(self, before: datetime) -> None:
        """Remove temporary files older than ``before`` (left by a crash while writing)."""
        tmp_dir = self.root / "tmp"
        if not tmp_dir.is_dir():
            return
        for item in tmp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if datetime.fromtimestamp(item.stat().st_mtime, UTC) < before:
                    item.unlink()

    def entries(self) -> Iterator[tuple[str, datetime]]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if first.name == "tmp" or not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for item in second.iterdir():
                    if _KEY.match(item.name):
                        written = datetime.fromtimestamp(item.stat().st_mtime, UTC)
                        yield item.name, written


def documents_dir(settings: Settings) -> Path:
    given = settings.extra.get("DOCUMENTS_DIR")
    return Path(given) if given else Path(settings.data_dir) / "documents"


def store_from_settings(settings: Settings) -> DocumentStore:
    kind = (settings.extra.get("DOCUMENTS_STORE") or "filesystem").lower()
    if kind != "filesystem":
        raise ConfigError([f"DOCUMENTS_STORE ne connaît que « filesystem » (reçu {kind!r})"])
    return FilesystemStore(documents_dir(settings))
