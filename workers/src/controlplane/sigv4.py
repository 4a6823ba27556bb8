"""AWS Signature V4 query-string presigning for S3-compatible storage (R2).

Stdlib only: this runs inside a Python Worker (Pyodide), where boto3 is unavailable.
Spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
MAX_EXPIRES_S = 7 * 24 * 3600
_DEFAULT_PORTS = {"http": 80, "https": 443}

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    region: str = "auto"  # R2 uses "auto"


def presign(
    creds: S3Credentials,
    method: str,
    endpoint: str,
    bucket: str,
    key: str,
    *,
    expires_s: int,
    now: datetime,
    query: dict[str, str] | None = None,
    signed_headers: dict[str, str] | None = None,
) -> str:
    """Return a path-style presigned URL for `method` on `bucket`/`key`.

    `query` adds operation parameters (e.g. partNumber, uploadId). Every header in
    `signed_headers` must be sent with exactly that value or the storage rejects the
    request: that is how a content type or an exact size is pinned.
    """
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise ValueError(f"expires_s must be in 1..{MAX_EXPIRES_S}, got {expires_s}")
    url = urlsplit(endpoint)
    path = _uri_encode(f"{url.path.rstrip('/')}/{bucket}/{key}", keep_slash=True)
    headers = _canonical_headers({**(signed_headers or {}), "host": _host(url.scheme, url.netloc)})
    timestamp = _utc(now).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{timestamp[:8]}/{creds.region}/{SERVICE}/aws4_request"
    auth_params = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{creds.access_key_id}/{scope}",
        "X-Amz-Date": timestamp,
        "X-Amz-Expires": str(expires_s),
        "X-Amz-SignedHeaders": ";".join(headers),
    }
    # Operation params before auth params: the same URL layout botocore produces.
    params = {**(query or {}), **auth_params}
    encoded = [(_uri_encode(name), _uri_encode(value)) for name, value in params.items()]
    canonical_request = _canonical_request(method, path, encoded, headers)
    signature = _signature(creds.secret_access_key, timestamp, scope, canonical_request)
    query_string = _join_query([*encoded, ("X-Amz-Signature", signature)])
    return f"{url.scheme}://{url.netloc}{path}?{query_string}"


def expires_at(now: datetime, expires_s: int) -> str:
    """ISO-8601 UTC instant at which a URL presigned at `now` stops working."""
    return (_utc(now) + timedelta(seconds=expires_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        # astimezone() would silently read a naive datetime as local time.
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def _uri_encode(text: str, *, keep_slash: bool = False) -> str:
    # quote() leaves exactly SigV4's unreserved set (A-Z a-z 0-9 - _ . ~) unencoded.
    return quote(text, safe="/" if keep_slash else "")


def _host(scheme: str, netloc: str) -> str:
    # Clients leave a default port out of the Host header, so it must not be signed either.
    return netloc.removesuffix(f":{_DEFAULT_PORTS.get(scheme)}")


def _canonical_headers(headers: dict[str, str]) -> dict[str, str]:
    """Lower-cased names in sorted order; values trimmed, inner whitespace runs collapsed."""
    lowered = {name.lower(): " ".join(str(value).split()) for name, value in headers.items()}
    return dict(sorted(lowered.items()))


def _join_query(params: Pairs) -> str:
    return "&".join(f"{name}={value}" for name, value in params)


def _canonical_request(method: str, path: str, params: Pairs, headers: dict[str, str]) -> str:
    return "\n".join([
        method.upper(),
        path,
        _join_query(sorted(params)),  # sorted by encoded name, then value
        "".join(f"{name}:{value}\n" for name, value in headers.items()),
        ";".join(headers),
        "UNSIGNED-PAYLOAD",
    ])


def _signature(secret: str, timestamp: str, scope: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = "\n".join([ALGORITHM, timestamp, scope, digest])
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):  # date, region, service, "aws4_request"
        key = _hmac(key, part)
    return _hmac(key, string_to_sign).hex()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()
