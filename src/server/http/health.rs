//! `GET /healthz`: 200 when the database answers and is migrated, else 503, each with a
//! JSON body a person or a load balancer can read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::server::AppState;

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let reachable = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let (status, database) = match (reachable, state.readiness.is_ready()) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "migrating"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unreachable"),
    };
    let overall = if status == StatusCode::OK {
        "ok"
    } else {
        "unavailable"
    };
    (
        status,
        Json(json!({ "status": overall, "database": database })),
    )
}
