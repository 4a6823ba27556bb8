"""Request plumbing shared by the API modules: errors with reasons, JSON bodies, routing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from pydantic import ValidationError

from controlplane import safe_json
from jobspec import MAX_REQUEST_BYTES, error_summary

MAX_BODY_BYTES = 4 * MAX_REQUEST_BYTES  # refused before parsing; JSON bodies have the tighter limit


class HttpError(Exception):
    """Becomes {"error": code, "reason": reason} with this status."""

    def __init__(self, status: int, code: str, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.status, self.code, self.reason, self.headers = status, code, reason, headers or {}


def not_found(what: str = "job") -> HttpError:
    return HttpError(404, "not_found", f"no such {what}")


def parse_json(text: str, limit: int = MAX_REQUEST_BYTES):
    """A JSON body, measured before it is parsed (safe_json): too large is a 413, too deep a 400."""
    if not text.strip():
        raise HttpError(400, "malformed_json", "request body must be a JSON object")
    try:
        return safe_json.loads(text, limit)
    except safe_json.Refused as e:
        raise HttpError(413 if e.code == "too_large" else 400, e.code, e.reason) from None


def validate(model_or_adapter, data):
    """Validate with a pydantic model or TypeAdapter; a failure is a 422 naming every bad field."""
    try:
        if hasattr(model_or_adapter, "validate_python"):
            return model_or_adapter.validate_python(data)
        return model_or_adapter.model_validate(data)
    except ValidationError as e:
        raise HttpError(422, "invalid_request", error_summary(e)) from None


@dataclass
class Call:
    """One API request, with what handlers need from it."""

    env: object
    settings: object
    method: str
    path: str
    query: dict
    headers: object
    body: str
    origin: str
    now: float
    params: dict = field(default_factory=dict)
    raw: object = None  # the runtime's Request, for the WebSocket hand-over
    identity: tuple[str, dict] | None = None  # (user id, JWT claims) once the caller is identified

    @property
    def user_id(self) -> str | None:
        return self.identity[0] if self.identity else None

    def json(self):
        return parse_json(self.body)

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def bearer(self) -> str | None:
        """The token in `Authorization: Bearer <token>`, if that is what the header holds."""
        value = self.header("authorization") or ""
        return value[len("Bearer "):].strip() if value.startswith("Bearer ") else None

    def query_one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


Handler = Callable[[Call], Awaitable[object]]

# Who may call a route: a user's credential, a WebSocket ticket, a pod's signature, the queue's pull
# token, the metrics token, or anyone (None).
AUTH_KINDS = (None, "user", "ticket", "pod", "queue", "metrics")


@dataclass(frozen=True)
class Route:
    """One route and what the OpenAPI document says of it (controlplane.openapi)."""

    method: str
    pattern: str
    handler: Handler
    auth: str | None = "user"
    body: object = None  # the pydantic model or TypeAdapter the JSON body is validated with
    answers: dict = field(default_factory=dict)  # status -> model of the answer (None: no JSON body)
    query: dict = field(default_factory=dict)  # query parameter -> description
    summary: str = ""  # one line for the document (default: the handler's docstring)

    @property
    def regex(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$")


class Router:
    def __init__(self):
        self.routes: list[Route] = []
        self._compiled: list[tuple[re.Pattern, Route]] = []

    def add(self, method: str, pattern: str, handler: Handler, **doc) -> None:
        route = Route(method, pattern, handler, **doc)
        if route.auth not in AUTH_KINDS:
            raise ValueError(f"unknown auth {route.auth!r} for {method} {pattern}")
        self.routes.append(route)
        self._compiled.append((route.regex, route))

    def match(self, method: str, path: str) -> tuple[Handler, dict, str]:
        """(handler, path parameters, the route's pattern)."""
        allowed = []
        for regex, route in self._compiled:
            m = regex.match(path)
            if m:
                if route.method == method:
                    return route.handler, m.groupdict(), route.pattern
                allowed.append(route.method)
        if allowed:
            raise HttpError(405, "method_not_allowed", f"{method} not allowed here (allowed: {', '.join(allowed)})",
                            {"allow": ", ".join(allowed)})
        raise HttpError(404, "not_found", f"no route for {method} {path}")
