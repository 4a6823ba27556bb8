"""The identity provider's public signing keys (a JWKS URL), cached in the isolate.

The set is fetched on first use and again after `ttl_s`. A token naming a key the cached set does not
have makes one refetch (the provider rotated its keys), at most one every `min_refetch_s`, so tokens
with made-up key ids cannot make the Worker hammer the provider. Imported keys are kept, so a request
costs one signature check, not a key import.

The fetch, key import and signature check are passed in (bindings.py in the Worker), so this runs and
is tested on CPython too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Optional

from controlplane.jwt_auth import KeysUnavailable

# The JWK members each key type needs, and what each algorithm needs of a key.
_KTY_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}
_PUBLIC_MEMBERS = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y")}


def usable(jwk: dict, alg: str) -> bool:
    """A public key of the algorithm's type, meant for signatures, for this algorithm (when it says)."""
    kty = _KTY_FOR_ALG[alg]
    if jwk.get("kty") != kty or jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
        return False
    if kty == "EC" and jwk.get("crv") != "P-256":
        return False
    return all(isinstance(jwk.get(m), str) for m in _PUBLIC_MEMBERS[kty])


def public_part(jwk: dict) -> dict:
    """Only the public members: WebCrypto refuses a JWK whose use/key_ops/alg disagree with the import."""
    return {m: jwk[m] for m in _PUBLIC_MEMBERS[jwk["kty"]]}


@dataclass
class KeySet:
    url: str
    fetch_json: Callable[[str], Awaitable[dict]]
    import_key: Callable[[dict, str], Awaitable[object]]
    verify: Callable[[object, str, bytes, bytes], Awaitable[bool]]
    ttl_s: float = 600.0
    min_refetch_s: float = 30.0
    jwks: list = field(default_factory=list)
    fetched_at: Optional[float] = None
    _imported: dict = field(default_factory=dict)

    async def key(self, kid: Optional[str], alg: str, now: float):
        """The imported key for (kid, alg), or None when the provider has no such key."""
        fresh = self.fetched_at is None or now - self.fetched_at > self.ttl_s
        if fresh:
            await self._refresh(now)
        jwk = self._find(kid, alg)
        if jwk is None and not fresh and now - self.fetched_at >= self.min_refetch_s:
            await self._refresh(now)
            jwk = self._find(kid, alg)
        if jwk is None:
            return None
        cache_key = (jwk.get("kid"), alg, jwk.get("n") or jwk.get("x"))
        if cache_key not in self._imported:
            try:
                self._imported[cache_key] = await self.import_key(public_part(jwk), alg)
            except Exception:
                return None  # a malformed key in the set is a key we do not have
        return self._imported[cache_key]

    def _find(self, kid: Optional[str], alg: str) -> Optional[dict]:
        candidates = [k for k in self.jwks if usable(k, alg)]
        if kid is None:  # only unambiguous without a key id
            return candidates[0] if len(candidates) == 1 else None
        return next((k for k in candidates if k.get("kid") == kid), None)

    async def _refresh(self, now: float) -> None:
        try:
            document = await self.fetch_json(self.url)
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                raise ValueError("no 'keys' list")
        except Exception as e:
            if self.fetched_at is None:
                raise KeysUnavailable(f"cannot fetch the signing keys from {self.url}: {e}") from None
            self.fetched_at = now  # keep the last good set; try again after min_refetch_s / ttl_s
            return
        self.jwks = [k for k in keys if isinstance(k, dict)]
        self.fetched_at = now
        live = {(k.get("kid"), k.get("n") or k.get("x")) for k in self.jwks}
        self._imported = {ck: v for ck, v in self._imported.items() if (ck[0], ck[2]) in live}
