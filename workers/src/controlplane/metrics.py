"""GET /metrics: Prometheus text format, behind a bearer token (METRICS_TOKEN); and the counters in D1
(`counters`) for the totals no other table holds: lease expiries, webhook attempts, retention."""

from __future__ import annotations

from controlplane import auth
from controlplane.http import Call, HttpError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# counter name in D1 -> (metric, labels, help)
COUNTERS = {
    "lease_expiries": ("export_lease_expiries_total", "", "Leases taken back from pods that stopped heart-beating."),
    "webhook_attempts": ("export_webhook_attempts_total", "", "Webhook delivery attempts."),
    "webhook_deliveries_ok": ("export_webhook_deliveries_total", '{result="delivered"}',
                              "Webhook deliveries, by final result."),
    "webhook_deliveries_failed": ("export_webhook_deliveries_total", '{result="failed"}', None),
    "webhook_attempts_failed": ("export_webhook_attempts_failed_total", "",
                                "Webhook attempts that failed and were scheduled again."),
    "retention_uploads_deleted": ("export_retention_deleted_total", '{kind="upload"}',
                                  "Objects deleted by the retention sweep."),
    "retention_outputs_deleted": ("export_retention_deleted_total", '{kind="output"}', None),
    "retention_checkpoints_deleted": ("export_retention_deleted_total", '{kind="checkpoint"}', None),
    "retention_multipart_aborted": ("export_retention_deleted_total", '{kind="multipart_upload"}', None),
}


async def count(d1, *names: str, by: float = 1) -> None:
    """Add `by` to each named counter. A metric is not worth failing the caller for."""
    try:
        await d1.batch([("INSERT INTO counters (name, value) VALUES (?, ?)"
                         " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))
                        for name in names])
    except Exception as e:
        print(f"counter {', '.join(names)} not counted: {e}")


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def prometheus_text(health: dict, counters: dict) -> str:
    lines = []

    def metric(name, kind, help_text, samples):
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

    metric("export_jobs", "gauge", "Jobs by status.",
           [(f'{{status="{s}"}}', n) for s, n in sorted(health["by_status"].items())])
    metric("export_queue_backlog", "gauge", "Jobs waiting for a GPU pod.", [("", health["by_status"].get("pending", 0))])
    metric("export_live_pods", "gauge", "Pods heard from within the lease timeout.", [("", health["live_pods"])])
    metric("export_gpu_seconds_total", "counter", "GPU time reported by pods.", [("", health["gpu_seconds"])])
    metric("export_dead_letters_total", "counter", "Jobs that ran out of attempts.", [("", health["dead_letters"])])
    by_metric: dict[str, list] = {}
    for name, (metric_name, labels, help_text) in COUNTERS.items():
        entry = by_metric.setdefault(metric_name, [help_text, []])
        entry[0] = entry[0] or help_text
        entry[1].append((labels, counters.get(name, 0)))
    for metric_name, (help_text, samples) in by_metric.items():
        metric(metric_name, "counter", help_text, samples)
    return "\n".join(lines) + "\n"


def check_token(call: Call) -> None:
    expected = call.settings.metrics_token
    if not expected:
        raise HttpError(404, "not_found", "metrics are disabled on this deployment (set the METRICS_TOKEN secret)")
    given = call.bearer()
    if not given or not auth.same(given, expected):
        raise HttpError(401, "unauthorized", "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>",
                        {"www-authenticate": "Bearer"})


async def endpoint(call: Call):
    from controlplane import bindings  # the JS edge; the rest of this module runs on CPython too
    from controlplane.store import Store

    check_token(call)
    d1 = bindings.D1(call.env.DB)
    health = await Store(d1).health(call.now, call.settings.policy.lease_timeout_s)
    counters = {r["name"]: r["value"] for r in await d1.all("SELECT name, value FROM counters")}
    return bindings.text_response(prometheus_text(health, counters), CONTENT_TYPE)
