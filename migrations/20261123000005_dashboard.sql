-- The Recap dashboard (seed 002) reads recap jobs by when they finished, the live ones, and
-- one user's jobs; stage averages read phases by when they ended.
CREATE INDEX jobs_recap_finished_idx ON jobs (finished_at DESC) WHERE kind = 'recap';
CREATE INDEX jobs_recap_live_idx ON jobs (created_at DESC)
    WHERE kind = 'recap' AND status IN ('pending', 'running', 'paused');
CREATE INDEX jobs_recap_user_idx ON jobs (user_id) WHERE kind = 'recap';
CREATE INDEX job_phases_finished_idx ON job_phases (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX recap_job_articles_user_idx ON recap_job_articles (original_user_id, job_id);
