"""Who is calling: the user behind a request's credential.

Two kinds of credential:
- a JSON Web Token from the host application's identity provider (jwt_auth.py), in
  `Authorization: Bearer <jwt>` or in the header JWT_HEADER names (Cloudflare Access puts its token in
  `Cf-Access-Jwt-Assertion`); the user id is its `sub`;
- an anonymous token (`u1.<user id>.<mac>`, auth.py), accepted only where ALLOW_ANONYMOUS is on
  (local dev and demos).
"""

from __future__ import annotations

from controlplane import auth, jwks, jwt_auth
from controlplane.http import Call, HttpError

_KEY_SETS: dict[tuple, jwks.KeySet] = {}  # per isolate: the JWKS and the keys imported from it


def key_set(config: jwt_auth.JwtConfig, ttl_s: float, min_refetch_s: float):
    if not config.jwks_url:
        return None
    cache_key = (config.jwks_url, ttl_s, min_refetch_s)
    if cache_key not in _KEY_SETS:
        from controlplane import bindings  # the JS edge; the rest of this module runs on CPython too

        _KEY_SETS[cache_key] = jwks.KeySet(config.jwks_url, bindings.fetch_json, bindings.import_public_key,
                                           bindings.verify_signature, ttl_s=ttl_s, min_refetch_s=min_refetch_s)
    return _KEY_SETS[cache_key]


def _unauthorized(reason: str) -> HttpError:
    return HttpError(401, "unauthorized", reason, {"www-authenticate": "Bearer"})


def credential(call: Call) -> str | None:
    config = call.settings.jwt
    if config.header != "authorization" and (token := call.header(config.header)):
        return token.strip()
    return call.bearer()


async def user_of(call: Call) -> str:
    """The caller's user id; a 401 with the reason when the credential is missing or not valid."""
    user_id, _claims = await _identify(call)
    return user_id


async def _identify(call: Call) -> tuple[str, dict]:
    """(user id, JWT claims), verified once per request: a rate-limited route checks the caller
    before its handler asks again."""
    if call.identity is None:
        call.identity = await _verified_caller(call)
    return call.identity


async def _verified_caller(call: Call) -> tuple[str, dict]:
    token = credential(call)
    if not token:
        raise _unauthorized("missing credential (Authorization: Bearer <token>)")
    try:
        user_id, claims = await _verified(call, token)
    except (auth.Unauthorized, jwt_auth.InvalidToken) as e:
        raise _unauthorized(str(e)) from None
    except jwt_auth.KeysUnavailable as e:
        raise HttpError(503, "signin_unavailable", str(e), {"retry-after": "10"}) from None
    return user_id, claims


async def _verified(call: Call, token: str) -> tuple[str, dict]:
    """(user id, JWT claims; {} for an anonymous token)."""
    settings = call.settings
    if token.startswith("u1."):
        if not settings.allow_anonymous:
            raise auth.Unauthorized("anonymous tokens are not accepted on this deployment")
        return auth.user_from_token(settings.auth_secret, token), {}
    if not settings.jwt.enabled:
        raise auth.Unauthorized("malformed token")
    keys = key_set(settings.jwt, settings.jwks_cache_s, settings.jwks_min_refetch_s)
    claims = await jwt_auth.verify(token, settings.jwt, keys, call.now)
    return jwt_auth.user_id_for(claims["sub"]), claims


async def whoami(call: Call):
    """GET /api/auth/me: the account a credential signs in as (the page shows it before it adopts a
    token from a link)."""
    user_id, claims = await _identify(call)
    name = next((claims[c] for c in ("email", "name", "sub") if isinstance(claims.get(c), str)), user_id)
    return 200, {"user_id": user_id, "name": name, "anonymous": not claims}
