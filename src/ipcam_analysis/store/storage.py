"""Where pictures are kept: files in data_dir (the default), or an S3 bucket (`storage.url`)
that every node reads and writes: the uploads in flight and the kept snapshots."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import field_validator

from ipcam_analysis import aws
from ipcam_analysis.errors import UserError
from ipcam_analysis.settings import StrictModel

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

STORAGE_URL_VARIABLE = "IPCAM_STORAGE_URL"  # overrides storage.url (containers, test runs)
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class StorageSettings(StrictModel):
    """`url: s3://bucket/prefix` keeps uploads in flight and snapshots in AWS S3 or an
    S3-compatible store (MinIO, Garage, Ceph); unset, they are files on this machine."""

    url: str | None = None
    # An S3-compatible store's address; unset: AWS_ENDPOINT_URL(_S3) from the environment, or AWS.
    endpoint_url: str | None = None
    region: str | None = None  # unset: aws_region

    @field_validator("url")
    @classmethod
    def _s3_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError(
                f"{url!r} is not s3://bucket/prefix (the one kind of shared storage; "
                "leave storage.url out to keep pictures in data_dir)"
            )
        _no_credentials(parts.netloc)
        if ":" in parts.netloc:
            raise ValueError(
                f"{url!r}: a bucket name has no port (the store's address goes in "
                "storage.endpoint_url)"
            )
        return url

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// address")
        _no_credentials(parts.netloc)
        return url


def _no_credentials(netloc: str) -> None:
    if "@" in netloc:
        raise ValueError(
            "credentials do not go in the URL: give them as for any AWS tool "
            "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role)"
        )


class StorageError(OSError):
    """Shared storage could not be reached or refused a request; the message is one line."""


class Storage(Protocol):
    """Pictures by key (`snapshots/2026-11-23/42.jpg`); `read` raises FileNotFoundError for a
    key that is not there and OSError when the storage cannot be reached."""

    shared: bool  # other machines read what is written here (uploads are copied in)

    def write(self, key: str, data: bytes) -> None: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, keys: Sequence[str]) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
    def check(self) -> None: ...


def open_storage(settings: StorageSettings, data_dir: Path) -> Storage:
    """S3 when `storage.url` is set, else files in data_dir (today's layout)."""
    if not settings.url:
        return LocalStorage(data_dir)
    parts = urlsplit(settings.url)
    return S3Storage(parts.netloc, parts.path, settings.region, settings.endpoint_url)


def checked_key(key: str) -> str:
    """A key as written by the store: relative, without `..` (a tampered row reads nothing)."""
    normal = posixpath.normpath(key)
    if key.startswith("/") or normal != key.rstrip("/") or normal.split("/")[0] in ("..", "."):
        raise FileNotFoundError(key)
    return key


class LocalStorage:
    """Files under one folder on this machine."""

    shared = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()  # once: resolving walks every folder of the path
        # Folder creation and removal are serialised so a clean-up never removes a folder
        # between a writer's mkdir and its write.
        self._folders_lock = threading.Lock()

    def __str__(self) -> str:
        return str(self.root)

    def local_path(self, key: str) -> Path | None:
        try:
            path = (self.root / checked_key(key)).resolve()
        except FileNotFoundError:
            return None
        return path if path.is_relative_to(self._real_root) else None

    def _path(self, key: str) -> Path:
        path = self.local_path(key)
        if path is None:
            raise FileNotFoundError(key)
        return path

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._folders_lock:
            try:  # the day's folder is there but for the day's first picture: one call, not three
                path.write_bytes(data)
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, keys: Sequence[str]) -> None:
        """Each file, then each folder it leaves empty (the day folders of snapshots)."""
        with self._folders_lock:
            for key in keys:
                path = self.local_path(key)
                if path is not None:
                    remove_file_and_empty_folders(path, self.root)

    def check(self) -> None:
        """Nothing to check: folders are made as needed."""


class S3Storage:
    """Objects under `prefix/` in a bucket of AWS S3 or an S3-compatible store."""

    shared = True

    def __init__(
        self, bucket: str, prefix: str, region: str | None, endpoint_url: str | None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._endpoint = endpoint_url
        self._client = aws.client("s3", region, endpoint_url=endpoint_url)

    def __str__(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self._endpoint}" if self._endpoint else where

    def _key(self, key: str) -> str:
        return self.prefix + checked_key(key)

    def local_path(self, key: str) -> Path | None:
        return None

    def write(self, key: str, data: bytes) -> None:
        with self._errors(f"cannot write {key}"):
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def read(self, key: str) -> bytes:
        with self._errors(f"cannot read {key}"):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
                    raise FileNotFoundError(key) from None
                raise
            return answer["Body"].read()

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            chunk: list[ObjectIdentifierTypeDef] = [
                {"Key": self._key(key)} for key in keys[start : start + 1000]
            ]
            with self._errors(f"cannot delete {len(chunk)} object(s)"):
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise StorageError(
                    f"{self}: cannot delete {len(failed)} object(s), such as "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )

    def check(self) -> None:
        """A bucket that is not there, or not ours, is a configuration error; an outage is
        only logged: the queue keeps what cannot be stored yet, cameras send again."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, NoCredentialsError, PartialCredentialsError) as exc:
            cause, _ = aws.describe_aws_error(exc)
            if isinstance(exc, ClientError) and exc.response["Error"].get("Code") in _MISSING_CODES:
                cause = "no such bucket"
            raise UserError(f"storage.url: cannot use {self} ({cause})") from None
        except BotoCoreError as exc:
            log.warning("Shared storage %s: %s; uploads are refused until it is", self, _cause(exc))

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """boto3's errors as one line for the log (FileNotFoundError passes through)."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"{self}: {doing} ({_cause(exc)})") from None


def _cause(exc: Exception) -> str:
    # botocore's own text repeats the whole URL of the request.
    if isinstance(exc, BotoConnectionError):
        return "cannot be reached"
    return aws.describe_aws_error(exc)[0]


def remove_file_and_empty_folders(path: Path, home: Path) -> None:
    home = home.resolve()
    target = path.resolve()
    if home not in target.parents:
        raise ValueError(f"{path} is not inside the camera folder {home}")
    target.unlink(missing_ok=True)
    for folder in target.parents:
        if folder == home:
            break
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue  # removed by a concurrent clean-up of a sibling upload
        except OSError:
            break  # not empty: another upload is still there (or being written)
