//! Where SQL must name statuses and roles itself (a CHECK, a partial index), the schema's
//! lists are compared here with the enums' own, so the two cannot drift apart.

use std::collections::BTreeSet;

use jobdeck::model::{
    AuditOutcome, ErrorClass, JobDriver, JobKind, JobStatus, LogLevel, ReportStatus, Role,
    TaskStatus, TriggerSource,
};
use sqlx::PgPool;

/// The quoted words of a constraint's or index's definition, in a set.
fn words(definition: &str) -> BTreeSet<String> {
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The definition of the CHECK on `table` that tests `column` against a list.
async fn check_of(pool: &PgPool, table: &str, column: &str) -> String {
    let definitions: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
         JOIN pg_class t ON t.oid = c.conrelid
         WHERE t.relname = $1 AND c.contype = 'c'",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    definitions
        .into_iter()
        .find(|d| d.starts_with(&format!("CHECK (({column} = ANY")))
        .unwrap_or_else(|| panic!("no list CHECK on {table}.{column}"))
}

#[sqlx::test]
async fn every_check_lists_exactly_its_enums_names(pool: PgPool) {
    let cases: [(&str, &str, &[&str]); 12] = [
        ("jobs", "status", &JobStatus::NAMES),
        ("jobs", "driver", &JobDriver::NAMES),
        ("jobs", "kind", &JobKind::NAMES),
        ("jobs", "trigger_source", &TriggerSource::NAMES),
        ("job_tasks", "status", &TaskStatus::NAMES),
        ("job_logs", "level", &LogLevel::NAMES),
        ("job_errors", "class", &ErrorClass::NAMES),
        ("api_tokens", "role", &Role::NAMES),
        ("audit_events", "outcome", &AuditOutcome::NAMES),
        ("job_status", "last_status", &ReportStatus::NAMES),
        ("job_reports", "status", &ReportStatus::NAMES),
        (
            "users",
            "role",
            &[
                Role::USER_ROLES[0].as_str(),
                Role::USER_ROLES[1].as_str(),
                Role::USER_ROLES[2].as_str(),
            ],
        ),
    ];
    for (table, column, names) in cases {
        let definition = check_of(&pool, table, column).await;
        assert_eq!(
            words(&definition),
            set(names),
            "{table}.{column}: {definition}"
        );
    }
}

#[sqlx::test]
async fn the_finished_rule_and_the_live_index_name_the_enums_statuses(pool: PgPool) {
    for (table, finished) in [
        ("jobs", JobStatus::finished()),
        ("job_tasks", TaskStatus::finished()),
    ] {
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
             JOIN pg_class t ON t.oid = c.conrelid
             WHERE t.relname = $1 AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%finished_at IS NOT NULL%'",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(definitions.len(), 1, "{table}: {definitions:?}");
        assert_eq!(words(&definitions[0]), set(&finished), "{table}");
    }
    // The dashboard's live jobs: a recap job in any status that has not finished.
    let index: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_recap_live_idx'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let live: Vec<&str> = JobStatus::ALL
        .into_iter()
        .filter(|s| !s.is_finished())
        .map(JobStatus::as_str)
        .collect();
    let mut expected = set(&live);
    expected.insert(JobKind::Recap.as_str().to_string());
    assert_eq!(words(&index), expected, "{index}");
}

#[sqlx::test]
async fn the_dispatch_indexes_name_the_enums_statuses(pool: PgPool) {
    let index = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT indexdef FROM pg_indexes WHERE indexname = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let claimable = index("jobs_claimable_idx").await;
    let mut expected = set(&JobStatus::HANDING_OUT.map(JobStatus::as_str));
    expected.insert(JobDriver::Dispatched.as_str().to_string());
    assert_eq!(words(&claimable), expected, "{claimable}");
    let pending = index("job_tasks_pending_idx").await;
    assert_eq!(
        words(&pending),
        set(&[TaskStatus::Pending.as_str()]),
        "{pending}"
    );
    // The finishing call's probe for tasks waiting on others says 'pending' as this does.
    let waiting = index("job_tasks_waiting_on_others_idx").await;
    assert_eq!(
        words(&waiting),
        set(&[TaskStatus::Pending.as_str()]),
        "{waiting}"
    );
}
