"""User B against user A's jobs, uploads, outputs and sockets (beyond tests/stack/test_api_contract.py):
every way in is refused, refused exactly like a job or key that does not exist (no existence oracle),
and A's things are unchanged afterwards."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from controlplane import auth

from .conftest import completed_job, is_error, r2_keys
from tests.api_helpers import overlay_job, refusal, video_bytes


def refused_like_nothing(bob, method: str, path: str, job_id: str, **kw) -> None:
    mine = refusal(bob.request, method, path.format(job_id), **kw).response
    ghost = refusal(bob.request, method, path.format(uuid.uuid4().hex), **kw).response
    assert is_error(mine, 404, "not_found"), (path, mine.text)
    assert mine.json() == ghost.json(), (path, mine.text, ghost.text)


def test_another_users_job_reads_as_no_job(alice, bob, stack, r2):
    done = completed_job(alice, stack, r2)
    waiting = alice.create(overlay_job(alice.upload(video_bytes(b"w" * 300)))).job_id
    before = {j: alice.get(j) for j in (done, waiting)}
    for job_id in (done, waiting):
        for method, path, kw in [("GET", "/api/jobs/{}", {}), ("POST", "/api/jobs/{}/cancel", {}),
                                 ("POST", "/api/jobs/{}/retry", {}), ("GET", "/api/jobs/{}/download", {}),
                                 ("GET", "/api/jobs/{}/download", {"params": {"redirect": "1"}}),
                                 ("POST", "/api/jobs/{}/ws-ticket", {})]:
            refused_like_nothing(bob, method, path, job_id, **kw)
    assert {j: alice.get(j) for j in (done, waiting)} == before


def test_another_users_jobs_never_reach_the_list(alice, bob):
    key = alice.upload(video_bytes(b"l" * 300))
    ids = [alice.create(overlay_job(key)).job_id for _ in range(3)]
    cursor = alice.list(limit=1).next_cursor
    assert cursor
    for query in ({}, {"cursor": cursor}, {"status": ["pending"]},
                  {"status": ["pending"], "cursor": cursor, "limit": 100}):
        assert bob.list(**query).jobs == [], query
    active = bob.active()
    assert not {j.job_id for j in active.active + active.finished_while_away} & set(ids)


def test_another_user_cannot_mark_my_finished_jobs_seen(alice, bob):
    job_id = alice.create(overlay_job(alice.upload(video_bytes(b"m" * 300)))).job_id
    assert alice.cancel(job_id).status == "cancelled"
    assert bob.mark_seen([job_id]) == 0
    away = alice.active().finished_while_away
    assert job_id in [j.job_id for j in away]


def test_another_users_upload_key_is_not_an_input(alice, bob):
    theirs = alice.upload(video_bytes(b"k" * 300))
    mine = bob.upload(video_bytes(b"k" * 300))
    ghost = theirs.rsplit("/", 2)[0] + "/feedface/none.mp4"
    reels = [{"type": "multi_clip", "params": {"clips": [{"input_video_key": mine}, {"input_video_key": key}]}}
             for key in (theirs, ghost)]
    for body in reels + [{"type": "framing", "input_video_key": theirs,
                          "params": {"crop_keyframes": [{"t": 0, "x": 0, "y": 0, "w": 0.5, "h": 1}]}}]:
        r = refusal(bob.create, body).response
        assert is_error(r, 404, "input_not_found"), r.text
    ours, ghosts = (refusal(bob.create, body).reason for body in reels)
    assert ours.replace(theirs, "K") == ghosts.replace(ghost, "K")  # existence is not leaked
    assert bob.list().jobs == []


def test_multipart_on_another_users_key_is_refused_and_theirs_still_completes(alice, bob):
    size = 5 << 20
    info = alice.multipart_grant("big.mp4", size)
    part = info.parts[0]
    etag = httpx.put(part.url, content=video_bytes(bytes(size))[:size], timeout=60).headers["etag"]
    parts = [{"part_number": 1, "etag": etag}]
    elsewhere = info.video_key.rsplit("/", 1)[0] + "/other.mp4"
    for call, args in [(bob.abort_multipart, ()), (bob.complete_multipart, (parts,))]:
        r = refusal(call, info.video_key, info.upload_id, *args).response
        assert is_error(r, 404, "not_found"), r.text
        ghost = refusal(call, elsewhere, info.upload_id, *args).response
        assert ghost.json() == r.json()
    # Bob's own key with Alice's upload id does not reach her upload either.
    own = bob.multipart_grant("b.mp4", size)
    r = refusal(bob.complete_multipart, own.video_key, info.upload_id, parts).response
    assert r.status_code in (400, 404) and is_error(r, r.status_code)
    done = alice.complete_multipart(info.video_key, info.upload_id, parts)
    assert done.size_bytes == size, done


def test_storage_needs_a_signature_and_a_signature_covers_one_object(alice, stack, r2):
    job_id = completed_job(alice, stack, r2)
    theirs = alice.upload(video_bytes(b"secret-input" * 30))
    url = alice.download_url(job_id).url
    assert httpx.get(url).status_code == 200
    output = "videos/output/" + urlsplit(url).path.split("/videos/output/", 1)[1]
    base = url.split("?", 1)[0].rsplit("/videos/", 1)[0]
    assert httpx.get(f"{base}/{theirs}").status_code in (400, 401, 403)  # unsigned
    other = url.replace(output, theirs)  # another object, same signature
    assert other != url
    assert httpx.get(other).status_code == 403
    query = parse_qs(urlsplit(url).query)
    disposition = query["response-content-disposition"][0]
    assert httpx.get(url.replace("attachment", "inline")).status_code == 403, disposition
    keys = r2_keys(r2)
    assert theirs in keys and output in keys


def test_forged_tokens_are_refused(alice, bob, stack):
    user_a = alice.token.split(".")[1]
    mac_b = bob.token.split(".")[2]
    forged = [f"u1.{user_a}.{mac_b}", f"u1.{user_a}.", f"u2.{user_a}.{alice.token.split('.')[2]}",
              auth.issue_user_token("another-deployment's-secret", user_a), alice.token + "x",
              f"u1.{user_a}/../x.{mac_b}", "u1..", "."]
    for token in forged:
        r = httpx.get(f"{stack.url}/api/jobs", headers={"authorization": f"Bearer {token}"})
        assert is_error(r, 401, "unauthorized"), token
    for header in (alice.token, f"Basic {alice.token}", f"bearer{alice.token}"):
        assert httpx.get(f"{stack.url}/api/jobs", headers={"authorization": header}).status_code == 401, header


def test_a_socket_needs_a_ticket_for_that_job_from_that_user(alice, bob, stack):
    theirs = alice.create(overlay_job(alice.upload(video_bytes(b"s" * 300)))).job_id
    mine = bob.create(overlay_job(bob.upload(video_bytes(b"s" * 300)))).job_id
    ticket = parse_qs(urlsplit(bob.socket_url(mine).websocket_url).query)["ticket"][0]
    user_b, _, expires, nonce, mac = ticket.split(".")
    user_a = alice.token.split(".")[1]
    ws = stack.url.replace("http://", "ws://")
    attempts = [
        (theirs, ticket, {}),  # my ticket, their job
        (theirs, ticket, {"x-user-id": user_a}),  # ... claiming to be them
        (theirs, f"{user_a}.{theirs}.{expires}.{nonce}.{mac}", {}),  # their user and job, my mac
        (theirs, f"{user_b}.{theirs}.{expires}.{nonce}.{mac}", {}),  # my user, their job, the mac of my job
        (mine, f"{user_b}.{mine}.{int(expires) + 3600}.{nonce}.{mac}", {}),  # my own ticket, extended
        (theirs, "", {}),
    ]
    for job_id, forged, headers in attempts:
        with pytest.raises(InvalidStatus) as refused:
            ws_client.connect(f"{ws}/api/jobs/{job_id}/ws?ticket={forged}", additional_headers=headers,
                              open_timeout=20)
        assert refused.value.response.status_code in (401, 404), forged
    with ws_client.connect(f"{ws}/api/jobs/{mine}/ws?ticket={ticket}", open_timeout=20) as sock:
        assert '"snapshot"' in sock.recv(timeout=20)
