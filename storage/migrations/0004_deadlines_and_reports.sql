-- Deadlines and figures (SPEC §8, §9): which reminders and escalations were sent, and the
-- indexes that let a year of a large region (1,000,000 appeals) report in about a second.

-- One row per notice sent about one deadline of one appeal, written in the transaction that
-- queues the messages: a restart neither repeats a notice nor skips one. A reopened appeal
-- («Вопрос не решён») has a new deadline, and so rows of its own.
CREATE TABLE deadline_notices (
    appeal_id  INTEGER NOT NULL REFERENCES appeals (id),
    kind       TEXT NOT NULL CHECK (kind IN ('reminder', 'escalation')),
    due_at     TEXT NOT NULL,           -- the deadline the notice was about
    sent_at    TEXT NOT NULL,           -- when its messages were queued in the outbox
    recipients INTEGER NOT NULL,        -- how many people they were queued for
    PRIMARY KEY (appeal_id, kind, due_at)
) WITHOUT ROWID;

-- The report's indexes are covering (a report never reads the table, whose rows carry the
-- texts) and ordered so that SQLite needs no sort: it has no hash aggregation, and sorting a
-- million rows costs seconds where reading an index in order costs a fraction of one.
-- storage/reports.py names them in its queries.

-- Counts of a period by category, settlement, messenger, status and rating, answered and
-- answered on time: one GROUP BY in this order, the period filtered on the way.
CREATE INDEX appeals_figures ON appeals (
    category, settlement, platform, status, rating, created_at, deadline_at, first_answer_at
);

-- Distinct residents of a period: residents in order, the period filtered on the way. The
-- resident's own list (resident_id, id DESC) is served as before.
DROP INDEX appeals_by_resident;
CREATE INDEX appeals_by_resident ON appeals (resident_id, id, created_at);

-- A period's appeals by time (each month of the chart; /stats of a short period).
DROP INDEX appeals_by_created;
CREATE INDEX appeals_by_created ON appeals (created_at, category, deadline_at, first_answer_at);

-- Time to first answer, in the order percentiles read it (ORDER BY … LIMIT 1 OFFSET k).
-- The expression must be written exactly so in a query for SQLite to use this index.
CREATE INDEX appeals_by_answer_time ON appeals (
    (julianday(first_answer_at) - julianday(created_at)), created_at
) WHERE first_answer_at IS NOT NULL;
