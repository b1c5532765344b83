-- PostgreSQL twin of storage/migrations/0003_channel_state.sql.
CREATE TABLE channel_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
