-- Acknowledged means durable (SPEC §7): webhook updates are written here before the 200 and
-- handled from here; retention prunes what is done; VK's random_id comes from a per-row key.

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    platform    TEXT NOT NULL,
    community   TEXT NOT NULL DEFAULT '',   -- which community/bot of the platform (SPEC §14)
    event_id    TEXT,                       -- the platform's id of the update, if it has one
    sender      TEXT NOT NULL DEFAULT '',   -- who sent it: updates of one sender keep order
    body        TEXT NOT NULL,              -- the raw update as the platform sent it
    received_at TEXT NOT NULL,
    done_at     TEXT                        -- set in the transaction that handled it
);
-- A platform's redelivery is recognised at the door.
CREATE UNIQUE INDEX inbox_event ON inbox (platform, community, event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX inbox_pending ON inbox (id) WHERE done_at IS NULL;
CREATE INDEX inbox_done ON inbox (done_at) WHERE done_at IS NOT NULL;

-- A random key per outbox row: VK's random_id, unique across database restores.
ALTER TABLE outbox ADD COLUMN send_key INTEGER;
UPDATE outbox SET send_key = abs(random() % 4503599627370496) + 1;

-- Retention sweeps by age.
CREATE INDEX processed_events_by_age ON processed_events (processed_at);
CREATE INDEX outbox_sent_by_age ON outbox (sent_at) WHERE status = 'sent';
CREATE INDEX sent_messages_by_outbox ON sent_messages (outbox_id);

-- Appeals whose personal data was erased after the archive term.
ALTER TABLE appeals ADD COLUMN erased_at TEXT;
