-- Every door of the community (SPEC §14): several communities (bots) per messenger, and
-- comments under posts as items of their own.
--
-- `community` names which community of a platform a row went through: '' for the
-- platform's main section ([vk], [telegram], …), so every row written before this migration
-- and every installation without [[x.communities]] keeps meaning exactly what it meant;
-- otherwise the community's id (VK group_id, Telegram bot id, OK group_id, MAX bot_id).

-- Outgoing messages go through the community they were written for; a chat is a chat of one
-- community (a person who wrote to two communities has two chats with the bot).
ALTER TABLE outbox ADD COLUMN community TEXT NOT NULL DEFAULT '';
DROP INDEX outbox_pending_by_chat;
CREATE INDEX outbox_pending_by_chat ON outbox (platform, community, chat_id, id)
    WHERE status = 'pending';

-- Message ids are a community's own (VK numbers each community's messages apart): the pairs
-- that match quote-replies are keyed by the community too. SQLite cannot change a primary
-- key in place, so the table is copied.
CREATE TABLE sent_messages_by_community (
    platform   TEXT NOT NULL,
    community  TEXT NOT NULL DEFAULT '',
    chat_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    outbox_id  INTEGER NOT NULL REFERENCES outbox (id),
    appeal_id  INTEGER REFERENCES appeals (id),
    PRIMARY KEY (platform, community, chat_id, message_id)
) WITHOUT ROWID;
INSERT INTO sent_messages_by_community (platform, community, chat_id, message_id, outbox_id,
                                        appeal_id)
    SELECT platform, '', chat_id, message_id, outbox_id, appeal_id FROM sent_messages;
DROP TABLE sent_messages;
ALTER TABLE sent_messages_by_community RENAME TO sent_messages;
CREATE INDEX sent_messages_by_outbox ON sent_messages (outbox_id);

-- The community a person last wrote to: where a staff member is reached (SPEC §14).
ALTER TABLE residents ADD COLUMN community TEXT NOT NULL DEFAULT '';

-- An item is an appeal (filed through the dialogue) or a comment under a post; both share
-- the one №N sequence, the statuses and the deadlines. `community`: where it came in, and
-- where the resident is answered.
ALTER TABLE appeals ADD COLUMN kind TEXT NOT NULL DEFAULT 'appeal'
    CHECK (kind IN ('appeal', 'comment'));
ALTER TABLE appeals ADD COLUMN community TEXT NOT NULL DEFAULT '';

-- What a comment item needs besides the appeal row: where the comment is (to answer under
-- it, to follow its edits and deletion) and who wrote it (a public profile link).
CREATE TABLE comments (
    appeal_id   INTEGER PRIMARY KEY REFERENCES appeals (id),
    platform    TEXT NOT NULL,
    community   TEXT NOT NULL,
    owner_id    TEXT NOT NULL,      -- VK: the wall (-group_id); MAX: the channel's chat id
    post_id     TEXT NOT NULL,      -- VK: the post's id; MAX: the post's mid
    comment_id  TEXT NOT NULL,      -- VK: the comment's id; MAX: the comment's mid
    author_id   TEXT NOT NULL,
    author_link TEXT,               -- the author's public profile; erased with the name
    link        TEXT NOT NULL,      -- the comment itself
    deleted_at  TEXT,               -- the author (or the community) deleted it
    UNIQUE (platform, community, comment_id)
);

-- The figures count comments apart from appeals, by community (SPEC §14): the covering
-- indexes of migration 0004 get `kind` and `community`, in the order the queries of
-- storage/reports.py read them.
DROP INDEX appeals_figures;
CREATE INDEX appeals_figures ON appeals (
    kind, category, settlement, platform, community, status, rating, created_at, deadline_at,
    first_answer_at
);
DROP INDEX appeals_by_resident;
CREATE INDEX appeals_by_resident ON appeals (resident_id, id, created_at, kind);
DROP INDEX appeals_by_created;
CREATE INDEX appeals_by_created ON appeals (
    created_at, category, deadline_at, first_answer_at, kind
);
DROP INDEX appeals_by_answer_time;
CREATE INDEX appeals_by_answer_time ON appeals (
    (julianday(first_answer_at) - julianday(created_at)), created_at, kind
) WHERE first_answer_at IS NOT NULL;
