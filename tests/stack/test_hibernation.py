"""A subscriber's socket outlives the Durable Object's hibernation and still gets events."""

import time

from .conftest import Socket
from .test_recovery import started_job


def test_socket_survives_hibernation(api, queue, pod):
    job_id, grant = started_job(api, queue, pod)
    sock = Socket(api.socket_url(job_id).websocket_url)
    assert sock.next()["type"] == "snapshot"
    sock.ws.send('{"type": "ping"}')
    born_before = sock.next()["instance_born"]
    pod.report(job_id, "fail", grant.lease_id, reason="x", retryable=False)  # no alarm keeps the DO awake
    assert sock.next()["type"] == "error"
    time.sleep(12)  # idle > 10 s: workerd hibernates the object (constructor runs again on wake)
    assert api.retry(job_id).status == "pending"
    event = sock.next()
    assert event["type"] == "requeued" and event["seq"] > 0
    sock.ws.send('{"type": "subscribe"}')
    assert sock.next()["job"]["status"] == "pending"
    sock.ws.send('{"type": "ping"}')
    assert sock.next()["instance_born"] > born_before  # the object was rebuilt: it had hibernated
    sock.close()
