"""What JWT sign-in costs per request, on a real local stack: GET /api/auth/me with an anonymous
token (one HMAC, the baseline) and with HS256, RS256 and ES256 JWTs (ES/RS verified with WebCrypto,
keys from a cached JWKS), interleaved so every kind sees the same load. Prints each kind's median and
p90 and its median's ratio and difference to the baseline.

usage: .venv/bin/python -m bench.jwt_verify [--requests 300]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.latency import percentile
from gpu_export import Client
from scripts.localstack import LocalStack
from tests.idp import IdentityProvider


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    with IdentityProvider() as idp, tempfile.TemporaryDirectory() as tmp, \
            LocalStack(persist_dir=Path(tmp), vars={**idp.vars(), "JWKS_MIN_REFETCH_S": "30"}) as stack:
        with Client(stack.url) as anonymous:
            anonymous.sign_up_anonymous()
            tokens = {"anonymous (HMAC)": anonymous.token, "HS256": idp.token("bench", "HS256"),
                      "RS256": idp.token("bench", "RS256"), "ES256": idp.token("bench", "ES256")}
        times = {kind: [] for kind in tokens}
        with Client(stack.url) as api:
            for kind, token in tokens.items():  # warm: JWKS fetched, keys imported
                api.token = token
                for _ in range(5):
                    api.whoami()
            for _ in range(args.requests):
                for kind, token in tokens.items():
                    api.token = token
                    start = time.perf_counter()
                    api.whoami()
                    times[kind].append((time.perf_counter() - start) * 1000)
        base = statistics.median(times["anonymous (HMAC)"])
        print(f"GET /api/auth/me, {args.requests} requests per kind, interleaved (JWKS fetches: {idp.jwks_requests})")
        for kind, values in times.items():
            med = statistics.median(values)
            print(f"  {kind:18} median {med:6.2f} ms  p90 {percentile(values, 90):6.2f} ms  "
                  f"ratio {med / base:4.2f}  +{med - base:5.2f} ms")


if __name__ == "__main__":
    main()
