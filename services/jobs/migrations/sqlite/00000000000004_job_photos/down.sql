DROP TABLE job_photos;
