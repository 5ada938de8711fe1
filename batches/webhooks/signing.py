"""The signature every delivery carries, and its recipe (docs/webhooks.md):

    X-OMTX-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The key is the secret's text as UTF-8, the body the exact bytes POSTed. During a
rotation's grace period a second `v1=` carries the previous secret's signature, so a
receiver that still holds the old secret keeps verifying.
"""

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, keys: list[str], timestamp: int, body: bytes) -> str:
    """`t=…,v1=…[,v1=…]`: one v1 per key, the current secret first."""
    parts = [f"t={timestamp}", *(f"v1={signature(secret=key, timestamp=timestamp, body=body)}" for key in keys)]
    return ",".join(parts)
