-- Staff (administrators of settlements, district moderators), bans, questions asked of
-- residents with /ask, and the resident's rating of an answer.

CREATE TABLE staff (
    identity   TEXT NOT NULL,                      -- platform:user_id
    role       TEXT NOT NULL CHECK (role IN ('admin', 'moderator')),
    settlement TEXT NOT NULL DEFAULT '',           -- '' for moderators
    source     TEXT NOT NULL CHECK (source IN ('config', 'command')),
    added_by   TEXT,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (identity, role, settlement)
) WITHOUT ROWID;
CREATE INDEX staff_by_settlement ON staff (settlement, role);

-- Whose chat a message went to, when a delivery fails for good.
CREATE INDEX residents_by_chat ON residents (platform, chat_id);

CREATE TABLE bans (
    identity  TEXT PRIMARY KEY,
    reason    TEXT,
    banned_by TEXT NOT NULL,
    banned_at TEXT NOT NULL,
    notified  INTEGER NOT NULL DEFAULT 0               -- the one notice was sent
) WITHOUT ROWID;

CREATE TABLE questions (
    id          INTEGER PRIMARY KEY,
    appeal_id   INTEGER NOT NULL REFERENCES appeals (id),
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    asker       TEXT NOT NULL,                         -- staff identity that asked
    asked_at    TEXT NOT NULL,
    answered_at TEXT
);
CREATE INDEX questions_open ON questions (resident_id) WHERE answered_at IS NULL;

-- The delivery worker takes the oldest pending row of every chat (order within a chat).
CREATE INDEX outbox_pending_by_chat ON outbox (platform, chat_id, id) WHERE status = 'pending';

ALTER TABLE appeals ADD COLUMN rating TEXT CHECK (rating IN ('resolved', 'unresolved'));
ALTER TABLE appeals ADD COLUMN first_answer_at TEXT;
