-- Staff listings (/list, /overdue) and deadline notices read appeals in the order of their
-- current deadline, a page at a time, from an index: at a million appeals no statement may
-- sort or count every row (it runs on the event loop).

-- The deadline set when the resident answered «Вопрос не решён»: `answer_within_hours` after
-- that rating; NULL while the registration deadline `deadline_at` is the one that counts.
-- The current deadline of an appeal is `coalesce(renewed_deadline_at, deadline_at)`, written
-- exactly so everywhere (storage/appeals.py, `_DUE`) for SQLite to use the indexes below.
ALTER TABLE appeals ADD COLUMN renewed_deadline_at TEXT;

-- Appeals reopened before this migration: until now the renewed deadline was computed from
-- the latest rating and the configured term; the appeal's own term (registration deadline
-- minus registration time) gives the same moment, so notices already recorded about it
-- (deadline_notices.due_at) still match and are not sent again.
UPDATE appeals SET renewed_deadline_at = (
    SELECT strftime(
        '%Y-%m-%dT%H:%M:%S',
        e.created_at,
        '+' || CAST(round((julianday(appeals.deadline_at) - julianday(appeals.created_at))
                          * 86400) AS INTEGER) || ' seconds'
    ) || substr(e.created_at, 20)
    FROM appeal_events e
    WHERE e.appeal_id = appeals.id AND e.kind = 'rating'
    ORDER BY e.id DESC LIMIT 1
)
WHERE rating = 'unresolved';

-- A moderator's lists: one range of this index per status, merged by the current deadline.
CREATE INDEX appeals_by_status_due ON appeals (
    status, coalesce(renewed_deadline_at, deadline_at)
);

-- An administrator's lists: one range per settlement and status.
CREATE INDEX appeals_by_settlement_due ON appeals (
    settlement, status, coalesce(renewed_deadline_at, deadline_at)
);
