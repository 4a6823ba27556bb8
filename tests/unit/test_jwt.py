"""jwt_auth and jwks on CPython: the same checks the Worker runs, with `cryptography` doing the RSA/ECDSA
arithmetic that WebCrypto does in the Worker (tests/stack/test_signin.py runs them under workerd)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from controlplane import jwks, jwt_auth
from tests.idp import AUDIENCE, IdentityProvider, SigningKey, forged, hs256_with


async def import_key(jwk: dict, alg: str):
    return (RSAAlgorithm if alg == "RS256" else ECAlgorithm).from_jwk(json.dumps(jwk))


async def verify(key, alg: str, signature: bytes, data: bytes) -> bool:
    try:
        if alg == "RS256":
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


@pytest.fixture
def idp():
    provider = IdentityProvider()  # not started: its keys and tokens only
    yield provider
    provider.server.server_close()


def setup(idp, min_refetch_s=30.0):
    served = {"n": 0}

    async def fetch_json(url):
        served["n"] += 1
        return {"keys": [k.jwk() for k in idp.keys]}

    config = jwt_auth.JwtConfig(jwks_url="https://idp/jwks.json", hs256_secret=idp.hs256_secret, issuer=idp.issuer,
                                audience=AUDIENCE, leeway_s=5)
    keys = jwks.KeySet(config.jwks_url, fetch_json, import_key, verify, min_refetch_s=min_refetch_s)
    return config, keys, served


def check(token, config, keys, now=None):
    return asyncio.run(jwt_auth.verify(token, config, keys, now or time.time()))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_valid_tokens_give_their_subject(idp, alg):
    config, keys, _ = setup(idp)
    claims = check(idp.token("alice", alg), config, keys)
    assert jwt_auth.user_id_for(claims["sub"]) == "alice"


def test_subjects_that_do_not_fit_a_storage_key_get_a_stable_digest():
    assert jwt_auth.user_id_for("auth0|123") == jwt_auth.user_id_for("auth0|123") != jwt_auth.user_id_for("auth0|124")
    assert jwt_auth.user_id_for("auth0|123").startswith("sub_") and len(jwt_auth.user_id_for("a@b.c")) <= 64


def refused(idp, token, reason, now=None, **setup_kw):
    config, keys, _ = setup(idp, **setup_kw)
    with pytest.raises(jwt_auth.InvalidToken, match=reason):
        check(token, config, keys, now)


def test_time_claims(idp):
    now = time.time()
    refused(idp, idp.token("a", exp=int(now) - 60), "expired")
    refused(idp, idp.token("a", nbf=int(now) + 60), "not valid yet")
    refused(idp, idp.token("a", exp=None), "no exp")
    config, keys, _ = setup(idp)
    check(idp.token("a", exp=int(now) - 2), config, keys)  # within the leeway


def test_issuer_audience_subject(idp):
    refused(idp, idp.token("a", iss="https://evil.test"), "issuer")
    refused(idp, idp.token("a", aud="another-api"), "audience")
    refused(idp, idp.token(None), "no sub")
    config, keys, _ = setup(idp)
    check(idp.token("a", aud=["another-api", AUDIENCE]), config, keys)


def test_alg_none_and_unknown_algorithms(idp):
    claims = idp.claims("a")
    for alg in ("none", "None", "HS512", "PS256", None):
        refused(idp, forged({"alg": alg, "typ": "JWT"}, claims), "algorithm")


def test_algorithm_confusion_public_key_as_hmac_secret(idp):
    """HS256 is checked with the shared secret only, never with a JWKS key."""
    rsa_key = idp.keys[0]
    for secret in (rsa_key.public_pem(), json.dumps(rsa_key.jwk()).encode(), rsa_key.jwk()["n"].encode()):
        refused(idp, hs256_with(secret, {"alg": "HS256", "kid": rsa_key.kid}, idp.claims("a")), "signature")


def test_rs256_token_signed_by_an_ec_key_id(idp):
    """The header's alg must fit the key's type: an RS256 header naming the EC key finds no key."""
    rs = idp.token("a", "RS256")
    header = json.loads(jwt_auth._b64url(rs.split(".")[0], "h"))
    token = forged({**header, "kid": "ec-1"}, idp.claims("a"), jwt_auth._b64url(rs.split(".")[2], "s"))
    refused(idp, token, "unknown signing key")


def test_tampered_payload(idp):
    token = idp.token("alice")
    head, _, sig = token.split(".")
    body = forged({}, idp.claims("mallory")).split(".")[1]
    refused(idp, f"{head}.{body}.{sig}", "signature")


def test_malformed(idp):
    for token, reason in (("abc", "three"), ("a.b.c", "JSON|base64"), ("eyJ!.e30.", "base64url"),
                          (forged({"alg": "RS256", "crit": ["exp"]}, {}), "critical")):
        refused(idp, token, reason)


def test_unknown_key_refetches_once_then_refuses(idp):
    config, keys, served = setup(idp, min_refetch_s=30)
    now = time.time()
    check(idp.token("a"), config, keys, now)
    assert served["n"] == 1
    stranger = SigningKey("RS256", "not-in-the-set")
    with pytest.raises(jwt_auth.InvalidToken, match="unknown signing key"):
        check(idp.token("a", key=stranger), config, keys, now + 31)
    assert served["n"] == 2
    with pytest.raises(jwt_auth.InvalidToken, match="unknown signing key"):
        check(idp.token("a", key=stranger), config, keys, now + 32)
    assert served["n"] == 2, "a second unknown kid within min_refetch_s does not fetch again"


def test_rotation_is_picked_up_by_the_refetch(idp):
    config, keys, served = setup(idp, min_refetch_s=0)
    now = time.time()
    check(idp.token("a"), config, keys, now)
    new = idp.rotate("RS256")
    check(idp.token("a", key=new), config, keys, now + 1)
    assert served["n"] == 2
    check(idp.token("a", key=new), config, keys, now + 2)
    assert served["n"] == 2, "the new key is cached"


def test_misconfiguration_accepts_nothing(idp):
    config = jwt_auth.JwtConfig(hs256_secret=idp.hs256_secret)  # no issuer, no audience
    with pytest.raises(jwt_auth.InvalidToken, match="JWT_ISSUER is not set; JWT_AUDIENCE is not set"):
        asyncio.run(jwt_auth.verify(idp.token("a", "HS256"), config, None, time.time()))


def test_jwks_unreachable_at_first_use_is_unavailable_not_unauthorized(idp):
    async def down(url):
        raise OSError("connection refused")

    config, _, _ = setup(idp)
    keys = jwks.KeySet(config.jwks_url, down, import_key, verify)
    with pytest.raises(jwt_auth.KeysUnavailable):
        check(idp.token("a"), config, keys)
