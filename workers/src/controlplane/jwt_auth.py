"""JSON Web Tokens issued by the host application's identity provider.

Accepted: HS256 with a shared secret (JWT_HS256_SECRET), RS256 and ES256 with the provider's public
keys (JWT_JWKS_URL, see jwks.py). The token's own header never chooses how it is checked beyond
naming one of these: HS256 is only ever checked with the shared secret, RS256/ES256 only with a JWKS
key of the matching type, so a public key can never serve as an HMAC secret (algorithm confusion),
and `none` or anything else is refused. Then `exp`, `nbf`, `iss` and `aud` are checked; `sub` is the
user.

Plain Python: the RSA/ECDSA arithmetic is WebCrypto's (bindings.py), reached through the key set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

ASYMMETRIC = ("RS256", "ES256")
ACCEPTED = ("HS256", *ASYMMETRIC)
MAX_TOKEN_CHARS = 16 * 1024
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_SAFE_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class InvalidToken(Exception):
    """A 401: the reason says which check failed."""


class KeysUnavailable(Exception):
    """The provider's keys cannot be fetched (a 503, not the user's fault)."""


@dataclass(frozen=True)
class JwtConfig:
    jwks_url: str = ""
    hs256_secret: str = ""
    issuer: str = ""
    audience: str = ""
    leeway_s: float = 60.0
    # Where the token travels: "authorization" (Bearer) or another header, e.g. Cloudflare Access's
    # cf-access-jwt-assertion.
    header: str = "authorization"

    @property
    def enabled(self) -> bool:
        return bool(self.jwks_url or self.hs256_secret)

    def problems(self) -> list[str]:
        """What makes this configuration unsafe to use (then no token is accepted)."""
        if not self.enabled:
            return []
        return [f"{name} is not set" for name, value in (("JWT_ISSUER", self.issuer), ("JWT_AUDIENCE", self.audience))
                if not value]


def _b64url(part: str, what: str) -> bytes:
    if not _B64URL.match(part):
        raise InvalidToken(f"malformed token: {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken(f"malformed token: {what} is not base64url") from None


def _json_object(part: str, what: str) -> dict:
    try:
        value = json.loads(_b64url(part, what))
    except ValueError:
        raise InvalidToken(f"malformed token: {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"malformed token: {what} is not a JSON object")
    return value


@dataclass(frozen=True)
class Parsed:
    header: dict
    claims: dict
    signing_input: bytes
    signature: bytes

    @property
    def alg(self):
        return self.header.get("alg")


def parse(token: str) -> Parsed:
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: a JWT has three dot-separated parts")
    header, claims = _json_object(parts[0], "header"), _json_object(parts[1], "payload")
    return Parsed(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url(parts[2], "signature"))


def _number(claims: dict, name: str):
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidToken(f"claim {name} must be a number (seconds since the epoch)")
    return value


def check_claims(claims: dict, config: JwtConfig, now: float) -> str:
    """The token's subject, if the token is current and meant for this API."""
    exp, nbf = _number(claims, "exp"), _number(claims, "nbf")
    if exp is None:
        raise InvalidToken("token has no exp (expiry) claim")
    if now > exp + config.leeway_s:
        raise InvalidToken("token expired")
    if nbf is not None and now < nbf - config.leeway_s:
        raise InvalidToken("token not valid yet (nbf is in the future)")
    if claims.get("iss") != config.issuer:
        raise InvalidToken("token issuer (iss) is not the configured one")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if config.audience not in audiences:
        raise InvalidToken("token audience (aud) does not include this API")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 1 <= len(sub) <= 255:
        raise InvalidToken("token has no sub (subject) claim")
    return sub


def user_id_for(sub: str) -> str:
    """The user id of a subject: `sub` itself when it fits in storage keys (letters, digits, - and _,
    at most 64), else a stable digest of it (e.g. auth0|abc or an e-mail address)."""
    if _SAFE_USER_ID.match(sub):
        return sub
    return "sub_" + hashlib.sha256(sub.encode()).hexdigest()[:40]


async def verify(token: str, config: JwtConfig, keys, now: float) -> dict:
    """The token's claims if its signature and claims are valid; `keys` is a jwks.KeySet (or None when
    no JWKS is configured). Raises InvalidToken with the reason."""
    if problems := config.problems():
        raise InvalidToken("sign-in is misconfigured on this deployment: " + "; ".join(problems))
    token = parse(token)
    if "crit" in token.header:
        raise InvalidToken("token uses critical header extensions this API does not support")
    alg = token.alg
    if alg == "HS256":
        if not config.hs256_secret:
            raise InvalidToken("HS256 tokens are not accepted here")
        expected = hmac.new(config.hs256_secret.encode(), token.signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, token.signature):
            raise InvalidToken("token signature does not match")
    elif alg in ASYMMETRIC:
        if keys is None:
            raise InvalidToken(f"{alg} tokens are not accepted here (no JWKS configured)")
        kid = token.header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("token kid must be a string")
        key = await keys.key(kid, alg, now)
        if key is None:
            raise InvalidToken(f"unknown signing key (kid {kid!r})")
        if not await keys.verify(key, alg, token.signature, token.signing_input):
            raise InvalidToken("token signature does not match")
    else:
        raise InvalidToken(f"token algorithm {alg!r} is not accepted (use one of {', '.join(ACCEPTED)})")
    check_claims(token.claims, config, now)
    return token.claims
