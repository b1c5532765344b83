-- PostgreSQL twin of storage/migrations/0008_communities_and_comments.sql: several
-- communities (bots) per messenger, and comments under posts as items of their own (SPEC §14).
-- PostgreSQL changes a primary key in place and plans the report by statistics, so the
-- covering indexes of the SQLite file have no twin here.

ALTER TABLE outbox ADD COLUMN community TEXT NOT NULL DEFAULT '';
DROP INDEX outbox_pending_by_chat;
CREATE INDEX outbox_pending_by_chat ON outbox (platform, community, chat_id, id)
    WHERE status = 'pending';

ALTER TABLE sent_messages ADD COLUMN community TEXT NOT NULL DEFAULT '';
ALTER TABLE sent_messages DROP CONSTRAINT sent_messages_pkey;
ALTER TABLE sent_messages ADD PRIMARY KEY (platform, community, chat_id, message_id);

ALTER TABLE residents ADD COLUMN community TEXT NOT NULL DEFAULT '';

ALTER TABLE appeals ADD COLUMN kind TEXT NOT NULL DEFAULT 'appeal'
    CHECK (kind IN ('appeal', 'comment'));
ALTER TABLE appeals ADD COLUMN community TEXT NOT NULL DEFAULT '';

CREATE TABLE comments (
    appeal_id   BIGINT PRIMARY KEY REFERENCES appeals (id),
    platform    TEXT NOT NULL,
    community   TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    post_id     TEXT NOT NULL,
    comment_id  TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    author_link TEXT,
    link        TEXT NOT NULL,
    deleted_at  TEXT,
    UNIQUE (platform, community, comment_id)
);
