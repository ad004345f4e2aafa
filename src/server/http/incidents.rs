//! Links from before the word "job" went to seed 001: `/jobs/{job_key}` was a reported
//! script's page, now `/incidents/{job_key}`. Old links are redirected permanently.

use axum::extract::Path;
use axum::response::Redirect;

use crate::model::incident_path;
pub async fn old_incident_link(Path(job_key): Path<String>) -> Redirect {
    Redirect::permanent(&incident_path(&job_key))
}
