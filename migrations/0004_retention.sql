-- Retention (workers/src/controlplane/retention.py): when a complete job's output is deleted, and when
-- the sweep did it; multipart uploads until completed or aborted, so abandoned ones can be aborted.
ALTER TABLE jobs ADD COLUMN expires_at REAL;
ALTER TABLE jobs ADD COLUMN output_deleted_at REAL;
CREATE INDEX jobs_expiring ON jobs (status, expires_at);

CREATE TABLE multipart_uploads (
  upload_id  TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  key        TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE INDEX multipart_uploads_by_age ON multipart_uploads (created_at);
