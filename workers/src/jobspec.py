"""The one schema shared by the Worker (Pyodide) and the GPU worker (CPython).

Everything that crosses a process boundary is described here: the job a user submits, the
queue message, the pod <-> control-plane protocol, the checkpoint manifest in R2 and the
WebSocket events. Pure pydantic + stdlib, so it imports under both runtimes.

Coordinates are normalised to the source frame (0..1) so a job does not depend on the input's
resolution; times are seconds from the start of the (clip's) source video.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

SCHEMA_VERSION = 1

MAX_KEYFRAMES = 2000
MAX_REGIONS = 16
MAX_CLIPS = 50
MAX_OUTPUT_SIDE = 3840
MAX_REQUEST_BYTES = 256 * 1024
MAX_REASON_CHARS = 2000
# D1 binds JavaScript numbers. Pyodide passes an int as a Number only below Number.MAX_SAFE_INTEGER
# (2**53 - 1), from there on as a BigInt, which D1 refuses: an integer field stored in D1 stays below.
MAX_D1_INTEGER = 2**53 - 2

JobType = Literal["framing", "overlay", "multi_clip"]
Easing = Literal["linear", "ease_in", "ease_out", "ease_in_out", "hold"]
UpscaleModel = Literal["none", "realesr-animevideov3", "realesr-general-x4v3", "realesrgan-x4plus"]
EncoderCodec = Literal["libx264", "h264_nvenc"]

# Upload keys are videos/raw/<user>/<upload id>/<file name>; nothing else may be an input.
UPLOAD_PREFIX = "videos/raw/"
_KEY_RE = re.compile(r"^videos/raw/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9._-]{1,128}$")
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
    if ".." in key or not _KEY_RE.match(key):
        raise ValueError("must be an uploaded video key: videos/raw/<user>/<upload id>/<file name>")
    return key


InputKey = Annotated[str, Field(min_length=1, max_length=300)]


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


class FramingParams(Strict):
    crop_keyframes: list[CropKeyframe] = Field(min_length=1, max_length=MAX_KEYFRAMES)
    output_width: Side = 1080
    output_height: Side = 1920
    upscale_model: UpscaleModel = "realesr-animevideov3"

    _increasing = field_validator("crop_keyframes")(_check_increasing_times)
    _even = field_validator("output_width", "output_height")(_even_side)


class Clip(Strict):
    input_video_key: InputKey
    start_s: Time = 0.0
    end_s: Optional[Annotated[float, Field(gt=0, le=24 * 3600, allow_inf_nan=False)]] = None
    title: str = Field(default="", max_length=200)
    framing: Optional[FramingParams] = None
    overlay: Optional[OverlayParams] = None

    _key = field_validator("input_video_key")(validate_input_key)

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


class _JobBase(Strict):
    project_id: Optional[int] = Field(default=None, ge=0, le=MAX_D1_INTEGER)
    input_video_key: InputKey

    _key = field_validator("input_video_key")(validate_input_key)


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


def input_keys(spec) -> list[str]:
    """Every R2 object a job reads."""
    return spec.input_keys if isinstance(spec, MultiClipJob) else [spec.input_video_key]


# ---------------------------------------------------------------- public API bodies


class UploadRequest(Strict):
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)
    size_bytes: int = Field(gt=0)


class MultipartCompleteRequest(Strict):
    key: InputKey
    upload_id: str = Field(min_length=1, max_length=1024)
    parts: list["CompletedPart"] = Field(min_length=1, max_length=10000)

    _key = field_validator("key")(validate_input_key)


class CompletedPart(Strict):
    part_number: int = Field(ge=1, le=10000)
    etag: str = Field(min_length=1, max_length=200)


class MultipartAbortRequest(Strict):
    key: InputKey
    upload_id: str = Field(min_length=1, max_length=1024)

    _key = field_validator("key")(validate_input_key)


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
    encoders: list[EncoderCodec] = Field(default_factory=lambda: ["libx264"], max_length=8)
    gpu: str = Field(default="", max_length=100)


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
    stage: str = Field(default="render", max_length=40)


class CheckpointSaved(LeaseReport):
    frame: FrameNumber
    total_frames: FrameCount
    segments: FrameNumber
    manifest_key: str = Field(max_length=300)


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
