"""R2 through its S3 API: inputs down, the output up, and the render's checkpoints.

Passing failures (5xx, throttling, dropped connections) are retried by botocore's standard retry
mode, with exponential backoff and jitter. What is still failing after that is a StorageError whose
`retryable` tells a passing failure (worth another attempt later) from a permanent one (a missing
object, a refused request).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from jobspec import CheckpointManifest, SegmentRecord
from pydantic import ValidationError

from .segments import sha256_file

MiB = 1 << 20


@dataclass(frozen=True)
class R2Config:
    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str


class StorageError(Exception):
    def __init__(self, reason: str, retryable: bool):
        super().__init__(reason)
        self.retryable = retryable


class ObjectMissing(StorageError):
    def __init__(self, reason: str):
        super().__init__(reason, retryable=False)


class R2:
    """One bucket. Thread-safe: the boto3 client is shared by all of the worker's jobs."""

    def __init__(self, config: R2Config, attempts: int = 6):
        self.bucket = config.bucket
        self.s3 = boto3.client(
            "s3", endpoint_url=config.endpoint, region_name="auto",
            aws_access_key_id=config.access_key_id, aws_secret_access_key=config.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": attempts},
                          connect_timeout=10, read_timeout=60,
                          # R2 has no use for the CRC checksums recent botocore adds to every request
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        self.transfer = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=32 * MiB, max_concurrency=4)

    def download(self, key: str, path: str) -> None:
        """Stream the object to `path` (written whole or not at all)."""
        with _errors(f"download of {key}"):
            self.s3.download_file(self.bucket, key, path + ".part", Config=self.transfer)
        os.replace(path + ".part", path)

    def upload(self, path: str, key: str, content_type: str) -> int:
        """Store the file (multipart when big); its size in bytes."""
        with _errors(f"upload of {key}"):
            self.s3.upload_file(path, self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=self.transfer)
        return os.path.getsize(path)

    def read(self, key: str) -> Optional[bytes]:
        """A small object's bytes; None if there is no such object."""
        try:
            with _errors(f"read of {key}"):
                return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ObjectMissing:
            return None

    def write(self, key: str, data: bytes, content_type: str) -> None:
        with _errors(f"write of {key}"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def keys(self, prefix: str) -> Iterator[str]:
        with _errors(f"listing of {prefix}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from (obj["Key"] for obj in page.get("Contents", []))

    def delete_prefix(self, prefix: str) -> None:
        keys = list(self.keys(prefix))
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            with _errors(f"delete under {prefix}"):
                reply = self.s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise StorageError(f"delete of {first.get('Key')} failed: {first.get('Message')}", retryable=True)


def _status(error: ClientError) -> int:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0


def _client_error(error: BaseException) -> Optional[ClientError]:
    """The ClientError behind `error`: boto3's transfers wrap it (S3UploadFailedError)."""
    while error is not None and not isinstance(error, ClientError):
        error = error.__cause__ or error.__context__
    return error


@contextmanager
def _errors(what: str):
    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as e:
        client_error = _client_error(e)
        if client_error is None:  # no answer from R2 (connection, timeout) even after the retries
            raise StorageError(f"{what} failed: {e}", retryable=True) from e
        status = _status(client_error)
        if status == 404:
            raise ObjectMissing(f"{what} failed: no such object in R2") from client_error
        error = client_error.response.get("Error", {})
        detail = f"HTTP {status} {error.get('Code', '')} {error.get('Message', '')}".rstrip()
        raise StorageError(f"{what} failed: {detail}", retryable=status >= 500 or status == 429) from client_error


class R2CheckpointStore:
    """segments.CheckpointStore in R2: `<prefix><segment key>` and `<prefix>manifest.json`."""

    MANIFEST = "manifest.json"

    def __init__(self, r2: R2, job_id: str, prefix: str, may_write: Callable[[], bool] = lambda: True):
        """may_write: asked before each segment and manifest is stored (whether the pod holds the lease)."""
        self.r2, self.job_id, self.prefix, self.may_write = r2, job_id, prefix, may_write

    @property
    def manifest_key(self) -> str:
        return self.prefix + self.MANIFEST

    def load_manifest(self) -> Optional[CheckpointManifest]:
        """The stored manifest; None if there is none, or if it is unreadable or another job's
        (the render then starts over, replacing it)."""
        data = self.r2.read(self.manifest_key)
        if data is None:
            return None
        try:
            manifest = CheckpointManifest.model_validate_json(data)
        except ValidationError:
            return None
        return manifest if manifest.job_id == self.job_id else None

    def put_segment(self, local_path: str, record: SegmentRecord) -> None:
        self._check_writable()
        self.r2.upload(local_path, self.prefix + record.key, "video/mp4")

    def put_manifest(self, manifest: CheckpointManifest) -> None:
        self._check_writable()
        self.r2.write(self.manifest_key, manifest.model_dump_json().encode(), "application/json")

    def _check_writable(self) -> None:
        if not self.may_write():
            raise StorageError(f"checkpoint of job {self.job_id} not stored: this pod no longer holds the lease",
                               retryable=False)

    def fetch_segment(self, record: SegmentRecord, local_path: str) -> None:
        self.r2.download(self.prefix + record.key, local_path)
        if sha256_file(local_path) != record.sha256:
            os.remove(local_path)
            raise StorageError(f"checkpoint segment {record.key} of job {self.job_id} does not match its sha256",
                               retryable=True)

    def delete_all(self) -> None:
        self.r2.delete_prefix(self.prefix)
