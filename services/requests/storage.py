"""Where the documents' bytes live: outside the database, behind a small interface.

``DocumentStore`` is content-addressed: ``put(data)`` returns the SHA-256 of the content (hex),
which is the key; the same file sent twice is stored once. Nothing a person typed (a file name)
ever reaches a path: keys are checked to be 64 hexadecimal characters before any use.

``FilesystemStore`` (embedded and local modes, or a shared volume in production) keeps each
file at ``{root}/{key[0:2]}/{key[2:4]}/{key}``, written to a temporary file in ``{root}/tmp``
then renamed into place (atomic on one file system), so a reader never sees half a file. The
root is ``DOCUMENTS_DIR`` or ``{PORTAIL_DATA_DIR}/documents``.

``S3Store`` (``DOCUMENTS_STORE=s3``, production) keeps the same key at
``documents/{key[0:2]}/{key[2:4]}/{key}`` in a bucket of Amazon S3 or of an S3-compatible
provider (OVH, Scaleway, MinIO: ``DOCUMENTS_S3_ENDPOINT_URL``). ``put`` asks ``HeadObject``
first and uploads only what is absent (``PutObject`` with ``Content-MD5`` and server-side
encryption ``AES256``); ``open`` is ``GetObject``'s streaming body; ``entries`` pages through
``ListObjectsV2``; ``check`` is ``HeadBucket``. Its configuration comes from the environment
only: the bucket and region (``DOCUMENTS_S3_BUCKET``, ``DOCUMENTS_S3_REGION``) and the
standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (``AWS_SESSION_TOKEN`` if any),
never from a database, never from ``~/.aws``; what is missing stops the process at start.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from botocore.exceptions import ClientError

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


# --------------------------------------------------------------------------------------------
# S3 and S3-compatible object stores
# --------------------------------------------------------------------------------------------

S3_PREFIX = "documents/"
# A put of content already stored rewrites the object onto itself (a copy inside the bucket,
# no upload) when it is older than this, so that the orphan sweep, which removes unreferenced
# objects a day old, cannot take content a submission in flight is about to refer to again
# (what FilesystemStore gets from os.utime). Well under the sweep's ORPHAN_AGE.
S3_FRESHEN_AFTER = timedelta(hours=1)
S3_CONNECT_TIMEOUT = 3
S3_READ_TIMEOUT = 10
S3_MAX_ATTEMPTS = 3
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # A missing bucket is a configuration problem, not a missing document (HEAD has no body
    # to tell them apart: there the bucket is checked by readiness instead).
    return error.get("Code") != "NoSuchBucket" and (
        str(error.get("Code")) in _NOT_FOUND or status == 404)


class S3Store:
    """Documents in a bucket of S3 or of an S3-compatible provider, one object per content.

    ``client`` is a boto3 S3 client (see :func:`s3_client`); every key is checked to be a
    SHA-256 digest before any call is made.
    """

    def __init__(self, client: Any, bucket: str, *, prefix: str = S3_PREFIX,
                 freshen_after: timedelta = S3_FRESHEN_AFTER, page_size: int = 1000):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.freshen_after = freshen_after
        self.page_size = page_size

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}{key[:2]}/{key[2:4]}/{key}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        name = self.object_key(key)
        head = self._head(key)
        if head is not None:
            written = head.get("LastModified")
            if written is None or written < datetime.now(UTC) - self.freshen_after:
                self.client.copy_object(
                    Bucket=self.bucket, Key=name, CopySource={"Bucket": self.bucket, "Key": name},
                    MetadataDirective="REPLACE", Metadata={"sha256": key},
                    ContentType="application/octet-stream", ServerSideEncryption="AES256")
            return key
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        self.client.put_object(
            Bucket=self.bucket, Key=name, Body=data, ContentLength=len(data),
            ContentMD5=base64.b64encode(md5).decode("ascii"),
            ContentType="application/octet-stream", Metadata={"sha256": key},
            ServerSideEncryption="AES256")
        return key

    def open(self, key: str) -> BinaryIO:
        name = self.object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _not_found(exc):
                raise DocumentNotFound(key) from exc
            raise
        return response["Body"]

    def delete(self, key: str) -> None:
        # DeleteObject succeeds whether or not the object exists.
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            return self._head(key) is not None
        except DocumentNotFound:
            return False

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise DocumentNotFound(key)
        return int(head["ContentLength"])

    def entries(self) -> Iterator[tuple[str, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix,
            PaginationConfig={"PageSize": self.page_size})
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"].rsplit("/", 1)[-1]
                # Only what this store wrote: anything else in the bucket is left alone.
                if _KEY.match(key) and item["Key"] == self.object_key(key):
                    yield key, item["LastModified"].astimezone(UTC)

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise OSError(f"le compartiment des documents « {self.bucket} » n'est pas "
                          f"accessible : {error.get('Code')} {error.get('Message') or ''}"
                          .rstrip()) from exc


def s3_client(region: str, endpoint_url: str | None = None,
              credentials: Mapping[str, str] | None = None) -> Any:
    """A boto3 S3 client with short timeouts and bounded retries.

    With an endpoint (an S3-compatible provider): path-style addressing, which every such
    provider accepts whatever its DNS, and checksums only where the API requires them (since
    boto3 1.36 the default adds CRC headers that OVH or MinIO refuse; the uploads carry a
    Content-MD5 instead).
    """
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "connect_timeout": S3_CONNECT_TIMEOUT,
        "read_timeout": S3_READ_TIMEOUT,
        "retries": {"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
    }
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    credentials = credentials or {}
    # A session of its own, with the credentials given here: none looked up in ~/.aws or
    # from an instance's metadata.
    session = boto3.session.Session(
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=credentials.get("AWS_SESSION_TOKEN") or None,
        region_name=region)
    return session.client("s3", endpoint_url=endpoint_url or None, config=Config(**options))


def s3_store_from_settings(settings: Settings) -> S3Store:
    """``DOCUMENTS_STORE=s3``: ConfigError listing every variable missing or wrong."""
    extra = settings.extra
    problems = []
    for name in ("DOCUMENTS_S3_BUCKET", "DOCUMENTS_S3_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY"):
        if not (extra.get(name) or "").strip():
            problems.append(f"{name} est obligatoire avec DOCUMENTS_STORE=s3")
    endpoint = (extra.get("DOCUMENTS_S3_ENDPOINT_URL") or "").strip()
    if endpoint and not re.match(r"^https?://[^/\s]+", endpoint):
        problems.append("DOCUMENTS_S3_ENDPOINT_URL doit être une adresse http:// ou https:// "
                        f"(reçu {endpoint!r})")
    if problems:
        raise ConfigError(problems)
    credentials = {name: extra[name].strip() for name in
                   ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
                   if (extra.get(name) or "").strip()}
    client = s3_client(extra["DOCUMENTS_S3_REGION"].strip(), endpoint or None, credentials)
    return S3Store(client, extra["DOCUMENTS_S3_BUCKET"].strip())


def documents_dir(settings: Settings) -> Path:
    given = settings.extra.get("DOCUMENTS_DIR")
    return Path(given) if given else Path(settings.data_dir) / "documents"


def store_from_settings(settings: Settings) -> DocumentStore:
    kind = (settings.extra.get("DOCUMENTS_STORE") or "filesystem").strip().lower()
    if kind == "s3":
        return s3_store_from_settings(settings)
    if kind != "filesystem":
        raise ConfigError([f"DOCUMENTS_STORE vaut « filesystem » ou « s3 » (reçu {kind!r})"])
    return FilesystemStore(documents_dir(settings))
