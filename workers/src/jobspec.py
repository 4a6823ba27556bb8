"""The one schema shared by the Worker (Pyodide) and the GPU worker (CPython).

Everything that crosses a process boundary is described here: the job a user submits, the
queue message, the pod <-> control-plane protocol, the checkpoint manifest in R2 and the
WebSocket events. Pure pydantic + stdlib, so it imports under both runtimes.

Coordinates are normalised to the source frame as a player shows it (0..1; after a phone video's
rotation) so a job does not depend on the input's resolution or how it was stored; times are seconds
from the start of the (clip's) source video.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

SCHEMA_VERSION = 1

MAX_KEYFRAMES = 2000
MAX_REGIONS = 16
MAX_CLIPS = 50
MAX_OUTPUT_SIDE = 3840
MAX_OUTPUT_PIXELS = 3840 * 2160  # the output's area: 4K UHD either way up
MAX_JOB_SECONDS = 2 * 3600  # the clips' total length, where their ends are given (pods check the rest)
MAX_REQUEST_BYTES = 256 * 1024
MAX_REASON_CHARS = 2000
# D1 binds JavaScript numbers. Pyodide passes an int as a Number only below Number.MAX_SAFE_INTEGER
# (2**53 - 1), from there on as a BigInt, which D1 refuses: an integer field stored in D1 stays below.
MAX_D1_INTEGER = 2**53 - 2

JobType = Literal["framing", "overlay", "multi_clip"]
Easing = Literal["linear", "ease_in", "ease_out", "ease_in_out", "hold"]
UpscaleModel = Literal["none", "realesr-animevideov3", "realesrgan-x4plus"]  # each has pinned weights (fetch_weights.py)
EncoderCodec = Literal["libx264", "h264_nvenc"]

# Upload keys are videos/raw/<user>/<upload id>/<file name>; nothing else may be an input.
UPLOAD_PREFIX = "videos/raw/"
_KEY_RE = re.compile(r"^(?!.*\.\.)videos/raw/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9._-]{1,128}$")
_ID_RE = r"^[A-Za-z0-9_.:-]{1,128}$"


class Strict(BaseModel):
    """Unknown fields are an error: a typo in a parameter must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


Time = Annotated[float, Field(ge=0, le=24 * 3600, allow_inf_nan=False)]
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
PositiveUnit = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


def _check_increasing_times(keyframes: list) -> list:
    for a, b in zip(keyframes, keyframes[1:]):
        if b.t <= a.t:
            raise ValueError(f"keyframe times must increase strictly (t={b.t} follows t={a.t})")
    return keyframes


def validate_input_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise ValueError("must be an uploaded video key: videos/raw/<user>/<upload id>/<file name>")
    return key


# Checked by validate_input_key (its reason reads better than a pattern's); the schema shows the pattern.
InputKey = Annotated[str, Field(min_length=1, max_length=300, json_schema_extra={"pattern": _KEY_RE.pattern}),
                     AfterValidator(validate_input_key)]


# ---------------------------------------------------------------- job parameters


class HighlightKeyframe(Strict):
    """An ellipse spotlight: centre (x, y) and radii (rx, ry), as fractions of width/height."""

    t: Time
    x: Unit
    y: Unit
    rx: PositiveUnit
    ry: PositiveUnit
    easing: Easing = "linear"


class HighlightRegion(Strict):
    keyframes: list[HighlightKeyframe] = Field(min_length=1, max_length=MAX_KEYFRAMES)
    dim: Unit = 0.6  # how much the rest of the frame is darkened (0 = not at all, 1 = black)
    feather: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.02

    _increasing = field_validator("keyframes")(_check_increasing_times)


class OverlayParams(Strict):
    highlight_regions: list[HighlightRegion] = Field(min_length=1, max_length=MAX_REGIONS)


class CropKeyframe(Strict):
    """A crop rectangle: top-left (x, y) and size (w, h), as fractions of the source frame."""

    t: Time
    x: Unit
    y: Unit
    w: PositiveUnit
    h: PositiveUnit
    easing: Easing = "linear"

    @model_validator(mode="after")
    def _inside_frame(self):
        if self.x + self.w > 1 + 1e-9 or self.y + self.h > 1 + 1e-9:
            raise ValueError(f"crop at t={self.t} leaves the frame (x+w and y+h must be <= 1)")
        return self


def _even_side(v: int) -> int:
    if v % 2:
        raise ValueError("must be even (yuv420p needs even dimensions)")
    return v


Side = Annotated[int, Field(ge=16, le=MAX_OUTPUT_SIDE)]


def _check_area(width: Optional[int], height: Optional[int]) -> None:
    if width and height and width * height > MAX_OUTPUT_PIXELS:
        raise ValueError(f"the output is {width}x{height} = {width * height} pixels; "
                         f"the limit is {MAX_OUTPUT_PIXELS} pixels (3840x2160)")


class FramingParams(Strict):
    crop_keyframes: list[CropKeyframe] = Field(min_length=1, max_length=MAX_KEYFRAMES)
    output_width: Side = 1080
    output_height: Side = 1920
    upscale_model: UpscaleModel = "realesr-animevideov3"

    _increasing = field_validator("crop_keyframes")(_check_increasing_times)
    _even = field_validator("output_width", "output_height")(_even_side)

    @model_validator(mode="after")
    def _area(self):
        _check_area(self.output_width, self.output_height)
        return self


class Clip(Strict):
    input_video_key: InputKey
    start_s: Time = 0.0
    end_s: Optional[Annotated[float, Field(gt=0, le=24 * 3600, allow_inf_nan=False)]] = None
    title: str = Field(default="", max_length=200)
    framing: Optional[FramingParams] = None
    overlay: Optional[OverlayParams] = None

    @model_validator(mode="after")
    def _in_before_out(self):
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"clip end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class MultiClipParams(Strict):
    clips: list[Clip] = Field(min_length=1, max_length=MAX_CLIPS)
    output_width: Optional[Side] = None  # default: the first clip's (framed) size
    output_height: Optional[Side] = None

    _even = field_validator("output_width", "output_height")(
        lambda v: v if v is None else _even_side(v)
    )

    @model_validator(mode="after")
    def _caps(self):
        _check_area(self.output_width, self.output_height)
        known = sum(c.end_s - c.start_s for c in self.clips if c.end_s is not None)
        if known > MAX_JOB_SECONDS:
            raise ValueError(f"the clips last {known:.0f} seconds together; the limit is {MAX_JOB_SECONDS} seconds")
        return self


class _JobBase(Strict):
    project_id: Optional[int] = Field(default=None, ge=0, le=MAX_D1_INTEGER)
    input_video_key: InputKey


class OverlayJob(_JobBase):
    type: Literal["overlay"]
    params: OverlayParams


class FramingJob(_JobBase):
    type: Literal["framing"]
    params: FramingParams


class MultiClipJob(Strict):
    type: Literal["multi_clip"]
    project_id: Optional[int] = Field(default=None, ge=0, le=MAX_D1_INTEGER)
    params: MultiClipParams

    @property
    def input_keys(self) -> list[str]:
        return [c.input_video_key for c in self.params.clips]


JobSpec = Annotated[Union[OverlayJob, FramingJob, MultiClipJob], Field(discriminator="type")]
JOB_SPEC = TypeAdapter(JobSpec)


# ---------------------------------------------------------------- creating a job: the spec and its webhook

WebhookEvent = Literal["completed", "failed", "cancelled", "progress"]
MAX_WEBHOOK_URL_CHARS = 2000


class WebhookRequest(Strict):
    """Signed notifications of the job's events (Standard Webhooks), sent to webhook_url; by default for
    completed, failed and cancelled."""

    webhook_url: Optional[str] = Field(default=None, min_length=1, max_length=MAX_WEBHOOK_URL_CHARS)
    webhook_events: Optional[list[WebhookEvent]] = Field(default=None, min_length=1, max_length=4)


class OverlayJobRequest(OverlayJob, WebhookRequest):
    pass


class FramingJobRequest(FramingJob, WebhookRequest):
    pass


class MultiClipJobRequest(MultiClipJob, WebhookRequest):
    pass


# The body of POST /api/jobs: a job spec, and optionally where to send its webhooks.
CreateJob = Annotated[Union[OverlayJobRequest, FramingJobRequest, MultiClipJobRequest], Field(discriminator="type")]
CREATE_JOB = TypeAdapter(CreateJob)


def spec_and_webhook(request) -> tuple[dict, WebhookRequest]:
    """A validated POST /api/jobs body as (the job spec, as JSON, for the job and its pods; its webhook)."""
    webhook_fields = set(WebhookRequest.model_fields)
    return (request.model_dump(mode="json", exclude=webhook_fields),
            WebhookRequest(**{k: getattr(request, k) for k in webhook_fields}))


def input_keys(spec) -> list[str]:
    """Every R2 object a job reads."""
    return spec.input_keys if isinstance(spec, MultiClipJob) else [spec.input_video_key]


# ---------------------------------------------------------------- public API bodies


VideoType = Literal["video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/mpeg"]


class UploadRequest(Strict):
    filename: str = Field(min_length=1, max_length=255)
    content_type: VideoType
    size_bytes: int = Field(gt=0)


class MultipartCompleteRequest(Strict):
    key: InputKey
    upload_id: str = Field(min_length=1, max_length=1024)
    parts: list["CompletedPart"] = Field(min_length=1, max_length=10000)


class CompletedPart(Strict):
    part_number: int = Field(ge=1, le=10000)
    etag: str = Field(min_length=1, max_length=200)


class MultipartAbortRequest(Strict):
    key: InputKey
    upload_id: str = Field(min_length=1, max_length=1024)


class VideoViewRequest(Strict):
    key: InputKey


class MarkSeenRequest(Strict):
    job_ids: list[str] = Field(min_length=1, max_length=200)


# ---------------------------------------------------------------- queue and pod protocol


# Bounds on what pods report. A report is data for D1 and /health, not only for a progress bar: a
# number D1 or a JavaScript number cannot hold, or a sum that overflows, breaks them for everyone.
MAX_FRAMES = 2**31 - 1  # frames of one job: far beyond any render, exact in D1 and in JavaScript
MAX_FPS = 100_000.0
MAX_REPORTED_SECONDS = 30 * 24 * 3600.0  # an eta, or the GPU time of one attempt
MAX_OUTPUT_BYTES = 5 << 40  # R2's largest object is just under 5 TiB
_LEASE_ID_RE = r"^[A-Za-z0-9_-]{1,64}$"  # the control plane's lease ids; they name the lease's output key

FrameNumber = Annotated[int, Field(ge=0, le=MAX_FRAMES)]
FrameCount = Annotated[int, Field(gt=0, le=MAX_FRAMES)]
ReportedSeconds = Annotated[float, Field(ge=0, le=MAX_REPORTED_SECONDS, allow_inf_nan=False)]
GpuSeconds = ReportedSeconds


class QueueMessage(Strict):
    """The body of a gpu-jobs queue message: only a pointer; the job's DO holds the truth."""

    job_id: str = Field(pattern=_ID_RE)
    attempt: int = Field(ge=0)


class PodIdentity(Strict):
    pod_id: str = Field(pattern=_ID_RE)


class ClaimGrant(BaseModel):
    job_id: str
    lease_id: str
    attempt: int
    resume_count: int
    spec: dict  # a JobSpec as JSON: validate with JOB_SPEC
    checkpoint_prefix: str
    output_key: str
    heartbeat_interval_s: float
    lease_timeout_s: float


class LeaseReport(Strict):
    lease_id: str = Field(pattern=_LEASE_ID_RE)


class Heartbeat(LeaseReport):
    pass


class Progress(LeaseReport):
    frame: FrameNumber
    total_frames: FrameCount
    fps: Annotated[float, Field(ge=0, le=MAX_FPS, allow_inf_nan=False)] = 0.0
    eta_s: Optional[ReportedSeconds] = None


class CheckpointSaved(LeaseReport):
    frame: FrameNumber
    total_frames: FrameCount


class Completed(LeaseReport):
    output_key: str = Field(max_length=300)  # must be the one granted with the lease
    frames: FrameCount
    size_bytes: int = Field(gt=0, le=MAX_OUTPUT_BYTES)
    gpu_seconds: GpuSeconds = 0.0


class Failed(LeaseReport):
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    retryable: bool = False
    gpu_seconds: GpuSeconds = 0.0


class Interrupted(LeaseReport):
    frame: FrameNumber
    reason: str = Field(default="spot interruption", max_length=200)
    gpu_seconds: GpuSeconds = 0.0


POD_REPORTS = {
    "heartbeat": Heartbeat,
    "progress": Progress,
    "checkpoint": CheckpointSaved,
    "complete": Completed,
    "fail": Failed,
    "interrupted": Interrupted,
}


# ---------------------------------------------------------------- checkpoint manifest (R2)


class EncoderSettings(BaseModel):
    codec: EncoderCodec
    width: int
    height: int
    fps_num: int
    fps_den: int
    quality: int  # crf for libx264, cq for nvenc
    preset: str


class SegmentRecord(BaseModel):
    index: int
    key: str
    first_frame: int
    frames: int
    sha256: str
    size_bytes: int
    encoder: EncoderSettings


class CheckpointManifest(BaseModel):
    """checkpoints/<job>/manifest.json. Segments are uploaded before the manifest that lists them,
    so a manifest never points at a missing object."""

    version: int = SCHEMA_VERSION
    job_id: str
    frame: int  # frames [0, frame) are done and stored
    total_frames: int
    segment_frames: int
    segments: list[SegmentRecord] = Field(default_factory=list)
    resume_count: int = 0
    pod_id: str = ""
    updated_at: float = 0.0


# ---------------------------------------------------------------- request signing (pods)

SIGNATURE_HEADER = "X-Pod-Signature"
SIGNATURE_MAX_SKEW_S = 60


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def pod_signature(secret: str, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 over the request; the same function signs (GPU worker) and verifies (Worker)."""
    msg = "\n".join([method.upper(), path, str(timestamp), nonce, body_digest(body)])
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def format_signature_header(timestamp: int, nonce: str, signature: str) -> str:
    return f"t={timestamp},n={nonce},s={signature}"


def parse_signature_header(value: str) -> tuple[int, str, str]:
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        return int(parts["t"]), parts["n"], parts["s"]
    except (KeyError, ValueError):
        raise ValueError("malformed signature header") from None


def error_summary(exc) -> str:
    """A pydantic ValidationError as one readable line per problem: 'params.x: reason'."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("function-after",))
        lines.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(lines)


# ---------------------------------------------------------------- public API answers and events
# What the API answers, for the OpenAPI document and the client. Unknown fields are kept (extra="allow"),
# so a client keeps working when the API adds a field.


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


JobStatus = Literal["pending", "processing", "complete", "error", "cancelled"]


class CheckpointView(Answer):
    frame: int
    total_frames: Optional[int]
    resume_count: int


class JobTiming(Answer):
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    processing_seconds: Optional[float]


class JobView(Answer):
    """A job as its owner sees it (API answers, and `job` in every WebSocket event)."""

    job_id: str
    type: JobType
    status: JobStatus
    progress: float = Field(description="0..100; 100 only once the output is stored")
    frame: int
    total_frames: Optional[int]
    fps: float
    eta_s: Optional[float]
    checkpoint: Optional[CheckpointView]
    attempts: int
    resume_count: int
    interruptions: int
    error: Optional[str]
    output_ready: bool
    output_bytes: Optional[int]
    expires_at: Optional[str] = Field(description="when the output is deleted (retention); a download after "
                                                  "it is a 410")
    gpu_seconds: float
    seq: int
    timing: JobTiming

    @property
    def terminal(self) -> bool:
        return self.status in ("complete", "error", "cancelled")


class ErrorBody(Answer):
    error: str = Field(description="a stable code, e.g. not_found")
    reason: str = Field(description="what went wrong, in words")


class UploadGrant(Answer):
    upload_url: str
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="send these headers with the PUT")
    video_key: str
    expires_at: str


class PartGrant(Answer):
    part_number: int
    size_bytes: int
    url: str


class MultipartGrant(Answer):
    video_key: str
    upload_id: str
    parts: list[PartGrant]
    expires_at: str


class UploadDone(Answer):
    video_key: str
    size_bytes: int


class Aborted(Answer):
    aborted: bool


class CreatedJob(Answer):
    job_id: str
    status: JobStatus
    websocket_url: str
    websocket_ticket_expires_at: str
    job: JobView
    estimated_wait_seconds: Optional[float]
    idempotent_replay: bool


class JobPage(Answer):
    jobs: list[JobView]
    next_cursor: Optional[str]


class DownloadGrant(Answer):
    url: str
    expires_at: str
    size_bytes: Optional[int]


class SocketGrant(Answer):
    websocket_url: str
    expires_at: str


class ActiveExports(Answer):
    active: list[JobView]
    finished_while_away: list[JobView]


class Marked(Answer):
    marked: int


class NewUser(Answer):
    user_id: str
    token: str


class Health(Answer):
    ok: bool
    queue_backlog: int
    by_status: dict[str, int]
    gpu_seconds: float
    live_pods: int
    dead_letters: int
    estimated_gpu_cost_usd: float


EventType = Literal["snapshot", "started", "progress", "checkpoint", "resumed", "requeued", "complete", "error",
                    "cancelled"]


class JobEvent(Answer):
    """A message on a job's WebSocket: what happened, and `job`, the whole job as it is after it.
    Besides `type`, an event carries only what the job does not say: `pod_id` (started, resumed); `cause`,
    `reason`, `delay_s` and `max_attempts` (requeued). `seq` grows by one per event; a snapshot repeats the
    latest."""

    type: EventType
    job_id: str
    seq: int
    job: JobView
    pod_id: Optional[str] = None
    cause: Optional[Literal["interrupted", "lease_expired", "failed", "retried"]] = None
    reason: Optional[str] = None
    delay_s: Optional[float] = None
    max_attempts: Optional[int] = None


class ServiceConfig(Answer):
    """What a client needs to know before it uploads or signs in (no secrets)."""

    max_upload_bytes: int
    multipart_threshold_bytes: int = Field(description="files larger than this upload in parts (multipart)")
    allow_anonymous: bool = Field(description="whether POST /api/auth/anonymous gives accounts")
    signin_url: Optional[str] = Field(description="where the page sends a person to sign in (None: not set)")
    embed_origins: list[str] = Field(description="embedding pages that may hand the page a token (postMessage)")
    token_header: str = Field(description="the header a signed-in request carries its token in")


class Account(Answer):
    user_id: str
    name: str
    anonymous: bool


class WebhookSecret(Answer):
    secret: str = Field(description="whsec_<base64 key>: shown once")
    previous_secret_valid_until: Optional[str]
    note: str


class WebhookAttempt(Answer):
    n: int
    at: Optional[str]
    status_code: Optional[int]
    error: Optional[str]
    duration_ms: Optional[float]


class WebhookDelivery(Answer):
    webhook_id: str = Field(description="the webhook-id header: the same on every attempt")
    event: WebhookEvent
    status: str
    created_at: Optional[str]
    delivered_at: Optional[str]
    next_attempt_at: Optional[str]
    attempts: list[WebhookAttempt]


class WebhookDeliveries(Answer):
    webhook: Optional[dict]
    deliveries: list[WebhookDelivery]


class PodReply(Answer):
    """The answer to a pod's report: the job's status; `ignored` (with a reason) for a repeat or a stale
    report, which changes nothing. A refusal (the lease is not this pod's) is a 409 error instead."""

    status: JobStatus
    ignored: bool = False
    reason: Optional[str] = None


class WebhookPayload(Answer):
    """The body of a webhook delivery: `type` job.completed, job.failed, job.cancelled or job.progress,
    and `data`, the JobEvent the job's WebSocket sends for the same change."""

    type: str
    timestamp: str
    data: JobEvent
