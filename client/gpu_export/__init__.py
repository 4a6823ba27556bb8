"""Python client for the GPU export API: `Client` (blocking) and `AsyncClient`, typed with the jobspec
models; `gpu-export` is its command line (gpu_export.cli)."""

from .aio import AsyncClient
from .errors import ApiError, TimedOut, Unavailable
from .sync import Client
from .webhooks import WebhookVerificationError, verify_webhook

__all__ = ["AsyncClient", "Client", "ApiError", "TimedOut", "Unavailable", "verify_webhook",
           "WebhookVerificationError"]
