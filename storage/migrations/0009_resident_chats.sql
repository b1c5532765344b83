-- Every private chat a person has had with the bot, by community (SPEC §7, §14). On OK a
-- person's chat id differs from group to group, and `residents` keeps only the latest: /forget
-- must still find the messages stored for the earlier chats, to erase the name and phone in
-- them. Written when a resident's chat changes, which is seldom.
CREATE TABLE resident_chats (
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    community   TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    PRIMARY KEY (resident_id, community, chat_id)
) WITHOUT ROWID;
INSERT INTO resident_chats (resident_id, community, chat_id)
    SELECT id, community, chat_id FROM residents;
