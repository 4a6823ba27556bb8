"""Typed view of the Worker's environment (wrangler.toml [vars] + secrets)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.job_state import Policy
from controlplane.jwt_auth import JwtConfig
from controlplane.retention import RetentionPolicy
from controlplane.webhooks import WebhookPolicy
from controlplane.limits import Limits
from controlplane.sigv4 import S3Credentials


def _get(env, name: str, default: str = "") -> str:
    value = getattr(env, name, None)
    return default if value is None else str(value)


@dataclass(frozen=True)
class Settings:
    policy: Policy
    auth_secret: str
    worker_secret: str
    pull_token: str
    allow_anonymous: bool
    local_pull_queue: bool
    ws_ticket_ttl_s: int
    presign_ttl_s: int
    max_upload_bytes: int
    multipart_threshold_bytes: int
    bucket_name: str
    s3_endpoint: str
    s3: S3Credentials
    gpu_price_per_hour: float
    # Sign-in (identity.py): JWTs from the host application's identity provider; how the page gets one.
    jwt: JwtConfig
    jwks_cache_s: float
    jwks_min_refetch_s: float
    signin_url: str
    embed_origins: tuple[str, ...]
    webhooks: WebhookPolicy
    retention: RetentionPolicy
    metrics_token: str
    limits: Limits

    @classmethod
    def from_env(cls, env) -> "Settings":
        return cls(
            policy=Policy(
                lease_timeout_s=float(_get(env, "LEASE_TIMEOUT_S", "90")),
                heartbeat_interval_s=float(_get(env, "HEARTBEAT_INTERVAL_S", "10")),
                max_attempts=int(_get(env, "MAX_ATTEMPTS", "3")),
                requeue_delay_s=float(_get(env, "REQUEUE_DELAY_S", "5")),
                redispatch_s=float(_get(env, "REDISPATCH_S", "300")),
            ),
            auth_secret=_get(env, "AUTH_SECRET"),
            worker_secret=_get(env, "WORKER_SECRET"),
            pull_token=_get(env, "QUEUE_PULL_TOKEN"),
            allow_anonymous=_get(env, "ALLOW_ANONYMOUS") == "true",
            local_pull_queue=_get(env, "LOCAL_PULL_QUEUE") == "true",
            ws_ticket_ttl_s=int(_get(env, "WS_TICKET_TTL_S", "300")),
            presign_ttl_s=int(_get(env, "PRESIGN_TTL_S", "3600")),
            max_upload_bytes=int(_get(env, "MAX_UPLOAD_BYTES", str(5 << 30))),
            multipart_threshold_bytes=int(_get(env, "MULTIPART_THRESHOLD_BYTES", str(100 << 20))),
            bucket_name=_get(env, "R2_BUCKET_NAME"),
            s3_endpoint=_get(env, "R2_S3_ENDPOINT"),
            s3=S3Credentials(_get(env, "R2_ACCESS_KEY_ID"), _get(env, "R2_SECRET_ACCESS_KEY")),
            gpu_price_per_hour=float(_get(env, "GPU_PRICE_PER_HOUR", "0")),
            jwt=JwtConfig(jwks_url=_get(env, "JWT_JWKS_URL"), hs256_secret=_get(env, "JWT_HS256_SECRET"),
                          issuer=_get(env, "JWT_ISSUER"), audience=_get(env, "JWT_AUDIENCE"),
                          leeway_s=float(_get(env, "JWT_LEEWAY_S", "60")),
                          header=(_get(env, "JWT_HEADER") or "authorization").lower()),
            jwks_cache_s=float(_get(env, "JWKS_CACHE_S", "600")),
            jwks_min_refetch_s=float(_get(env, "JWKS_MIN_REFETCH_S", "30")),
            signin_url=_get(env, "SIGNIN_URL"),
            embed_origins=tuple(o.strip().rstrip("/") for o in _get(env, "EMBED_ORIGINS").split(",") if o.strip()),
            webhooks=WebhookPolicy(retry_base_s=float(_get(env, "WEBHOOK_RETRY_BASE_S", "5")),
                                   retry_max_s=float(_get(env, "WEBHOOK_RETRY_MAX_S", "21600")),
                                   give_up_after_s=float(_get(env, "WEBHOOK_GIVE_UP_S", "86400")),
                                   timeout_s=float(_get(env, "WEBHOOK_TIMEOUT_S", "10")),
                                   rotation_overlap_s=float(_get(env, "WEBHOOK_ROTATION_OVERLAP_S", "86400")),
                                   allow_loopback=_get(env, "WEBHOOK_ALLOW_LOOPBACK") == "true"),
            retention=RetentionPolicy(upload_ttl_s=float(_get(env, "UPLOAD_TTL_S", str(7 * 86400))),
                                      output_ttl_s=float(_get(env, "OUTPUT_TTL_S", str(30 * 86400))),
                                      multipart_ttl_s=float(_get(env, "MULTIPART_TTL_S", "86400"))),
            metrics_token=_get(env, "METRICS_TOKEN"),
            limits=Limits.read(lambda name, default: _get(env, name, default)),
        )
