-- Which lines of a stored output chunk the program wrote to stderr:
-- `start-end` ranges (half-open) of line indexes within the chunk,
-- comma-separated. NULL — every row stored before this — is all stdout.
ALTER TABLE job_output ADD COLUMN stderr TEXT;
