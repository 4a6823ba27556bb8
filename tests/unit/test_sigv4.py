"""The presigner must produce exactly the URL botocore produces for the same request."""

import functools
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import botocore.session
import pytest
from botocore.config import Config

from controlplane import sigv4
from controlplane.sigv4 import S3Credentials, expires_at, presign

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
CREDS = S3Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
PROD = "https://0123456789abcdef.r2.cloudflarestorage.com"
LOCAL = "http://127.0.0.1:8787/cdn-cgi/local/r2/s3"

# (botocore operation, its params) -> (method, query, signed_headers) for presign()
OPERATIONS = {
    "get": (("get_object", {}), ("GET", None, None)),
    "put-type": (
        ("put_object", {"ContentType": "video/mp4"}),
        ("PUT", None, {"Content-Type": "video/mp4"}),
    ),
    "put-type-length": (
        ("put_object", {"ContentType": "video/mp4", "ContentLength": 10_485_760}),
        ("PUT", None, {"content-type": "video/mp4", "content-length": "10485760"}),
    ),
    "upload-part": (
        ("upload_part", {"PartNumber": 7, "UploadId": "2~abc/DEF+ghi="}),
        ("PUT", {"partNumber": "7", "uploadId": "2~abc/DEF+ghi="}, None),
    ),
}


@functools.cache
def s3_client(endpoint, creds):
    return botocore.session.get_session().create_client(
        "s3",
        region_name=creds.region,
        endpoint_url=endpoint,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def botocore_url(operation, params, *, endpoint, key, creds=CREDS, expires_s=900, bucket="media"):
    client = s3_client(endpoint, creds)
    frozen = NOW.replace(tzinfo=None)  # botocore works in naive UTC
    with mock.patch("botocore.auth.get_current_datetime", return_value=frozen):
        return client.generate_presigned_url(
            operation, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires_s
        )


@pytest.mark.parametrize("endpoint", [PROD, LOCAL, "https://r2.example:8443/prefix/", "https://r2.example:443"])
@pytest.mark.parametrize("name", OPERATIONS)
def test_matches_botocore(endpoint, name):
    (operation, params), (method, query, headers) = OPERATIONS[name]
    ours = presign(CREDS, method, endpoint, "media", "exports/job-1/out.mp4", expires_s=900, now=NOW,
                   query=query, signed_headers=headers)
    assert ours == botocore_url(operation, params, endpoint=endpoint, key="exports/job-1/out.mp4")


@pytest.mark.parametrize("key", [
    "with space.mp4",
    "ünïcödé/日本語.mp4",
    "a+b=c&d.mp4",
    "tilde~and-dash_dot.mp4",
    "nested//double/slash/",
    "percent%20literal#hash?q",
])
@pytest.mark.parametrize("endpoint", [PROD, LOCAL])
def test_keys_round_trip(endpoint, key):
    ours = presign(CREDS, "GET", endpoint, "media", key, expires_s=60, now=NOW)
    assert ours == botocore_url("get_object", {}, endpoint=endpoint, key=key, expires_s=60)


def test_region_and_expiry_limits_match_botocore():
    creds = S3Credentials("AK", "SK", region="eu-west-1")
    ours = presign(creds, "get", PROD, "b", "k", expires_s=604_800, now=NOW)
    assert ours == botocore_url("get_object", {}, endpoint=PROD, key="k", creds=creds, expires_s=604_800, bucket="b")


def test_signed_header_values_are_pinned():
    def url(content_type):
        return presign(CREDS, "PUT", PROD, "media", "k", expires_s=60, now=NOW,
                       signed_headers={"Content-Type": content_type})

    assert "X-Amz-SignedHeaders=content-type%3Bhost&" in url("video/mp4")
    assert url("video/mp4") != url("video/webm")
    assert url("video/mp4") == url("  video/mp4 ")  # SigV4 trims header values


def test_time_is_taken_in_utc():
    in_cet = NOW.astimezone(timezone(timedelta(hours=1)))
    assert presign(CREDS, "GET", PROD, "b", "k", expires_s=60, now=in_cet) == \
        presign(CREDS, "GET", PROD, "b", "k", expires_s=60, now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        presign(CREDS, "GET", PROD, "b", "k", expires_s=60, now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("expires_s", [0, -1, 604_801])
def test_rejects_bad_expiry(expires_s):
    with pytest.raises(ValueError, match="expires_s"):
        presign(CREDS, "GET", PROD, "b", "k", expires_s=expires_s, now=NOW)


def test_expires_at():
    assert expires_at(NOW, 900) == "2025-03-04T05:21:07Z"


SIGN_WITH_THE_STDLIB_ALONE = """
import sys
sys.path.insert(0, sys.argv[1])
from datetime import datetime
from controlplane.sigv4 import S3Credentials, presign
print(presign(S3Credentials(sys.argv[2], sys.argv[3]), "GET", sys.argv[4], "media", "exports/a b.mp4",
              expires_s=900, now=datetime.fromisoformat(sys.argv[5])))
"""


def test_signs_with_the_stdlib_alone():
    """The Worker runs on Pyodide, where only the standard library is certain: sign in an interpreter
    that sees nothing but the stdlib and the package itself (-I -S: no site-packages, no PYTHONPATH)."""
    package_parent = Path(sigv4.__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SIGN_WITH_THE_STDLIB_ALONE, str(package_parent),
         CREDS.access_key_id, CREDS.secret_access_key, PROD, NOW.isoformat()],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == botocore_url("get_object", {}, endpoint=PROD, key="exports/a b.mp4")
