-- PostgreSQL twin of storage/migrations/0004_deadlines_and_reports.sql. PostgreSQL plans with
-- statistics and aggregates by hashing, so the report needs no covering index named in its
-- queries; the ones below serve the period ranges.

CREATE TABLE deadline_notices (
    appeal_id  BIGINT NOT NULL REFERENCES appeals (id),
    kind       TEXT NOT NULL CHECK (kind IN ('reminder', 'escalation')),
    due_at     TEXT NOT NULL,
    sent_at    TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    PRIMARY KEY (appeal_id, kind, due_at)
);

DROP INDEX appeals_by_resident;
CREATE INDEX appeals_by_resident ON appeals (resident_id, id, created_at);

DROP INDEX appeals_by_created;
CREATE INDEX appeals_by_created ON appeals (created_at, category, deadline_at, first_answer_at);
