"""GET /metrics' text, read back by prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families

from controlplane import metrics


def test_prometheus_text_parses_with_every_family():
    health = {"by_status": {"pending": 2, "processing": 1, "complete": 5, "error": 0, "cancelled": 1},
              "gpu_seconds": 12.5, "live_pods": 3, "dead_letters": 1}
    text = metrics.prometheus_text(health, {"lease_expiries": 4, "webhook_deliveries_ok": 7,
                                            "webhook_deliveries_failed": 1, "webhook_attempts": 10})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("export_jobs", (("status", "pending"),))] == 2
    assert samples[("export_queue_backlog", ())] == 2
    assert samples[("export_live_pods", ())] == 3
    assert samples[("export_gpu_seconds_total", ())] == 12.5
    assert samples[("export_lease_expiries_total", ())] == 4
    assert samples[("export_webhook_deliveries_total", (("result", "delivered"),))] == 7
    assert samples[("export_webhook_deliveries_total", (("result", "failed"),))] == 1
    assert samples[("export_webhook_attempts_failed_total", ())] == 0
    assert families["export_jobs"].type == "gauge" and families["export_gpu_seconds"].type == "counter"
