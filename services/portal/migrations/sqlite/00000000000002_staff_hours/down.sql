DROP TABLE staff_hours;
ALTER TABLE staff DROP COLUMN skills;
