-- The DO counts accepted `interrupted` reports (spot notices); the D1 mirror lacked them, so the job list
-- showed 0 interruptions for interrupted jobs while GET /api/jobs/{id} showed the real count.
ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
