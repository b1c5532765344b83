-- PostgreSQL twin of storage/migrations/0009_resident_chats.sql.
CREATE TABLE resident_chats (
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    community   TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    PRIMARY KEY (resident_id, community, chat_id)
);
INSERT INTO resident_chats (resident_id, community, chat_id)
    SELECT id, community, chat_id FROM residents;
