"""Sign-in on a stack configured as production (no anonymous accounts), with tokens from a local
identity provider (tests/idp.py): HS256, RS256 and ES256 through its JWKS, rotation, Cloudflare Access's
header, and every kind of bad token refused with a 401 and a reason, with nothing created."""

from __future__ import annotations

import json

import pytest

from controlplane import auth
from gpu_export import Client
from tests.idp import IdentityProvider, SigningKey, forged, hs256_with

from tests.api_helpers import overlay_job, refusal, video_bytes


@pytest.fixture
def idp(identity_provider):
    return identity_provider


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_a_valid_token_signs_in_as_its_subject(prod_stack, idp, alg, client_for):
    sub = f"user-{alg.lower()}"
    api = client_for(prod_stack, idp.token(sub, alg))
    assert api.whoami().model_dump() == {"user_id": sub, "name": f"{sub}@example.test", "anonymous": False}
    assert api.list().jobs == []


def test_a_job_belongs_to_the_tokens_subject(prod_stack, idp, client_for):
    alice = client_for(prod_stack, idp.token("alice-jobs", "ES256"))
    key = alice.upload(video_bytes(bytes(1000)))
    assert key.startswith("videos/raw/alice-jobs/")
    created = alice.create(overlay_job(key))
    bob = client_for(prod_stack, idp.token("bob-jobs", "RS256"))
    assert refusal(bob.get, created.job_id).status == 404


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


def test_bad_tokens_are_refused_with_a_reason_and_create_nothing(prod_stack, idp, client_for):
    victim = client_for(prod_stack, idp.token("victim", "RS256"))
    key = victim.upload(video_bytes(bytes(1000)))
    for name, (token, reason) in bad_tokens(idp).items():
        api = client_for(prod_stack, token)
        for what, call in (("create", lambda: api.create(overlay_job(key))),
                           ("upload", lambda: api.upload_grant("a.mp4", 10)), ("list", api.list)):
            refused = refusal(call)
            assert refused.status == 401, (name, what, refused)
            assert refused.error == "unauthorized" and reason in refused.reason, (name, refused)
    assert victim.list().jobs == [], "a refused token created a job"


def test_a_rotated_key_is_fetched_and_the_old_one_refused(prod_stack, idp, client_for):
    old_key = next(k for k in idp.keys if k.alg == "ES256")
    assert client_for(prod_stack, idp.token("rotating", "ES256")).whoami().user_id == "rotating"
    fetched = idp.jwks_requests
    new_key = idp.rotate("ES256")
    assert client_for(prod_stack, idp.token("rotating", "ES256", key=new_key)).whoami().user_id == "rotating"
    assert idp.jwks_requests == fetched + 1, "one refetch for the new kid"
    refused = refusal(client_for(prod_stack, idp.token("rotating", "ES256", key=old_key)).whoami)
    assert refused.status == 401 and "unknown signing key" in refused.reason


def test_cloudflare_access_header(prod_stack, idp):
    """Cloudflare Access puts its JWT in Cf-Access-Jwt-Assertion (JWT_HEADER), not in Authorization."""
    header = "cf-access-jwt-assertion"
    with Client(prod_stack.url) as behind_access:  # no token of its own: Access's header is the credential
        me = behind_access.request("GET", "/api/auth/me", headers={header: idp.token("access-user", "RS256")})
        assert me["user_id"] == "access-user"
        refused = refusal(behind_access.request, "GET", "/api/auth/me",
                          headers={header: idp.token("x", "RS256", aud="other-app")})
        assert refused.status == 401


def test_anonymous_sign_up_and_tokens_are_off_in_production(prod_stack, client_for):
    with Client(prod_stack.url) as newcomer:
        refused = refusal(newcomer.sign_up_anonymous)
    assert refused.status == 403 and refused.error == "disabled"
    anonymous = client_for(prod_stack, auth.issue_user_token(prod_stack.vars["AUTH_SECRET"], "usr_anon"))
    refused = refusal(anonymous.list)
    assert refused.status == 401 and "anonymous tokens are not accepted" in refused.reason


def test_the_page_learns_how_to_sign_in(prod_stack, idp):
    with Client(prod_stack.url) as page:
        config = page.config()
    assert (config.allow_anonymous, config.signin_url, config.embed_origins, config.token_header) == (
        False, idp.vars()["SIGNIN_URL"], [idp.url], "cf-access-jwt-assertion")
