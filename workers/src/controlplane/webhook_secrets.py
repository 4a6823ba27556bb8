"""Each user's webhook signing secrets in D1 (the salts they are derived from; see webhooks.py)."""

from __future__ import annotations

import secrets

from controlplane import webhooks


async def row(d1, user_id: str) -> dict | None:
    return await d1.first("SELECT * FROM webhook_secrets WHERE user_id = ?", user_id)


async def signing_secrets(d1, auth_secret: str, user_id: str, now: float) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous during the overlap."""
    return [webhooks.derive_secret(auth_secret, user_id, salt)
            for salt in webhooks.active_salts(await row(d1, user_id), now)]


async def rotate(d1, user_id: str, now: float, overlap_s: float) -> tuple[str, float | None]:
    """A new salt; the current one (if any) stays valid for overlap_s. Returns (new salt, previous valid
    until or None)."""
    salt = secrets.token_urlsafe(24)
    previous = await row(d1, user_id)
    until = now + overlap_s if previous else None
    await d1.run("INSERT INTO webhook_secrets (user_id, salt, created_at, previous_salt, previous_until)"
                 " VALUES (?, ?, ?, NULL, NULL) ON CONFLICT(user_id) DO UPDATE SET previous_salt = salt,"
                 " previous_until = ?, salt = excluded.salt, created_at = excluded.created_at",
                 user_id, salt, now, until)
    return salt, until
