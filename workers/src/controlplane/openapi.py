"""The OpenAPI 3.1 document of the Worker's API, generated from the route table (controlplane.routes)
and the jobspec models: nothing is kept by hand, so the document cannot drift from the code."""

from __future__ import annotations

import functools
import re

from pydantic import TypeAdapter

from controlplane.http import Route, Router
from jobspec import ErrorBody, JobEvent

TITLE = "GPU export jobs API"
VERSION = "1"
REF = "#/components/schemas/{model}"
TAGS = [("/api/videos", "uploads"), ("/api/jobs", "jobs"), ("/api/exports", "jobs"), ("/api/auth", "accounts"),
        ("/api/pod", "GPU pods"), ("/client", "queue (local development)")]
SECURITY_SCHEMES = {
    "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "a JSON Web Token from the host application's identity provider (or the header "
                            "JWT_HEADER names, e.g. Cf-Access-Jwt-Assertion), or an anonymous token where "
                            "ALLOW_ANONYMOUS: `Authorization: Bearer <token>`"},
    "ticket": {"type": "apiKey", "in": "query", "name": "ticket",
               "description": "a short-lived WebSocket ticket (browsers cannot set headers on a WebSocket)"},
    "pod": {"type": "apiKey", "in": "header", "name": "X-Pod-Signature",
            "description": "`t=<unix time>,n=<nonce>,s=<HMAC-SHA256>` over method, path, time, nonce and the "
                           "body's SHA-256, with WORKER_SECRET (jobspec.pod_signature); a nonce is accepted once"},
    "metrics": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN (GET /metrics only)"},
    "queue": {"type": "http", "scheme": "bearer",
              "description": "the queue's pull token (local development only: production pods pull from "
                             "Cloudflare's Queues API)"},
}


def _adapter(model) -> TypeAdapter:
    return model if isinstance(model, TypeAdapter) else TypeAdapter(model)


def _name(model) -> str:
    return getattr(model, "__name__", None) or "JobSpec"


def _schemas(routes: list[Route]) -> tuple[dict, dict]:
    """(schema of each (model name, mode)), and the components they refer to."""
    inputs = {_name(r.body): r.body for r in routes if r.body is not None}
    outputs = {_name(m): m for r in routes for m in r.answers.values() if m is not None}
    outputs.update({"ErrorBody": ErrorBody, "JobEvent": JobEvent})
    wanted = [(name, "validation", _adapter(m)) for name, m in inputs.items()]
    wanted += [(name, "serialization", _adapter(m)) for name, m in outputs.items()]
    keyed, defs = TypeAdapter.json_schemas(wanted, ref_template=REF)
    components = dict(defs.get("$defs", {}))
    refs = {}
    for (name, mode), schema in keyed.items():
        if "$ref" not in schema:  # a union (the job spec): a component of its own
            components[name] = schema
            schema = {"$ref": REF.format(model=name)}
        refs[(name, mode)] = schema
    return refs, components


def _operation(route: Route, refs: dict) -> dict:
    summary = route.summary or (route.handler.__doc__ or "").strip().split("\n")[0] or route.pattern
    op = {"operationId": _operation_id(route), "summary": summary, "tags": [_tag(route.pattern)],
          "parameters": _parameters(route), "responses": {}}
    if route.auth:
        op["security"] = [{route.auth: []}]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(_name(route.body), "validation")]}}}
    for status, model in sorted(route.answers.items()):
        answer = {"description": _STATUS_WORDS.get(status, "OK")}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[(_name(model), "serialization")]}}
        op["responses"][str(status)] = answer
    op["responses"]["4XX"] = {"description": "refused: the reason is in the body", "content": {
        "application/json": {"schema": refs[("ErrorBody", "serialization")]}}}
    return op


def _tag(pattern: str) -> str:
    for prefix, tag in TAGS:
        if pattern.startswith(prefix):
            return tag
    return "service"


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.pattern).strip("/").replace(".", "_").replace("-", "_").split("/")
    return "_".join([route.method.lower()] + [w for w in words if w not in ("api", "client", "v4")])


def _parameters(route: Route) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in re.findall(r"\{(\w+)\}", route.pattern)]
    params += [{"name": name, "in": "query", "required": route.auth == "ticket" and name == "ticket",
                "description": text, "schema": {"type": "string"}} for name, text in route.query.items()]
    return params


_STATUS_WORDS = {200: "OK", 201: "created", 202: "accepted", 101: "switching to the WebSocket protocol: a "
                 "`snapshot`, then one JobEvent per change (see the JobEvent schema)", 302: "a redirect to the file",
                 426: "not a WebSocket upgrade request"}


@functools.cache
def _paths_and_components(router: Router) -> tuple[dict, dict]:
    refs, components = _schemas(router.routes)
    paths: dict = {}
    for route in router.routes:
        paths.setdefault(route.pattern, {})[route.method.lower()] = _operation(route, refs)
    return paths, components


def document(router: Router, server_url: str) -> dict:
    paths, components = _paths_and_components(router)
    return {"openapi": "3.1.0",
            "info": {"title": TITLE, "version": VERSION,
                     "description": "Errors are JSON `{error, reason}` with a 4xx status. Another user's job, "
                                    "upload or socket is a 404, like one that does not exist."},
            "servers": [{"url": server_url}],
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES}}
