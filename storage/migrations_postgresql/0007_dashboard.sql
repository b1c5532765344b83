-- PostgreSQL twin of storage/migrations/0007_dashboard.sql.


CREATE TABLE dashboard_logins (
    token_hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
-- Links issued to one person lately (the rate limit of /web).
CREATE INDEX dashboard_logins_by_identity ON dashboard_logins (identity, created_at);

CREATE TABLE dashboard_sessions (
    token_hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
-- `/staff remove` ends every session of that person.
CREATE INDEX dashboard_sessions_by_identity ON dashboard_sessions (identity);

-- The queue's category and messenger filters: one index range per status, as for the
-- lists of migration 0006, so a filtered page reads about a page of index entries.
CREATE INDEX appeals_by_category_due ON appeals (
    category, status, coalesce(renewed_deadline_at, deadline_at)
);
CREATE INDEX appeals_by_platform_due ON appeals (
    platform, status, coalesce(renewed_deadline_at, deadline_at)
);
