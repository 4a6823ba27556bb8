"""Sign-in on a stack configured as production (no anonymous accounts), with tokens from a local
identity provider (tests/idp.py): HS256, RS256 and ES256 through its JWKS, rotation, Cloudflare Access's
header, and every kind of bad token refused with a 401 and a reason, with nothing created."""

from __future__ import annotations

import json

import httpx
import pytest

from controlplane import auth
from tests.idp import IdentityProvider, SigningKey, forged, hs256_with

from .conftest import Api, overlay_job


@pytest.fixture
def idp(identity_provider):
    return identity_provider


def client(stack, token: str | None = None, header: str = "authorization") -> httpx.Client:
    headers = {} if token is None else {header: f"Bearer {token}" if header == "authorization" else token}
    return httpx.Client(base_url=stack.url, timeout=30, headers=headers)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_a_valid_token_signs_in_as_its_subject(prod_stack, idp, alg):
    sub = f"user-{alg.lower()}"
    with client(prod_stack, idp.token(sub, alg)) as c:
        me = c.get("/api/auth/me")
        assert me.status_code == 200, me.text
        assert me.json() == {"user_id": sub, "name": f"{sub}@example.test", "anonymous": False}
        assert c.get("/api/jobs").status_code == 200


def test_a_job_belongs_to_the_tokens_subject(prod_stack, idp):
    alice = Api(prod_stack, idp.token("alice-jobs", "ES256"))
    key = alice.upload(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    assert key.startswith("videos/raw/alice-jobs/")
    created = alice.create(key)
    assert created.status_code == 202, created.text
    bob = Api(prod_stack, idp.token("bob-jobs", "RS256"))
    assert bob.http.get(f"/api/jobs/{created.json()['job_id']}").status_code == 404


def bad_tokens(idp: IdentityProvider) -> dict[str, tuple[str, str]]:
    """name -> (token, what the reason says)."""
    import time

    now = int(time.time())
    rsa = idp.keys[0]
    stranger = SigningKey("RS256", "stranger-1")  # not in the provider's JWKS
    good = idp.token("victim")
    head, _, sig = good.split(".")
    tampered = f"{head}.{forged({}, idp.claims('mallory')).split('.')[1]}.{sig}"
    return {
        "expired": (idp.token("victim", exp=now - 120), "expired"),
        "not yet valid": (idp.token("victim", nbf=now + 600), "not valid yet"),
        "wrong audience": (idp.token("victim", aud="another-api"), "audience"),
        "wrong issuer": (idp.token("victim", iss="https://evil.example"), "issuer"),
        "unknown key": (idp.token("victim", key=stranger), "unknown signing key"),
        "tampered payload": (tampered, "signature"),
        "alg none": (forged({"alg": "none", "typ": "JWT"}, idp.claims("victim")), "algorithm"),
        "HS/RS confusion": (hs256_with(rsa.public_pem(), {"alg": "HS256", "kid": rsa.kid}, idp.claims("victim")),
                            "signature"),
        "HS/RS confusion (JWK)": (hs256_with(json.dumps(rsa.jwk()).encode(), {"alg": "HS256"}, idp.claims("victim")),
                                  "signature"),
        "garbage": ("not-a-token", "malformed"),
    }


def test_bad_tokens_are_refused_with_a_reason_and_create_nothing(prod_stack, idp):
    victim = Api(prod_stack, idp.token("victim", "RS256"))
    key = victim.upload(b"\x00\x00\x00\x18ftypmp42" + bytes(1000))
    for name, (token, reason) in bad_tokens(idp).items():
        with client(prod_stack, token) as c:
            for method, path, body in (("POST", "/api/jobs", overlay_job(key)),
                                       ("POST", "/api/videos/upload-url",
                                        {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10}),
                                       ("GET", "/api/jobs", None)):
                r = c.request(method, path, json=body)
                assert r.status_code == 401, (name, path, r.text)
                assert r.json()["error"] == "unauthorized" and reason in r.json()["reason"], (name, r.json())
    assert victim.http.get("/api/jobs").json()["jobs"] == [], "a refused token created a job"


def test_a_rotated_key_is_fetched_and_the_old_one_refused(prod_stack, idp):
    old_key = next(k for k in idp.keys if k.alg == "ES256")
    with client(prod_stack, idp.token("rotating", "ES256")) as c:
        assert c.get("/api/auth/me").status_code == 200
    fetched = idp.jwks_requests
    new_key = idp.rotate("ES256")
    with client(prod_stack, idp.token("rotating", "ES256", key=new_key)) as c:
        assert c.get("/api/auth/me").status_code == 200
    assert idp.jwks_requests == fetched + 1, "one refetch for the new kid"
    with client(prod_stack, idp.token("rotating", "ES256", key=old_key)) as c:
        r = c.get("/api/auth/me")
        assert r.status_code == 401 and "unknown signing key" in r.json()["reason"]


def test_cloudflare_access_header(prod_stack, idp):
    """Cloudflare Access puts its JWT in Cf-Access-Jwt-Assertion (JWT_HEADER), not in Authorization."""
    with client(prod_stack, idp.token("access-user", "RS256"), header="cf-access-jwt-assertion") as c:
        assert c.get("/api/auth/me").json()["user_id"] == "access-user"
    with client(prod_stack, idp.token("x", "RS256", aud="other-app"), header="cf-access-jwt-assertion") as c:
        assert c.get("/api/auth/me").status_code == 401


def test_anonymous_sign_up_and_tokens_are_off_in_production(prod_stack):
    r = httpx.post(f"{prod_stack.url}/api/auth/anonymous")
    assert r.status_code == 403 and r.json()["error"] == "disabled"
    token = auth.issue_user_token(prod_stack.vars["AUTH_SECRET"], "usr_anon")
    with client(prod_stack, token) as c:
        r = c.get("/api/jobs")
        assert r.status_code == 401 and "anonymous tokens are not accepted" in r.json()["reason"]


def test_the_page_learns_how_to_sign_in(prod_stack, idp):
    config = httpx.get(f"{prod_stack.url}/api/config").json()
    assert {k: config[k] for k in ("allow_anonymous", "signin_url", "embed_origins", "token_header")} == {
        "allow_anonymous": False, "signin_url": idp.vars()["SIGNIN_URL"], "embed_origins": [idp.url],
        "token_header": "cf-access-jwt-assertion"}
