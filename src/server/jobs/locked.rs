//! The one way every change to a job or its tasks runs: in a transaction that first takes
//! the job's row lock, so racing callers are served one after the other and each sees the
//! state the last one left. A `Gone` is committed (answering it may have removed a job whose
//! deletion was waiting for its pipeline), any other error rolls everything back.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::store::{lock_job, LockedJob};
use super::JobError;
use crate::server::audit::Actor;

/// An error of a change made under a job's lock: it can carry the lock's own refusals and
/// says whether it is the job being gone, which must be committed.
pub trait JobScoped: From<JobError> + From<sqlx::Error> {
    fn is_gone(&self) -> bool;
}

impl JobScoped for JobError {
    fn is_gone(&self) -> bool {
        matches!(self, JobError::Gone { .. })
    }
}

pub async fn in_locked_job<T, E: JobScoped>(
    pool: &PgPool,
    job_id: Uuid,
    actor: &Actor,
    work: impl AsyncFnOnce(&mut PgConnection, LockedJob) -> Result<T, E>,
) -> Result<T, E> {
    let mut tx = pool.begin().await?;
    let result = match lock_job(&mut tx, job_id, actor).await {
        Ok(job) => work(&mut tx, job).await,
        Err(error) => Err(E::from(error)),
    };
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) if error.is_gone() => {
            tx.commit().await?;
            Err(error)
        }
        Err(error) => Err(error),
    }
}
