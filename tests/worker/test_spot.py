"""What counts as a spot notice, asked of a metadata endpoint served on 127.0.0.1."""

from __future__ import annotations

import pytest

from gpu_worker.spot import MetadataPoller, StopNotice, imds_token_url


@pytest.mark.parametrize("token", [None, "imdsv2-token"], ids=["no-token", "imdsv2"])
@pytest.mark.parametrize("answer, notice", [
    ((404, "Not Found"), False),  # AWS, no notice
    ((200, '{"action": "stop", "time": "2026-11-23T10:00:00Z"}'), True),  # AWS notice
    ((200, "FALSE"), False),  # GCP, no notice
    ((200, "TRUE"), True),  # GCP notice
    ((500, "oops"), False),
])
def test_metadata_answers(metadata, token, answer, notice):
    metadata.answer, metadata.token = answer, token
    assert MetadataPoller(metadata.url, StopNotice()).check() is notice


def test_imdsv2_token_is_reused_and_renewed_when_refused(metadata):
    metadata.answer, metadata.token = (200, '{"action": "stop"}'), "first"
    poller = MetadataPoller(metadata.url, StopNotice())
    assert poller.check() and poller.check()
    assert metadata.token_puts == 1
    metadata.token = "second"  # the old token expired or was revoked: a 401, then a new token
    assert poller.check()
    assert metadata.token_puts == 2


def test_gcp_url_asks_for_no_token(metadata):
    assert imds_token_url(metadata.url) == f"http://127.0.0.1:{metadata.server_port}/latest/api/token"
    assert imds_token_url("http://metadata.google.internal/computeMetadata/v1/instance/preempted") is None


def test_unreachable_metadata_is_no_notice(metadata):
    url = metadata.url
    metadata.shutdown()
    metadata.server_close()
    assert MetadataPoller(url, StopNotice()).check() is False


def test_poller_gives_the_notice(metadata):
    notice = StopNotice()
    poller = MetadataPoller(metadata.url, notice, interval_s=0.05)
    poller.start()
    assert not notice.wait(0.3)
    metadata.answer = (200, "TRUE")
    assert notice.wait(5) and notice.reason == "spot interruption notice"
    poller.join(5)
    assert not poller.is_alive()
