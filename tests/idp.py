"""A local identity provider for the tests: signing keys (RS256, ES256, HS256), a JWKS URL whose keys
can be rotated, tokens minted with PyJWT, and a sign-in page (`/authorize`) that sends the browser
back to the page with `#id_token=...&state=...`, as an OpenID provider's implicit flow does. It also
serves `/embed`, a host application page that embeds the export page in an iframe and hands it a
token with postMessage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.local_server import LocalServer, QuietHandler

AUDIENCE = "gpu-export-test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    def __init__(self, alg: str, kid: str):
        self.alg, self.kid = alg, kid
        self.private = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256"
                        else ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict:
        algorithm = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        return {**json.loads(algorithm.to_jwk(self.private.public_key())), "kid": self.kid, "use": "sig",
                "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


class IdentityProvider:
    """Start with `with IdentityProvider() as idp:`; `idp.url` is its origin (also the token issuer)."""

    def __init__(self, page_url: str = ""):
        self.hs256_secret = secrets.token_hex(32)
        self.keys = [SigningKey("RS256", "rsa-1"), SigningKey("ES256", "ec-1")]
        self.jwks_requests = 0
        self.page_url = page_url  # the export page, for /embed
        self.server = LocalServer(self._handler())
        self.url = self.server.url

    # ---------------------------------------------------------------- tokens

    @property
    def issuer(self) -> str:
        return self.url

    def claims(self, sub: str, **overrides) -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 600,
                  "email": f"{sub}@example.test", **overrides}
        return {k: v for k, v in claims.items() if v is not None}  # None: leave the claim out

    def token(self, sub: str, alg: str = "RS256", key: SigningKey | None = None, headers: dict | None = None,
              **claims) -> str:
        payload = self.claims(sub, **claims)
        if alg == "HS256":
            return jwt.encode(payload, self.hs256_secret, algorithm="HS256", headers=headers)
        key = key or next(k for k in self.keys if k.alg == alg)
        return jwt.encode(payload, key.private, algorithm=alg, headers={"kid": key.kid, **(headers or {})})

    def rotate(self, alg: str = "RS256") -> SigningKey:
        """A new key replaces the old one of that algorithm in the JWKS."""
        new = SigningKey(alg, f"{alg.lower()}-{secrets.token_hex(4)}")
        self.keys = [k for k in self.keys if k.alg != alg] + [new]
        return new

    def vars(self) -> dict[str, str]:
        """What a stack needs to accept this provider's tokens."""
        return {"JWT_JWKS_URL": f"{self.url}/jwks.json", "JWT_HS256_SECRET": self.hs256_secret,
                "JWT_ISSUER": self.issuer, "JWT_AUDIENCE": AUDIENCE, "JWKS_MIN_REFETCH_S": "0",
                "SIGNIN_URL": f"{self.url}/authorize?client_id={AUDIENCE}&response_type=id_token",
                "EMBED_ORIGINS": self.url}

    # ---------------------------------------------------------------- HTTP

    def _handler(self):
        idp = self

        class Handler(QuietHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/jwks.json":
                    idp.jwks_requests += 1
                    body = json.dumps({"keys": [k.jwk() for k in idp.keys]}).encode()
                    self._send(200, body, "application/json")
                elif url.path == "/authorize":
                    # The person signs in here (no form: the test's user is ?login_hint=, default "alice").
                    token = idp.token(query.get("login_hint", "alice"), nonce=query.get("nonce"))
                    fragment = urlencode({"id_token": token, "state": query.get("state", "")})
                    self._send(302, b"", "text/plain", {"location": f"{query['redirect_uri']}#{fragment}"})
                elif url.path == "/embed":
                    self._send(200, embed_page(idp.page_url, idp.token(query.get("sub", "carol"))).encode(),
                               "text/html")
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler

    def __enter__(self) -> "IdentityProvider":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


def embed_page(page_url: str, token: str) -> str:
    """The host application: embeds the export page and answers its token requests."""
    origin = "{uri.scheme}://{uri.netloc}".format(uri=urlparse(page_url))
    return f"""<!doctype html><title>Host application</title>
<iframe id="export" src="{page_url}" style="width:1200px;height:800px"></iframe>
<script>
window.addEventListener('message', (e) => {{
  if (e.origin !== {json.dumps(origin)} || e.data?.type !== 'export:token-request') return;
  e.source.postMessage({{ type: 'export:token', token: {json.dumps(token)} }}, e.origin);
}});
</script>"""


def forged(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A token with exactly this header and payload (alg none, algorithm confusion, tampering)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{b64url(signature)}"


def hs256_with(secret: bytes, header: dict, claims: dict) -> str:
    """An HS256 token signed with `secret` (e.g. a public key, for the confusion attack)."""
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"
