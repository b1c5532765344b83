-- Initial schema: residents, appeals and their thread, dialogue drafts, processed platform
-- events, the outbox with the ids of sent messages, and the audit log.
-- Times are UTC text in the fixed-width form YYYY-MM-DDTHH:MM:SS.ffffffZ (sortable, and
-- understood by SQLite's date functions).

CREATE TABLE residents (
    id                INTEGER PRIMARY KEY,
    platform          TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    chat_id           TEXT NOT NULL,
    display_name      TEXT,             -- stored only once consent is given
    consent_at        TEXT,
    consent_version   TEXT,
    consent_text_hash TEXT,             -- sha256 of the exact consent text shown
    consent_platform  TEXT,
    created_at        TEXT NOT NULL,
    UNIQUE (platform, user_id)
);

CREATE TABLE appeals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,   -- the appeal number №N, never reused
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    status        TEXT NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'in_progress', 'answered', 'closed', 'rejected')),
    category      TEXT NOT NULL,
    settlement    TEXT NOT NULL,
    text          TEXT NOT NULL,
    place         TEXT,
    latitude      REAL,
    longitude     REAL,
    photos        TEXT NOT NULL DEFAULT '[]',          -- JSON list of photo references
    contact_name  TEXT,
    contact_phone TEXT,                                -- +7XXXXXXXXXX or NULL
    platform      TEXT NOT NULL,                       -- where the resident wrote from
    chat_id       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    deadline_at   TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX appeals_by_resident ON appeals (resident_id, id);
CREATE INDEX appeals_by_status ON appeals (status, settlement);
CREATE INDEX appeals_by_created ON appeals (created_at);

-- The appeal's thread: every message and status change, in order.
CREATE TABLE appeal_events (
    id         INTEGER PRIMARY KEY,
    appeal_id  INTEGER NOT NULL REFERENCES appeals (id),
    kind       TEXT NOT NULL,       -- created, addition, status, answer, question, reply, note
    author     TEXT NOT NULL,       -- 'resident' or a staff identity platform:user_id
    text       TEXT,
    photos     TEXT NOT NULL DEFAULT '[]',
    status     TEXT,                -- the new status, for kind = 'status'
    created_at TEXT NOT NULL
);
CREATE INDEX appeal_events_by_appeal ON appeal_events (appeal_id, id);

-- One dialogue in progress per identity; `data` is the draft as JSON.
CREATE TABLE drafts (
    platform   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    step       TEXT NOT NULL,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (platform, user_id)
) WITHOUT ROWID;
CREATE INDEX drafts_by_age ON drafts (updated_at);

-- Platform event ids already processed, recorded in the transaction of their effect.
CREATE TABLE processed_events (
    platform     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (platform, event_id)
) WITHOUT ROWID;

-- Outgoing messages, written in the transaction of the change that caused them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    platform        TEXT NOT NULL,
    chat_id         TEXT NOT NULL,
    body            TEXT NOT NULL,           -- JSON of the normalized outgoing message
    appeal_id       INTEGER REFERENCES appeals (id),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- Which platform message carried which outbox row (and appeal): quote-replies are matched here.
CREATE TABLE sent_messages (
    platform   TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    outbox_id  INTEGER NOT NULL REFERENCES outbox (id),
    appeal_id  INTEGER REFERENCES appeals (id),
    PRIMARY KEY (platform, chat_id, message_id)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,        -- platform:user_id
    action    TEXT NOT NULL,
    appeal_id INTEGER,
    details   TEXT
);
CREATE INDEX audit_log_by_appeal ON audit_log (appeal_id);
