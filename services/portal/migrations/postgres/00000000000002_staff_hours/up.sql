-- What each staff member is good at (comma-separated tags, e.g. "battery, controller"), and the
-- hours they work each weekday (shop time), for the Today screen and the owner's planning.
ALTER TABLE staff ADD COLUMN skills TEXT NOT NULL DEFAULT '';

CREATE TABLE staff_hours (
    staff_id TEXT NOT NULL REFERENCES staff (id),
    -- 0 = Monday … 6 = Sunday
    weekday INTEGER NOT NULL CHECK (weekday >= 0 AND weekday <= 6),
    -- HH:MM, shop time; starts < ends (one span a day)
    starts TEXT NOT NULL,
    ends TEXT NOT NULL,
    PRIMARY KEY (staff_id, weekday)
);
