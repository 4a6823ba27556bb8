-- D1 mirrors each job's Durable Object (the authority) for listing, recovery and /health.
CREATE TABLE jobs (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL,
  project_id      INTEGER,
  type            TEXT NOT NULL CHECK (type IN ('framing', 'overlay', 'multi_clip')),
  status          TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'complete', 'error', 'cancelled')),
  spec            TEXT NOT NULL,             -- the validated JobSpec as JSON
  progress        REAL NOT NULL DEFAULT 0,   -- 0..100
  frame           INTEGER NOT NULL DEFAULT 0,
  total_frames    INTEGER,
  checkpoint_frame INTEGER NOT NULL DEFAULT 0,
  attempts        INTEGER NOT NULL DEFAULT 0,
  resume_count    INTEGER NOT NULL DEFAULT 0,
  pod_id          TEXT,
  heartbeat_at    REAL,
  output_key      TEXT,
  output_bytes    INTEGER,
  error           TEXT,
  gpu_seconds     REAL NOT NULL DEFAULT 0,
  seq             INTEGER NOT NULL DEFAULT 0, -- the DO's event counter at the time of mirroring
  created_at      REAL NOT NULL,
  started_at      REAL,
  completed_at    REAL,
  updated_at      REAL NOT NULL,
  seen_at         REAL                        -- when the user saw a finished job (recovery toast)
);
CREATE INDEX jobs_by_user ON jobs (user_id, created_at DESC, id DESC);
CREATE INDEX jobs_by_user_status ON jobs (user_id, status, created_at DESC);
CREATE INDEX jobs_by_status ON jobs (status);

-- Same Idempotency-Key + same user -> same job, for 24 h.
CREATE TABLE idempotency_keys (
  user_id     TEXT NOT NULL,
  key         TEXT NOT NULL,
  request_sha TEXT NOT NULL,
  job_id      TEXT NOT NULL,
  created_at  REAL NOT NULL,
  PRIMARY KEY (user_id, key)
);

-- Jobs that ran out of attempts.
CREATE TABLE dead_letters (
  job_id     TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  attempts   INTEGER NOT NULL,
  created_at REAL NOT NULL
);

-- Pods seen by the control plane (claim / heartbeat), for /health.
CREATE TABLE pods (
  pod_id     TEXT PRIMARY KEY,
  job_id     TEXT,
  seen_at    REAL NOT NULL
);
