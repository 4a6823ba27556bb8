-- The render's rate and time left, mirrored like the rest, so lists and recovery show them too.
ALTER TABLE jobs ADD COLUMN fps REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN eta_s REAL;
