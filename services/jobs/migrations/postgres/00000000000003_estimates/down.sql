DROP TABLE estimates;
DROP TABLE job_lines;
DROP TABLE job_notes;
