-- PostgreSQL twin of storage/migrations/0006_listing_indexes.sql (a new PostgreSQL database
-- has no appeals reopened under the old rule, so nothing is back-filled here).

ALTER TABLE appeals ADD COLUMN renewed_deadline_at TEXT;

CREATE INDEX appeals_by_status_due ON appeals (
    status, (coalesce(renewed_deadline_at, deadline_at))
);

CREATE INDEX appeals_by_settlement_due ON appeals (
    settlement, status, (coalesce(renewed_deadline_at, deadline_at))
);
