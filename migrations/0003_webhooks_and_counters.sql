-- Webhooks: a user's signing secret is derived from AUTH_SECRET and this salt (webhooks.py), so the
-- secret itself is stored nowhere. After a rotation the previous salt keeps signing until previous_until.
CREATE TABLE webhook_secrets (
  user_id        TEXT PRIMARY KEY,
  salt           TEXT NOT NULL,
  created_at     REAL NOT NULL,
  previous_salt  TEXT,
  previous_until REAL
);

-- Totals for GET /metrics that no other table holds (lease expiries, webhook attempts, ...).
CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value REAL NOT NULL DEFAULT 0
);
