-- Small values a channel keeps across restarts (e.g. the VK long-poll ts reached), written
-- only after the updates before it were processed, so a restart resumes without a gap.
CREATE TABLE channel_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
